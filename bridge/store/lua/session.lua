-- Shared head of every script. KEYS are the six keys of SessionKeys, in that order.
-- A session *is* its epoch: keys found without one (an expiry caught half-way) are
-- wiped and the session starts over under the new epoch the caller offers.
local function open_session(epoch)
  local current = redis.call('HGET', KEYS[1], 'epoch')
  if current then return current end
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
  return epoch
end
local function touch(ttl)
  for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
end

-- Shared head of every session script. KEYS are the keys of SessionKeys, in that order:
-- 1 meta, 2 log, 3 keys, 4 ids, 5 answered, 6 statuses, 7 queue, 8 outbox.
-- A session *is* its epoch: keys found without one (an expiry caught half-way) are
-- wiped and the session starts over under the new epoch the caller offers. The queue goes
-- too: seqs restart at 1, and a new message must never be taken for an old queued one.
-- The de-duplication keys (3) outlive the session: their scores are ordinals, and this
-- life's messages get base + seq, base being the highest ordinal there now.
local function open_session(epoch)
  local current = redis.call('HGET', KEYS[1], 'epoch')
  if current then return current end
  redis.call('DEL', KEYS[2], unpack(KEYS, 4, 8))
  local base = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')[2] or 0
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0, 'base', base, 'bytes', 0)
  return epoch
end
-- The seq (a string) of the queue's first message, if it may go now (it did not give up).
local function ready_head()
  local first = redis.call('ZRANGE', KEYS[7], 0, 0)[1]
  if first and redis.call('HEXISTS', KEYS[8], first .. ':f') == 0 then return first end
  return nil
end
-- Idle expiry, restarted. A conversation with messages on their way to the bot never
-- expires (they are kept until delivered or given up): its keys are made persistent, and
-- get their expiry back from the script that empties the queue or gives up. The
-- de-duplication keys (3) have their own expiry, set by append.
local function touch(ttl)
  local persist = ready_head()
  for i = 1, #KEYS do
    if i == 3 then
    elseif persist then redis.call('PERSIST', KEYS[i])
    else redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end
-- Store a status frame and announce it (seq 0: a status, see redis_keys).
local function put_status(channel, epoch, seq, frame)
  redis.call('HSET', KEYS[6], seq, frame)
  redis.call('PUBLISH', channel, '0 ' .. epoch .. ' ' .. frame)
end

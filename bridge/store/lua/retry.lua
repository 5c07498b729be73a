-- ARGV: ttl_ms, channel, seq, the head and tail of a 'sending' status frame (the seq goes
-- between). A queue held by a message that gave up goes again, whole and in order, if seq
-- is one of its messages. Returns {'ok', epoch, {status frames}} or {'not_failed'}.
local first = redis.call('ZRANGE', KEYS[7], 0, 0)[1]
if not first or redis.call('HEXISTS', KEYS[8], first .. ':f') == 0
  or not redis.call('ZSCORE', KEYS[7], ARGV[3]) then
  return {'not_failed'}
end
local epoch = redis.call('HGET', KEYS[1], 'epoch') or ''  -- wiped with the queue: always there
redis.call('HDEL', KEYS[8], first .. ':f')
local frames = {}
for _, queued in ipairs(redis.call('ZRANGE', KEYS[7], 0, -1)) do
  local frame = ARGV[4] .. queued .. ARGV[5]
  put_status(ARGV[2], epoch, queued, frame)
  frames[#frames + 1] = frame
end
touch(tonumber(ARGV[1]))
return {'ok', epoch, frames}

-- ARGV: ttl_ms, channel, seq, 1 (the bot took it) or 0 (it gave up), the status frame of
-- seq, the head and tail of the 'held' status frame of the ones behind it (their seq goes
-- between), the epoch the job was read in. Returns {epoch or '', {status frames}}: none if
-- seq is not queued (forgotten meanwhile, settled already, or a newer life of the
-- conversation reused the seq).
local seq = ARGV[3]
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch or epoch ~= ARGV[8] or not redis.call('ZSCORE', KEYS[7], seq) then
  return {epoch or '', {}}
end
local frames = {}
if ARGV[4] == '1' then
  redis.call('ZREM', KEYS[7], seq)
  redis.call('HDEL', KEYS[8], seq, seq .. ':t', seq .. ':f')
  put_status(ARGV[2], epoch, seq, ARGV[5])
  frames[1] = ARGV[5]
  -- Trimmed from the history while it waited (its status was kept for it): no longer.
  local first = tonumber(redis.call('HGET', KEYS[1], 'seq')) - redis.call('XLEN', KEYS[2]) + 1
  if tonumber(seq) < first then redis.call('HDEL', KEYS[6], seq) end
else
  redis.call('HSET', KEYS[8], seq .. ':f', 1)
  for _, queued in ipairs(redis.call('ZRANGE', KEYS[7], 0, -1)) do
    local frame = ARGV[5]
    if queued ~= seq then frame = ARGV[6] .. queued .. ARGV[7] end
    put_status(ARGV[2], epoch, queued, frame)
    frames[#frames + 1] = frame
  end
end
touch(tonumber(ARGV[1]))
return {epoch, frames}

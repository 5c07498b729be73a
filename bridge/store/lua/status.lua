-- ARGV: ttl_ms, new epoch, channel, seq, status frame. Returns the epoch.
local epoch = open_session(ARGV[2])
redis.call('HSET', KEYS[6], ARGV[4], ARGV[5])
redis.call('PUBLISH', ARGV[3], '0 ' .. epoch .. ' ' .. ARGV[5])
touch(tonumber(ARGV[1]))
return epoch

-- ARGV: ttl_ms, new epoch, channel, seq, status frame. Returns the epoch.
local epoch = open_session(ARGV[2])
put_status(ARGV[3], epoch, ARGV[4], ARGV[5])
touch(tonumber(ARGV[1]))
return epoch

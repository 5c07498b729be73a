-- ARGV: ttl_ms, new epoch, after|'', epoch|''. Returns epoch, last seq, recovered (0/1),
-- the start, the frames after it (they always end at the last seq) and all status frames
-- (a status may change while a browser is away, whatever the seq it names).
local epoch = open_session(ARGV[2])
local last = tonumber(redis.call('HGET', KEYS[1], 'seq'))
local first = last - redis.call('XLEN', KEYS[2]) + 1
local after = tonumber(ARGV[3])
local recovered = after ~= nil and (ARGV[4] == '' or ARGV[4] == epoch)
  and first <= after + 1 and after <= last
local start = 0
if recovered then start = after end
local frames = {}
for _, entry in ipairs(redis.call('XRANGE', KEYS[2], (start + 1) .. '-0', '+')) do
  frames[#frames + 1] = entry[2][2]
end
touch(tonumber(ARGV[1]))
return {epoch, last, recovered and 1 or 0, start, frames, redis.call('HGETALL', KEYS[6])}

-- ARGV: 1 to get the first message's body too, else 0. Returns {0} for no queue, else
-- {count, first seq, its queued_at, 1 if it gave up else 0, its body or '', epoch}.
local first = redis.call('ZRANGE', KEYS[7], 0, 0)[1]
if not first then return {0} end
local head = redis.call('HMGET', KEYS[8], first, first .. ':t', first .. ':f')
local body = ''
if ARGV[1] == '1' then body = head[1] end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
return {redis.call('ZCARD', KEYS[7]), first, head[2], head[3] and 1 or 0, body, epoch}

-- KEYS: the lease of one conversation. ARGV: owner, ttl_ms. Takes a free lease, or renews
-- one the owner holds; never another's. Returns 1 if the owner holds it now, else 0.
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1

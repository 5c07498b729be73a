-- KEYS: the lease of one conversation. ARGV: owner. Only its holder gives it back (a
-- lease that ran out may be another's by now). Returns 1 if it was released.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0

-- ARGV: ttl_ms, limit, new epoch, channel, envelope|'', answer seq|'', answer option,
-- queued_at|'' (a person's message for the bot: '' when not), its body, the head and tail
-- of its 'sending' status frame, then per item: de-dup key, message id, frame head, frame
-- tail (the seq goes between the head and the tail).
-- Returns {'ok', epoch, {seq per item}, {1 if the item was stored now, else 0}} or
-- {'already_answered'}. A stored frame is published in the same step (see redis_keys),
-- and a new item for the bot joins the queue in it too (acknowledged means queued).
local ttl, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local epoch = open_session(ARGV[3])
local last = tonumber(redis.call('HGET', KEYS[1], 'seq'))
local first = last - redis.call('XLEN', KEYS[2]) + 1
local fresh = false
for i = 12, #ARGV, 4 do
  if not redis.call('ZSCORE', KEYS[3], ARGV[i]) then fresh = true end
end
if ARGV[6] ~= '' and fresh then
  if redis.call('HEXISTS', KEYS[5], ARGV[6]) == 1 then return {'already_answered'} end
  redis.call('HSET', KEYS[5], ARGV[6], ARGV[7])
end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'envelope', ARGV[5]) end
local seqs, stored = {}, {}
for i = 12, #ARGV, 4 do
  local seq = redis.call('ZSCORE', KEYS[3], ARGV[i])
  if seq then
    seq = tonumber(seq)
    stored[#stored + 1] = 0
  else
    stored[#stored + 1] = 1
    seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
    local frame = ARGV[i + 2] .. seq .. ARGV[i + 3]
    redis.call('XADD', KEYS[2], 'MAXLEN', limit, seq .. '-0', 'f', frame)
    redis.call('ZADD', KEYS[3], seq, ARGV[i])
    redis.call('ZADD', KEYS[4], seq, ARGV[i + 1])
    redis.call(PUBLISH, ARGV[4], seq .. ' ' .. epoch .. ' ' .. frame)
    if ARGV[8] ~= '' then
      redis.call('ZADD', KEYS[7], seq, seq)
      redis.call('HSET', KEYS[8], seq, ARGV[9], seq .. ':t', ARGV[8])
      put_status(ARGV[4], epoch, seq, ARGV[10] .. seq .. ARGV[11])
    end
  end
  seqs[#seqs + 1] = seq
end
last = tonumber(redis.call('HGET', KEYS[1], 'seq'))
local kept = last - redis.call('XLEN', KEYS[2]) + 1
for seq = first, kept - 1 do
  -- a message still queued keeps its status: it is shown until the bot has it
  if not redis.call('ZSCORE', KEYS[7], seq) then
    redis.call('HDEL', KEYS[5], seq)
    redis.call('HDEL', KEYS[6], seq)
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. kept)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (kept - limit))
touch(ttl)
return {'ok', epoch, seqs, stored}

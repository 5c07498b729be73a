-- Constants (RedisStore puts them before the script): TTL (ms), LIMIT (messages kept),
-- BUDGET (the history's bytes), CAP (the de-duplication keys kept, the newest),
-- RETENTION (theirs, in ms), SENDING_HEAD and SENDING_TAIL (a 'sending' status frame,
-- split around its seq).
-- ARGV: new epoch, channel, envelope|'', answer seq|'', answer option, queued_at|'' (a
-- person's message for the bot: '' when not), its body, then per item: de-dup key,
-- message id, frame head, frame tail (the seq goes between the head and the tail).
-- Returns {'ok', epoch, {seq per item}, {1 if the item was stored now, else 0}} or
-- {'already_answered'}. A stored frame is published in the same step (see redis_keys),
-- and a new item for the bot joins the queue in it too (acknowledged means queued).
-- A remembered item's seq is 0 when it was stored in an earlier life of the session.
local epoch = open_session(ARGV[1])
local meta = redis.call('HMGET', KEYS[1], 'seq', 'base', 'bytes')
local last, base, bytes = tonumber(meta[1]), tonumber(meta[2]) or 0, tonumber(meta[3])
if not bytes then  -- a session stored before the byte budget: its frames, counted once
  bytes = 0
  for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do
    bytes = bytes + #entry[2][2]
  end
end
local first = last - redis.call('XLEN', KEYS[2]) + 1
local fresh = false
for i = 8, #ARGV, 4 do
  if not redis.call('ZSCORE', KEYS[3], ARGV[i]) then fresh = true end
end
if ARGV[4] ~= '' and fresh then
  if redis.call('HEXISTS', KEYS[5], ARGV[4]) == 1 then return {'already_answered'} end
  redis.call('HSET', KEYS[5], ARGV[4], ARGV[5])
end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'envelope', ARGV[3]) end
local seqs, stored = {}, {}
for i = 8, #ARGV, 4 do
  local seq = redis.call('ZSCORE', KEYS[3], ARGV[i])
  if seq then
    seq = tonumber(seq) - base
    if seq < 1 then seq = 0 end
    stored[#stored + 1] = 0
  else
    stored[#stored + 1] = 1
    seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
    local frame = ARGV[i + 2] .. seq .. ARGV[i + 3]
    redis.call('XADD', KEYS[2], seq .. '-0', 'f', frame)
    bytes = bytes + #frame
    redis.call('ZADD', KEYS[3], base + seq, ARGV[i])
    redis.call('ZADD', KEYS[4], seq, ARGV[i + 1])
    redis.call(PUBLISH, ARGV[2], seq .. ' ' .. epoch .. ' ' .. frame)
    if ARGV[6] ~= '' then
      redis.call('ZADD', KEYS[7], seq, seq)
      redis.call('HSET', KEYS[8], seq, ARGV[7], seq .. ':t', ARGV[6])
      put_status(ARGV[2], epoch, seq, SENDING_HEAD .. seq .. SENDING_TAIL)
    end
  end
  seqs[#seqs + 1] = seq
end
-- The history: at most LIMIT messages and BUDGET bytes, the newest always.
local count = redis.call('XLEN', KEYS[2])
while count > 1 and (count > LIMIT or bytes > BUDGET) do
  local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
  bytes = bytes - #oldest[2][2]
  redis.call('XDEL', KEYS[2], oldest[1])
  count = count - 1
end
redis.call('HSET', KEYS[1], 'bytes', bytes)
last = tonumber(redis.call('HGET', KEYS[1], 'seq'))
local kept = last - count + 1
for seq = first, kept - 1 do
  -- a message still queued keeps its status: it is shown until the bot has it
  if not redis.call('ZSCORE', KEYS[7], seq) then
    redis.call('HDEL', KEYS[5], seq)
    redis.call('HDEL', KEYS[6], seq)
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. kept)
local remembered = redis.call('ZCARD', KEYS[3])
if remembered > CAP then redis.call('ZREMRANGEBYRANK', KEYS[3], 0, remembered - CAP - 1) end
if remembered > 0 then redis.call('PEXPIRE', KEYS[3], RETENTION) end
touch(TTL)
return {'ok', epoch, seqs, stored}

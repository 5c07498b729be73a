-- Shared head of every session script. KEYS are the keys of SessionKeys, in that order:
-- 1 meta, 2 log, 3 keys, 4 ids, 5 answered, 6 statuses, 7 queue, 8 outbox, then 9 the
-- live channel (a key so that a cluster checks its slot). PUBLISH and FENCED come from
-- the prelude the store puts before this (redis_topology.prelude).
-- A session *is* its epoch: keys found without one (an expiry caught half-way) are
-- wiped and the session starts over under the new epoch the caller offers. The queue goes
-- too: seqs restart at 1, and a new message must never be taken for an old queued one.
-- The de-duplication keys (3) outlive the session: their scores are ordinals, and this
-- life's messages get base + seq, base being the highest ordinal there now.
-- Fenced (Sentinel, Cluster): a session remembers the replication id of the master that
-- wrote it. Found on another master, it crossed a fail-over (or a resharding), and the
-- writes the old master had not replicated are gone while browsers may have seen them:
-- the seqs they had are handed out again. It goes on under the new epoch (its history
-- kept), so browsers replace what they show instead of skipping the reused seqs.
local function open_session(epoch)
  local current = redis.call('HGET', KEYS[1], 'epoch')
  local node = FENCED and string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)')
  if current then
    if node then
      local wrote = redis.call('HGET', KEYS[1], 'node')
      if wrote ~= node then
        if wrote then current = epoch end
        redis.call('HSET', KEYS[1], 'epoch', current, 'node', node)
      end
    end
    return current
  end
  redis.call('DEL', KEYS[2], unpack(KEYS, 4, 8))
  local base = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')[2] or 0
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0, 'base', base, 'bytes', 0)
  if node then redis.call('HSET', KEYS[1], 'node', node) end
  return epoch
end
-- The seq (a string) of the queue's first message, if it may go now (it did not give up).
local function ready_head()
  local first = redis.call('ZRANGE', KEYS[7], 0, 0)[1]
  if first and redis.call('HEXISTS', KEYS[8], first .. ':f') == 0 then return first end
  return nil
end
-- Idle expiry, restarted. A conversation with messages on their way to the bot never
-- expires (they are kept until delivered or given up): its keys are made persistent, and
-- get their expiry back from the script that empties the queue or gives up. The
-- de-duplication keys (3) have their own expiry, set by append.
local function touch(ttl)
  local persist = ready_head()
  for i = 1, #KEYS do
    if i == 3 then
    elseif persist then redis.call('PERSIST', KEYS[i])
    else redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end
-- Store a status frame and announce it (seq 0: a status, see redis_keys).
local function put_status(channel, epoch, seq, frame)
  redis.call('HSET', KEYS[6], seq, frame)
  redis.call(PUBLISH, channel, '0 ' .. epoch .. ' ' .. frame)
end

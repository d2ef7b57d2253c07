"""The Lua scripts of the Redis store (store/redis.py): each write, claim, lease, ack and audit step
is one script, so it is one round trip and atomic. The key layout is in redis.py's docstring."""

# Shared Lua: enqueue(typ, id, lane) with coalescing; lane rank: revocation (0) before standard (1).
_ENQUEUE = """
local function enqueue(typ, id, lane, now_order, corr)
  if lane == '' then return end
  local key = typ .. '/' .. id
  if redis.call('HINCRBY', 'sb:q:gen', key, 1) == 1 then
    -- a new entry: when it was queued (sync lag, queue age); later changes coalesce into it
    local t = redis.call('TIME')
    redis.call('HSET', 'sb:q:since', key, t[1] .. '.' .. string.format('%06d', t[2]))
  end
  if corr and corr ~= '' then redis.call('HSET', 'sb:q:corr', key, corr) end
  local where = redis.call('HGET', 'sb:q:where', key)
  if redis.call('ZSCORE', 'sb:q:leases', key) then
    -- being processed: ack() sees the new generation; remember a stronger lane
    if lane == 'revocation' then redis.call('HSET', 'sb:q:where', key, lane) end
    return
  end
  if where then
    if where ~= lane and lane == 'revocation' then
      redis.call('ZREM', 'sb:q:lane:' .. where, key)
      redis.call('ZADD', 'sb:q:lane:revocation', now_order, key)
      redis.call('HSET', 'sb:q:where', key, 'revocation')
    end
    return
  end
  redis.call('ZADD', 'sb:q:lane:' .. lane, now_order, key)
  redis.call('HSET', 'sb:q:where', key, lane)
end
"""

_WRITE = (
    _ENQUEUE
    + """
-- KEYS[1]: the call's replay key (see _replayable); every other key is derived (one Redis, not a cluster)
-- ARGV: mode(create|replace|delete), type, id, body, expected_version, lane, n_index, then
--       n_index triples attr, value, unique(0|1), then audit entry ('' for none), correlation id
local mode, typ, id, body, expected, lane = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local n = tonumber(ARGV[7])
local audit, corr = ARGV[8 + n * 3], ARGV[9 + n * 3]
local rkey = 'sb:r:' .. typ .. ':' .. id
local exists = redis.call('EXISTS', rkey) == 1
if mode == 'create' and exists then return {'err', 'exists'} end
if mode ~= 'create' and not exists then return {'err', 'notfound'} end
local version = 0
local seq = 0
if exists then
  version = tonumber(redis.call('HGET', rkey, 'version'))
  seq = tonumber(redis.call('HGET', rkey, 'seq'))
  if expected ~= '' and tonumber(expected) ~= version then return {'err', 'version', version} end
end
if mode ~= 'delete' then
  for i = 0, n - 1 do
    local attr, value, uniq = ARGV[8 + i * 3], ARGV[9 + i * 3], ARGV[10 + i * 3]
    if uniq == '1' then
      local holder = redis.call('GET', 'sb:u:' .. typ .. ':' .. attr .. ':' .. value)
      if holder and holder ~= id then return {'err', 'unique', attr, value} end
    end
  end
end
-- undo the old index entries
local kkey = 'sb:keys:' .. typ .. ':' .. id
for _, entry in ipairs(redis.call('SMEMBERS', kkey)) do
  local attr, value, uniq = string.match(entry, '^(.-)%z(.*)%z([01])$')
  redis.call('SREM', 'sb:ix:' .. typ .. ':' .. attr .. ':' .. value, id)
  if uniq == '1' then redis.call('DEL', 'sb:u:' .. typ .. ':' .. attr .. ':' .. value) end
end
redis.call('DEL', kkey)
local order = redis.call('INCR', 'sb:qseq')
if audit ~= '' then redis.call('XADD', 'sb:audit:pending', '*', 'b', audit) end
if mode == 'delete' then
  redis.call('DEL', rkey)
  redis.call('ZREM', 'sb:all:' .. typ, id)
  enqueue(typ, id, lane, order, corr)
  return {'ok', version, seq}
end
if mode == 'create' then seq = redis.call('INCR', 'sb:seq') end
version = version + 1
redis.call('HSET', rkey, 'body', body, 'version', version, 'seq', seq)
redis.call('ZADD', 'sb:all:' .. typ, seq, id)
for i = 0, n - 1 do
  local attr, value, uniq = ARGV[8 + i * 3], ARGV[9 + i * 3], ARGV[10 + i * 3]
  redis.call('SADD', 'sb:ix:' .. typ .. ':' .. attr .. ':' .. value, id)
  if uniq == '1' then redis.call('SET', 'sb:u:' .. typ .. ':' .. attr .. ':' .. value, id) end
  redis.call('SADD', kkey, attr .. '\\0' .. value .. '\\0' .. uniq)
end
enqueue(typ, id, lane, order, corr)
return {'ok', version, seq}
"""
)

_STANDALONE_ENQUEUE = (
    _ENQUEUE
    + """
enqueue(ARGV[1], ARGV[2], ARGV[3], redis.call('INCR', 'sb:qseq'), ARGV[4])
return 1
"""
)

_CLAIM = """
-- ARGV: consumer, limit, now, lease_seconds, lanes in order (one or more)
local consumer, limit, now, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local lanes = {}
for i = 5, #ARGV do table.insert(lanes, ARGV[i]) end
-- expired leases go back to the front of their lane
for _, key in ipairs(redis.call('ZRANGEBYSCORE', 'sb:q:leases', '-inf', now)) do
  redis.call('ZREM', 'sb:q:leases', key)
  redis.call('HDEL', 'sb:q:owner', key)
  local lane = redis.call('HGET', 'sb:q:where', key) or 'standard'
  redis.call('ZADD', 'sb:q:lane:' .. lane, 0, key)
end
local result = {}
for _, lane in ipairs(lanes) do
  while #result < limit * 4 do
    local popped = redis.call('ZPOPMIN', 'sb:q:lane:' .. lane)
    if #popped == 0 then break end
    local key = popped[1]
    local gen = redis.call('HGET', 'sb:q:gen', key) or '0'
    redis.call('ZADD', 'sb:q:leases', now + lease, key)
    redis.call('HSET', 'sb:q:owner', key, consumer .. '|' .. gen)
    table.insert(result, key)
    table.insert(result, lane)
    table.insert(result, gen)
    table.insert(result, redis.call('HGET', 'sb:q:attempts', key) or '0')
    table.insert(result, redis.call('HGET', 'sb:q:corr', key) or '')
    table.insert(result, redis.call('HGET', 'sb:q:since', key) or '')
  end
end
return result
"""

_DEFER = """
-- ARGV: key, until. Only an entry that still exists (acked ones stay gone).
local key = ARGV[1]
if not redis.call('HGET', 'sb:q:gen', key) then return 0 end
redis.call('ZREM', 'sb:q:lane:' .. (redis.call('HGET', 'sb:q:where', key) or 'standard'), key)
redis.call('ZADD', 'sb:q:leases', ARGV[2], key)
redis.call('HDEL', 'sb:q:owner', key)  -- waiting out its backoff: nobody works on it
return redis.call('HINCRBY', 'sb:q:attempts', key, 1)
"""

_LEASE = """
-- ARGV: key, lane (when none is queued), consumer, now, lease_seconds. One resource's entry for
-- one consumer (provision on demand); {} while another consumer holds it. Re-sent, the same
-- consumer gets it again.
local key, lane, consumer, now, lease = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local owner = redis.call('HGET', 'sb:q:owner', key)
local until_ = redis.call('ZSCORE', 'sb:q:leases', key)
if owner and until_ and tonumber(until_) > now and string.sub(owner, 1, #consumer + 1) ~= consumer .. '|' then
  return {}
end
local gen = redis.call('HGET', 'sb:q:gen', key)
local where = redis.call('HGET', 'sb:q:where', key)
if not gen then
  gen = tostring(redis.call('HINCRBY', 'sb:q:gen', key, 1))
  where = lane
  redis.call('HSET', 'sb:q:where', key, lane)
elseif where then
  redis.call('ZREM', 'sb:q:lane:' .. where, key)
else
  where = 'standard'
end
redis.call('ZADD', 'sb:q:leases', now + lease, key)
redis.call('HSET', 'sb:q:owner', key, consumer .. '|' .. gen)
return {where, gen, redis.call('HGET', 'sb:q:attempts', key) or '0', redis.call('HGET', 'sb:q:corr', key) or ''}
"""

_RELEASE = """
-- ARGV: key, owner (consumer|generation of the claim). A stopping worker hands back what it did
-- not finish: only while that claim still holds it, so a late release never takes an entry away
-- from the worker that re-claimed it after the lease expired. Idempotent.
local key, owner = ARGV[1], ARGV[2]
if redis.call('HGET', 'sb:q:owner', key) ~= owner then return 0 end
redis.call('ZREM', 'sb:q:leases', key)
redis.call('HDEL', 'sb:q:owner', key)
redis.call('ZADD', 'sb:q:lane:' .. (redis.call('HGET', 'sb:q:where', key) or 'standard'), 0, key)
return 1
"""

_ACK = """
-- ARGV: key, generation. Idempotent: a second ack, or a late one from a worker whose lease
-- expired, must never bring an entry back.
local key, gen = ARGV[1], ARGV[2]
local current = redis.call('HGET', 'sb:q:gen', key)
if not current then return 0 end  -- already acked
local lane = redis.call('HGET', 'sb:q:where', key) or 'standard'
if current == gen then  -- unchanged since the claim: done, wherever it is now
  redis.call('ZREM', 'sb:q:leases', key)
  redis.call('ZREM', 'sb:q:lane:' .. lane, key)
  redis.call('HDEL', 'sb:q:gen', key)
  redis.call('HDEL', 'sb:q:where', key)
  redis.call('HDEL', 'sb:q:owner', key)
  redis.call('HDEL', 'sb:q:attempts', key)
  redis.call('HDEL', 'sb:q:corr', key)
  redis.call('HDEL', 'sb:q:since', key)
  return 1
end
-- changed while it was processed: release the lease, back to the front of its lane
if redis.call('ZREM', 'sb:q:leases', key) == 1 then
  redis.call('HDEL', 'sb:q:owner', key)
  redis.call('ZADD', 'sb:q:lane:' .. lane, 0, key)
end
return 0
"""


_AUDIT_FIELDS = """
local function fields(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end
local function seq_of(id) return tonumber(string.match(id, '^(%d+)')) end
"""

_AUDIT_CHAIN = (
    _AUDIT_FIELDS
    + """
-- ARGV: head seq read, first and last pending id read, n, then n pairs time_us, hash (computed in
-- Python over exactly those pending entries). Appends only if nobody chained meanwhile.
local head = tonumber(redis.call('HGET', 'sb:audit:head', 'seq') or '0')
if head ~= tonumber(ARGV[1]) then return 0 end
local n = tonumber(ARGV[4])
local first = redis.call('XRANGE', 'sb:audit:pending', '-', '+', 'COUNT', 1)
if #first == 0 or first[1][1] ~= ARGV[2] then return 0 end
local batch = redis.call('XRANGE', 'sb:audit:pending', ARGV[2], ARGV[3])
if #batch ~= n then return 0 end
for i = 1, n do
  local entry = batch[i]
  redis.call('XADD', 'sb:audit:log', (head + i) .. '-0', 't', ARGV[3 + 2 * i], 'h', ARGV[4 + 2 * i],
             'b', fields(entry[2])['b'] or '')
  redis.call('XDEL', 'sb:audit:pending', entry[1])
end
redis.call('HSET', 'sb:audit:head', 'seq', head + n, 'hash', ARGV[4 + 2 * n], 'time', ARGV[3 + 2 * n])
return n
"""
)

_AUDIT_SEEK = (
    _AUDIT_FIELDS
    + """
-- ARGV: time_us. The lowest seq from which entries have time >= time_us (times never decrease
-- along the chain, so this is a binary search over seq; removed entries are skipped over).
local since = tonumber(ARGV[1])
local first = redis.call('XRANGE', 'sb:audit:log', '-', '+', 'COUNT', 1)
if #first == 0 then return 0 end
local last = redis.call('XREVRANGE', 'sb:audit:log', '+', '-', 'COUNT', 1)
local lo, hi = seq_of(first[1][1]), seq_of(last[1][1]) + 1
while lo < hi do
  local mid = math.floor((lo + hi) / 2)
  local found = redis.call('XRANGE', 'sb:audit:log', mid .. '-0', '+', 'COUNT', 1)
  if #found == 0 or tonumber(fields(found[1][2])['t'] or '0') >= since then
    hi = mid
  else
    lo = seq_of(found[1][1]) + 1
  end
end
return lo
"""
)

_AUDIT_PRUNE = (
    _AUDIT_FIELDS
    + """
-- ARGV: cutoff time_us, limit. Drops the prefix of the chain older than the cutoff; its last
-- entry becomes the anchor that verification starts from.
local cutoff, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local entries = redis.call('XRANGE', 'sb:audit:log', '-', '+', 'COUNT', limit)
local last_id, last_hash, count = nil, nil, 0
for _, entry in ipairs(entries) do
  local f = fields(entry[2])
  if tonumber(f['t'] or '0') >= cutoff then break end
  last_id, last_hash, count = entry[1], f['h'] or '', count + 1
end
if not last_id then return 0 end
redis.call('XTRIM', 'sb:audit:log', 'MINID', (seq_of(last_id) + 1) .. '-0')
redis.call('HSET', 'sb:audit:head', 'anchor_seq', string.match(last_id, '^(%d+)'), 'anchor_hash', last_hash)
return count
"""
)

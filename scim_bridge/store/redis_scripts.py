"""The Lua scripts of the Redis store (store/redis.py): each write, claim, lease, ack and audit step
is one script, so it is one round trip and atomic. The key layout is in redis.py's docstring.

Keys come in KEYS, never built from a fixed name inside a script (the prefix is a setting, and a
Redis Cluster routes a script by its KEYS). The queue scripts take the queue's keys first, in
the order queue_keys_lua binds them; a replayable script's call id is its last KEY
(_replayable below). One exception, in _WRITE: a replace or delete first undoes the resource's
old index entries, whose names are known only from its entry set (read inside the script).
Declaring them would cost a read before every write; they are built from the same prefix as the
declared keys, so on a cluster they carry the same hash tag and sit in the same slot, which is
what Redis checks (it refuses a script touching another slot than its declared keys')."""

from .base import LANES
from .redis_fence import FENCE
from .redis_keys import QUEUE_KEY_NAMES


def queue_keys_lua() -> str:
    """Lua binding Q.gen, Q.where, … Q.order and LANE[name] to KEYS[1…]: the order of
    RedisKeys.queue followed by RedisKeys.lanes (QUEUE_KEY_COUNT keys in all)."""
    names = ", ".join(f"{name} = KEYS[{i + 1}]" for i, name in enumerate(QUEUE_KEY_NAMES))
    lanes = ", ".join(f"{lane} = KEYS[{len(QUEUE_KEY_NAMES) + i + 1}]" for i, lane in enumerate(LANES))
    return f"local Q = {{{names}}}\nlocal LANE = {{{lanes}}}\n"


QUEUE_KEY_COUNT = len(QUEUE_KEY_NAMES) + len(LANES)
_Q = queue_keys_lua()
#: the lease scripts' two keys after the queue's (RedisKeys.fenced): tokens by entry, their counter
_F = f"local FENCE, FENCES = KEYS[{QUEUE_KEY_COUNT + 1}], KEYS[{QUEUE_KEY_COUNT + 2}]\n"

# Shared Lua: enqueue(typ, id, lane) with coalescing; lane rank: revocation (0) before standard (1).
_ENQUEUE = """
local function enqueue(typ, id, lane, now_order, corr)
  if lane == '' then return end
  local key = typ .. '/' .. id
  if redis.call('HINCRBY', Q.gen, key, 1) == 1 then
    -- a new entry: when it was queued (sync lag, queue age); later changes coalesce into it
    local t = redis.call('TIME')
    redis.call('HSET', Q.since, key, t[1] .. '.' .. string.format('%06d', t[2]))
  end
  if corr and corr ~= '' then redis.call('HSET', Q.corr, key, corr) end
  local where = redis.call('HGET', Q.where, key)
  if redis.call('ZSCORE', Q.leases, key) then
    -- being processed: ack() sees the new generation; remember a stronger lane
    if lane == 'revocation' then redis.call('HSET', Q.where, key, lane) end
    return
  end
  if where then
    if where ~= lane and lane == 'revocation' then
      redis.call('ZREM', LANE[where], key)
      redis.call('ZADD', LANE.revocation, now_order, key)
      redis.call('HSET', Q.where, key, 'revocation')
    end
    return
  end
  redis.call('ZADD', LANE[lane], now_order, key)
  redis.call('HSET', Q.where, key, lane)
end
"""

_WRITE = (
    _Q
    + _ENQUEUE
    + """
-- KEYS: the queue's (1-10, see queue_keys_lua), then 11 the resource, 12 its index entries, 13 the
--       type's listing, 14 the creation counter, 15 the audit's pending stream, then for each
--       index triple below its index set and its unique key, and last the call's replay key
-- ARGV: mode(create|replace|delete), type, id, body, expected_version, lane, n_index, then
--       n_index triples attr, value, unique(0|1), then audit entry ('' for none), correlation id
local mode, typ, id, body, expected, lane = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local n = tonumber(ARGV[7])
local audit, corr = ARGV[8 + n * 3], ARGV[9 + n * 3]
local rkey, kkey, listing, counter = KEYS[11], KEYS[12], KEYS[13], KEYS[14]
local prefix = string.sub(counter, 1, -4)  -- the counter is '{prefix}seq'
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
      local holder = redis.call('GET', KEYS[17 + i * 2])
      if holder and holder ~= id then return {'err', 'unique', attr, value} end
    end
  end
end
-- undo the old index entries (the one place that builds key names: see the module docstring)
for _, entry in ipairs(redis.call('SMEMBERS', kkey)) do
  local attr, value, uniq = string.match(entry, '^(.-)%z(.*)%z([01])$')
  redis.call('SREM', prefix .. 'ix:' .. typ .. ':' .. attr .. ':' .. value, id)
  if uniq == '1' then redis.call('DEL', prefix .. 'u:' .. typ .. ':' .. attr .. ':' .. value) end
end
redis.call('DEL', kkey)
local order = redis.call('INCR', Q.order)
if audit ~= '' then redis.call('XADD', KEYS[15], '*', 'b', audit) end
if mode == 'delete' then
  redis.call('DEL', rkey)
  redis.call('ZREM', listing, id)
  enqueue(typ, id, lane, order, corr)
  return {'ok', version, seq}
end
if mode == 'create' then seq = redis.call('INCR', counter) end
version = version + 1
redis.call('HSET', rkey, 'body', body, 'version', version, 'seq', seq)
redis.call('ZADD', listing, seq, id)
for i = 0, n - 1 do
  local attr, value, uniq = ARGV[8 + i * 3], ARGV[9 + i * 3], ARGV[10 + i * 3]
  redis.call('SADD', KEYS[16 + i * 2], id)
  if uniq == '1' then redis.call('SET', KEYS[17 + i * 2], id) end
  redis.call('SADD', kkey, attr .. '\\0' .. value .. '\\0' .. uniq)
end
enqueue(typ, id, lane, order, corr)
return {'ok', version, seq}
"""
)

_STANDALONE_ENQUEUE = (
    _Q
    + _ENQUEUE
    + """
enqueue(ARGV[1], ARGV[2], ARGV[3], redis.call('INCR', Q.order), ARGV[4])
return 1
"""
)

_CLAIM = (
    _Q
    + _F
    + """
-- ARGV: consumer, limit, now, lease_seconds, lanes in order (one or more)
local consumer, limit, now, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local lanes = {}
for i = 5, #ARGV do table.insert(lanes, ARGV[i]) end
-- expired leases go back to the front of their lane
for _, key in ipairs(redis.call('ZRANGEBYSCORE', Q.leases, '-inf', now)) do
  redis.call('ZREM', Q.leases, key)
  redis.call('HDEL', Q.owner, key)
  local lane = redis.call('HGET', Q.where, key) or 'standard'
  redis.call('ZADD', LANE[lane], 0, key)
end
local result = {}
for _, lane in ipairs(lanes) do
  while #result < limit * 7 do  -- 7 fields per entry
    local popped = redis.call('ZPOPMIN', LANE[lane])
    if #popped == 0 then break end
    local key = popped[1]
    local gen = redis.call('HGET', Q.gen, key) or '0'
    local fence = redis.call('INCR', FENCES)  -- this lease's fencing token (see _ACK)
    redis.call('HSET', FENCE, key, fence)
    redis.call('ZADD', Q.leases, now + lease, key)
    redis.call('HSET', Q.owner, key, consumer .. '|' .. gen)
    table.insert(result, key)
    table.insert(result, lane)
    table.insert(result, gen)
    table.insert(result, redis.call('HGET', Q.attempts, key) or '0')
    table.insert(result, redis.call('HGET', Q.corr, key) or '')
    table.insert(result, redis.call('HGET', Q.since, key) or '')
    table.insert(result, tostring(fence))
  end
end
return result
"""
)

_DEFER = (
    _Q
    + _F
    + """
-- ARGV: key, until, fence. Only an entry that still exists (acked ones stay gone) and whose
-- latest lease is this one (fenced as _ACK is).
local key = ARGV[1]
if not redis.call('HGET', Q.gen, key) then return 0 end
if redis.call('HGET', FENCE, key) ~= ARGV[3] then return 0 end
redis.call('ZREM', LANE[redis.call('HGET', Q.where, key) or 'standard'], key)
redis.call('ZADD', Q.leases, ARGV[2], key)
redis.call('HDEL', Q.owner, key)  -- waiting out its backoff: nobody works on it
return redis.call('HINCRBY', Q.attempts, key, 1)
"""
)

_LEASE = (
    _Q
    + _F
    + """
-- ARGV: key, lane (when none is queued), consumer, now, lease_seconds. One resource's entry for
-- one consumer (provision on demand); {} while another consumer holds it. Re-sent, the same
-- consumer gets it again.
local key, lane, consumer, now, lease = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local owner = redis.call('HGET', Q.owner, key)
local until_ = redis.call('ZSCORE', Q.leases, key)
if owner and until_ and tonumber(until_) > now and string.sub(owner, 1, #consumer + 1) ~= consumer .. '|' then
  return {}
end
local gen = redis.call('HGET', Q.gen, key)
local where = redis.call('HGET', Q.where, key)
if not gen then
  gen = tostring(redis.call('HINCRBY', Q.gen, key, 1))
  where = lane
  redis.call('HSET', Q.where, key, lane)
elseif where then
  redis.call('ZREM', LANE[where], key)
else
  where = 'standard'
end
local fence = redis.call('INCR', FENCES)
redis.call('HSET', FENCE, key, fence)
redis.call('ZADD', Q.leases, now + lease, key)
redis.call('HSET', Q.owner, key, consumer .. '|' .. gen)
return {where, gen, redis.call('HGET', Q.attempts, key) or '0', redis.call('HGET', Q.corr, key) or '',
        tostring(fence)}
"""
)

_RELEASE = (
    _Q
    + _F
    + """
-- ARGV: key, owner (consumer|generation of the claim), fence. A stopping worker hands back what it
-- did not finish: only while that claim still holds it, so a late release never takes an entry
-- away from the worker that re-claimed it after the lease expired. Idempotent.
local key, owner = ARGV[1], ARGV[2]
if redis.call('HGET', Q.owner, key) ~= owner then return 0 end
if redis.call('HGET', FENCE, key) ~= ARGV[3] then return 0 end
redis.call('ZREM', Q.leases, key)
redis.call('HDEL', Q.owner, key)
redis.call('ZADD', LANE[redis.call('HGET', Q.where, key) or 'standard'], 0, key)
return 1
"""
)

_RENEW = (
    _Q
    + _F
    + """
-- ARGV: key, owner (consumer|generation of the claim), fence, until. A worker still at work keeps
-- its lease (a heartbeat): only while that claim holds it and it is still leased, so a renewal
-- never takes an entry back from a newer holder, nor out of its lane once a claim put it back.
local key, owner = ARGV[1], ARGV[2]
if redis.call('HGET', Q.owner, key) ~= owner then return 0 end
if redis.call('HGET', FENCE, key) ~= ARGV[3] then return 0 end
if not redis.call('ZSCORE', Q.leases, key) then return 0 end
redis.call('ZADD', Q.leases, 'XX', ARGV[4], key)
return 1
"""
)

_ACK = (
    _Q
    + _F
    + """
-- ARGV: key, generation, fence. Idempotent: a second ack, or a late one from a worker whose lease
-- expired, must never bring an entry back. Fenced: every lease takes a token from one counter
-- (FENCES); an ack from a lease that a newer one followed is refused (-1), so it neither drops
-- nor releases the newer holder's work (no token recorded: queued again after this lease's
-- entry was acked, and not leased since).
local key, gen = ARGV[1], ARGV[2]
local current = redis.call('HGET', Q.gen, key)
if not current then return 0 end  -- already acked
if redis.call('HGET', FENCE, key) ~= ARGV[3] then return -1 end
local lane = redis.call('HGET', Q.where, key) or 'standard'
if current == gen then  -- unchanged since the claim: done, wherever it is now
  redis.call('ZREM', Q.leases, key)
  redis.call('ZREM', LANE[lane], key)
  redis.call('HDEL', Q.gen, key)
  redis.call('HDEL', Q.where, key)
  redis.call('HDEL', Q.owner, key)
  redis.call('HDEL', Q.attempts, key)
  redis.call('HDEL', Q.corr, key)
  redis.call('HDEL', Q.since, key)
  redis.call('HDEL', FENCE, key)
  return 1
end
-- changed while it was processed: release the lease, back to the front of its lane
if redis.call('ZREM', Q.leases, key) == 1 then
  redis.call('HDEL', Q.owner, key)
  redis.call('ZADD', LANE[lane], 0, key)
end
return 0
"""
)

_JOB_LEASE = """
-- KEYS[1]: the job's lease key; ARGV: holder, lease milliseconds. Take it when free (or expired:
-- Redis drops the key), renew it when `holder` has it; 0 while another holder does.
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

_JOB_RELEASE = """
-- KEYS[1]: the job's lease key; ARGV: holder. Only the holder gives it up.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


_AUDIT_FIELDS = """
local function fields(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end
local HEAD, PENDING, LOG = KEYS[1], KEYS[2], KEYS[3]  -- every audit script's KEYS
local function seq_of(id) return tonumber(string.match(id, '^(%d+)')) end
"""

_AUDIT_CHAIN = (
    _AUDIT_FIELDS
    + """
-- ARGV: head seq read, first and last pending id read, n, then n pairs time_us, hash (computed in
-- Python over exactly those pending entries). Appends only if nobody chained meanwhile.
local head = tonumber(redis.call('HGET', HEAD, 'seq') or '0')
if head ~= tonumber(ARGV[1]) then return 0 end
local n = tonumber(ARGV[4])
local first = redis.call('XRANGE', PENDING, '-', '+', 'COUNT', 1)
if #first == 0 or first[1][1] ~= ARGV[2] then return 0 end
local batch = redis.call('XRANGE', PENDING, ARGV[2], ARGV[3])
if #batch ~= n then return 0 end
for i = 1, n do
  local entry = batch[i]
  redis.call('XADD', LOG, (head + i) .. '-0', 't', ARGV[3 + 2 * i], 'h', ARGV[4 + 2 * i],
             'b', fields(entry[2])['b'] or '')
  redis.call('XDEL', PENDING, entry[1])
end
redis.call('HSET', HEAD, 'seq', head + n, 'hash', ARGV[4 + 2 * n], 'time', ARGV[3 + 2 * n])
return n
"""
)

_AUDIT_SEEK = (
    _AUDIT_FIELDS
    + """
-- ARGV: time_us. The lowest seq from which entries have time >= time_us (times never decrease
-- along the chain, so this is a binary search over seq; removed entries are skipped over).
local since = tonumber(ARGV[1])
local first = redis.call('XRANGE', LOG, '-', '+', 'COUNT', 1)
if #first == 0 then return 0 end
local last = redis.call('XREVRANGE', LOG, '+', '-', 'COUNT', 1)
local lo, hi = seq_of(first[1][1]), seq_of(last[1][1]) + 1
while lo < hi do
  local mid = math.floor((lo + hi) / 2)
  local found = redis.call('XRANGE', LOG, mid .. '-0', '+', 'COUNT', 1)
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
local entries = redis.call('XRANGE', LOG, '-', '+', 'COUNT', limit)
local last_id, last_hash, count = nil, nil, 0
for _, entry in ipairs(entries) do
  local f = fields(entry[2])
  if tonumber(f['t'] or '0') >= cutoff then break end
  last_id, last_hash, count = entry[1], f['h'] or '', count + 1
end
if not last_id then return 0 end
redis.call('XTRIM', LOG, 'MINID', (seq_of(last_id) + 1) .. '-0')
redis.call('HSET', HEAD, 'anchor_seq', string.match(last_id, '^(%d+)'), 'anchor_hash', last_hash)
return count
"""
)

# Three reads and an append that were MULTI transactions: a script is atomic on every topology
# (a cluster pipeline cannot be one), and costs the same single round trip.
_AUDIT_APPEND = (
    _AUDIT_FIELDS
    + """
-- ARGV: entry bodies. All or none, like the writes that carry their own entry.
for i = 1, #ARGV do redis.call('XADD', PENDING, '*', 'b', ARGV[i]) end
return #ARGV
"""
)

_AUDIT_PEEK = (
    _AUDIT_FIELDS
    + """
-- ARGV: batch. The head and the first pending entries, read together (what audit_seal chains).
local head = redis.call('HMGET', HEAD, 'seq', 'hash', 'time')
return {head, redis.call('XRANGE', PENDING, '-', '+', 'COUNT', tonumber(ARGV[1]))}
"""
)

_AUDIT_HEAD = (
    _AUDIT_FIELDS
    + """
local head = redis.call('HMGET', HEAD, 'seq', 'hash', 'anchor_seq', 'anchor_hash')
return {head, redis.call('XLEN', PENDING)}
"""
)


def _replayable(source: str, fenced: bool = False) -> str:
    """Run `source` at most once per call id (the last KEY); a re-sent call gets the first answer.
    A fenced one also refuses to run after the deadline its last ARGV names (redis_fence.py)."""
    return (
        "local seen = redis.call('GET', KEYS[#KEYS])\n"
        "if seen then return cmsgpack.unpack(seen) end\n"
        + (FENCE if fenced else "")
        + "local result = (function()\n"
        + source
        + "\nend)()\n"
        "if type(result) ~= 'table' or (result[1] and result[1] ~= 'err') then\n"
        "  redis.call('SET', KEYS[#KEYS], cmsgpack.pack(result), 'EX', 30)\n"
        "end\n"
        "return result\n"
    )


#: a resource's fields and the ids whose index names it (a User's groups), in one round trip and one
#: command; both keys are in KEYS (Redis Cluster: one deployment's keys share a slot)
_GET_WITH_REFERRERS = "return {redis.call('HMGET', KEYS[1], 'body', 'version', 'seq'), redis.call('SMEMBERS', KEYS[2])}"

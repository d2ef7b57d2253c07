"""The production store on Redis: several bridge replicas share it.

Every write is one Lua script (one round trip, atomic): version check, uniqueness, body, index
entries and the sync-queue entry. Keys, all under one prefix (`sb:` below; `{sb}:` on a Redis
Cluster, or what SCIM_BRIDGE_REDIS_KEY_PREFIX sets: redis_keys.py), every one passed to the
scripts in KEYS (redis_scripts.py):

    sb:seq                          counter: creation order of every resource
    sb:qseq                         counter: enqueue order of queue entries
    sb:r:{type}:{id}                hash: body, version, seq
    sb:all:{type}                   sorted set: id by seq (listing order, count, paging, scans)
    sb:ix:{type}:{attr}:{value}     set: ids holding an index key (an `eq` lookup is one SMEMBERS)
    sb:u:{type}:{attr}:{value}      string: the id holding a unique key
    sb:keys:{type}:{id}             set: "{attr}\\0{value}\\0{0|1}" entries, to undo them on replace/delete
    sb:q:gen                        hash: "{type}/{id}" → generation (bumped by each change)
    sb:q:lane:{lane}                sorted set: queued, unleased keys by enqueue order
    sb:q:where                      hash: key → lane it waits in or was claimed from
    sb:q:leases                     sorted set: leased keys by lease expiry
    sb:q:owner                      hash: key → "{consumer}|{generation}"
    sb:q:fences                     counter: the fencing token of every lease (claim, lease)
    sb:q:fence                      hash: key → fencing token of its latest lease (ack, defer and
                                    release from an older lease are refused)
    sb:q:attempts                   hash: key → failed attempts (retries with backoff)
    sb:q:corr                       hash: key → correlation id of the request behind the latest change
    sb:q:since                      hash: key → epoch seconds the entry was queued (sync lag, queue age)
    sb:audit:pending                stream: audit entries appended, not chained yet (field b: body)
    sb:audit:log                    stream: the chain; entry id "{seq}-0", fields t (µs), h (hash), b
    sb:audit:head                   hash: seq, hash, time of the last chained entry; anchor_seq,
                                    anchor_hash of the last pruned one
    sb:kv:{namespace}               hash: small key/value space (credentials, signing keys)
    sb:job:{name}                   string with a TTL: the holder of a once-per-deployment job
    sb:done:{call id}               string, 30 s: the answer of a write/claim/defer call, for replays

The queue uses sorted sets rather than Streams (DESIGN.md suggested Streams): a stream is an
append-only log, so it cannot coalesce repeated changes to one resource into one entry (a user
edited 50 times during a backlog would be synced 50 times), nor move an entry to the revocation
lane when a later change makes it a revocation, nor put a changed-while-processing entry back.

The audit chain needs SHA-256, which Redis's Lua does not offer (only sha1hex). So an append is
an XADD to `sb:audit:pending` — inside the resource write's script when it belongs to a write,
hence atomic and durable with it — and `audit_seal` chains pending entries: it reads the head and
a batch, hashes in Python, and a script appends them to the log only if the head and the batch are
still what it read (compare-and-append; a replica that lost the race reads again). Streams suit
the log (append-only, range by seq, trimmed by MINID); times never decrease along it, so a time
range is found by a binary search over seq (one script), with no second index.

Outages: every connection-level failure becomes StoreUnavailable (one decorator, redis_outage.py).
Timeouts are short (connect 2 s, read 5 s), so a hung server turns into a 503 quickly; a write is re-sent
within an 8 s budget and fenced by a deadline, so that its 503 is the truth (redis_fence.py). A
dropped connection is retried once at once: that is what recovers the pooled connections after
Redis restarted while the bridge was idle. A retried call may already have run, so every
script that is not naturally idempotent takes a fresh call id as KEYS[1] and a re-sent call
returns the first call's answer instead of writing twice (a create would otherwise fail with
"id exists", a replace with a version mismatch, for a write that succeeded).

Topologies (plain, TLS, Sentinel, Cluster) differ only in the client redis_connect.py builds.
On one server (plain, TLS, unix socket) the hottest calls (point reads, eq lookups, every script)
go through a lean pipelined connection beside it (redis_lean.py); Sentinel and Cluster keep
redis-py for everything (it follows the master and the slots).
Durability: with min_replicas N, every resource and key/value write is followed, on the same
connection, by WAIT N (redis_replicas.py).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from .base import (
    GENESIS_HASH,
    LANES,
    REVOCATION_LANE,
    STANDARD_LANE,
    AuditEntry,
    AuditHead,
    NotFound,
    QueueDepth,
    QueueEntry,
    Record,
    StoreUnavailable,
    UniqueViolation,
    VersionMismatch,
    Write,
    chain_hash,
)
from .queue_bell import QueueBell
from .redis_connect import RedisLink, RedisOptions, connect
from .redis_fence import Late, WriteFence
from .redis_keys import RedisKeys
from .redis_lean import LeanRedis, Script, pack
from .redis_outage import DOWN as _DOWN
from .redis_outage import translate_outage as _translate_outage
from .redis_replicas import ReplicaWait, cluster_node
from .redis_scripts import (
    _ACK,
    _AUDIT_APPEND,
    _AUDIT_CHAIN,
    _AUDIT_HEAD,
    _AUDIT_PEEK,
    _AUDIT_PRUNE,
    _AUDIT_SEEK,
    _CLAIM,
    _DEFER,
    _GET_WITH_REFERRERS,
    _JOB_LEASE,
    _JOB_RELEASE,
    _LEASE,
    _RELEASE,
    _RENEW,
    _STANDALONE_ENQUEUE,
    _WRITE,
    _replayable,
)

_REPLAYABLE = frozenset({"write", "claim", "defer"})
# redis-py types every reply as `bytes | str` (it cannot know decode_responses) and a missing
# stream as None; this client never decodes (decode_responses=False) and XRANGE answers a list,
# so replies are cast to what Redis actually sends.
RawFields = list[bytes | None]
StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]


class RedisStore:
    def __init__(self, url: str, options: RedisOptions | None = None) -> None:
        self.url = url
        self.options = options or RedisOptions()
        self._link: RedisLink | None = None
        self._client: aioredis.Redis | RedisCluster | None = None
        self._keys = RedisKeys()
        self._scripts: dict[str, Any] = {}
        self._lean: LeanRedis | None = None  # one server only: the hot calls' connection
        self._lean_scripts: dict[str, Script] = {}
        self._fence = WriteFence(self._time_us, _DOWN)
        self._replicas: ReplicaWait | None = None  # SCIM_BRIDGE_REDIS_MIN_REPLICAS (redis_replicas.py)
        self._follower: asyncio.Task[None] | None = None  # Sentinel: follows a failover (redis_connect.py)
        self.queue_bell = QueueBell()  # this process's enqueues wake its idle workers (queue_bell.py)

    async def open(self) -> None:
        self._link = connect(self.url, self.options)
        self._client, self._keys = self._link.client, self._link.keys
        if not self._link.cluster and self._link.sentinel is None:
            self._lean = LeanRedis.like(self._client)
        self._replicas = ReplicaWait(self._link, self.options) if self.options.min_replicas else None
        if self._link.sentinel is not None:
            self._follower = asyncio.get_running_loop().create_task(self._link.follow_master())
        self._scripts["write"] = self._client.register_script(_replayable(_WRITE, fenced=True))
        for name, source in (("claim", _CLAIM), ("defer", _DEFER)):
            self._scripts[name] = self._client.register_script(_replayable(source))
        for name, source in (
            ("enqueue", _STANDALONE_ENQUEUE),
            ("ack", _ACK),
            ("lease", _LEASE),
            ("release", _RELEASE),
            ("renew", _RENEW),
            ("job_lease", _JOB_LEASE),
            ("job_release", _JOB_RELEASE),
            ("audit_chain", _AUDIT_CHAIN),
            ("audit_seek", _AUDIT_SEEK),
            ("audit_prune", _AUDIT_PRUNE),
            ("audit_append", _AUDIT_APPEND),
            ("audit_peek", _AUDIT_PEEK),
            ("audit_head", _AUDIT_HEAD),
            ("get_with_referrers", _GET_WITH_REFERRERS),  # a read
        ):  # idempotent as they are
            self._scripts[name] = self._client.register_script(source)
        self._lean_scripts = {name: Script(script.script) for name, script in self._scripts.items()}

    async def close(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            self._follower = None
        if self._lean is not None:
            await self._lean.close()
            self._lean = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._link is not None and self._link.sentinel is not None:
            for sentinel in self._link.sentinel.sentinels:
                await sentinel.aclose()
        self._link = None

    @property
    def _redis(self) -> Any:  # aioredis.Redis or RedisCluster: the same commands, typed apart
        if self._client is None:
            raise StoreUnavailable("store is not open")
        return self._client

    @_translate_outage
    async def ping(self) -> None:
        await self._redis.ping()

    # resources -------------------------------------------------------------------------------
    async def _run_write(self, mode: str, write: Write, expected_version: int | None) -> tuple[int, int]:
        unique = set(write.unique_keys)
        entries = {(a, v) for a, v in write.index_keys} | unique
        argv: list[Any] = [
            mode,
            write.resource_type,
            write.id,
            write.body,
            "" if expected_version is None else str(expected_version),
            write.lane or "",
            len(entries),
        ]
        k = self._keys
        typ = write.resource_type
        keys = [*k.queue_and_lanes, k.resource(typ, write.id), k.entries(typ, write.id), k.all(typ), k.seq]
        keys.append(k.audit_pending)
        for attr, value in sorted(entries):
            argv += [attr, value, "1" if (attr, value) in unique else "0"]
            keys += [k.index(typ, attr, value), k.unique(typ, attr, value)]
        argv += [write.audit or b"", write.correlation or ""]
        result = await self._script("write", argv, keys)
        checked = self._checked(result, write.id)
        self.queue_bell.ring(write.lane)
        return checked

    @staticmethod
    def _checked(result: list[Any], id: str) -> tuple[int, int]:
        status = result[0].decode() if isinstance(result[0], bytes) else result[0]
        if status == "ok":
            return int(result[1]), int(result[2])
        reason = result[1].decode()
        if reason == "notfound":
            raise NotFound(id)
        if reason == "version":
            raise VersionMismatch(int(result[2]))
        if reason == "unique":
            raise UniqueViolation((result[2].decode(), result[3].decode()))
        raise UniqueViolation(("id", id))  # "exists": an id collision on create

    @_translate_outage
    async def _script(self, name: str, argv: list[Any], keys: Sequence[str | bytes] | None = None) -> Any:
        """Run a script; `keys` defaults to the queue's (every queue script declares them)."""
        keys = list(keys or self._keys.queue_and_lanes)
        if name in _REPLAYABLE:
            keys.append(self._keys.done(secrets.token_hex(12)))
        try:
            if name == "write":  # confirmed, or fenced so that it cannot land after a 503
                return await self._fence.call(self._sender(name, keys), argv)
            return await self._sender(name, keys)(argv)
        except _DOWN:
            raise
        except ResponseError as error:  # a script error is a bug, not an outage; say so plainly
            raise RuntimeError(f"redis script {name} failed: {error}") from error
        except Late as error:
            raise StoreUnavailable("redis: the write was not confirmed in time and was not applied") from error

    def _sender(self, name: str, keys: list[str | bytes]) -> Callable[[list[Any]], Awaitable[Any]]:
        """How script `name` is sent: lean connection or redis-py, WAITed when min_replicas asks."""
        script, lean, wait = self._scripts[name], self._lean, self._replicas if name == "write" else None
        if lean is not None:
            fast = self._lean_scripts[name]
            if wait is not None:
                return lambda args: wait.lean_script(lean, fast, keys, args)
            return lambda args: lean.evalsha(fast, keys, args)
        if wait is not None:
            return lambda args: wait.script(script, keys, args)
        return lambda args: script(keys=keys, args=args)

    async def _time_us(self) -> int:
        if self._link is not None and self._link.cluster:  # the clock of the node that runs our scripts
            node = await cluster_node(self._link, self._keys.seq)
            seconds, micros = await self._redis.execute_command("TIME", target_nodes=node)
        elif self._lean is not None:
            seconds, micros = await self._lean.command("TIME")
        else:
            seconds, micros = await self._redis.time()
        return int(seconds) * 1_000_000 + int(micros)

    async def create(self, write: Write) -> Record:
        version, seq = await self._run_write("create", write, None)
        return Record(write.resource_type, write.id, version, seq, write.body)

    async def replace(self, write: Write, expected_version: int | None = None) -> Record:
        version, seq = await self._run_write("replace", write, expected_version)
        return Record(write.resource_type, write.id, version, seq, write.body)

    async def delete(
        self,
        resource_type: str,
        id: str,
        expected_version: int | None = None,
        lane: str | None = REVOCATION_LANE,
        *,
        audit: bytes | None = None,
        correlation: str | None = None,
    ) -> None:
        await self._run_write(
            "delete", Write(resource_type, id, b"", lane=lane, audit=audit, correlation=correlation), expected_version
        )

    @_translate_outage
    async def get(self, resource_type: str, id: str) -> Record | None:
        key = self._keys.resource(resource_type, id)
        if self._lean is not None:
            values = cast(RawFields, await self._lean.call(pack("HMGET", key, "body", "version", "seq")))
        else:
            values = cast(RawFields, await self._redis.hmget(key, "body", "version", "seq"))
        if values[0] is None or values[1] is None or values[2] is None:  # the write script sets all three
            return None
        return Record(resource_type, id, int(values[1]), int(values[2]), values[0])

    @_translate_outage
    async def get_with_referrers(
        self, resource_type: str, id: str, referrer_type: str, referrer_attribute: str
    ) -> tuple[Record | None, list[str]]:
        # One EVALSHA instead of a two-command pipeline: redis-py's pipeline machinery cost ~20 µs
        # of client CPU more per call (measured), on the bridge's hottest read
        keys = [self._keys.resource(resource_type, id), self._keys.index(referrer_type, referrer_attribute, id)]
        if self._lean is not None:
            values, referrers = await self._lean.evalsha(self._lean_scripts["get_with_referrers"], keys)
        else:
            values, referrers = await self._scripts["get_with_referrers"](keys=keys)
        if values[0] is None or values[1] is None or values[2] is None:  # the write script sets all three
            return None, []
        record = Record(resource_type, id, int(values[1]), int(values[2]), values[0])
        return record, sorted(m.decode() for m in referrers)

    @_translate_outage
    async def get_many(self, resource_type: str, ids: Sequence[str]) -> list[Record]:
        unique_ids = list(dict.fromkeys(ids))
        if not unique_ids:
            return []
        rows: list[Any]
        if self._lean is not None:  # N HMGETs in one write, N replies
            commands = [
                pack("HMGET", self._keys.resource(resource_type, id), "body", "version", "seq") for id in unique_ids
            ]
            answer = await self._lean.call(b"".join(commands), len(commands))
            rows = answer if len(commands) > 1 else [answer]
            for row in rows:
                if isinstance(row, BaseException):
                    raise row
        elif len(unique_ids) == 1:  # an eq filter's match: a plain command costs a third less than a pipeline
            key = self._keys.resource(resource_type, unique_ids[0])
            rows = [await self._redis.hmget(key, "body", "version", "seq")]
        else:
            pipe = self._redis.pipeline(transaction=False)
            for id in unique_ids:
                pipe.hmget(self._keys.resource(resource_type, id), "body", "version", "seq")
            rows = await pipe.execute()
        records = [
            Record(resource_type, id, int(r[1]), int(r[2]), r[0])
            for id, r in zip(unique_ids, rows, strict=True)
            if r[0]
        ]
        records.sort(key=lambda record: record.seq)
        return records

    @_translate_outage
    async def get_many_with_referrers(
        self, resource_type: str, ids: Sequence[str], referrer_type: str, referrer_attribute: str
    ) -> list[tuple[Record, list[str]]]:
        unique_ids = list(dict.fromkeys(ids))
        if not unique_ids:
            return []
        if self._lean is None:  # Sentinel, Cluster: redis-py, as get_many and lookup would go
            records = await self.get_many(resource_type, unique_ids)
            return [(r, await self.lookup(referrer_type, referrer_attribute, r.id)) for r in records]
        # Per id an HMGET and an SMEMBERS, all in one write: 2N replies, one round trip. Each key is
        # named in its command, so this holds in one hash slot as in many (issue 13 item 1).
        commands = []
        for id in unique_ids:
            commands.append(pack("HMGET", self._keys.resource(resource_type, id), "body", "version", "seq"))
            commands.append(pack("SMEMBERS", self._keys.index(referrer_type, referrer_attribute, id)))
        replies = await self._lean.call(b"".join(commands), len(commands))
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        found = []
        for index, id in enumerate(unique_ids):
            values, referrers = replies[2 * index], replies[2 * index + 1]
            if values[0] is None or values[1] is None or values[2] is None:  # the write script sets all three
                continue
            record = Record(resource_type, id, int(values[1]), int(values[2]), values[0])
            found.append((record, sorted(m.decode() for m in referrers)))
        found.sort(key=lambda pair: pair[0].seq)
        return found

    @_translate_outage
    async def lookup(self, resource_type: str, attribute: str, value: str) -> list[str]:
        key = self._keys.index(resource_type, attribute, value)
        if self._lean is not None:
            members = cast(list[bytes], await self._lean.call(pack("SMEMBERS", key)))
        else:
            members = cast(list[bytes], await self._redis.smembers(key))
        return sorted(m.decode() for m in members)

    @_translate_outage
    async def count(self, resource_type: str) -> int:
        if self._lean is not None:
            return int(await self._lean.call(pack("ZCARD", self._keys.all(resource_type))))
        return int(await self._redis.zcard(self._keys.all(resource_type)))

    async def scan(self, resource_type: str, after_seq: int = 0, batch: int = 500) -> AsyncIterator[Record]:
        while True:
            ids = await self._range(resource_type, after_seq, batch)
            if not ids:
                return
            for record in await self.get_many(resource_type, [i.decode() for i, _ in ids]):
                yield record
            if len(ids) < batch:
                return
            after_seq = int(ids[-1][1])

    @_translate_outage
    async def _range(self, resource_type: str, after_seq: int, batch: int) -> list[tuple[bytes, float]]:
        return cast(
            list[tuple[bytes, float]],
            await self._redis.zrangebyscore(
                self._keys.all(resource_type), f"({after_seq}", "+inf", start=0, num=batch, withscores=True
            ),
        )

    @_translate_outage
    async def page(self, resource_type: str, offset: int, limit: int) -> list[Record]:
        if limit <= 0:
            return []
        ids = cast(list[bytes], await self._redis.zrange(self._keys.all(resource_type), offset, offset + limit - 1))
        return await self.get_many(resource_type, [i.decode() for i in ids])

    # sync queue ------------------------------------------------------------------------------
    async def enqueue(self, resource_type: str, id: str, lane: str, correlation: str | None = None) -> None:
        await self._script("enqueue", [resource_type, id, lane, correlation or ""])
        self.queue_bell.ring(lane)

    async def claim(
        self, consumer: str, limit: int = 10, lease_seconds: float = 60.0, lanes: Sequence[str] = LANES
    ) -> list[QueueEntry]:
        flat = await self._script("claim", [consumer, limit, time.time(), lease_seconds, *lanes], self._keys.fenced)
        entries = []
        for index in range(0, len(flat), 7):
            key, lane, generation, attempts, correlation, since, fence = (
                part.decode() for part in flat[index : index + 7]
            )
            resource_type, id = key.split("/", 1)
            entries.append(
                QueueEntry(
                    resource_type,
                    id,
                    lane,
                    f"{key}|{generation}|{fence}",
                    int(attempts),
                    correlation or None,
                    float(since) if since else None,
                )
            )
            if len(entries) == limit:
                break
        return entries

    async def ack(self, entry: QueueEntry) -> bool:
        key, generation, fence = entry.token.rsplit("|", 2)
        return int(await self._script("ack", [key, generation, fence], self._keys.fenced)) != -1

    async def defer(self, entry: QueueEntry, delay_seconds: float) -> int:
        key, _, fence = entry.token.rsplit("|", 2)
        return int(await self._script("defer", [key, time.time() + delay_seconds, fence], self._keys.fenced))

    async def release(self, entry: QueueEntry, consumer: str) -> bool:
        key, generation, fence = entry.token.rsplit("|", 2)
        return bool(await self._script("release", [key, f"{consumer}|{generation}", fence], self._keys.fenced))

    async def renew(self, entry: QueueEntry, consumer: str, lease_seconds: float) -> bool:
        key, generation, fence = entry.token.rsplit("|", 2)
        argv = [key, f"{consumer}|{generation}", fence, time.time() + lease_seconds]
        return bool(await self._script("renew", argv, self._keys.fenced))

    async def lease(
        self, resource_type: str, id: str, consumer: str, lease_seconds: float = 60.0, lane: str = STANDARD_LANE
    ) -> QueueEntry | None:
        key = f"{resource_type}/{id}"
        answer = await self._script("lease", [key, lane, consumer, time.time(), lease_seconds], self._keys.fenced)
        if not answer:
            return None
        where, generation, attempts, correlation, fence = (part.decode() for part in answer)
        return QueueEntry(resource_type, id, where, f"{key}|{generation}|{fence}", int(attempts), correlation or None)

    async def job_lease(self, name: str, holder: str, lease_seconds: float) -> bool:
        argv = [holder, max(1, int(lease_seconds * 1000))]
        return bool(await self._script("job_lease", argv, [self._keys.job(name)]))

    async def job_release(self, name: str, holder: str) -> None:
        await self._script("job_release", [holder], [self._keys.job(name)])

    @_translate_outage
    async def queue_depth(self) -> QueueDepth:
        pipe = self._redis.pipeline(transaction=False)
        for lane in LANES:
            pipe.zcard(self._keys.lane(lane))
        pipe.zrange(self._keys.leases, 0, -1)
        *waiting, leased = await pipe.execute()
        depth = QueueDepth({lane: int(n) for lane, n in zip(LANES, waiting, strict=True)})
        if leased:
            lanes = cast(RawFields, await self._redis.hmget(self._keys.where, leased))
            for where in lanes:
                name = (where or b"standard").decode()
                depth.lanes[name] = depth.lanes.get(name, 0) + 1
        return depth

    @_translate_outage
    async def queue_oldest(self) -> dict[str, float]:
        # A lane's waiting entries are ordered by enqueue order, so its front is its oldest (put-back
        # entries, score 0, sort among themselves by key: the first few cover them); leased ones
        # (in work, or waiting out a backoff) are few, and each is looked up.
        pipe = self._redis.pipeline(transaction=False)
        for lane in LANES:
            pipe.zrange(self._keys.lane(lane), 0, 9)
        pipe.zrange(self._keys.leases, 0, -1)
        *fronts, leased = await pipe.execute()
        keys = [(lane, key) for lane, front in zip(LANES, fronts, strict=True) for key in front]
        if leased:
            wheres = cast(RawFields, await self._redis.hmget(self._keys.where, leased))
            keys += [((where or b"standard").decode(), key) for where, key in zip(wheres, leased, strict=True)]
        if not keys:
            return {}
        since = cast(RawFields, await self._redis.hmget(self._keys.since, [key for _, key in keys]))
        oldest: dict[str, float] = {}
        for (lane, _), value in zip(keys, since, strict=True):
            if value:
                oldest[lane] = min(oldest.get(lane, float("inf")), float(value))
        return oldest

    # key/value -------------------------------------------------------------------------------
    @_translate_outage
    async def kv_get(self, namespace: str, key: str) -> bytes | None:
        return cast(bytes | None, await self._redis.hget(self._keys.kv(namespace), key))

    @_translate_outage
    async def kv_put(self, namespace: str, key: str, value: bytes, *, only_if_absent: bool = False) -> bool:
        name = self._keys.kv(namespace)
        added = await self._kv_write(name, ("HSETNX" if only_if_absent else "HSET", name, key, value))
        return bool(added) if only_if_absent else True

    @_translate_outage
    async def kv_delete(self, namespace: str, key: str) -> bool:
        name = self._keys.kv(namespace)
        return bool(await self._kv_write(name, ("HDEL", name, key)))

    async def _kv_write(self, name: str, command: tuple[Any, ...]) -> Any:
        """Credentials and signing keys are writes a 2xx answers too: replicated like resources."""
        if self._replicas is not None:
            return await self._replicas.command(name, command)
        return await self._redis.execute_command(*command)

    @_translate_outage
    async def kv_items(self, namespace: str) -> list[tuple[str, bytes]]:
        items = cast(dict[bytes, bytes], await self._redis.hgetall(self._keys.kv(namespace)))
        return sorted((k.decode(), v) for k, v in items.items())

    # audit log -------------------------------------------------------------------------------
    @_translate_outage
    async def audit_append(self, bodies: Sequence[bytes]) -> None:
        if not bodies:
            return
        await self._script("audit_append", list(bodies), self._audit_keys)  # all or none

    async def audit_seal(self, batch: int = 500) -> int:
        sealed = 0
        while True:
            chained = await self._seal_once(batch)
            if chained < 0:
                continue  # another replica chained first: read again
            sealed += chained
            if chained < batch:
                return sealed

    @_translate_outage
    async def _seal_once(self, batch: int) -> int:
        (seq, prev, last_time), raw = await self._script("audit_peek", [batch], self._audit_keys)
        pending = [(entry_id, dict(zip(flat[::2], flat[1::2], strict=True))) for entry_id, flat in raw]
        if not pending:
            return 0
        seq, prev, last_time = int(seq or 0), (prev or GENESIS_HASH.encode()).decode(), int(last_time or 0)
        argv: list[Any] = [seq, pending[0][0], pending[-1][0], len(pending)]
        for offset, (entry_id, entry) in enumerate(pending, start=1):
            # the entry's time: when Redis took the append (its stream id), never before the last
            last_time = max(last_time, int(entry_id.split(b"-")[0]) * 1000)
            prev = chain_hash(prev, seq + offset, last_time, entry.get(b"b", b""))
            argv += [last_time, prev]
        chained = int(await self._script("audit_chain", argv, self._audit_keys))
        return chained if chained else -1

    @_translate_outage
    async def audit_read(
        self, after_seq: int = 0, limit: int = 1000, since: float | None = None, until: float | None = None
    ) -> list[AuditEntry]:
        start = after_seq + 1
        if since is not None:
            start = max(start, int(await self._script("audit_seek", [int(since * 1_000_000)], self._audit_keys)))
        high = int(until * 1_000_000) if until is not None else None
        entries = []
        log = cast(StreamEntries, await self._redis.xrange(self._keys.audit_log, f"{start}-0", "+", count=limit))
        for entry_id, fields in log:
            time_us = int(fields.get(b"t", b"0"))
            if high is not None and time_us >= high:
                break
            entries.append(
                AuditEntry(int(entry_id.split(b"-")[0]), time_us, fields.get(b"h", b"").decode(), fields.get(b"b", b""))
            )
        return entries

    @_translate_outage
    async def audit_head(self) -> AuditHead:
        (seq, hash, anchor_seq, anchor_hash), pending = await self._script("audit_head", [], self._audit_keys)
        return AuditHead(
            int(seq or 0),
            (hash or GENESIS_HASH.encode()).decode(),
            int(anchor_seq or 0),
            (anchor_hash or GENESIS_HASH.encode()).decode(),
            int(pending),
        )

    async def audit_prune(self, before: float, limit: int = 10_000) -> int:
        return int(await self._script("audit_prune", [int(before * 1_000_000), limit], self._audit_keys))

    @property
    def _audit_keys(self) -> list[str]:
        return [self._keys.audit_head, self._keys.audit_pending, self._keys.audit_log]

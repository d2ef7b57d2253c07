"""Key names of the Redis store, all under one prefix (the layout is in redis.py's docstring).

The prefix is `sb:` on a plain server or behind Sentinel (the names every existing deployment
has, so an upgrade needs no migration) and `{sb}:` on a Redis Cluster. On a cluster the part in
braces is a hash tag: Redis hashes only it, so every key of one deployment sits in one hash slot
and every script and pipeline of the store runs on one node, atomically, as on a plain server.
Two deployments sharing one Redis or cluster each set their own prefix, e.g. `{sb-prod}:`.
"""

from __future__ import annotations

from .base import LANES

DEFAULT_PREFIX = "sb:"
DEFAULT_CLUSTER_PREFIX = "{sb}:"

#: The queue keys every queue script declares, in this order (redis_scripts.queue_keys_lua).
QUEUE_KEY_NAMES = ("gen", "where", "leases", "owner", "attempts", "corr", "since", "order")


def hash_tag(prefix: str) -> str | None:
    """The hash tag Redis Cluster would hash for a key starting with `prefix`, or None if the
    prefix does not fix one (then keys would spread over the slots)."""
    start = prefix.find("{")
    if start < 0:
        return None
    end = prefix.find("}", start + 1)
    if end < 0 or end == start + 1:
        return None
    return prefix[start + 1 : end]


class RedisKeys:
    """Builds every key name of the store from one prefix."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix
        p = prefix
        self.seq = f"{p}seq"
        self.audit_pending = f"{p}audit:pending"
        self.audit_log = f"{p}audit:log"
        self.audit_head = f"{p}audit:head"
        # sb:qseq (the enqueue order) predates the q: namespace; its name is kept for existing data
        queue = {name: f"{p}q:{name}" for name in QUEUE_KEY_NAMES if name != "order"}
        queue["order"] = f"{p}qseq"
        self.queue = [queue[name] for name in QUEUE_KEY_NAMES]
        self.lanes = [self.lane(lane) for lane in LANES]
        # every queue script declares these; encoded once, as redis-py would on every call
        self.queue_and_lanes: list[str | bytes] = [key.encode() for key in (*self.queue, *self.lanes)]
        # the lease scripts (claim, lease, ack, defer, release) declare two more: each entry's
        # latest fencing token, and the counter they come from
        self.fence, self.fences = f"{p}q:fence", f"{p}q:fences"
        self.fenced: list[str | bytes] = [*self.queue_and_lanes, self.fence.encode(), self.fences.encode()]
        self.leases = queue["leases"]
        self.where = queue["where"]
        self.since = queue["since"]

    def resource(self, resource_type: str, id: str) -> str:
        return f"{self.prefix}r:{resource_type}:{id}"

    def all(self, resource_type: str) -> str:
        return f"{self.prefix}all:{resource_type}"

    def index(self, resource_type: str, attribute: str, value: str) -> str:
        return f"{self.prefix}ix:{resource_type}:{attribute}:{value}"

    def unique(self, resource_type: str, attribute: str, value: str) -> str:
        return f"{self.prefix}u:{resource_type}:{attribute}:{value}"

    def entries(self, resource_type: str, id: str) -> str:
        return f"{self.prefix}keys:{resource_type}:{id}"

    def lane(self, lane: str) -> str:
        return f"{self.prefix}q:lane:{lane}"

    def kv(self, namespace: str) -> str:
        return f"{self.prefix}kv:{namespace}"

    def job(self, name: str) -> str:
        return f"{self.prefix}job:{name}"

    def done(self, call_id: str) -> str:
        return f"{self.prefix}done:{call_id}"

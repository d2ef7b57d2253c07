"""The storage contract every backend (SQLite, Redis) fulfils.

The store knows no SCIM rule. The protocol layer hands it a `Write`: the canonical JSON of a
resource, the index keys to maintain, the unique keys to enforce and the sync lane of the change.
The store applies a write as ONE atomic step: the resource body, its version, its index and
unique entries, and the "resource R changed" entry in the sync queue (DESIGN.md, data flow).
When a write method returns, the change is durable.

Errors are typed so callers decide by type, never by parsing strings:

    StoreError
    ├── NotFound            the resource does not exist
    ├── VersionMismatch     expected_version did not match (→ 412)
    ├── UniqueViolation     a unique key is held by another resource (→ 409); .key names it
    └── StoreUnavailable    the backend cannot be reached (→ 503 with Retry-After)
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .queue_bell import QueueBell

#: Lanes of the sync queue. Revocations (disable, delete, membership removal) are claimed first
#: so that a large initial load never delays a leaver (DESIGN.md, "Revocation first").
REVOCATION_LANE = "revocation"
STANDARD_LANE = "standard"
LANES = (REVOCATION_LANE, STANDARD_LANE)


class StoreError(Exception):
    """Base of every error a store raises."""


class NotFound(StoreError):
    pass


class VersionMismatch(StoreError):
    def __init__(self, current: int) -> None:
        super().__init__(f"current version is {current}")
        self.current = current


class UniqueViolation(StoreError):
    def __init__(self, key: tuple[str, str]) -> None:
        super().__init__(f"{key[0]} is already taken")
        self.key = key


class StoreUnavailable(StoreError):
    """The backend is down or unreachable; the request may be retried later."""


@dataclass(frozen=True)
class Record:
    """A stored resource as the store returns it."""

    resource_type: str
    id: str
    version: int
    seq: int  # creation order; gives listings a stable order and cursors a position
    body: bytes  # canonical JSON, exactly as the protocol layer wrote it


@dataclass(frozen=True)
class Write:
    """One resource write, applied atomically with its indexes and its queue entry."""

    resource_type: str
    id: str
    body: bytes
    #: (attribute, normalised value) pairs kept for `eq` lookups, e.g. ("username", "bjensen").
    index_keys: Sequence[tuple[str, str]] = ()
    #: subset of keys that no other resource of the same type may hold.
    unique_keys: Sequence[tuple[str, str]] = ()
    #: sync lane of the resulting queue entry; None writes no queue entry.
    lane: str | None = STANDARD_LANE
    #: an audit entry appended in the same atomic step (see audit_append), so no acknowledged
    #: write can lack its entry.
    audit: bytes | None = None
    #: the request that caused the change; kept on the queue entry (the latest one wins when
    #: changes coalesce) so that the sync's target calls carry it.
    correlation: str | None = None


@dataclass(frozen=True)
class QueueEntry:
    """A claimed "resource R changed" entry. Entries name a resource, never a diff."""

    resource_type: str
    id: str
    lane: str
    token: str  # opaque: hand it back to ack(); it carries the lease's fencing token (see ack)
    attempts: int = 0  # failed attempts so far (see defer)
    correlation: str | None = None  # the request behind the latest change (Write.correlation)
    #: epoch seconds the entry was queued: its oldest change not synced yet (coalesced changes keep
    #: it), the start of the sync lag (metrics); None where a store cannot tell
    enqueued: float | None = None


@dataclass
class QueueDepth:
    lanes: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.lanes.values())


#: prev_hash of the first entry ever appended.
GENESIS_HASH = "0" * 64


def chain_hash(prev_hash: str, seq: int, time_us: int, body: bytes) -> str:
    """The audit chain: each entry's hash covers its predecessor's hash, its own position, time
    and bytes, so an edited entry, a removed one or a renumbering breaks every later link."""
    return hashlib.sha256(b"%s\n%d\n%d\n%s" % (prev_hash.encode(), seq, time_us, body)).hexdigest()


@dataclass(frozen=True)
class AuditEntry:
    """One chained audit entry. Times never decrease along `seq` (the store clamps them)."""

    seq: int
    time_us: int  # microseconds since the epoch, UTC
    hash: str
    body: bytes  # canonical JSON, exactly as appended


@dataclass(frozen=True)
class AuditHead:
    """Where the chain ends and where the retained part begins."""

    last_seq: int  # 0: nothing appended yet
    last_hash: str
    anchor_seq: int  # the last pruned entry (0: nothing pruned); the first retained is anchor_seq + 1
    anchor_hash: str  # its hash, from which verification continues
    pending: int = 0  # appended but not chained yet (Redis: chained by audit_seal)


class Store(Protocol):
    """What the SCIM layer, the auth layer and the sync engine need from storage."""

    url: str
    #: rung after each write of this process that queues an entry (store/queue_bell.py)
    queue_bell: QueueBell

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise StoreUnavailable when the backend does not answer."""

    # resources ---------------------------------------------------------------------------
    async def create(self, write: Write) -> Record:
        """Store a new resource at version 1. Raises UniqueViolation."""

    async def replace(self, write: Write, expected_version: int | None = None) -> Record:
        """Replace a resource, bumping its version. Raises NotFound, VersionMismatch, UniqueViolation."""

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
        """Remove a resource and its index entries (audit and correlation as in Write).
        Raises NotFound, VersionMismatch."""

    async def get(self, resource_type: str, id: str) -> Record | None: ...

    async def get_with_referrers(
        self, resource_type: str, id: str, referrer_type: str, referrer_attribute: str
    ) -> tuple[Record | None, list[str]]:
        """A record and the ids of `referrer_type` resources holding index key
        (referrer_attribute, id) — a User and its Groups — in one round trip."""

    async def get_many(self, resource_type: str, ids: Sequence[str]) -> list[Record]:
        """The records that exist among `ids`, in creation order."""

    async def get_many_with_referrers(
        self, resource_type: str, ids: Sequence[str], referrer_type: str, referrer_attribute: str
    ) -> list[tuple[Record, list[str]]]:
        """get_many, each record with its referrers as get_with_referrers gives them (sorted ids):
        the Users an `eq` filter found and their Groups in one round trip, not one per User."""

    async def lookup(self, resource_type: str, attribute: str, value: str) -> list[str]:
        """Ids of the resources holding index key (attribute, value)."""

    async def count(self, resource_type: str) -> int: ...

    def scan(self, resource_type: str, after_seq: int = 0, batch: int = 500) -> AsyncIterator[Record]:
        """Every record with seq > after_seq, in creation order."""

    async def page(self, resource_type: str, offset: int, limit: int) -> list[Record]:
        """Records by position in creation order (0-based offset), without reading the rest."""

    # sync queue --------------------------------------------------------------------------
    async def enqueue(self, resource_type: str, id: str, lane: str, correlation: str | None = None) -> None:
        """Queue "resource changed" outside a write (replays, reconciliation)."""

    async def claim(
        self, consumer: str, limit: int = 10, lease_seconds: float = 60.0, lanes: Sequence[str] = LANES
    ) -> list[QueueEntry]:
        """Lease up to `limit` entries from `lanes`, in that order (the revocation lane first). Repeated changes to one
        resource are coalesced into one entry; an unacked lease expires and is claimable again."""

    async def ack(self, entry: QueueEntry) -> bool:
        """Drop a processed entry, unless the resource changed again since it was claimed (then it
        is claimable again at once). Fenced: every claim or lease hands out a token greater than
        any before, and an ack whose lease was followed by a newer one (its lease expired and
        another worker took the entry) is refused, returns False and changes nothing, so it can
        neither drop nor release the newer holder's work. True otherwise (an entry already gone
        included)."""

    async def defer(self, entry: QueueEntry, delay_seconds: float) -> int:
        """Keep a claimed entry leased for `delay_seconds` (a retry with backoff, owned by no one),
        counting the attempt; returns the number of failed attempts so far. A new change to the resource
        meanwhile does not shorten the delay, but it is not lost either. Fenced as ack is: refused
        (0, nothing changed) when a newer lease holds the entry, or when it is gone."""

    async def release(self, entry: QueueEntry, consumer: str) -> bool:
        """Hand back an entry `consumer` claimed and did not finish (a worker stopping): claimable at
        once by anyone, its attempts not counted. False (and nothing done)
        when `consumer` no longer holds it: acked, deferred, or its lease expired and was re-claimed."""

    async def renew(self, entry: QueueEntry, consumer: str, lease_seconds: float) -> bool:
        """Extend the lease `consumer` holds on a claimed (or leased) entry to `lease_seconds` from
        now: a worker whose sync runs longer than its lease keeps it (a heartbeat), so no other
        worker takes the entry meanwhile. Same fencing token: the lease goes on, it is not a new
        one. False (and nothing done) when the lease is no longer this one: acked, deferred, handed
        back, or expired and taken over (Redis also counts an expired lease that a claim already
        put back in its lane)."""

    async def lease(
        self, resource_type: str, id: str, consumer: str, lease_seconds: float = 60.0, lane: str = STANDARD_LANE
    ) -> QueueEntry | None:
        """Lease one resource's queue entry for `consumer`, creating it (in `lane`) when none is
        queued, so no worker claims the resource meanwhile (provision on demand). None while another
        consumer works on it (a deferred entry, whose worker is done with it, can be taken). Release
        it with ack (a change meanwhile makes it claimable again) or defer."""

    async def queue_depth(self) -> QueueDepth: ...

    # named leases: jobs that run once per deployment ------------------------------------------
    async def job_lease(self, name: str, holder: str, lease_seconds: float) -> bool:
        """Take or renew the lease `name` for `holder` for `lease_seconds`: True while `holder`
        holds it, False while another holder's lease has not expired. A holder that dies hands the
        job over when its lease runs out."""

    async def job_release(self, name: str, holder: str) -> None:
        """Give the lease `name` up at once (a stopping replica), if `holder` still holds it."""

    async def queue_oldest(self) -> dict[str, float]:
        """Per lane with entries: the epoch seconds of its oldest entry (queued, leased or waiting out
        a backoff), for the queue-age metric. Lanes without entries are absent."""

    # small key/value space (credentials, signing keys, settings) ------------------------------
    async def kv_get(self, namespace: str, key: str) -> bytes | None: ...

    async def kv_put(self, namespace: str, key: str, value: bytes, *, only_if_absent: bool = False) -> bool:
        """Store a value; with only_if_absent, keep an existing one and return False."""

    async def kv_delete(self, namespace: str, key: str) -> bool: ...

    async def kv_items(self, namespace: str) -> list[tuple[str, bytes]]: ...

    # audit log: append-only, hash-chained (chain_hash) ---------------------------------------
    async def audit_append(self, bodies: Sequence[bytes]) -> None:
        """Append entries durably, in order. They are chained (seq, time, hash) at once (SQLite)
        or by the next audit_seal (Redis: the hash is computed outside the server)."""

    async def audit_seal(self) -> int:
        """Chain every appended entry not chained yet; returns how many. Safe to run anywhere,
        any number of times, concurrently."""

    async def audit_read(
        self, after_seq: int = 0, limit: int = 1000, since: float | None = None, until: float | None = None
    ) -> list[AuditEntry]:
        """Chained entries with seq > after_seq and since <= time < until (seconds), in seq order."""

    async def audit_head(self) -> AuditHead: ...

    async def audit_prune(self, before: float, limit: int = 10_000) -> int:
        """Drop up to `limit` of the oldest entries with time < before (a prefix of the chain),
        remembering the last one dropped as the anchor; returns how many were dropped."""

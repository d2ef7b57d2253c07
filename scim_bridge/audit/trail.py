"""The audit trail: what every SCIM write and every target call did, in the store's hash-chained log.

Entries (canonical JSON, sorted keys), by kind:

    {"kind": "scim", "correlation", "client": {"kind", "name"}, "request": "PATCH /scim/v2/Users/…",
     "operation": "create|replace|patch|delete", "outcome": "applied|unchanged|refused",
     "resource": {"type", "id", "name"}, "changes": [audit/diff.py], "status"?, "detail"?}
    {"kind": "target", "correlation", "target", "method", "path", "status", "outcome": "ok" or an
     error class, "latency_ms", "request_id": the target's own id of the call, "resource": {"type", "id"},
     "intent": what the call was for, in words ("disable ava@example.com"), or null}
    {"kind": "guardrail", …}      a guardrail decision or an expiry (audit/decisions.py)
    {"kind": "provisioning", …}   one per object per sync pass (sync/passlog.py)

Where each is written, and what a crash can lose:
- a SCIM write's entry goes into the store in the same atomic step as the resource (Write.audit),
  so an acknowledged write always has its entry, and a refused write (409, 412…) has none from the
  store; the SCIM layer records the refusal itself (record_scim). If the entry cannot be written,
  neither is the resource: the client gets 503 and retries.
- a target call's entry is appended right after the call returns, before the engine goes on. If
  the store is down then, the entry waits in memory (bounded) and is retried by `run`; it is lost
  only if the process dies before the store comes back (logged as an error when dropped).
- on Redis an entry is chained (seq, time, hash) by `run` within about 100 ms of its append; until
  then it sits, durable but unchained, in the pending stream.
Never recorded: passwords and anything named like a secret (diff.py), credentials (only the
principal's kind and name), request headers, query strings of target calls.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from ..redaction import redact_text
from ..store import AuditEntry, Store, StoreUnavailable, chain_hash
from ..targets.http import TargetCall
from .context import CORRELATION_ID, SCIM_REQUEST, SYNC_SUBJECT
from .diff import changes

log = logging.getLogger("scim_bridge.audit")

BACKLOG_LIMIT = 100_000  # target-call entries kept in memory while the store is down


def _dumps(entry: dict[str, Any]) -> bytes:
    return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)


def iso(time_us: int) -> str:
    return datetime.fromtimestamp(time_us / 1e6, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(value: str | float | None) -> float | None:
    """Seconds since the epoch from an ISO 8601 time (naive means UTC) or a number."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except ValueError:
        pass
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


@dataclass(frozen=True)
class AuditFilter:
    user: str | None = None  # SCIM id or userName
    group: str | None = None  # SCIM id or displayName
    target: str | None = None
    correlation: str | None = None
    since: float | None = None
    until: float | None = None


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int
    first_seq: int  # first retained entry
    last_seq: int
    bad_seq: int | None = None
    problem: str | None = None  # "edited" or "removed"
    detail: str = ""

    def message(self) -> str:
        if self.ok:
            return (
                f"audit log intact: {self.checked} entries, seq {self.first_seq}..{self.last_seq}"
                if self.checked
                else "audit log intact: no entries"
            )
        return f"audit log TAMPERED at seq {self.bad_seq} ({self.problem}): {self.detail}"


class AuditTrail:
    def __init__(
        self, store: Store, retention_days: float = 365, *, seal_interval: float = 0.1, prune_interval: float = 3600.0
    ) -> None:
        self.store = store
        self.retention_days = retention_days
        self.seal_interval = seal_interval
        self.prune_interval = prune_interval
        self._backlog: list[bytes] = []
        self.dropped = 0
        # Other records kept beside the trail (activity) are pruned on the same schedule and retention.
        self.also_prune: list[Callable[[float], Awaitable[int]]] = []
        #: Whether this replica chains and prunes now (the one holding the job's lease); None: always.
        self.chains_here: Callable[[], bool] | None = None

    # SCIM writes ---------------------------------------------------------------------------
    def entry(
        self, operation: str, resource_type: str, id: str, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> tuple[bytes, str | None]:
        """The entry of a write that changes a resource, and the correlation id to queue with it."""
        document = after if after is not None else before or {}
        return self._scim_entry(
            operation, "applied", resource_type, id, _name(resource_type, document), changes(before, after)
        ), CORRELATION_ID.get()

    async def unchanged(self, operation: str, resource_type: str, id: str, document: dict[str, Any]) -> None:
        await self.store.audit_append(
            [self._scim_entry(operation, "unchanged", resource_type, id, _name(resource_type, document), [])]
        )

    async def refused(
        self,
        method: str,
        path: str,
        status: int,
        detail: str,
        scim_type: str | None,
        resource_type: str | None = None,
        id: str | None = None,
    ) -> None:
        """A write request the bridge refused (4xx): who tried what, and why it was refused."""
        entry = self._scim_entry(
            {"POST": "create", "PUT": "replace", "PATCH": "patch", "DELETE": "delete"}.get(method, method.lower()),
            "refused",
            resource_type,
            id,
            None,
            [],
        )
        extra = orjson.loads(entry)
        extra.update(status=status, detail=redact_text(detail)[:500], scimType=scim_type)  # errors may quote input
        await self._append_soon(_dumps(extra))

    def _scim_entry(
        self,
        operation: str,
        outcome: str,
        resource_type: str | None,
        id: str | None,
        name: str | None,
        diff: list[dict[str, Any]],
    ) -> bytes:
        request = SCIM_REQUEST.get()
        return _dumps(
            {
                "kind": "scim",
                "correlation": CORRELATION_ID.get(),
                "client": request.client if request else None,
                "request": f"{request.method} {request.path}" if request else None,
                "operation": operation,
                "outcome": outcome,
                "resource": {"type": resource_type, "id": id, "name": name},
                "changes": diff,
            }
        )

    # target calls --------------------------------------------------------------------------
    async def record_target_call(self, call: TargetCall) -> None:
        subject = SYNC_SUBJECT.get()
        await self._append_soon(
            _dumps(
                {
                    "kind": "target",
                    "correlation": CORRELATION_ID.get(),
                    "target": call.target,
                    "method": call.method,
                    "path": call.path.split("?", 1)[0],
                    "status": call.status,
                    "outcome": call.outcome,
                    "latency_ms": round(call.latency_ms, 1),
                    "request_id": call.request_id,
                    "intent": redact_text(call.intent) if call.intent else None,
                    "resource": {"type": subject[0], "id": subject[1]} if subject else None,
                }
            )
        )

    async def _append_soon(self, entry: bytes) -> None:
        """Append now; if the store is down, keep it for `run` to retry (never raise into the caller,
        whose own work already happened)."""
        try:
            await self.store.audit_append([entry])
        except StoreUnavailable:
            self._keep([entry])

    def _keep(self, entries: list[bytes]) -> None:
        room = BACKLOG_LIMIT - len(self._backlog)
        self._backlog.extend(entries[: max(room, 0)])
        if len(entries) > room:
            self.dropped += len(entries) - max(room, 0)
            log.error("audit: store down and backlog full; %d entries dropped so far", self.dropped)

    async def flush(self, chain: bool = True) -> None:
        """Chain what is pending (Redis) and write the backlog kept while the store was down."""
        if self._backlog:
            waiting, self._backlog = self._backlog, []
            try:
                await self.store.audit_append(waiting)
            except StoreUnavailable:
                self._backlog = waiting + self._backlog
                raise
        if chain:
            await self.store.audit_seal()

    async def run(self, stop: asyncio.Event) -> None:
        """Chain pending entries every `seal_interval`, prune past the retention every `prune_interval`."""
        next_prune = 0.0
        while not stop.is_set():
            try:
                here = self.chains_here is None or self.chains_here()  # one replica chains and prunes
                await self.flush(chain=here)
                if here and self.retention_days and time.monotonic() >= next_prune:
                    pruned = await self.prune()
                    for prune_more in self.also_prune:
                        pruned += await prune_more(self.retention_days)
                    if pruned:
                        log.info("audit: pruned %d entries older than %s days", pruned, self.retention_days)
                    next_prune = time.monotonic() + self.prune_interval
            except StoreUnavailable:
                pass
            except Exception:
                log.exception("audit: background work failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.seal_interval)
            except TimeoutError:
                pass
        try:
            await self.flush()
        except StoreUnavailable:
            if self._backlog:
                log.error("audit: store down at shutdown; %d target-call entries not written", len(self._backlog))

    async def prune(self, now: float | None = None) -> int:
        before = (now if now is not None else time.time()) - self.retention_days * 86400
        total = 0
        while True:
            pruned = await self.store.audit_prune(before)
            total += pruned
            if pruned < 10_000:
                return total

    # reading -------------------------------------------------------------------------------
    async def entries(self, filters: AuditFilter = AuditFilter(), after_seq: int = 0) -> AsyncIterator[dict[str, Any]]:
        """Every matching entry after `after_seq`, oldest first, as a dict with seq, time and hash."""
        user_ids, group_ids = await self._ids(filters)
        while True:
            batch = await self.store.audit_read(after_seq, 1000, filters.since, filters.until)
            for entry in batch:
                record = as_record(entry)
                if _matches(record, filters, user_ids, group_ids):
                    yield record
            if len(batch) < 1000:
                return
            after_seq = batch[-1].seq

    async def query(
        self, filters: AuditFilter, limit: int = 100, after_seq: int = 0
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Up to `limit` matching entries, and the seq to continue after (None at the end)."""
        found: list[dict[str, Any]] = []
        async for record in self.entries(filters, after_seq):
            found.append(record)
            if len(found) >= limit:
                return found, record["seq"]
        return found, None

    async def _ids(self, filters: AuditFilter) -> tuple[set[str], set[str]]:
        """The SCIM ids a user/group filter names: itself, and the id of a userName/displayName
        that exists now (entries met while reading add the ids of deleted ones)."""
        from ..scim.filters import fold  # the same folding as the uniqueness index

        user_ids: set[str] = set()
        group_ids: set[str] = set()
        if filters.user:
            user_ids = {filters.user, *await self.store.lookup("User", "username", fold(filters.user))}
        if filters.group:
            group_ids = {filters.group, *await self.store.lookup("Group", "displayname", fold(filters.group))}
        return user_ids, group_ids

    # verification --------------------------------------------------------------------------
    async def verify(self) -> VerifyReport:
        """Walk the chain from the anchor; the first entry whose hash does not follow is edited,
        the first missing seq is removed. Entries still pending are chained first."""
        await self.flush()
        head = await self.store.audit_head()
        prev_seq, prev_hash, checked = head.anchor_seq, head.anchor_hash, 0
        first = head.anchor_seq + 1
        after = head.anchor_seq
        while True:
            batch = await self.store.audit_read(after, 1000)
            for entry in batch:
                if entry.seq != prev_seq + 1:
                    missing = f"{prev_seq + 1}" if entry.seq == prev_seq + 2 else f"{prev_seq + 1}..{entry.seq - 1}"
                    return VerifyReport(
                        False,
                        checked,
                        first,
                        head.last_seq,
                        prev_seq + 1,
                        "removed",
                        f"entry seq {missing} is missing (the chain goes from {prev_seq} to {entry.seq})",
                    )
                if chain_hash(prev_hash, entry.seq, entry.time_us, entry.body) != entry.hash:
                    return VerifyReport(
                        False,
                        checked,
                        first,
                        head.last_seq,
                        entry.seq,
                        "edited",
                        f"entry seq {entry.seq} does not match its hash: its content, time or "
                        f"hash was changed (or its predecessor's)",
                    )
                prev_seq, prev_hash, checked = entry.seq, entry.hash, checked + 1
            if len(batch) < 1000:
                break
            after = batch[-1].seq
        if prev_seq != head.last_seq:
            return VerifyReport(
                False,
                checked,
                first,
                head.last_seq,
                prev_seq + 1,
                "removed",
                f"entries seq {prev_seq + 1}..{head.last_seq} are missing at the end of the log",
            )
        if prev_hash != head.last_hash:
            return VerifyReport(
                False,
                checked,
                first,
                head.last_seq,
                prev_seq,
                "edited",
                f"entry seq {prev_seq} does not match the recorded head of the chain",
            )
        return VerifyReport(True, checked, first, head.last_seq)


def as_record(entry: AuditEntry) -> dict[str, Any]:
    return {"seq": entry.seq, "time": iso(entry.time_us), **orjson.loads(entry.body), "hash": entry.hash}


def _name(resource_type: str, document: dict[str, Any]) -> str | None:
    value = document.get("userName" if resource_type == "User" else "displayName")
    return str(value) if value is not None else None


def _matches(record: dict[str, Any], filters: AuditFilter, user_ids: set[str], group_ids: set[str]) -> bool:
    resource = record.get("resource") or {}
    if filters.target and record.get("target") != filters.target:
        return False
    if filters.correlation and record.get("correlation") != filters.correlation:
        return False
    for wanted, kind, ids in ((filters.user, "User", user_ids), (filters.group, "Group", group_ids)):
        if not wanted:
            continue
        if kind == "User" and resource.get("type") == "Group" and _mentions(record, ids):
            continue  # the user joined or left a group
        if resource.get("type") != kind:
            return False
        name = resource.get("name")
        if name is not None and str(name).lower() == wanted.lower() and resource.get("id"):
            ids.add(resource["id"])  # a deleted user's id, learnt from its own entries
        if resource.get("id") not in ids:
            return False
    return True


def _mentions(record: dict[str, Any], ids: set[str]) -> bool:
    for change in record.get("changes") or ():
        if change.get("path") == "members" and ids & {*change.get("added", ()), *change.get("removed", ())}:
            return True
    return False

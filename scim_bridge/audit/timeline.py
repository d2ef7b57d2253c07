"""One person's story, in time order: the audit trail's entries about them (SCIM changes, the
groups they joined or left, guardrail decisions, each sync pass and every target call it made)
joined to what they did in the targets (activity from the webhooks, audit/activity.py).

`person_timeline` is a plain function returning typed entries, so the admin API
(GET /admin/api/people/{id}/timeline), `scim-bridge audit export --person` and the web console
show the same thing. Every record passes through the redaction rule (scim_bridge/redaction.py)
on its way out, although the trail keeps no secret in the first place.
"""

from __future__ import annotations

import csv
import io
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from ..redaction import redact_json
from ..store import Store
from .activity import ActivityLog, Identities
from .trail import AuditFilter, AuditTrail

LIMIT = 1000  # entries per timeline by default: the newest
CSV_COLUMNS = ("time", "source", "kind", "target", "summary", "correlation", "seq")


@dataclass(frozen=True)
class TimelineEntry:
    time: str  # ISO 8601, UTC
    source: str  # "audit" (the hash-chained trail) or "activity" (a target's webhook)
    kind: str  # scim | target | provisioning | guardrail, or the activity type (upload, delete…)
    summary: str  # one line in words
    target: str | None  # the target it happened in, when one
    correlation: str | None  # the SCIM request (or sync) it belongs to
    seq: int | None  # the audit entry's seq (None for activity)
    record: dict[str, Any]  # the entry as stored, redacted

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Person:
    id: str
    user_name: str | None


async def find_person(store: Store, person: str) -> Person | None:
    """A SCIM id or userName, as it is now; else one the trail still names (a deleted user)."""
    from ..scim.filters import fold  # the same folding as the uniqueness index

    record = await store.get("User", person)
    if record is None:
        ids = await store.lookup("User", "username", fold(person))
        record = await store.get("User", ids[0]) if ids else None
    if record is not None:
        return Person(record.id, orjson.loads(record.body).get("userName"))
    return None


async def person_timeline(
    store: Store,
    person: str,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = LIMIT,
    trail: AuditTrail | None = None,
    activity: ActivityLog | None = None,
) -> list[TimelineEntry]:
    """The newest `limit` entries about `person` (a SCIM id or userName, deleted ones included by
    the name the trail recorded), oldest first."""
    trail = trail or AuditTrail(store)
    activity = activity or ActivityLog(store, Identities(store))
    found = await find_person(store, person)
    scim_id = found.id if found else person
    filters = AuditFilter(
        user=scim_id,
        since=since.timestamp() if since else None,
        until=until.timestamp() if until else None,
    )
    newest: deque[TimelineEntry] = deque(maxlen=limit)
    async for record in trail.entries(filters):
        newest.append(_from_audit(record, scim_id))
    if found is None:  # a deleted person: its audit entries name it
        scim_id = next((e.record["resource"]["id"] for e in newest if e.record.get("resource")), scim_id)
    events = await activity.query(user=scim_id, since=since, until=until, limit=limit)
    merged = sorted([*newest, *(_from_activity(r) for r in events)], key=lambda e: (_instant(e.time), e.seq or 0))
    return merged[-limit:]


def _instant(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _from_audit(record: dict[str, Any], scim_id: str) -> TimelineEntry:
    kind = str(record.get("kind"))
    return TimelineEntry(
        str(record.get("time")),
        "audit",
        kind,
        audit_summary(record, scim_id),
        record.get("target"),
        record.get("correlation"),
        record.get("seq"),
        redact_json(record),
    )


def _from_activity(record: dict[str, Any]) -> TimelineEntry:
    actor = record.get("actor") or {}
    thing = record.get("object") or {}
    what = thing.get("title") or thing.get("id") or ""
    summary = f"{actor.get('owner') or actor.get('target_id') or 'someone'} {record.get('action')} {thing.get('kind')}"
    return TimelineEntry(
        str(record.get("time")),
        "activity",
        str(record.get("type")),
        f"{record.get('source')}: {summary} {what}".rstrip(),
        record.get("source"),
        None,
        None,
        redact_json(record),
    )


def audit_summary(record: dict[str, Any], scim_id: str | None = None) -> str:
    """One line for an audit entry, in words."""
    kind = record.get("kind")
    resource = record.get("resource") or {}
    who = resource.get("name") or resource.get("id")
    if kind == "scim":
        client = (record.get("client") or {}).get("name") or "?"
        if resource.get("type") == "Group" and scim_id:
            moved = {_change_words(c, scim_id) for c in record.get("changes") or []} & {"joined", "left"}
            if moved:
                return f"SCIM: {' and '.join(sorted(moved))} group {who} (by {client}, {record.get('outcome')})"
        paths = [_change_words(c, scim_id).rsplit(":", 1)[-1] for c in record.get("changes") or []]
        changed = ", ".join(paths[:8]) + (f" (+{len(paths) - 8} more)" if len(paths) > 8 else "")
        return (
            f"SCIM {record.get('operation')} of {resource.get('type')} {who} by {client} ({record.get('outcome')})"
            + (f": {changed}" if changed else "")
        )
    if kind == "target":
        what = record.get("intent") or f"{record.get('method')} {record.get('path')}"
        return f"{record.get('target')}: {what} → {record.get('status') or 'no answer'} {record.get('outcome')}"
    if kind == "guardrail":
        return f"guardrail {record.get('state')}: {record.get('detail')} [{record.get('rule')}]"
    if kind == "provisioning":
        steps = "; ".join(
            f"{target} {step.get('action')} {step.get('status')}"
            for target, step in sorted((record.get("targets") or {}).items())
        )
        return f"sync pass {record.get('status')} ({record.get('trigger')}): {steps}"
    return f"{kind} {who}"


def _change_words(change: dict[str, Any], scim_id: str | None) -> str:
    path = change.get("path") or change.get("property")
    if path == "members" and scim_id:
        if scim_id in (change.get("added") or ()):
            return "joined"
        if scim_id in (change.get("removed") or ()):
            return "left"
    return str(path)


def csv_text(entries: Iterable[TimelineEntry], header: bool = True) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    if header:
        writer.writeheader()
    for entry in entries:
        writer.writerow(entry.as_json())
    return buffer.getvalue()

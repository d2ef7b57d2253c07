"""The provisioning log, read: the audit trail's `kind: "provisioning"` entries (sync/passlog.py
writes them, one per object per sync pass), searched and exported.

There is no second store: the entries are audit entries, hash-chained and pruned with the rest of
the trail (`SCIM_BRIDGE_AUDIT_RETENTION_DAYS`). Filters: user (SCIM id or userName: its own
entries), group (SCIM id or displayName: the group's entries and those of users who were in it),
target (entries that touched it), status (success, failure, skipped, held, warning), correlation,
since / until. CSV has one row per entry and target, so a spreadsheet filters by target directly.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from ..store import Store
from .trail import AuditFilter, AuditTrail

STATUSES = ("success", "failure", "skipped", "held", "warning")

CSV_COLUMNS = (
    "seq",
    "time",
    "correlation",
    "trigger",
    "resource_type",
    "resource_id",
    "resource_name",
    "status",
    "target",
    "target_status",
    "action",
    "account",
    "changes",
    "brake",
    "notes",
    "calls",
    "error",
    "hash",
)


@dataclass(frozen=True)
class ProvisioningFilter:
    user: str | None = None
    group: str | None = None
    target: str | None = None
    status: str | None = None
    correlation: str | None = None
    since: float | None = None
    until: float | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {', '.join(STATUSES)}")


async def entries(trail: AuditTrail, filters: ProvisioningFilter, after_seq: int = 0) -> AsyncIterator[dict[str, Any]]:
    """Every matching provisioning entry after `after_seq`, oldest first."""
    users, groups, group_names = await _names(trail.store, filters)
    wide = AuditFilter(correlation=filters.correlation, since=filters.since, until=filters.until)
    async for record in trail.entries(wide, after_seq):
        if record.get("kind") == "provisioning" and _matches(record, filters, users, groups, group_names):
            yield record


async def query(
    trail: AuditTrail, filters: ProvisioningFilter, limit: int = 100, after_seq: int = 0
) -> tuple[list[dict[str, Any]], int | None]:
    """Up to `limit` matching entries, and the seq to continue after (None at the end)."""
    found: list[dict[str, Any]] = []
    async for record in entries(trail, filters, after_seq):
        found.append(record)
        if len(found) >= limit:
            return found, record["seq"]
    return found, None


async def _names(store: Store, filters: ProvisioningFilter) -> tuple[set[str], set[str], set[str]]:
    from ..scim.filters import fold  # the same folding as the uniqueness index

    users: set[str] = set()
    groups: set[str] = set()
    names: set[str] = set()
    if filters.user:
        users = {filters.user, *await store.lookup("User", "username", fold(filters.user))}
    if filters.group:
        groups = {filters.group, *await store.lookup("Group", "displayname", fold(filters.group))}
        names = {filters.group.lower()}
        for record in await store.get_many("Group", sorted(groups)):
            names.add(str(orjson.loads(record.body).get("displayName", "")).lower())
    return users, groups, names


def _matches(
    record: dict[str, Any], filters: ProvisioningFilter, users: set[str], groups: set[str], group_names: set[str]
) -> bool:
    resource = record.get("resource") or {}
    if filters.status and record.get("status") != filters.status:
        return False
    if filters.target and filters.target not in (record.get("targets") or {}):
        return False
    if filters.user:
        named = str(resource.get("name") or "").lower() == filters.user.lower()
        if resource.get("type") != "User" or not (resource.get("id") in users or named):
            return False
    if filters.group:
        if resource.get("type") == "Group":
            named = str(resource.get("name") or "").lower() in group_names
            return bool(resource.get("id") in groups or named)
        member_of = {str(g).lower() for g in (record.get("directory") or {}).get("groups") or ()}
        return bool(member_of & group_names)
    return True


def csv_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    resource = record.get("resource") or {}
    base = {
        "seq": record.get("seq"),
        "time": record.get("time"),
        "correlation": record.get("correlation"),
        "trigger": record.get("trigger"),
        "resource_type": resource.get("type"),
        "resource_id": resource.get("id"),
        "resource_name": resource.get("name"),
        "status": record.get("status"),
        "hash": record.get("hash"),
    }
    rows = []
    for target, step in sorted((record.get("targets") or {}).items()):
        rows.append(
            {
                **base,
                "target": target,
                "target_status": step.get("status"),
                "action": step.get("action"),
                "account": step.get("account"),
                "changes": orjson.dumps(step.get("changes") or []).decode(),
                "brake": step.get("brake") or "",
                "notes": "; ".join(step.get("notes") or []),
                "calls": step.get("calls"),
                "error": step.get("error") or "",
            }
        )
    return rows or [base]


def csv_text(records: Iterable[dict[str, Any]], header: bool = True) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    if header:
        writer.writeheader()
    for record in records:
        writer.writerows(csv_rows(record))
    return buffer.getvalue()


def text_line(record: dict[str, Any]) -> str:
    """One line per entry and target, for a terminal."""
    resource = record.get("resource") or {}
    parts = []
    for target, step in sorted((record.get("targets") or {}).items()):
        changes = ", ".join(_change_text(c) for c in step.get("changes") or [])
        parts.append(f"{target}: {step.get('action')} {step.get('status')}{' (' + changes + ')' if changes else ''}")
    who = f"{resource.get('type')} {resource.get('name') or resource.get('id')}"
    context = f"[{record.get('trigger')} {record.get('correlation')}]"
    return f"{record.get('time')}  {record.get('status'):8} {who}  {context}  " + "; ".join(parts)


def _change_text(change: dict[str, Any]) -> str:
    if "added" in change:
        return f"{change['property']} +{change['added']} -{change['removed']}"
    return f"{change['property']} {change['old']!r}→{change['new']!r}"


async def export(records: AsyncIterator[dict[str, Any]], fmt: str) -> AsyncIterator[bytes]:
    """Encoded chunks: `jsonl` (one entry per line), `csv` or `text`, streamed."""
    if fmt == "csv":
        yield csv_text([], header=True).encode()
    async for record in records:
        if fmt == "csv":
            yield csv_text([record], header=False).encode()
        elif fmt == "text":
            yield (text_line(record) + "\n").encode()
        else:
            yield orjson.dumps(record) + b"\n"

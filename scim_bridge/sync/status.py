"""Where one resource stands in each target, for operators: the admin API and the read-only
SCIM extension `urn:scim-bridge:schemas:extension:sync:2.0:SyncStatus` both answer from here.

States: `pending` (never synced, or changed in the directory after the last sync), `synced`,
`partial` (the account exists, its groups are not finished), `failed` (last error kept; it is
retried), `not-provisioned` (nothing to create, e.g. a joiner who is inactive).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..store import Store
from .idmap import IdMap


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def target_status(entry: dict[str, Any] | None, last_modified: str | None) -> dict[str, Any]:
    """One target's view of one resource. A directory change newer than the last sync is pending."""
    if entry is None:
        return {"state": "pending"}
    state = entry.get("status", "synced")
    changed, synced = _epoch(last_modified), entry.get("updated")
    if state == "synced" and changed is not None and synced is not None and changed > synced:
        state = "pending"
    applied = entry.get("applied") or {}
    status = {
        "state": state,
        "targetId": entry.get("id"),
        "lastSync": _iso(synced),
        "error": entry.get("error"),
        "role": applied.get("role"),
        "enabled": applied.get("enabled"),
        "groups": sorted((entry.get("group_names") or {}).values()) or None,
    }
    return {k: v for k, v in status.items() if v is not None}


async def resource_status(
    store: Store, targets: list[str], resource_type: str, scim_id: str, last_modified: str | None
) -> dict[str, dict[str, Any]]:
    idmap = IdMap(store)
    found: dict[str, dict[str, Any]] = {}
    for name in targets:
        entry = await idmap.get(name, resource_type, scim_id)
        if entry is None and resource_type == "Group":  # a project team is an iconik project, not a group
            entry = await idmap.get(name, "Project", scim_id)
        found[name] = target_status(entry, last_modified)
    return found

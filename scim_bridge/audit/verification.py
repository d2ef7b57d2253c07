"""The audit chain's last verification, whoever ran it: the deployment's schedule (the sync
runtime, once per `notify.audit_verify_seconds` across replicas), the console's "Verify now", or
`scim-bridge audit verify`. Kept in the store, so every replica's Overview shows the same result.

A verification walks the whole trail, so nothing runs one on a timer of its own per process: the
console used to (every 10 minutes, the first 30 s after start), which cost every replica a read of
the whole trail while it served SCIM traffic (issue 12: the console on must cost the front door
under 3 %).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from ..store import Store
from .trail import AuditTrail, VerifyReport

#: where the result is kept (the key the console wrote before, so a stored result still shows)
LAST_VERIFICATION = ("console", "audit-verify")


async def verify_and_record(store: Store) -> VerifyReport:
    report = await AuditTrail(store).verify()
    result = {"ok": report.ok, "message": report.message(), "time": time.time()}
    await store.kv_put(*LAST_VERIFICATION, orjson.dumps(result))
    return report


async def last_verification(store: Store) -> dict[str, Any] | None:
    """{"ok", "message", "time"} of the last verification, or None before the first."""
    raw = await store.kv_get(*LAST_VERIFICATION)
    return orjson.loads(raw) if raw else None

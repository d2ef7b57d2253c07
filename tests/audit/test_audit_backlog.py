"""A target call's entry is never lost to a store outage while the process lives, and recording
never turns a target call into a failure."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from scim_bridge.audit.context import CORRELATION_ID, SYNC_SUBJECT
from scim_bridge.audit.trail import AuditTrail
from scim_bridge.store import Store, StoreUnavailable
from scim_bridge.targets.http import TargetCall


class FlakyStore:
    def __init__(self) -> None:
        self.down = True
        self.appended: list[bytes] = []

    async def audit_append(self, bodies: Sequence[bytes]) -> None:
        if self.down:
            raise StoreUnavailable("down")
        self.appended.extend(bodies)

    async def audit_seal(self) -> int:
        return 0


async def test_entries_wait_for_the_store_and_keep_their_context() -> None:
    store = FlakyStore()
    trail = AuditTrail(store)  # type: ignore[arg-type]
    CORRELATION_ID.set("req-7")
    SYNC_SUBJECT.set(("User", "u1"))
    await trail.record_target_call(
        TargetCall("iconik", "PATCH", "/users/1/?x=secret", 200, "ok", 12.34, None, "disable ava@example.com")
    )
    assert store.appended == []  # did not raise; kept
    store.down = False
    await trail.flush()
    [entry] = [orjson.loads(body) for body in store.appended]
    assert entry == {
        "kind": "target",
        "correlation": "req-7",
        "target": "iconik",
        "method": "PATCH",
        "path": "/users/1/",
        "status": 200,
        "outcome": "ok",
        "latency_ms": 12.3,
        "request_id": None,
        "intent": "disable ava@example.com",
        "resource": {"type": "User", "id": "u1"},
    }


def test_store_protocol_has_the_audit_methods() -> None:
    for name in ("audit_append", "audit_seal", "audit_read", "audit_head", "audit_prune"):
        assert hasattr(Store, name)

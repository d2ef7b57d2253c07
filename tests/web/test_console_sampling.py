"""The Overview's charts sample the store without ever walking the audit trail: the console used
to verify the whole chain on a timer of its own in every process (the first 30 s after start),
which cost each replica a read of the whole trail while it served SCIM traffic. The Overview now
shows the last verification anyone ran (the deployment's schedule, Verify now, the CLI)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from scim_bridge.audit.verification import verify_and_record
from scim_bridge.store import Store
from scim_bridge.web.console.history import History


async def test_sampling_the_charts_never_reads_the_audit_trail(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    await store.audit_append([orjson.dumps({"kind": "scim", "n": n}) for n in range(50)])
    reads: list[Any] = []
    read = store.audit_read

    async def counted(*args: Any, **kwargs: Any) -> Any:
        reads.append(args)
        return await read(*args, **kwargs)

    monkeypatch.setattr(store, "audit_read", counted)
    history = History(store, interval=0.01)
    history.start()
    try:
        async with asyncio.timeout(10):
            while len(history.samples) < 20:
                await asyncio.sleep(0.01)
    finally:
        await history.stop()
    assert reads == []
    assert await history.last_verification() is None  # "Not verified yet." until someone verifies


async def test_the_overview_shows_a_verification_run_elsewhere(store: Store) -> None:
    await store.audit_append([orjson.dumps({"kind": "scim", "n": n}) for n in range(3)])
    await verify_and_record(store)  # what the scheduled verification and `audit verify` call
    shown = await History(store).last_verification()
    assert shown is not None and shown["ok"] is True and "3 entries" in shown["message"]

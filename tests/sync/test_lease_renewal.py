"""A sync that outlives its lease keeps it: the worker renews the lease while it works (a heartbeat),
so a second replica's worker does not claim the same entry and apply the change a second time.

Two sync runtimes (two replicas' workers, each with its own engine, HTTP clients and consumer id)
share one store, on both backends; Cloudinary is slowed by the emulator's fault injection until
one user's sync takes several leases. Before renewal, the second worker took the entry as soon as
the first lease ran out and created the account again (two POST /users for one person)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import httpx
import orjson
import pytest

from scim_bridge.emulators import cloudinary, iconik
from scim_bridge.store import STANDARD_LANE, Store, Write
from scim_bridge.sync.lease_keeper import keep_leased
from scim_bridge.sync.runtime import SyncRuntime
from scim_bridge.sync.worker import WorkerOptions
from tests.emulators.live import LiveApp
from tests.scim.conftest import USER
from tests.sync.emulated_policy import emulated_policy

LEASE = 1.0  # seconds
SLOW_MS = 1500  # every Cloudinary call: the user's sync (look-up, create) takes about three leases


def _user(scim_id: str, email: str) -> Write:
    body = {"schemas": [USER], "id": scim_id, "userName": email, "active": True, "emails": [{"value": email}]}
    return Write("User", scim_id, orjson.dumps(body), [("username", email)], [("username", email)], STANDARD_LANE)


async def test_a_sync_longer_than_its_lease_is_not_taken_over_by_another_replica(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scim_bridge.sync")
    cld_state, ico_state = cloudinary.CloudinaryState(), iconik.IconikState()
    with LiveApp(cloudinary.build(cld_state)) as cld, LiveApp(iconik.build(ico_state)) as ico:
        policy = emulated_policy(tmp_path, cld_state, cld.url, ico_state, ico.url)
        options = WorkerOptions(lease_seconds=LEASE, idle_poll=0.05)
        replicas = [SyncRuntime.from_file(store, policy, 1, options) for _ in range(2)]
        async with httpx.AsyncClient() as client:
            slowed = await client.put(f"{cld.url}/_emulator/faults", json={"latency_ms": SLOW_MS})
            assert slowed.status_code == 200
        for replica in replicas:
            replica.start()
        try:
            started = time.monotonic()
            await store.create(_user("u-slow", "slow@example.com"))
            async with asyncio.timeout(30):
                while (await store.queue_depth()).total or not any(
                    u["email"] == "slow@example.com" for u in list(ico_state.users.values())
                ):
                    await asyncio.sleep(0.05)
            took = time.monotonic() - started
        finally:
            for replica in replicas:
                await replica.stop()
    creates = [c for c in cld_state.calls if c["method"] == "POST" and c["path"].endswith("/users")]
    assert took > 2 * LEASE  # the sync did outlive its lease, more than once
    assert len(creates) == 1, f"the account was created {len(creates)} times"
    assert [u["email"] for u in cld_state.users.values()] == ["slow@example.com"]
    late = [
        r.getMessage()
        for r in caplog.records
        if "outlived its lease" in r.getMessage() or "lease was lost" in r.getMessage()
    ]
    assert late == []  # no late ack refused, no lease lost: one worker held it throughout


async def test_a_worker_whose_lease_was_taken_stops_its_sync_and_leaves_the_entry_to_the_holder(
    store: Store,
) -> None:
    await store.enqueue("User", "u1", STANDARD_LANE)
    [first] = await store.claim("first-worker", lease_seconds=0.3)
    stopped = asyncio.Event()

    async def slow_sync() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            stopped.set()
            raise

    keeping = asyncio.create_task(keep_leased(store, first, "first-worker", 0.3, slow_sync()))
    await asyncio.sleep(0.5)  # renewed at least once: still the first worker's
    assert await store.claim("second-worker") == []
    # The entry is taken from under it (its replica was cut off from the store past the lease, and
    # the lease was handed on): here by hand, then claimed by a second worker.
    assert await store.release(first, "first-worker") is True
    [second] = await store.claim("second-worker", lease_seconds=300)
    async with asyncio.timeout(2):
        assert await keeping is False  # lost: the sync was stopped, nothing to ack
    assert stopped.is_set()
    assert await store.claim("third-worker") == []  # the second worker's lease was left alone
    assert await store.ack(second) is True
    assert (await store.queue_depth()).total == 0


async def test_a_provision_on_demand_longer_than_its_lease_is_not_taken_over_by_a_worker(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`scim-bridge provision` (and the console's button) hold the entry's lease as a worker does,
    so they renew it the same way: before, a worker claimed the entry when the provision's lease ran
    out and created the account a second time while the provision was still creating it."""
    from scim_bridge.sync import provision

    monkeypatch.setattr(provision, "LEASE_SECONDS", LEASE)
    cld_state, ico_state = cloudinary.CloudinaryState(), iconik.IconikState()
    with LiveApp(cloudinary.build(cld_state)) as cld, LiveApp(iconik.build(ico_state)) as ico:
        policy = emulated_policy(tmp_path, cld_state, cld.url, ico_state, ico.url)
        worker_replica = SyncRuntime.from_file(store, policy, 1, WorkerOptions(lease_seconds=30, idle_poll=0.05))
        on_demand = SyncRuntime.from_file(store, policy, 1, WorkerOptions())  # its engine only: never started
        async with httpx.AsyncClient() as client:
            slowed = await client.put(f"{cld.url}/_emulator/faults", json={"latency_ms": SLOW_MS})
            assert slowed.status_code == 200
        await store.create(_user("u-now", "now@example.com"))
        provisioner = provision.Provisioner(on_demand.engine)
        provisioning = asyncio.create_task(provisioner.user("u-now"))
        async with asyncio.timeout(5):
            # the accounts step's look-up, then the pass's own: the provision holds the lease now
            while len([c for c in cld_state.calls if c["method"] == "GET"]) < 2:
                await asyncio.sleep(0.02)
        worker_replica.start()  # polls the queue every 50 ms while the provision's pass runs
        try:
            started = time.monotonic()
            async with asyncio.timeout(30):
                answer = await provisioning
                while (await store.queue_depth()).total:
                    await asyncio.sleep(0.05)
            took = time.monotonic() - started
        finally:
            await worker_replica.stop()
            await on_demand.stop()
    creates = [c for c in cld_state.calls if c["method"] == "POST" and c["path"].endswith("/users")]
    assert took > 2 * LEASE  # the provision outlived its lease, more than once
    assert answer["status"] == "success", answer
    assert len(creates) == 1, f"the account was created {len(creates)} times"
    assert [u["email"] for u in cld_state.users.values()] == ["now@example.com"]

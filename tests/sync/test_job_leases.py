"""Jobs that run once per deployment: the named leases on both stores, and two sync runtimes on one
store of which only the lease holder runs the scheduled reconcile, until it dies and the other
takes over. Each runtime talks to its own Cloudinary emulator over real HTTP, so the emulators'
call logs say which replica ran the job."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml

from scim_bridge.emulators import cloudinary
from scim_bridge.store import Store
from scim_bridge.store.job_leases import JobLeases
from scim_bridge.store.redis import RedisStore
from scim_bridge.store.sqlite import SqliteStore
from scim_bridge.sync.runtime import SyncRuntime
from tests.emulators.live import LiveApp

TTL = 1.0


async def test_a_named_lease_has_one_holder_until_it_expires_or_is_released(store: Store) -> None:
    assert await store.job_lease("reconcile", "a", TTL) is True
    assert await store.job_lease("reconcile", "b", TTL) is False
    assert await store.job_lease("expiry-sweep", "b", TTL) is True  # one lease per job
    assert await store.job_lease("reconcile", "a", TTL) is True  # renewed by its holder
    await asyncio.sleep(TTL * 0.6)
    assert await store.job_lease("reconcile", "a", TTL) is True
    await asyncio.sleep(TTL * 0.6)  # past the first lease's end: the renewal kept it
    assert await store.job_lease("reconcile", "b", TTL) is False
    await asyncio.sleep(TTL * 1.2)  # a ran out without renewing
    assert await store.job_lease("reconcile", "b", TTL) is True
    await store.job_release("reconcile", "a")  # not a's any more: nothing happens
    assert await store.job_lease("reconcile", "a", TTL) is False
    await store.job_release("reconcile", "b")
    assert await store.job_lease("reconcile", "a", TTL) is True


@pytest.fixture
def emulators() -> Iterator[list[tuple[cloudinary.CloudinaryState, str]]]:
    states = [cloudinary.CloudinaryState(), cloudinary.CloudinaryState()]
    with LiveApp(cloudinary.build(states[0])) as first, LiveApp(cloudinary.build(states[1])) as second:
        yield [(states[0], first.url), (states[1], second.url)]


def _policy(tmp_path: Path, name: str, state: cloudinary.CloudinaryState, url: str) -> Path:
    credentials = tmp_path / f"{name}.json"
    credentials.write_text(json.dumps({"account_id": state.account_id, "key": state.key, "secret": state.secret}))
    policy = tmp_path / f"{name}.yml"
    policy.write_text(
        yaml.safe_dump(
            {
                "targets": {
                    "cloudinary": {"enabled": True, "base_url": url, "credentials_file": str(credentials), "rate": 100}
                },
                "reconcile": {"interval_seconds": 1},
            }
        )
    )
    return policy


def _listings(state: cloudinary.CloudinaryState) -> int:
    """The reconciler's account listings this emulator has answered."""
    return sum(1 for call in list(state.calls) if call["method"] == "GET" and call["path"].endswith("/users"))


async def _converge(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "no replica took the job over in time"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_the_scheduled_reconcile_runs_on_one_replica_and_moves_when_it_dies(
    backend: str,
    tmp_path: Path,
    emulators: list[tuple[cloudinary.CloudinaryState, str]],
    request: pytest.FixtureRequest,
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/store.db"
    else:
        url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(url).flushdb()
    stores: list[Store] = [SqliteStore(url) if backend == "sqlite" else RedisStore(url) for _ in range(2)]
    runtimes = []
    for index, store in enumerate(stores):  # two replicas: a store connection and a runtime each
        await store.open()
        state, emulator_url = emulators[index]
        runtime = SyncRuntime.from_file(store, _policy(tmp_path, f"replica{index}", state, emulator_url))
        runtime.leases = JobLeases(store, ttl=TTL)
        runtimes.append(runtime)
        runtime.start()
    try:
        await asyncio.sleep(3.5)  # about three reconcile intervals
        counts = [_listings(state) for state, _ in emulators]
        assert sorted(counts)[0] == 0 and sorted(counts)[1] >= 2, counts  # one replica ran it, repeatedly
        holder = counts.index(max(counts))
        other = 1 - holder

        # kill the holder: its tasks end, nothing hands its lease back
        for task in runtimes[holder]._tasks:
            task.cancel()
        await asyncio.gather(*runtimes[holder]._tasks, return_exceptions=True)
        frozen = _listings(emulators[holder][0])
        await _converge(lambda: _listings(emulators[other][0]) >= 2)
        assert _listings(emulators[holder][0]) == frozen
    finally:
        for index, runtime in enumerate(runtimes):
            await runtime.stop()
            await stores[index].close()

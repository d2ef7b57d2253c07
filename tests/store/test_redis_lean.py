"""The Redis store's lean pipelined connection (store/redis_lean.py), seen through the store: many
calls in flight on one socket each get their own answer, a dropped or hung connection is an
outage (StoreUnavailable, a 503) that heals by itself, and error replies keep their meaning."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator

import pytest
import redis

from scim_bridge.store import StoreUnavailable, UniqueViolation, Write
from scim_bridge.store.redis import RedisStore
from scim_bridge.store.redis_connect import RedisOptions
from scim_bridge.store.redis_fence import SEND_TIMEOUT
from tests.redis_server import RedisServer


@pytest.fixture
async def server() -> AsyncIterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
async def store(server: RedisServer) -> AsyncIterator[RedisStore]:
    store = RedisStore(server.url)
    await store.open()
    yield store
    await store.close()


def _user(n: int) -> Write:
    return Write("User", f"u{n}", b'{"n":%d}' % n, [("username", f"name{n}")], [("username", f"name{n}")])


def _admin(server: RedisServer) -> redis.Redis:
    return redis.Redis(port=server.port)


async def test_hundreds_of_concurrent_calls_on_one_connection_each_get_their_own_reply(store: RedisStore) -> None:
    await asyncio.gather(*(store.create(_user(n)) for n in range(300)))
    members = [("members.value", f"u{n}") for n in range(0, 300, 7)]
    await store.create(Write("Group", "g", b"{}", members))

    async def check(n: int) -> None:
        (record, groups), got, ids, many = await asyncio.gather(
            store.get_with_referrers("User", f"u{n}", "Group", "members.value"),
            store.get("User", f"u{n}"),
            store.lookup("User", "username", f"name{n}"),
            store.get_many("User", [f"u{n}", f"u{(n + 1) % 300}"]),
        )
        assert record is not None and record.body == b'{"n":%d}' % n
        assert groups == (["g"] if n % 7 == 0 else [])
        assert got is not None and got.body == record.body and ids == [f"u{n}"]
        assert sorted(r.id for r in many) == sorted([f"u{n}", f"u{(n + 1) % 300}"])

    await asyncio.gather(*(check(n) for n in range(300)))
    assert await store.count("User") == 300


async def test_a_connection_the_server_drops_is_reopened_without_an_error(
    server: RedisServer, store: RedisStore
) -> None:
    await store.create(_user(1))
    assert await store.get("User", "u1") is not None
    with _admin(server) as admin:
        assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
    await asyncio.sleep(0.1)  # the close reaches the store's socket while it is idle
    assert (await store.get("User", "u1")) is not None  # no StoreUnavailable: re-opened at once
    await store.create(_user(2))
    with _admin(server) as admin:  # dropped again, now with calls in flight on it
        calls = [asyncio.ensure_future(store.get("User", "u2")) for _ in range(20)]
        admin.client_kill_filter(_type="normal", skipme=True)
        for outcome in await asyncio.gather(*calls, return_exceptions=True):
            assert isinstance(outcome, StoreUnavailable) or (outcome is not None and outcome.id == "u2")
    assert (await store.get("User", "u2")) is not None


async def test_redis_down_is_unavailable_and_a_restart_heals_the_connection(
    server: RedisServer, store: RedisStore
) -> None:
    await store.create(_user(1))
    server.stop()
    with pytest.raises(StoreUnavailable):
        await store.get_with_referrers("User", "u1", "Group", "members.value")
    server.start()  # same port, empty
    assert await store.get_with_referrers("User", "u1", "Group", "members.value") == (None, [])
    await store.create(_user(1))
    assert await store.lookup("User", "username", "name1") == ["u1"]


async def test_scripts_flushed_from_the_server_are_loaded_again(server: RedisServer, store: RedisStore) -> None:
    await store.create(_user(1))
    with _admin(server) as admin:
        admin.script_flush()
    record, _ = await store.get_with_referrers("User", "u1", "Group", "members.value")
    assert record is not None
    with _admin(server) as admin:
        admin.script_flush()
    with pytest.raises(UniqueViolation):  # the write script, reloaded, still checks uniqueness
        await store.create(Write("User", "u2", b"{}", [("username", "name1")], [("username", "name1")]))


async def test_a_demoted_master_refuses_writes_as_unavailable_and_still_serves_reads(
    server: RedisServer, store: RedisStore
) -> None:
    await store.create(_user(1))
    primary = RedisServer().start()
    try:
        with _admin(server) as admin:  # READONLY from now on; the replica keeps its data until it syncs
            admin.config_set("replica-serve-stale-data", "yes")
            admin.replicaof("127.0.0.1", primary.port)
        with pytest.raises(StoreUnavailable):
            await store.create(_user(2))
    finally:
        with _admin(server) as admin:
            admin.replicaof("NO", "ONE")
        primary.stop()
    assert await store.count("User") in (0, 1)  # synced from the empty primary, or not yet
    await store.create(_user(3))


async def test_a_hung_server_makes_reads_unavailable_after_the_timeout_then_they_work(
    server: RedisServer, store: RedisStore
) -> None:
    await store.create(_user(1))
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.get("User", "u1")
        assert SEND_TIMEOUT - 0.5 <= time.monotonic() - started <= SEND_TIMEOUT + 1.5
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    assert await store.get("User", "u1") is not None


async def test_min_replicas_on_one_server_waits_for_the_replica_and_is_unavailable_without_it(
    server: RedisServer,
) -> None:
    replica = RedisServer().start()
    try:
        with redis.Redis(port=replica.port) as admin:
            admin.replicaof("127.0.0.1", server.port)
            deadline = time.monotonic() + 10
            while admin.info("replication").get("master_link_status") != "up":
                assert time.monotonic() < deadline, "the replica did not sync"
                time.sleep(0.05)
        store = RedisStore(server.url, RedisOptions(min_replicas=1, min_replicas_timeout=0.5))
        await store.open()
        try:
            await store.create(_user(1))  # acknowledged by the replica: a 2xx
            with redis.Redis(port=replica.port) as admin:
                assert admin.hget("sb:r:User:u1", "version") == b"1"
            replica.stop()
            with pytest.raises(StoreUnavailable, match="0 of 1 replicas"):
                await store.create(_user(2))
            assert await store.get("User", "u2") is not None  # WAIT is no rollback (redis_replicas.py)
        finally:
            await store.close()
    finally:
        replica.stop()


async def test_a_request_cancelled_while_the_connection_reopens_does_not_fail_the_others(
    server: RedisServer, store: RedisStore
) -> None:
    await store.create(_user(1))
    with _admin(server) as admin:
        admin.client_kill_filter(_type="normal", skipme=True)
    await asyncio.sleep(0.1)  # the store sees the close: the next call re-connects
    calls = [asyncio.ensure_future(store.get("User", "u1")) for _ in range(10)]
    await asyncio.sleep(0)  # the first has started the re-connect, the others wait for it
    calls[0].cancel()  # its HTTP client went away
    for record in await asyncio.gather(*calls[1:]):
        assert record is not None and record.id == "u1"

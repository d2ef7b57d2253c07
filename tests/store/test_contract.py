"""One storage contract, run against every backend (the `store` fixture: sqlite and redis).

At the end, two Redis-only tests of what the contract cannot express: recovery after a restart
nobody saw, and a write whose reply was lost being applied once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import pytest
import redis

from scim_bridge.store import (
    REVOCATION_LANE,
    STANDARD_LANE,
    NotFound,
    Store,
    UniqueViolation,
    VersionMismatch,
    Write,
)
from scim_bridge.store.redis import RedisStore
from tests.redis_server import RedisServer


def user(
    id: str, name: str, *, lane: str | None = STANDARD_LANE, body: bytes | None = None, emails: tuple[str, ...] = ()
) -> Write:
    keys = [("username", name)] + [("emails.value", e) for e in emails]
    return Write("User", id, body or f'{{"id":"{id}","userName":"{name}"}}'.encode(), keys, [("username", name)], lane)


async def drain(store: Store) -> list[tuple[str, str]]:
    claimed = await store.claim("test", limit=10_000)
    for entry in claimed:
        await store.ack(entry)
    return [(entry.id, entry.lane) for entry in claimed]


async def test_create_get_and_exact_bytes(store: Store) -> None:
    record = await store.create(user("u1", "ada"))
    assert (record.version, record.id) == (1, "u1") and record.seq > 0
    fetched = await store.get("User", "u1")
    assert fetched is not None and fetched.body == b'{"id":"u1","userName":"ada"}' and fetched.seq == record.seq
    assert await store.get("User", "nope") is None
    assert await store.get("Group", "u1") is None  # types are separate spaces


async def test_replace_bumps_version_and_checks_it(store: Store) -> None:
    await store.create(user("u1", "ada"))
    replaced = await store.replace(user("u1", "ada", body=b'{"v":2}'), expected_version=1)
    assert replaced.version == 2
    with pytest.raises(VersionMismatch) as mismatch:
        await store.replace(user("u1", "ada", body=b'{"v":3}'), expected_version=1)
    assert mismatch.value.current == 2
    assert (await store.get("User", "u1")).body == b'{"v":2}'  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        await store.replace(user("ghost", "x"))
    with pytest.raises(NotFound):
        await store.delete("User", "ghost")
    with pytest.raises(VersionMismatch):
        await store.delete("User", "u1", expected_version=1)


async def test_unique_keys_and_no_partial_state(store: Store) -> None:
    await store.create(user("u1", "ada"))
    await drain(store)
    with pytest.raises(UniqueViolation) as taken:
        await store.create(user("u2", "ada", emails=("a@x",)))
    assert taken.value.key == ("username", "ada")
    assert await store.get("User", "u2") is None
    assert await store.lookup("User", "emails.value", "a@x") == []
    assert await store.count("User") == 1 and (await store.queue_depth()).total == 0
    await store.create(user("u2", "bob", lane=None))
    with pytest.raises(UniqueViolation) as taken:
        await store.replace(user("u2", "ada", body=b'{"new":1}', emails=("b@x",)))
    assert taken.value.key == ("username", "ada")
    unchanged = await store.get("User", "u2")
    assert unchanged is not None and (unchanged.version, unchanged.body) == (1, b'{"id":"u2","userName":"bob"}')
    assert await store.lookup("User", "username", "bob") == ["u2"]
    assert await store.lookup("User", "username", "ada") == ["u1"]
    assert await store.lookup("User", "emails.value", "b@x") == []
    assert (await store.queue_depth()).total == 0
    assert (await store.replace(user("u1", "ada", body=b"{}"))).version == 2  # keeping one's own unique key
    await store.create(Write("Group", "g1", b"{}", [], [("username", "ada")]))  # unique per resource type


async def test_unique_keys_are_found_by_lookup(store: Store) -> None:
    await store.create(Write("Group", "g1", b"{}", [("members.value", "u1")], [("displayname", "admins")]))
    assert await store.lookup("Group", "displayname", "admins") == ["g1"]
    assert await store.lookup("User", "displayname", "admins") == []


async def test_replace_moves_index_entries_and_delete_frees_them(store: Store) -> None:
    await store.create(user("u1", "ada", emails=("old@x",)))
    await store.replace(user("u1", "adele", emails=("new@x",)))
    assert await store.lookup("User", "emails.value", "old@x") == []
    assert await store.lookup("User", "emails.value", "new@x") == ["u1"]
    assert await store.lookup("User", "username", "ada") == []
    await store.create(user("u2", "ada"))  # the old unique value is free
    await store.delete("User", "u1")
    assert await store.lookup("User", "username", "adele") == [] and await store.get("User", "u1") is None
    await store.create(user("u3", "adele"))


async def test_listing_order_paging_and_scans(store: Store) -> None:
    for i in range(1200):
        await store.create(user(f"u{i:04}", f"name{i}", lane=None))
    assert await store.count("User") == 1200
    page = await store.page("User", 10, 5)
    assert [r.id for r in page] == [f"u{i:04}" for i in range(10, 15)]
    assert await store.page("User", 1199, 10) != [] and await store.page("User", 1200, 10) == []
    scanned = [r.id async for r in store.scan("User", batch=500)]
    assert scanned == [f"u{i:04}" for i in range(1200)]
    middle = page[0].seq
    assert [r.id async for r in store.scan("User", after_seq=middle)][:2] == ["u0011", "u0012"]
    many = await store.get_many("User", ["u0003", "missing", "u0001", "u0003"])
    assert [r.id for r in many] == ["u0001", "u0003"]


async def test_writes_enqueue_and_repeated_changes_coalesce(store: Store) -> None:
    await store.create(user("u1", "ada"))
    await store.replace(user("u1", "ada", body=b"{}"))
    await store.replace(user("u1", "ada", body=b"{}"))
    await store.create(user("u2", "bob", lane=None))
    depth = await store.queue_depth()
    assert depth.lanes == {REVOCATION_LANE: 0, STANDARD_LANE: 1}
    assert await drain(store) == [("u1", STANDARD_LANE)]
    assert (await store.queue_depth()).total == 0


async def test_leased_entries_still_count_as_pending(store: Store) -> None:
    await store.enqueue("User", "leaver", REVOCATION_LANE)
    await store.enqueue("User", "joiner", STANDARD_LANE)
    await store.enqueue("User", "other", STANDARD_LANE)
    claimed = await store.claim("worker", limit=2)
    assert [e.id for e in claimed] == ["leaver", "joiner"]
    assert (await store.queue_depth()).lanes == {REVOCATION_LANE: 1, STANDARD_LANE: 2}
    for entry in claimed:
        await store.ack(entry)
    assert (await store.queue_depth()).lanes == {REVOCATION_LANE: 0, STANDARD_LANE: 1}


async def test_revocations_overtake_a_backlog(store: Store) -> None:
    for i in range(1000):
        await store.enqueue("User", f"joiner{i}", STANDARD_LANE)
    await store.enqueue("User", "leaver", REVOCATION_LANE)
    first = await store.claim("worker", limit=1)
    assert [(e.id, e.lane) for e in first] == [("leaver", REVOCATION_LANE)]
    # A queued standard entry upgraded by a later revocation moves to the revocation lane.
    await store.enqueue("User", "joiner500", REVOCATION_LANE)
    assert [e.id for e in await store.claim("worker", limit=1)] == ["joiner500"]
    assert (await store.queue_depth()).lanes[STANDARD_LANE] == 999


async def test_a_queued_revocation_is_never_downgraded_and_keeps_its_place_and_correlation(store: Store) -> None:
    await store.enqueue("User", "leaver", REVOCATION_LANE, correlation="c-revoke")
    first = (await store.queue_oldest())[REVOCATION_LANE]
    await asyncio.sleep(0.02)
    await store.enqueue("User", "leaver", STANDARD_LANE)  # a later ordinary change, no correlation
    await store.enqueue("User", "leaver", REVOCATION_LANE)
    assert (await store.queue_depth()).lanes == {REVOCATION_LANE: 1, STANDARD_LANE: 0}
    [entry] = await store.claim("worker", limit=10)
    assert (entry.lane, entry.correlation) == (REVOCATION_LANE, "c-revoke")
    assert entry.enqueued == pytest.approx(first, abs=0.001)


async def test_entries_carry_their_enqueue_time_and_the_queue_its_oldest_per_lane(store: Store) -> None:
    """The sync lag starts at the entry's enqueue time, and a coalesced change keeps the oldest one:
    the lag is that of the oldest change the sync has not applied yet."""
    before = time.time()
    await store.create(user("u1", "ada"))
    await asyncio.sleep(0.05)
    await store.replace(user("u1", "ada", body=b"{}"))  # coalesces into the same entry
    await store.enqueue("User", "leaver", REVOCATION_LANE)
    after = time.time()
    oldest = await store.queue_oldest()
    assert set(oldest) == {REVOCATION_LANE, STANDARD_LANE}
    assert before - 0.01 <= oldest[STANDARD_LANE] < before + 0.04 <= after
    assert oldest[STANDARD_LANE] < oldest[REVOCATION_LANE] <= after + 0.01
    entries = {e.id: e for e in await store.claim("worker", limit=10)}
    assert entries["u1"].enqueued == pytest.approx(oldest[STANDARD_LANE], abs=0.001)
    assert entries["leaver"].enqueued == pytest.approx(oldest[REVOCATION_LANE], abs=0.001)
    assert (await store.queue_oldest()).keys() == {REVOCATION_LANE, STANDARD_LANE}  # leased: not synced yet
    for entry in entries.values():
        await store.ack(entry)
    assert await store.queue_oldest() == {}


async def test_change_during_processing_comes_back(store: Store) -> None:
    await store.create(user("u1", "ada"))
    [entry] = await store.claim("worker")
    await store.replace(user("u1", "ada", body=b"{}"))  # changed while being processed
    assert await store.claim("other") == []  # still leased
    await store.ack(entry)
    [again] = await store.claim("worker")
    assert again.id == "u1"
    await store.ack(again)
    assert await store.claim("worker") == [] and (await store.queue_depth()).total == 0


async def test_expired_leases_are_claimable_again(store: Store) -> None:
    await store.enqueue("User", "u1", STANDARD_LANE)
    [entry] = await store.claim("crashed-worker", lease_seconds=0.05)
    assert await store.claim("worker") == []
    await asyncio.sleep(0.1)
    [retaken] = await store.claim("worker")
    assert retaken.id == "u1"
    await store.ack(retaken)
    assert (await store.queue_depth()).total == 0


async def test_late_and_repeated_acks_never_bring_an_entry_back(store: Store) -> None:
    await store.enqueue("User", "u1", STANDARD_LANE)
    [slow] = await store.claim("slow-worker", lease_seconds=0.05)
    await asyncio.sleep(0.1)
    [retaken] = await store.claim("worker")  # the slow worker's lease expired
    await store.ack(slow)  # ... and it finishes after all
    await store.ack(retaken)
    await store.ack(retaken)
    assert await store.defer(retaken, 0) == 0  # deferring a finished entry does not revive it
    assert await store.claim("worker") == [] and (await store.queue_depth()).total == 0
    await store.enqueue("User", "u1", STANDARD_LANE)  # a later change is queued as usual
    assert await drain(store) == [("u1", STANDARD_LANE)]
    assert await store.claim("worker") == []


async def test_delete_enqueues_a_revocation(store: Store) -> None:
    await store.create(user("u1", "ada", lane=None))
    await store.delete("User", "u1")
    assert await drain(store) == [("u1", REVOCATION_LANE)]


async def test_key_value_space(store: Store) -> None:
    assert await store.kv_get("ns", "k") is None
    assert await store.kv_put("ns", "k", b"one")
    assert not await store.kv_put("ns", "k", b"two", only_if_absent=True)
    assert await store.kv_get("ns", "k") == b"one"
    await store.kv_put("ns", "k", b"three")
    await store.kv_put("ns", "j", b"four")
    assert await store.kv_items("ns") == [("j", b"four"), ("k", b"three")]
    assert await store.kv_delete("ns", "k") and not await store.kv_delete("ns", "k")
    assert await store.kv_items("other") == []


async def test_get_with_referrers_in_one_call(store: Store) -> None:
    await store.create(user("u1", "ada"))
    assert await store.get_with_referrers("User", "u1", "Group", "members.value") == (await store.get("User", "u1"), [])
    for group in ("g2", "g1"):
        await store.create(Write("Group", group, b"{}", [("members.value", "u1")], [("displayname", group)]))
    record, groups = await store.get_with_referrers("User", "u1", "Group", "members.value")
    assert record is not None and record.id == "u1" and groups == ["g1", "g2"]
    assert await store.get_with_referrers("User", "ghost", "Group", "members.value") == (None, [])


async def test_get_many_with_referrers_gives_each_record_its_referrers_in_creation_order(store: Store) -> None:
    for id, name in (("u1", "ada"), ("u2", "bob"), ("u3", "cy")):
        await store.create(user(id, name))
    await store.create(Write("Group", "g2", b"{}", [("members.value", "u3"), ("members.value", "u1")], []))
    await store.create(Write("Group", "g1", b"{}", [("members.value", "u3")], []))
    found = await store.get_many_with_referrers("User", ["u3", "ghost", "u2", "u1", "u3"], "Group", "members.value")
    assert [(record.id, groups) for record, groups in found] == [("u1", ["g2"]), ("u2", []), ("u3", ["g1", "g2"])]
    assert [record for record, _ in found] == await store.get_many("User", ["u1", "u2", "u3"])
    one = await store.get_many_with_referrers("User", ["u3"], "Group", "members.value")
    assert [(record.id, groups) for record, groups in one] == [("u3", ["g1", "g2"])]
    assert await store.get_many_with_referrers("User", ["ghost"], "Group", "members.value") == []
    assert await store.get_many_with_referrers("User", [], "Group", "members.value") == []


async def test_deferred_entries_wait_and_count_attempts(store: Store) -> None:
    await store.enqueue("User", "u1", STANDARD_LANE)
    [entry] = await store.claim("worker")
    assert await store.defer(entry, 0.05) == 1
    assert await store.claim("worker") == []  # not before the delay
    await asyncio.sleep(0.1)
    [again] = await store.claim("worker")
    assert await store.defer(again, 0.01) == 2
    await asyncio.sleep(0.05)
    [third] = await store.claim("worker")
    await store.ack(third)
    assert (await store.queue_depth()).total == 0


async def test_claimed_entries_carry_their_failed_attempts(store: Store) -> None:
    await store.enqueue("User", "u1", STANDARD_LANE)
    [entry] = await store.claim("worker")
    assert entry.attempts == 0
    await store.defer(entry, 0)
    [again] = await store.claim("worker")
    assert again.attempts == 1


async def test_claiming_one_lane_only(store: Store) -> None:
    await store.enqueue("User", "joiner", STANDARD_LANE)
    await store.enqueue("User", "leaver", REVOCATION_LANE)
    assert [e.id for e in await store.claim("revoker", lanes=[REVOCATION_LANE])] == ["leaver"]
    assert await store.claim("revoker", lanes=[REVOCATION_LANE]) == []
    assert [e.id for e in await store.claim("worker")] == ["joiner"]


async def test_a_lease_keeps_workers_off_one_resource_until_it_is_acked(store: Store) -> None:
    lease = await store.lease("User", "u1", "provision", 30)
    assert lease is not None
    assert await store.claim("worker") == []  # created leased: no worker takes it meanwhile
    await store.ack(lease)
    assert (await store.queue_depth()).total == 0


async def test_a_lease_waits_for_the_worker_that_holds_the_entry(store: Store) -> None:
    await store.enqueue("User", "u1", STANDARD_LANE)
    [entry] = await store.claim("worker")
    assert await store.lease("User", "u1", "provision", 30) is None
    await store.ack(entry)
    lease = await store.lease("User", "u1", "provision", 30)
    assert lease is not None
    assert await store.lease("User", "u1", "provision", 30) is not None  # the holder may ask again


async def test_a_queued_entry_leased_and_changed_meanwhile_comes_back_to_the_workers(store: Store) -> None:
    await store.enqueue("User", "u1", STANDARD_LANE)
    lease = await store.lease("User", "u1", "provision", 30)
    assert lease is not None and await store.claim("worker") == []
    await store.enqueue("User", "u1", STANDARD_LANE)  # a SCIM write during the provision
    await store.ack(lease)
    [again] = await store.claim("worker")
    assert again.id == "u1"


async def test_a_deferred_entry_can_be_leased_at_once(store: Store) -> None:
    await store.enqueue("User", "u1", STANDARD_LANE)
    [entry] = await store.claim("worker")
    await store.defer(entry, 300)  # waiting out its backoff: nobody works on it
    lease = await store.lease("User", "u1", "provision", 30)
    assert lease is not None
    await store.ack(lease)
    assert (await store.queue_depth()).total == 0


async def test_a_released_entry_is_claimable_at_once_by_another_worker(store: Store) -> None:
    await store.enqueue("User", "u1", STANDARD_LANE)
    [entry] = await store.claim("stopping", lease_seconds=300)
    assert await store.claim("other") == []  # leased: nobody else takes it
    assert await store.release(entry, "stopping") is True
    [again] = await store.claim("other", lease_seconds=300)
    assert (again.id, again.attempts) == ("u1", 0)  # handing back is not a failed attempt
    assert await store.release(entry, "stopping") is False  # a late release never takes it from "other"
    assert await store.claim("third") == []
    await store.ack(again)
    assert (await store.queue_depth()).total == 0


async def test_a_deferred_or_acked_entry_is_not_released(store: Store) -> None:
    await store.enqueue("User", "u1", STANDARD_LANE)
    [entry] = await store.claim("worker")
    await store.defer(entry, 300)  # its backoff stands: a stopping worker does not cut it short
    assert await store.release(entry, "worker") is False
    assert await store.claim("other") == []
    await store.enqueue("User", "u2", STANDARD_LANE)
    [done] = await store.claim("worker")
    await store.ack(done)
    assert await store.release(done, "worker") is False
    assert (await store.queue_depth()).total == 1


# Redis only ------------------------------------------------------------------------------------
@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A second throwaway redis-server this test may stop and restart."""
    server: RedisServer | None = None
    try:
        server = RedisServer().start()
    except RuntimeError as error:
        problem = str(error)
    if server is None:
        pytest.fail(problem, pytrace=False)
    try:
        yield server
    finally:
        server.stop()


async def test_redis_restarted_while_idle_answers_at_once(own_redis: RedisServer) -> None:
    store = RedisStore(own_redis.url)
    await store.open()
    try:
        await asyncio.gather(*(store.get("User", f"u{i}") for i in range(4)))  # several pooled connections
        own_redis.stop()
        own_redis.start()  # nobody called the store meanwhile: its pooled connections are dead
        await store.create(user("u1", "ada"))
        assert [r.id for r in await asyncio.gather(*(store.get("User", "u1") for _ in range(4)))] == ["u1"] * 4
        assert [e.id for e in await store.claim("worker")] == ["u1"]
    finally:
        await store.close()


class ReplyDropper:
    """A TCP proxy in front of Redis that can lose one reply: the command ran, the caller never heard."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.drop_next_reply = False
        self.writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> ReplyDropper:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()

    async def _connection(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self.target)
        self.writers += [client_writer, server_writer]

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, replies: bool) -> None:
            try:
                while data := await reader.read(65536):
                    if replies and self.drop_next_reply:
                        self.drop_next_reply = False
                        return
                    writer.write(data)
                    await writer.drain()
            except OSError:
                pass
            finally:
                client_writer.close()
                server_writer.close()

        await asyncio.gather(pump(client_reader, server_writer, False), pump(server_reader, client_writer, True))


@pytest.fixture
async def proxied_redis(redis_url: str) -> AsyncIterator[tuple[ReplyDropper, str]]:
    with redis.Redis.from_url(redis_url) as admin:
        admin.flushdb()
    parts = urlsplit(redis_url)
    userinfo = parts.netloc.rpartition("@")[0]
    async with ReplyDropper(parts.hostname or "127.0.0.1", parts.port or 6379) as proxy:
        netloc = f"{userinfo}@127.0.0.1:{proxy.port}" if userinfo else f"127.0.0.1:{proxy.port}"
        yield proxy, parts._replace(netloc=netloc).geturl()


async def test_a_write_whose_reply_was_lost_is_applied_once(proxied_redis: tuple[ReplyDropper, str]) -> None:
    proxy, url = proxied_redis
    store = RedisStore(url)
    await store.open()
    try:
        await store.create(user("u1", "ada"))
        proxy.drop_next_reply = True  # the replace runs, then the connection drops before its reply
        replaced = await store.replace(user("u1", "ada", body=b'{"v":2}'), expected_version=1)
        assert not proxy.drop_next_reply  # the reply really was lost (and the call re-sent)
        assert replaced.version == 2 and (await store.get("User", "u1")).version == 2  # type: ignore[union-attr]
        proxy.drop_next_reply = True
        await store.create(user("u2", "bob"))  # re-sent, not "id already exists"
        assert await store.count("User") == 2
        [entry] = await store.claim("worker", limit=1)
        proxy.drop_next_reply = True
        assert [e.id for e in await store.claim("worker")] == ["u2"]  # a re-sent claim leases nothing twice
        assert (await store.queue_depth()).lanes == {REVOCATION_LANE: 0, STANDARD_LANE: 2}
    finally:
        await store.close()

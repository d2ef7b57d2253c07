"""One storage contract, run against every backend (the `store` fixture: sqlite and redis)."""

from __future__ import annotations

import asyncio

import pytest

from scim_bridge.store import (
    REVOCATION_LANE,
    STANDARD_LANE,
    NotFound,
    Store,
    UniqueViolation,
    VersionMismatch,
    Write,
)


def user(id: str, name: str, *, lane: str | None = STANDARD_LANE, body: bytes | None = None,
         emails: tuple[str, ...] = ()) -> Write:
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
    await store.create(user("u2", "bob"))
    with pytest.raises(UniqueViolation):
        await store.replace(user("u2", "ada"))
    assert await store.lookup("User", "username", "bob") == ["u2"]
    await store.replace(user("u1", "ada", body=b"{}"))  # keeping one's own unique key is fine


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

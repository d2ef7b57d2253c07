"""The audit-log part of the storage contract, on both backends (the `store` fixture)."""

from __future__ import annotations

import asyncio
import time

import pytest

from scim_bridge.store import GENESIS_HASH, STANDARD_LANE, AuditEntry, Store, UniqueViolation, Write, chain_hash


def user(id: str, name: str, audit: bytes | None = None, correlation: str | None = None) -> Write:
    return Write(
        "User",
        id,
        f'{{"id":"{id}","userName":"{name}"}}'.encode(),
        [("username", name)],
        [("username", name)],
        STANDARD_LANE,
        audit=audit,
        correlation=correlation,
    )


async def everything(store: Store) -> list[AuditEntry]:
    await store.audit_seal()
    return await store.audit_read(limit=100_000)


def assert_chained(entries: list[AuditEntry], prev: str = GENESIS_HASH, first_seq: int = 1) -> None:
    for offset, entry in enumerate(entries):
        assert entry.seq == first_seq + offset
        assert entry.hash == chain_hash(prev, entry.seq, entry.time_us, entry.body)
        prev = entry.hash
    times = [entry.time_us for entry in entries]
    assert times == sorted(times)  # never decreasing along the chain


async def test_append_assigns_seq_time_and_chain(store: Store) -> None:
    head = await store.audit_head()
    assert (head.last_seq, head.last_hash, head.anchor_seq, head.anchor_hash) == (0, GENESIS_HASH, 0, GENESIS_HASH)
    before = time.time()
    await store.audit_append([b'{"n":1}', b'{"n":2}'])
    await store.audit_append([b'{"n":3}'])
    entries = await everything(store)
    assert [e.body for e in entries] == [b'{"n":1}', b'{"n":2}', b'{"n":3}']
    assert_chained(entries)
    assert before - 1 <= entries[0].time_us / 1e6 <= time.time() + 1
    head = await store.audit_head()
    assert (head.last_seq, head.last_hash, head.pending) == (3, entries[-1].hash, 0)
    assert await store.audit_seal() == 0  # nothing left to chain


async def test_entry_of_a_write_is_atomic_with_it(store: Store) -> None:
    await store.create(user("u1", "ada", audit=b'{"op":"create"}'))
    await store.replace(user("u1", "ada", audit=b'{"op":"replace"}'), expected_version=1)
    with pytest.raises(UniqueViolation):  # a refused write leaves no entry
        await store.create(user("u2", "ada", audit=b'{"op":"refused"}'))
    await store.delete("User", "u1", audit=b'{"op":"delete"}')
    await store.create(user("u3", "bob"))  # no entry asked for
    entries = await everything(store)
    assert [e.body for e in entries] == [b'{"op":"create"}', b'{"op":"replace"}', b'{"op":"delete"}']
    assert_chained(entries)


async def test_refused_writes_among_concurrent_ones_leave_nothing(store: Store) -> None:
    # Sent at once, so that SQLite's writer commits them in batches: a refused write in a batch
    # takes its entry with it, the others keep theirs, in one unbroken chain.
    writes = [user(f"u{i}", "ada" if i % 3 == 0 else f"n{i}", audit=f"create {i}".encode()) for i in range(12)]
    results = await asyncio.gather(*(store.create(w) for w in writes), return_exceptions=True)
    assert sum(isinstance(r, UniqueViolation) for r in results) == 3  # four want "ada": one wins
    applied = [w.audit for w, r in zip(writes, results, strict=True) if not isinstance(r, BaseException)]
    for write, result in zip(writes, results, strict=True):  # a refused create leaves nothing behind
        assert (await store.get("User", write.id) is None) == isinstance(result, UniqueViolation)
    assert len(await store.lookup("User", "username", "ada")) == 1
    assert await store.count("User") == 9
    entries = await everything(store)
    assert sorted(e.body for e in entries) == sorted(applied)
    assert_chained(entries)


async def test_queue_entries_carry_the_latest_correlation(store: Store) -> None:
    await store.create(user("u1", "ada", correlation="req-1"))
    await store.replace(user("u1", "ada", correlation="req-2"))  # coalesced: the latest request wins
    await store.create(user("u2", "bob"))
    claimed = {entry.id: entry for entry in await store.claim("w", limit=10)}
    assert claimed["u1"].correlation == "req-2" and claimed["u2"].correlation is None
    for entry in claimed.values():
        await store.ack(entry)
    await store.enqueue("User", "u1", STANDARD_LANE, "replay-1")
    await store.delete("User", "u2", correlation="req-3")
    claimed = {entry.id: entry for entry in await store.claim("w", limit=10)}
    assert claimed["u1"].correlation == "replay-1" and claimed["u2"].correlation == "req-3"


async def test_read_by_seq_and_by_time(store: Store) -> None:
    await store.audit_append([b"a1", b"a2", b"a3"])
    await store.audit_seal()
    await asyncio.sleep(0.02)
    await store.audit_append([b"b1", b"b2"])
    entries = await everything(store)
    second = entries[3].time_us / 1e6
    assert [e.body for e in await store.audit_read(after_seq=1, limit=2)] == [b"a2", b"a3"]
    assert [e.body for e in await store.audit_read(since=second)] == [b"b1", b"b2"]
    assert [e.body for e in await store.audit_read(until=second)] == [b"a1", b"a2", b"a3"]
    assert [e.body for e in await store.audit_read(after_seq=4, since=second)] == [b"b2"]
    assert await store.audit_read(since=time.time() + 60) == []


async def test_prune_drops_a_prefix_and_keeps_an_anchor(store: Store) -> None:
    await store.audit_append([b"old1", b"old2"])
    await store.audit_seal()
    await asyncio.sleep(0.02)
    await store.audit_append([b"new1", b"new2"])
    entries = await everything(store)
    cutoff = entries[2].time_us / 1e6
    assert await store.audit_prune(cutoff) == 2
    head = await store.audit_head()
    assert (head.anchor_seq, head.anchor_hash, head.last_seq) == (2, entries[1].hash, 4)
    kept = await store.audit_read()
    assert [e.body for e in kept] == [b"new1", b"new2"]
    assert_chained(kept, prev=head.anchor_hash, first_seq=3)
    assert await store.audit_prune(cutoff) == 0
    await store.audit_append([b"later"])
    assert_chained(await everything(store), prev=head.anchor_hash, first_seq=3)


async def test_concurrent_appends_and_seals_make_one_chain(store: Store) -> None:
    async def writer(n: int) -> None:
        for i in range(20):
            await store.audit_append([f"{n}-{i}".encode()])
            if i % 5 == 0:
                await store.audit_seal()

    await asyncio.gather(*(writer(n) for n in range(5)))
    entries = await everything(store)
    assert len(entries) == 100 and len({e.body for e in entries}) == 100
    assert_chained(entries)

"""The lease race, on both stores: a worker whose lease expired finishes late and acks (or defers);
meanwhile a second worker leased the entry. Without fencing, the late ack dropped the entry from
under the second worker (its retry was then lost) or released its lease (a third worker took the
entry while the second still worked on it). Every lease now carries a token greater than any
before, and an ack or defer from an older lease is refused."""

from __future__ import annotations

import asyncio

from scim_bridge.store import STANDARD_LANE, QueueEntry, Store

LEASE = 0.05  # seconds: expired by the time the slow worker finishes


async def _expired_then_retaken(store: Store) -> tuple[QueueEntry, QueueEntry]:
    await store.enqueue("User", "u1", STANDARD_LANE)
    [slow] = await store.claim("slow-worker", lease_seconds=LEASE)
    await asyncio.sleep(LEASE * 2)
    [second] = await store.claim("second-worker", lease_seconds=300)
    assert second.id == "u1"
    return slow, second


async def test_a_late_ack_is_refused_and_the_second_workers_retry_is_not_lost(store: Store) -> None:
    slow, second = await _expired_then_retaken(store)
    refused = await store.ack(slow)
    assert await store.claim("third-worker") == []  # the second worker still holds it
    # The second worker's target call fails: its retry must survive the first worker's late ack.
    assert await store.defer(second, 0.05) == 1
    await asyncio.sleep(0.1)
    [retry] = await store.claim("second-worker")
    assert (retry.id, retry.attempts) == ("u1", 1)
    assert await store.ack(retry) is True
    assert refused is False  # and the late ack said so
    assert (await store.queue_depth()).total == 0


async def test_a_late_ack_does_not_release_a_newer_lease_on_a_changed_resource(store: Store) -> None:
    await store.enqueue("User", "u1", STANDARD_LANE)
    [slow] = await store.claim("slow-worker", lease_seconds=LEASE)
    await store.enqueue("User", "u1", STANDARD_LANE)  # changed while the slow worker processed it
    await asyncio.sleep(LEASE * 2)
    [second] = await store.claim("second-worker", lease_seconds=300)
    refused = await store.ack(slow)
    assert await store.claim("third-worker") == []  # not handed to a third worker meanwhile
    assert await store.ack(second) is True and refused is False
    assert (await store.queue_depth()).total == 0


async def test_a_late_defer_is_refused_and_leaves_the_newer_lease_alone(store: Store) -> None:
    slow, second = await _expired_then_retaken(store)
    assert await store.defer(slow, 0) == 0  # refused: nothing counted
    assert await store.claim("third-worker") == []
    assert await store.release(slow, "slow-worker") is False
    assert await store.ack(second) is True
    assert (await store.queue_depth()).total == 0


async def test_a_late_ack_after_the_entry_was_requeued_leaves_the_new_change(store: Store) -> None:
    slow, second = await _expired_then_retaken(store)
    assert await store.ack(second) is True
    await store.enqueue("User", "u1", STANDARD_LANE)  # a new change, not synced by anyone yet
    assert await store.ack(slow) is False  # the old lease cannot drop it
    [entry] = await store.claim("worker")
    assert entry.id == "u1"


async def test_an_expired_lease_nobody_took_over_may_still_ack(store: Store) -> None:
    await store.enqueue("User", "u1", STANDARD_LANE)
    [slow] = await store.claim("slow-worker", lease_seconds=LEASE)
    await asyncio.sleep(LEASE * 2)
    assert await store.ack(slow) is True  # no newer lease: its work counts
    assert await store.claim("worker") == [] and (await store.queue_depth()).total == 0


async def test_a_provision_lease_is_fenced_like_a_claim(store: Store) -> None:
    await store.enqueue("User", "u1", STANDARD_LANE)
    [slow] = await store.claim("slow-worker", lease_seconds=LEASE)
    await asyncio.sleep(LEASE * 2)
    lease = await store.lease("User", "u1", "provision", 30)
    assert lease is not None
    assert await store.ack(slow) is False
    assert await store.claim("worker") == []  # the provision still holds it
    assert await store.ack(lease) is True
    assert (await store.queue_depth()).total == 0


async def test_a_renewed_lease_is_not_claimed_by_another_worker(store: Store) -> None:
    await store.enqueue("User", "u1", STANDARD_LANE)
    [held] = await store.claim("slow-worker", lease_seconds=1.0)
    for _ in range(3):  # a heartbeat: each renewal before the lease runs out, past the first lease
        await asyncio.sleep(0.5)
        assert await store.renew(held, "slow-worker", 1.0) is True
        assert await store.claim("second-worker") == []
    assert await store.ack(held) is True  # the same lease throughout: its ack counts
    assert (await store.queue_depth()).total == 0


async def test_a_renewal_after_a_takeover_is_refused_and_changes_nothing(store: Store) -> None:
    slow, second = await _expired_then_retaken(store)
    assert await store.renew(slow, "slow-worker", 300) is False
    assert await store.ack(slow) is False  # still fenced out
    assert await store.ack(second) is True
    assert (await store.queue_depth()).total == 0


async def test_a_renewal_after_an_ack_or_a_defer_is_refused(store: Store) -> None:
    await store.enqueue("User", "u1", STANDARD_LANE)
    await store.enqueue("User", "u2", STANDARD_LANE)
    acked, deferred = sorted(await store.claim("worker", lease_seconds=300), key=lambda e: e.id)
    assert await store.ack(acked) is True
    assert await store.renew(acked, "worker", 300) is False
    assert await store.defer(deferred, 0.05) == 1
    assert await store.renew(deferred, "worker", 300) is False  # its backoff is nobody's lease
    await asyncio.sleep(0.1)
    [retry] = await store.claim("worker")  # the backoff was not stretched by the refused renewal
    assert retry.id == "u2"


async def test_only_the_holder_renews(store: Store) -> None:
    await store.enqueue("User", "u1", STANDARD_LANE)
    [held] = await store.claim("worker", lease_seconds=LEASE)
    assert await store.renew(held, "another-worker", 300) is False
    await asyncio.sleep(LEASE * 2)
    [retaken] = await store.claim("another-worker")  # the holder's lease ran out as claimed
    assert retaken.id == "u1"

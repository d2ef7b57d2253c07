"""The sync worker: claims "resource changed" entries (revocation lane first), runs the engine,
acknowledges; retries with exponential backoff and jitter; dead-letters after N attempts.

A crash between a target call and the acknowledgement leaves the entry leased; when the lease
expires another worker (or this one after a restart) claims it again, and the level-triggered
engine converges without duplicating anything. A worker asked to stop claims nothing more, gives
the entries in flight `stop_seconds` to finish, then cancels the rest and hands them back
(store.release): another replica takes them at once instead of after the lease.

A sync that runs longer than its lease keeps it: the lease is renewed every third of its length
while the sync runs (lease_keeper.py), so another worker does not take the entry meanwhile.

Fencing: an entry whose lease still ran out (this worker hung or lost the store for longer than a
lease) may meanwhile have been claimed by another worker. The next renewal is refused and the sync
stopped; an ack or defer sent anyway is refused too (each lease has its own token), so the late
finisher cannot drop or release the newer holder's work; it logs and lets the holder finish.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from .. import metrics
from ..audit.context import CORRELATION_ID, SYNC_SUBJECT, new_correlation_id
from ..store import LANES, REVOCATION_LANE, QueueEntry, Store, StoreUnavailable
from ..targets.base import PermanentError, RetryableError, Throttled
from ..targets.http import PRIORITY
from .approvals import APPROVAL_ENTRY
from .engine import SyncEngine
from .idmap import IdMap
from .lease_keeper import keep_leased

log = logging.getLogger("scim_bridge.sync")


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int = 8  # entries processed at once by one worker
    lease_seconds: float = 120.0  # a crashed worker's entries come back after this
    max_attempts: int = 10  # then the entry becomes a dead letter (scim-bridge replay requeues it)
    base_delay: float = 1.0
    max_delay: float = 300.0
    idle_poll: float = 0.2  # seconds between claims when the queue is empty
    stop_seconds: float = 20.0  # on stop, in-flight entries get this long, then are handed back


class SyncWorker:
    def __init__(
        self, store: Store, engine: SyncEngine, options: WorkerOptions | None = None, lanes: Sequence[str] = LANES
    ) -> None:
        self.store = store
        self.engine = engine
        self.options = options or WorkerOptions()
        self.lanes = tuple(lanes)
        self.idmap = IdMap(store)
        self.consumer = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self._random = random.Random()

    async def run(self, stop: asyncio.Event) -> None:
        semaphore = asyncio.Semaphore(self.options.concurrency)
        running: dict[asyncio.Task[None], QueueEntry] = {}
        # Revocations wake the worker when this process queues one (store/queue_bell.py); joiners
        # wait for the poll, so a Bulk of a thousand does not cost a thousand claims.
        bell, urgent = self.store.queue_bell, [lane for lane in self.lanes if lane == REVOCATION_LANE]
        while not stop.is_set():
            free = self.options.concurrency - len(running)
            ticket = bell.ticket(urgent)  # before the claim: a revocation queued in between still wakes us
            try:
                entries = (
                    await self.store.claim(
                        self.consumer, limit=free, lease_seconds=self.options.lease_seconds, lanes=self.lanes
                    )
                    if free > 0
                    else []
                )
            except StoreUnavailable:
                await _sleep_or_stop(stop, 1.0)
                continue
            for entry in entries:
                task = asyncio.create_task(self._guarded(semaphore, entry))
                running[task] = entry
                task.add_done_callback(running.pop)
            if not entries:
                poll = self.options.idle_poll if not running else 0.02
                if urgent and free > 0:  # the poll still finds other replicas' entries and expired leases
                    await _ring_or_stop(stop, bell.wait(urgent, ticket, poll))
                else:
                    await _sleep_or_stop(stop, poll)
        if running:
            await self._finish(running)

    async def _finish(self, running: dict[asyncio.Task[None], QueueEntry]) -> None:
        """Stopping: in-flight entries get `stop_seconds`; the rest are cancelled and handed back.
        A cancelled sync may have made some of its target calls: the engine is level-triggered, so
        whoever claims the entry next converges without duplicating them."""
        _, late = await asyncio.wait(set(running), timeout=self.options.stop_seconds)
        unfinished = [running[task] for task in late]
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        released = 0
        for entry in unfinished:
            try:
                released += await self.store.release(entry, self.consumer)
            except StoreUnavailable:  # its lease expires as after a crash
                pass
        if unfinished:
            log.warning(
                "sync: stopped with %d entr%s unfinished; %d handed back for another worker",
                len(unfinished),
                "y" if len(unfinished) == 1 else "ies",
                released,
            )

    async def drain(self, timeout: float = 30.0) -> None:
        """Process until the queue is empty (tests, `scim-bridge plan --apply`-style one-shots)."""
        stop = asyncio.Event()
        task = asyncio.create_task(self.run(stop))
        try:
            async with asyncio.timeout(timeout):
                while (await self.store.queue_depth()).total:
                    await asyncio.sleep(0.05)
        finally:
            stop.set()
            await task

    async def _guarded(self, semaphore: asyncio.Semaphore, entry: QueueEntry) -> None:
        async with semaphore:
            await self.process(entry)

    async def process(self, entry: QueueEntry) -> None:
        PRIORITY.set(entry.lane == REVOCATION_LANE)  # each entry runs in its own task and context
        # Target calls carry the id of the SCIM request behind the latest change (audit trail).
        CORRELATION_ID.set(entry.correlation or new_correlation_id())
        SYNC_SUBJECT.set((entry.resource_type, entry.id))
        if entry.enqueued is not None:  # the sync lag's start (passlog.py observes it per target)
            metrics.SYNCING.set(metrics.Syncing(entry.enqueued, entry.lane, entry.attempts > 0))
        try:
            if not await keep_leased(self.store, entry, self.consumer, self.options.lease_seconds, self._sync(entry)):
                return  # another worker holds the entry now: its sync, not ours, is acked
            if not await self.store.ack(entry):
                _taken_over(entry, "ack")
        except RetryableError as error:
            await self._retry(entry, error, error.retry_after if isinstance(error, Throttled) else None)
        except PermanentError as error:
            log.warning("sync of %s %s failed permanently: %s", entry.resource_type, entry.id, error)
            await self._give_up(entry, str(error), attempts=1)
        except StoreUnavailable:
            pass  # the lease expires and the entry is claimed again once the store is back
        except Exception as error:  # a bug must not stop the worker; the entry is retried, then parked
            log.exception("sync of %s %s crashed", entry.resource_type, entry.id)
            await self._retry(entry, error, None)

    async def _sync(self, entry: QueueEntry) -> None:
        if entry.resource_type == "User":
            await self.engine.sync_user(entry.id)
        elif entry.resource_type == "Group":
            await self.engine.sync_group(entry.id)
        elif entry.resource_type == "Access":
            await self.engine.sync_access()
        elif entry.resource_type == APPROVAL_ENTRY:
            await self.engine.approvals.route(entry.id)

    async def _retry(self, entry: QueueEntry, error: Exception, retry_after: float | None) -> None:
        attempts = entry.attempts + 1
        try:
            if attempts >= self.options.max_attempts:
                await self._give_up(entry, str(error), attempts)
                return
            metrics.SYNC_RETRIES.labels(entry.lane).inc()
            delay = min(self.options.max_delay, self.options.base_delay * 2 ** (attempts - 1))
            delay *= 0.5 + self._random.random()  # jitter, so retries of a storm do not arrive together
            if retry_after is not None:
                delay = max(delay, retry_after)
            if not await self.store.defer(entry, delay):
                _taken_over(entry, "retry")
        except StoreUnavailable:
            pass

    async def _give_up(self, entry: QueueEntry, error: str, attempts: int) -> None:
        # The engine already recorded, per target, which one failed and why.
        await self.idmap.dead_letter(entry.resource_type, entry.id, error, attempts)
        await self.store.ack(entry)
        metrics.SYNC_DEAD_LETTERED.labels(entry.lane).inc()


def _taken_over(entry: QueueEntry, what: str) -> None:
    log.info(
        "sync of %s %s outlived its lease and another worker holds the entry now; its %s was refused",
        entry.resource_type,
        entry.id,
        what,
    )


async def _ring_or_stop(stop: asyncio.Event, ring: Coroutine[Any, Any, bool]) -> None:
    """Until `ring` returns (the bell, or its timeout) or `stop` is set."""
    waiting = asyncio.ensure_future(ring)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait((waiting, stopping), return_when=asyncio.FIRST_COMPLETED)
    for task in (waiting, stopping):
        task.cancel()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass

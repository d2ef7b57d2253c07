"""Concurrent writes to one resource: all of them apply, unless the client asked otherwise.

A PATCH, PUT or DELETE reads the resource, computes the new document and writes it with the
version it read (optimistic concurrency, store/base.py). When two requests race, the store
refuses the second write with VersionMismatch. RFC 7644 §3.14 allows 412 only for a
precondition the client sent (`If-Match`); a client that sent none asked for its change to be
applied to whatever the resource is now, and Entra does send the membership PATCHes of one
group in parallel (research/scim-clients.md §2.6). So:

* within one bridge process, writes to one resource wait for each other (`ResourceLocks`): the
  read-modify-write of each sees the previous one's result, and no attempt is wasted;
* across replicas (Redis), a conflicting write re-reads and re-applies (`attempts`), a bounded
  number of times with a small jittered backoff, and only then answers 412;
* with `If-Match`, the first conflict is the client's 412, exactly as before.

The lock wait is bounded too (`LOCK_WAIT`): when the store hangs, requests behind the lock must
not queue for minutes; past the bound they go ahead unlocked and rely on the retry.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress

#: Attempts of a read-modify-write that meets a version conflict (cross-replica races only:
#: in-process writers are serialised, so two replicas rarely collide more than a few times).
MAX_ATTEMPTS = 12
#: First backoff ceiling in seconds; doubles per attempt, capped at BACKOFF_CAP.
BACKOFF_BASE = 0.002
BACKOFF_CAP = 0.1
#: How long a request waits for another in-process write to the same resource to finish.
LOCK_WAIT = 10.0


def attempts() -> Iterator[int]:
    """Attempt numbers 0 .. MAX_ATTEMPTS-1."""
    return iter(range(MAX_ATTEMPTS))


async def backoff(attempt: int) -> None:
    """Full jitter: replicas that collided once should not collide again in lockstep."""
    await asyncio.sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))


class ResourceLocks:
    """One asyncio lock per resource being written, dropped when nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, resource_type: str, id: str) -> AsyncIterator[None]:
        key = (resource_type, id)
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        acquired = False
        try:
            with suppress(TimeoutError):
                async with asyncio.timeout(LOCK_WAIT):
                    await lock.acquire()
                    acquired = True
            yield
        finally:
            if acquired:
                lock.release()
            held, remaining = self._locks[key]
            if remaining <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (held, remaining - 1)

    def __len__(self) -> int:
        return len(self._locks)

"""A bell the store rings in its own process when it queues an entry, so an idle worker claims it
at once instead of at its next poll.

It only hears this process's writes: a change made through another replica (Redis) is found by the
worker's poll, as before. It carries no entry and promises nothing; the queue in the store stays the
truth, so a ring lost or heard twice costs one poll or one empty claim. It does not wake a worker
for lanes it does not claim (the revocation worker sleeps through a backlog of joiners).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence


class QueueBell:
    def __init__(self) -> None:
        self._rings: dict[str, int] = {}
        self._waiting: dict[asyncio.Event, frozenset[str]] = {}

    def ticket(self, lanes: Sequence[str]) -> int:
        """Take before claiming: a wait with it returns at once if a ring came in between."""
        return sum(self._rings.get(lane, 0) for lane in lanes)

    def ring(self, lane: str | None) -> None:
        """An entry was queued in `lane` (None: the write queued nothing)."""
        if lane is None:
            return
        self._rings[lane] = self._rings.get(lane, 0) + 1
        for event, lanes in self._waiting.items():
            if lane in lanes:
                event.set()

    async def wait(self, lanes: Sequence[str], ticket: int, timeout: float) -> bool:
        """Until a ring for one of `lanes` after `ticket`, or `timeout` seconds: True when rung."""
        if self.ticket(lanes) != ticket:
            return True
        event = asyncio.Event()  # one per wait: the bell outlives event loops (tests open a store per loop)
        self._waiting[event] = frozenset(lanes)
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
            return True
        except TimeoutError:
            return False
        finally:
            del self._waiting[event]

"""The Overview's charts: a ring buffer of samples, one every INTERVAL seconds for the last HOURS.

Kept in memory, per process, on purpose: every value sampled is shared state read from the store
(queue depth and its oldest entry, the audit trail's length), so each replica samples the same
numbers and any replica can draw the charts; keeping the buffer in the store would cost every
replica a write every 30 s for a picture. A restart starts the charts afresh — the long history
is Prometheus's (/metrics and the Grafana dashboard under deploy/).

Sampling never verifies the audit chain (a walk of the whole trail): the Overview shows the last
verification anyone ran (audit/verification.py), and its button runs one now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from ...audit.verification import last_verification, verify_and_record
from ...store import Store, StoreUnavailable

log = logging.getLogger("scim_bridge.console")

INTERVAL = 30.0
HOURS = 6


@dataclass(frozen=True)
class Sample:
    time: float
    queue: int  # entries in the sync queue, all lanes
    lag: float  # age of the oldest entry not synced yet (0: the queue is empty)
    per_minute: float  # audit entries per minute since the previous sample (SCIM writes and target calls)
    audit_seq: int


class History:
    def __init__(self, store: Store, interval: float = INTERVAL, hours: float = HOURS) -> None:
        self.store = store
        self.interval = interval
        self.samples: deque[Sample] = deque(maxlen=int(hours * 3600 / interval))
        self._task: asyncio.Task[None] | None = None

    async def sample(self) -> Sample:
        depth, oldest, head = (
            await self.store.queue_depth(),
            await self.store.queue_oldest(),
            await self.store.audit_head(),
        )
        now = time.time()
        previous = self.samples[-1] if self.samples else None
        rate = 0.0
        if previous is not None and now > previous.time:
            rate = max(0, head.last_seq - previous.audit_seq) * 60.0 / (now - previous.time)
        found = Sample(now, depth.total, max((now - t for t in oldest.values()), default=0.0), rate, head.last_seq)
        self.samples.append(found)
        return found

    async def verify(self) -> None:
        """The Overview's "Verify now"."""
        await verify_and_record(self.store)

    async def last_verification(self) -> dict[str, Any] | None:
        return await last_verification(self.store)

    async def _run(self) -> None:
        while True:
            try:
                await self.sample()
            except StoreUnavailable:
                pass  # a gap in the charts; the Overview says the store is down
            except Exception:  # a picture must never take the process down
                log.exception("console: sampling failed")
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

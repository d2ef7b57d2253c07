"""Keep a claimed entry's lease while its sync runs (a heartbeat).

A lease says how long a crashed worker's entry stays away from the others; a sync can take longer
than that without anything being wrong (a slow target, 429 waits inside the HTTP client, a long
membership convergence). Without renewal another worker, in this replica or another, claims the
entry when the lease runs out and syncs the same resource at the same time: two creates of one
account may both go out before either is recorded. The keeper renews the lease every third of its
length (store.renew, same fencing token), so only a worker that stopped renewing (dead, hung, cut
off from the store) gives its entry up.

When a renewal is refused, the lease is already someone else's (or back in its lane): the sync is
cancelled, so the two do not run side by side, and its ack is not sent (fencing would refuse it
anyway). The level-triggered engine lets whoever holds the entry converge from where this one
stopped. A store that does not answer is not a refusal: the next beat tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from ..store import QueueEntry, Store, StoreUnavailable

log = logging.getLogger("scim_bridge.sync")


async def keep_leased(
    store: Store, entry: QueueEntry, consumer: str, lease_seconds: float, work: Coroutine[Any, Any, None]
) -> bool:
    """Run `work` while renewing `entry`'s lease; False when the lease was lost and `work` stopped.
    Whatever `work` raises is raised here."""
    sync = asyncio.ensure_future(work)  # a task of its own, so a lost lease can stop it alone
    lost = False

    async def heartbeat() -> None:
        nonlocal lost
        while True:
            await asyncio.sleep(lease_seconds / 3)
            try:
                if await store.renew(entry, consumer, lease_seconds):
                    continue
            except StoreUnavailable:
                continue
            lost = True
            log.warning(
                "sync of %s %s: its lease was lost (another worker holds the entry now); stopped",
                entry.resource_type,
                entry.id,
            )
            sync.cancel()
            return

    beat = asyncio.create_task(heartbeat())
    try:
        await sync
        return True
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if lost and current is not None and not current.cancelling():
            return False  # stopped by the heartbeat, not by whoever runs this worker
        raise
    finally:
        beat.cancel()
        await asyncio.gather(beat, return_exceptions=True)  # a renewal in flight is dropped, not left running

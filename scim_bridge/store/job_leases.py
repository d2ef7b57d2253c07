"""Jobs that must run once per deployment, not once per replica: the scheduled reconcile, the
expiry sweep, the iconik regrant pass, last-login polling and audit chaining. Each holds a named
lease in the store (Store.job_lease); one process keeps renewing the leases it holds, and asks
for the free ones, every `ttl / 3` seconds. A replica that dies stops renewing, and another one
takes its jobs over within `ttl` seconds.

A job asks `holds(name)` before each run. That answer is local and cheap: this process holds the
lease until `ttl * SAFE_PART` seconds after the request that renewed it was *sent* (the store
counts from when it received it, later), so a replica whose store calls stall stops running the
jobs before another replica may have taken them. A run already under way when the lease is lost
(the store unreachable for `ttl` seconds) finishes: the jobs are level-triggered or idempotent
(queueing a coalesced entry, chaining by compare-and-append), so an overlap costs work, not harm.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable

from .base import Store, StoreUnavailable

log = logging.getLogger("scim_bridge.store")

RECONCILE = "reconcile"
EXPIRY_SWEEP = "expiry-sweep"
REGRANT = "regrant"
LAST_LOGIN = "last-login"
AUDIT_CHAIN = "audit-chain"
JOBS = (RECONCILE, EXPIRY_SWEEP, REGRANT, LAST_LOGIN, AUDIT_CHAIN)

#: Seconds a holder that stopped renewing keeps a job from the other replicas.
DEFAULT_TTL = 15.0
#: Part of the TTL this process counts itself the holder after a renewal it sent.
SAFE_PART = 0.8


class JobLeases:
    def __init__(self, store: Store, names: Iterable[str] = JOBS, ttl: float = DEFAULT_TTL) -> None:
        self.store = store
        self.names = tuple(names)
        self.ttl = ttl
        self.holder = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._until: dict[str, float] = {}  # name → monotonic time this process stops counting on it
        self._renewed = asyncio.Event()  # after the first renewal, held or not

    def holds(self, name: str) -> bool:
        return time.monotonic() < self._until.get(name, 0.0)

    async def renew(self) -> None:
        """Renew the leases held, take the free ones."""
        for name in self.names:
            sent = time.monotonic()
            try:
                held = await self.store.job_lease(name, self.holder, self.ttl)
            except StoreUnavailable:
                continue  # what is held lapses locally at its time; the store decides again when back
            was = self.holds(name)
            if held:
                self._until[name] = sent + self.ttl * SAFE_PART
            else:
                self._until.pop(name, None)
            if held != was:
                log.info("job %s: %s (%s)", name, "taken by this replica" if held else "held elsewhere", self.holder)
        self._renewed.set()

    async def settled(self, timeout: float = 5.0) -> None:
        """Wait (at most `timeout` seconds) for the first renewal, so a job at start-up knows."""
        try:
            await asyncio.wait_for(self._renewed.wait(), timeout=timeout)
        except TimeoutError:
            pass

    async def run(self, stop: asyncio.Event) -> None:
        """Renew every ttl/3 until `stop`, then hand every lease held back at once."""
        while not stop.is_set():
            try:
                await self.renew()
            except Exception:  # a bug must not stop the renewals: the leases would pass to another replica
                log.exception("job leases: renewal failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.ttl / 3)
            except TimeoutError:
                pass
        await self.release()

    async def release(self) -> None:
        held = [name for name in self.names if self.holds(name)]
        self._until.clear()
        for name in held:
            try:
                await self.store.job_release(name, self.holder)
            except StoreUnavailable:
                pass  # it lapses after the TTL

"""Which accounts a target already has, by email, so a burst of joiners skips one lookup each.

Before creating an account the bridge must look for one with the same email and adopt it
(no duplicates). One lookup per joiner is fine day to day; during an initial load it is a third
to a half of every call the target's rate limit allows. So after `after_lookups` lookups in a
row, the translator lists the target's accounts once and answers from that snapshot for `ttl`
seconds. While joiners keep coming, the snapshot is refreshed before it expires, in the
background (the last `refresh_ahead` of its life): joiners go on answering from the current one
meanwhile, instead of all waiting for a listing that takes one call per hundred accounts (at
90,000 accounts, 900 calls in a row, while every sync worker held its slot and the other target's
rate limit went unused).

The snapshot is only a shortcut, never the authority: an email it does not know is created
directly, and if the target refuses the create (the account appeared since the snapshot) or
its answer is lost, the translator falls back to the lookup-then-create path that reads back
first. An email it knows is adopted; if that account has gone since, the same fallback applies.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .base import Conflict, Gone, Invalid, TargetTimeout, Unavailable
from .http import PRIORITY, find_or_create

log = logging.getLogger("scim_bridge.targets")


class AdoptionIndex:
    def __init__(
        self,
        load: Callable[[], Awaitable[dict[str, str]]],
        after_lookups: int = 50,
        ttl: float = 900.0,
        refresh_ahead: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load  # → {lower-case email: target id}, every account the target lists
        self.after_lookups = after_lookups
        self.ttl = ttl
        self.refresh_ahead = refresh_ahead  # share of the ttl: a snapshot in use is renewed this early
        self.clock = clock
        self._by_email: dict[str, str] | None = None
        self._loaded_at = 0.0
        self._lookups = 0
        self._lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None
        self._renewing = -1.0  # _loaded_at of the snapshot whose renewal was started
        self._since_refresh: list[tuple[str, str | None]] = []  # created / forgotten while it lists
        self.loads = 0  # how many snapshots were taken (for tests and the bench)

    async def known(self, email: str) -> tuple[bool, str | None]:
        """(answered, target id): answered=False means "look it up yourself"."""
        if not self._fresh() and self._refresh is not None:
            await asyncio.shield(self._refresh)  # the renewal is late: wait for it, as for a first load
        if self._fresh():
            assert self._by_email is not None
            age = self.clock() - self._loaded_at
            if self._renewing != self._loaded_at and age >= self.ttl * (1 - self.refresh_ahead):
                self._renewing = self._loaded_at  # once per snapshot: a failed renewal is not retried
                self._since_refresh = []
                self._refresh = asyncio.create_task(self._renew(self.clock()))
            return True, self._by_email.get(email.lower())
        self._lookups += 1
        if self._lookups < self.after_lookups:
            return False, None
        async with self._lock:  # one snapshot for all the joiners waiting on it
            if not self._fresh():
                self._by_email = await self._load()
                self._loaded_at = self.clock()
                self._lookups = 0
                self.loads += 1
        assert self._by_email is not None
        return True, self._by_email.get(email.lower())

    async def _renew(self, started: float) -> None:
        """A new snapshot in place of the current one, which answers until then. What this bridge
        creates or forgets meanwhile is replayed onto it (a page read before the create lacks it)."""
        PRIORITY.set(False)  # the listing never goes ahead of a revocation's calls (its own context)
        try:
            loaded = await self._load()
        except Exception as error:  # the current snapshot expires as it would have; lookups take over
            log.warning("account snapshot not renewed: %s", error)
            return
        finally:
            self._refresh = None
        for email, target_id in self._since_refresh:
            if target_id is None:
                loaded.pop(email, None)
            else:
                loaded[email] = target_id
        self._since_refresh = []
        self._by_email, self._loaded_at = loaded, started
        self.loads += 1

    def created(self, email: str, target_id: str) -> None:
        if self._by_email is not None:
            self._by_email[email.lower()] = target_id
        if self._refresh is not None:
            self._since_refresh.append((email.lower(), target_id))

    def forget(self, email: str) -> None:
        if self._by_email is not None:
            self._by_email.pop(email.lower(), None)
        if self._refresh is not None:
            self._since_refresh.append((email.lower(), None))

    async def close(self) -> None:
        """Stop a renewal under way (the translator is closing its client)."""
        if self._refresh is not None:
            self._refresh.cancel()
            await asyncio.gather(self._refresh, return_exceptions=True)

    def _fresh(self) -> bool:
        return self._by_email is not None and self.clock() - self._loaded_at < self.ttl


async def create_or_adopt(
    index: AdoptionIndex,
    email: str,
    find: Callable[[], Awaitable[dict[str, Any] | None]],
    create: Callable[[], Awaitable[dict[str, Any]]],
    adopt: Callable[[str], Awaitable[None]],
) -> tuple[str, bool]:
    """(target id, created) for the account with this email: adopted (and `adopt` brings its
    fields in line) if the target has one, else created."""
    answered, existing = await index.known(email)
    if answered and existing is None:
        try:
            created = await create()
            index.created(email, str(created["id"]))
            return str(created["id"]), True
        except (Conflict, Invalid, Unavailable, TargetTimeout):
            pass  # appeared since the snapshot, or the answer was lost: read back before anything else
    elif answered and existing is not None:
        try:
            await adopt(existing)
            return existing, False
        except Gone:
            index.forget(email)  # deleted since the snapshot
    found, was_created = await find_or_create(find, create)
    if was_created:
        index.created(email, str(found["id"]))
    else:
        await adopt(str(found["id"]))
    return str(found["id"]), was_created

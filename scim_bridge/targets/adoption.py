"""Which accounts a target already has, by email, so a burst of joiners skips one lookup each.

Before creating an account the bridge must look for one with the same email and adopt it
(no duplicates). One lookup per joiner is fine day to day; during an initial load it is a third
to a half of every call the target's rate limit allows. So after `after_lookups` lookups in a
row, the translator lists the target's accounts once and answers from that snapshot for `ttl`
seconds.

The snapshot is only a shortcut, never the authority: an email it does not know is created
directly, and if the target refuses the create (the account appeared since the snapshot) or
its answer is lost, the translator falls back to the lookup-then-create path that reads back
first. An email it knows is adopted; if that account has gone since, the same fallback applies.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .base import Conflict, Gone, Invalid, TargetTimeout, Unavailable
from .http import find_or_create


class AdoptionIndex:
    def __init__(
        self, load: Callable[[], Awaitable[dict[str, str]]], after_lookups: int = 50, ttl: float = 900.0
    ) -> None:
        self._load = load  # → {lower-case email: target id}, every account the target lists
        self.after_lookups = after_lookups
        self.ttl = ttl
        self._by_email: dict[str, str] | None = None
        self._loaded_at = 0.0
        self._lookups = 0
        self._lock = asyncio.Lock()
        self.loads = 0  # how many snapshots were taken (for tests and the bench)

    async def known(self, email: str) -> tuple[bool, str | None]:
        """(answered, target id): answered=False means "look it up yourself"."""
        if self._fresh():
            assert self._by_email is not None
            return True, self._by_email.get(email.lower())
        self._lookups += 1
        if self._lookups < self.after_lookups:
            return False, None
        async with self._lock:  # one snapshot for all the joiners waiting on it
            if not self._fresh():
                self._by_email = await self._load()
                self._loaded_at = time.monotonic()
                self._lookups = 0
                self.loads += 1
        assert self._by_email is not None
        return True, self._by_email.get(email.lower())

    def created(self, email: str, target_id: str) -> None:
        if self._by_email is not None:
            self._by_email[email.lower()] = target_id

    def forget(self, email: str) -> None:
        if self._by_email is not None:
            self._by_email.pop(email.lower(), None)

    def _fresh(self) -> bool:
        return self._by_email is not None and time.monotonic() - self._loaded_at < self.ttl


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

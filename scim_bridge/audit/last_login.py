"""Last login per SCIM user per target, polled on a schedule: Cloudinary's `last_login` (Provisioning
API, research/cloudinary.md §5.2) and iconik's `last_web_login` (research/iconik.md §7.1). Neither
target pushes logins, so this is the inactivity signal an access review has.

    last-login:{target}  "{scim id}" → {"target_id", "last_login", "polled"}
    last-login-meta      "polled"    → epoch seconds of the last completed poll (any replica)

Only accounts the ID map knows are kept; a value is written only when it changed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from ..store import Store, StoreUnavailable
from ..targets.base import Target, TargetAccount, TargetError
from .activity import Identities, instant, iso

log = logging.getLogger("scim_bridge.audit")

META = "last-login-meta"


def namespace(target: str) -> str:
    return f"last-login:{target}"


class LastLoginPoller:
    def __init__(
        self, store: Store, targets: dict[str, Target], interval: float, identities: Identities | None = None
    ) -> None:
        self.store, self.targets, self.interval = store, targets, interval
        self.identities = identities or Identities(store)
        #: Targets to leave out of a poll (quarantined: they get nothing but their probe).
        self.skip: Callable[[str], Awaitable[bool]] | None = None
        #: Whether this replica polls (the one holding the job's lease); None: always.
        self.polls_here: Callable[[], bool] | None = None

    async def poll_once(self) -> dict[str, Any]:
        """One pass over every target; one target's failure does not stop the other."""
        report: dict[str, Any] = {}
        for name, target in self.targets.items():
            if self.skip is not None and await self.skip(name):
                report[name] = {"skipped": "quarantined"}
                continue
            try:
                report[name] = await self._poll(name, target)
            except TargetError as error:
                log.warning("last-login poll of %s failed: %s", name, error)
                report[name] = {"error": str(error)}
        await self.store.kv_put(META, "polled", str(time.time()).encode())
        return report

    async def _poll(self, name: str, target: Target) -> dict[str, int]:
        accounts: list[TargetAccount] = await target.list_accounts()  # without groups: cheaper
        scim_ids = await self.identities.reverse_index(name)
        known = {key: orjson.loads(raw) for key, raw in await self.store.kv_items(namespace(name))}
        changed = unmapped = 0
        for account in accounts:
            scim_id = scim_ids.get(account.id)
            if scim_id is None:
                unmapped += 1
                continue
            moment = instant(account.last_login)
            value = iso(moment) if moment else None
            previous = known.get(scim_id) or {}
            if previous.get("last_login") != value or previous.get("target_id") != account.id:
                entry = {"target_id": account.id, "last_login": value, "polled": iso_now()}
                await self.store.kv_put(namespace(name), scim_id, orjson.dumps(entry))
                changed += 1
        return {"accounts": len(accounts), "changed": changed, "unmapped": unmapped}

    async def for_user(self, scim_id: str) -> dict[str, Any]:
        found = {}
        for name in self.targets:
            raw = await self.store.kv_get(namespace(name), scim_id)
            if raw:
                found[name] = orjson.loads(raw)
        return found

    async def everyone(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for name in self.targets:
            for scim_id, raw in await self.store.kv_items(namespace(name)):
                found.setdefault(scim_id, {})[name] = orjson.loads(raw)
        return found

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every `interval` seconds. The first wait counts from the last poll any replica
        recorded, so frequent restarts neither skip polls nor repeat them."""
        while not stop.is_set():
            try:
                raw = await self.store.kv_get(META, "polled")
                wait = max(0.0, float(raw or 0) + self.interval - time.time())
                if wait == 0.0 and self.polls_here is not None and not self.polls_here():
                    wait = min(self.interval, 5.0)  # another replica polls; ask again soon
                elif wait == 0.0:
                    await self.poll_once()
                    wait = self.interval
            except StoreUnavailable:
                log.warning("last-login poll: store unavailable")
                wait = min(self.interval, 60.0)
            except Exception:  # a bug must not end the schedule
                log.exception("last-login poll failed")
                wait = self.interval
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
            except TimeoutError:
                pass


def iso_now() -> str:
    return iso(datetime.now(UTC))

"""The mass-deprovision brake: one leaver is revoked at once; a mass deprovision waits for a person.

Every change that takes access away in a target (disable, delete, stripping groups, a membership
or project removal, deleting a target group) asks `Brake.admit` first. Below the target's
threshold it is allowed and counted in a sliding window; past it the brake *engages* for that
target and every further such change is **held**: the SCIM write was already accepted and is
durable, the engine records the held change (here, in the store: it survives restarts and is
shared by replicas) and sends nothing until an operator approves or rejects it
(admin API `/admin/api/held`, `scim-bridge held`). A directory change that would take away a
large share at once (a group emptied or deleted, an empty or truncated push) engages the brake
before its first removal goes out.

Thresholds (policy `safety.deprovision`, per target overrides): more than `max_count` distinct
resources deprovisioned within `window_seconds`, or more than `max_share` percent of the
directory's users (never less than `share_floor`), whichever is lower. Defaults: 50 in 10 minutes,
5 %, floor 10. Why: Entra holds at 500 deletions per cycle and Okta at 20 % of an import
(research/operators.md); a bridge revokes continuously rather than per cycle, so the window is
short and the count small; the floor keeps a small directory (the sandbox's 37 people) able to lose
a handful of people in one afternoon without a person in the loop.

Counting never over-admits, across workers and replicas, without a shared lock: an admission first
writes its own mark, then counts the marks in the window, and withdraws (holds) when the count is
over. The last of any T+1 admissions sees all T+1 marks, so no more than T are ever admitted in one
window. Concurrent admissions could all withdraw (a burst of ten leavers with room for three would
revoke none), so within a process they take turns per target (a lock); between replicas the rare
overlap errs on the side of holding.

Store layout (key/value space):

    brake              {target}                 → {"since", "reason"}   (present: engaged)
    brake-window:{t}   "{type}/{scim id}"        → admitted at (epoch seconds)
    brake-held:{t}     "{type}/{scim id}"        → {"since", "kinds", "version", "correlation", "reason"}
    brake-approved:{t} "{type}/{scim id}"        → {"by", "time"}        (consumed by the next sync)
    brake-rejected:{t} "{type}/{scim id}"        → {"by", "time", "version"} (access kept until the
                                                   resource changes again in the directory)

Every engagement, hold, approval, rejection and withdrawal is an audit entry (`kind: "brake"`),
naming who decided.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..audit.context import CORRELATION_ID
from ..store import REVOCATION_LANE, Store
from .quarantine import QuarantinePolicy

ALLOW: Literal["allow"] = "allow"
HOLD: Literal["hold"] = "hold"
KEEP: Literal["keep"] = "keep"  # rejected by an operator: the access stays
Verdict = Literal["allow", "hold", "keep"]

ENGAGED = "brake"
MANAGED_CACHE_SECONDS = 60.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Thresholds(_Strict):
    max_count: int | None = Field(None, ge=1)
    max_share: float | None = Field(None, gt=0, le=100)
    share_floor: int | None = Field(None, ge=1)
    window_seconds: float | None = Field(None, gt=0)


class DeprovisionBrake(_Strict):
    """Policy `safety.deprovision`."""

    enabled: bool = True
    max_count: int = Field(50, ge=1)  # distinct resources deprovisioned within the window
    max_share: float = Field(5.0, gt=0, le=100)  # percent of the directory's users within the window
    share_floor: int = Field(10, ge=1)  # the share never brakes below this many
    window_seconds: float = Field(600.0, gt=0)
    targets: dict[str, Thresholds] = {}  # per target overrides, e.g. {cloudinary: {max_count: 20}}

    @model_validator(mode="before")
    @classmethod
    def _clear_messages(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("max_count",):
                if data.get(key) == 0:
                    raise ValueError(
                        f"{key}: 0 would hold every leaver; set enabled: false to turn the brake off (not advised)"
                    )
            share = data.get("max_share")
            if isinstance(share, int | float) and not 0 < share <= 100:
                raise ValueError(f"max_share: {share} is not a percentage in (0, 100]")
        return data

    def for_target(self, target: str) -> DeprovisionBrake:
        override = self.targets.get(target)
        if override is None:
            return self
        changes = {k: v for k, v in override.model_dump().items() if v is not None}
        return self.model_copy(update={**changes, "targets": {}})


class Safety(_Strict):
    deprovision: DeprovisionBrake = DeprovisionBrake()
    quarantine: QuarantinePolicy = QuarantinePolicy()  # the per-target circuit breaker (sync/quarantine.py)


@dataclass(frozen=True)
class HeldChange:
    target: str
    key: str  # "{type}/{scim id}"
    since: float
    kinds: list[str]
    reason: str
    correlation: str | None

    def as_dict(self) -> dict[str, Any]:
        resource_type, scim_id = self.key.split("/", 1)
        return {
            "target": self.target,
            "resource": {"type": resource_type, "id": scim_id},
            "since": self.since,
            "kinds": self.kinds,
            "reason": self.reason,
            "correlation": self.correlation,
        }


class DecisionError(Exception):
    """An approval or rejection that cannot be applied (nothing is changed)."""


def _ns(prefix: str, target: str) -> str:
    return f"{prefix}:{target}"


class Brake:
    def __init__(self, store: Store, config: DeprovisionBrake, targets: Sequence[str]) -> None:
        self.store = store
        self.config = config
        self.targets = list(targets)
        self._managed: tuple[float, int] | None = None
        self._turns: dict[str, asyncio.Lock] = {}
        #: Told (target, reason) once per engagement, by the call that engaged (sync/notify.py).
        self.on_engaged: Callable[[str, str], Awaitable[None]] | None = None

    # thresholds ---------------------------------------------------------------------------------
    async def managed_accounts(self) -> int:
        """The directory's users, as the denominator of the share (cached: a count per leaver
        would cost more than the leaver). Every directory user is managed in every enabled target."""
        now = time.monotonic()
        if self._managed is None or now - self._managed[0] > MANAGED_CACHE_SECONDS:
            self._managed = (now, await self.store.count("User"))
        return self._managed[1]

    async def threshold(self, target: str) -> int:
        config = self.config.for_target(target)
        share = max(config.share_floor, math.ceil(config.max_share / 100 * await self.managed_accounts()))
        return min(config.max_count, share)

    # the engine's questions -------------------------------------------------------------------------
    async def admit(
        self,
        target: str,
        resource_type: str,
        scim_id: str,
        kinds: Sequence[str],
        version: int,
        correlation: str | None = None,
    ) -> Verdict:
        """May this change that takes access away go out now?"""
        if not self.config.enabled:
            return ALLOW
        key = f"{resource_type}/{scim_id}"
        if await self.store.kv_delete(_ns("brake-approved", target), key):
            return ALLOW  # an operator approved it: not counted again
        rejected = await self.store.kv_get(_ns("brake-rejected", target), key)
        if rejected is not None:
            if orjson.loads(rejected).get("version") == version:
                return KEEP
            await self.store.kv_delete(_ns("brake-rejected", target), key)  # changed since: evaluate anew
        engaged = await self.store.kv_get(ENGAGED, target)
        if engaged is not None:
            await self._hold(target, key, kinds, version, correlation, orjson.loads(engaged)["reason"])
            return HOLD
        config = self.config.for_target(target)
        window = _ns("brake-window", target)
        async with self._turns.setdefault(target, asyncio.Lock()):
            now = time.time()
            await self.store.kv_put(window, key, str(now).encode())
            recent = 0
            for other, raw in await self.store.kv_items(window):
                if float(raw) < now - config.window_seconds:
                    await self.store.kv_delete(window, other)
                else:
                    recent += 1
            limit = await self.threshold(target)
            if recent <= limit:
                return ALLOW
            await self.store.kv_delete(window, key)
        reason = f"more than {limit} deprovisions within {config.window_seconds:g} s"
        await self.engage(target, reason)
        await self._hold(target, key, kinds, version, correlation, reason)
        return HOLD

    async def engage(self, target: str, reason: str) -> bool:
        """Engage the brake for a target (no-op when engaged already); True when this call did."""
        if not self.config.enabled:
            return False
        record = orjson.dumps({"since": time.time(), "reason": reason})
        if await self.store.kv_put(ENGAGED, target, record, only_if_absent=True):
            await self._audit("engaged", target, None, reason=reason)
            if self.on_engaged is not None:
                await self.on_engaged(target, reason)
            return True
        return False

    async def large_removal(self, target: str, count: int, what: str) -> bool:
        """A single directory change removing `count` people at once (a group emptied or deleted):
        past the threshold, engage before the first removal goes out."""
        if not self.config.enabled or count <= await self.threshold(target):
            return False
        return await self.engage(target, f"{what} would remove {count} people at once")

    async def withdraw(self, target: str, resource_type: str, scim_id: str) -> None:
        """The directory no longer asks for the held change (e.g. the person was re-activated)."""
        key = f"{resource_type}/{scim_id}"
        if await self.store.kv_delete(_ns("brake-held", target), key):
            await self._audit("withdrawn", target, key)
            await self._release_if_clear(target, "nothing held any more")

    async def _hold(
        self, target: str, key: str, kinds: Sequence[str], version: int, correlation: str | None, reason: str
    ) -> None:
        namespace = _ns("brake-held", target)
        existing = await self.store.kv_get(namespace, key)
        since = orjson.loads(existing)["since"] if existing else time.time()
        record = {"since": since, "kinds": sorted(kinds), "version": version, "correlation": correlation}
        await self.store.kv_put(namespace, key, orjson.dumps({**record, "reason": reason}))
        if existing is None:
            await self._audit("held", target, key, kinds=sorted(kinds), reason=reason)

    # what operators see and decide ----------------------------------------------------------------
    async def status(self) -> dict[str, Any]:
        targets: dict[str, Any] = {}
        for target in self.targets:
            engaged = await self.store.kv_get(ENGAGED, target)
            config = self.config.for_target(target)
            now = time.time()
            window = [
                raw
                for _, raw in await self.store.kv_items(_ns("brake-window", target))
                if float(raw) >= now - config.window_seconds
            ]
            targets[target] = {
                "engaged": orjson.loads(engaged) if engaged else None,
                "threshold": await self.threshold(target),
                "window_seconds": config.window_seconds,
                "in_window": len(window),
                "held": len(await self.store.kv_items(_ns("brake-held", target))),
            }
        return {"enabled": self.config.enabled, "targets": targets}

    async def held(self, target: str | None = None) -> list[HeldChange]:
        items: list[HeldChange] = []
        for name in [target] if target else self.targets:
            for key, raw in await self.store.kv_items(_ns("brake-held", name)):
                record = orjson.loads(raw)
                items.append(
                    HeldChange(name, key, record["since"], record["kinds"], record["reason"], record["correlation"])
                )
        return sorted(items, key=lambda h: (h.since, h.target, h.key))

    async def approve(self, by: str, target: str | None = None, keys: Sequence[str] | None = None) -> int:
        """Let held changes go out (all of a target's, all, or the named "{type}/{id}" keys): each is
        queued on the revocation lane and applied once, whichever replica or command approved it.
        Returns how many held changes this call decided."""
        chosen = await self._chosen(target, keys)

        async def decide(item: HeldChange) -> bool:
            # The approval mark first: a crash right after it leaves the change held *and* approved,
            # so it is neither lost nor applied twice (the next approval or sync completes it).
            mark = orjson.dumps({"by": by, "time": time.time()})
            await self.store.kv_put(_ns("brake-approved", item.target), item.key, mark)
            return await self.store.kv_delete(_ns("brake-held", item.target), item.key)  # one decider wins

        won = await _in_chunks(chosen, decide)
        people = sorted({tuple(item.key.split("/", 1)) for item in won})
        await _in_chunks(people, lambda p: self.store.enqueue(p[0], p[1], REVOCATION_LANE))
        await self._audit_many([self._entry("approved", item.target, item.key, by=by) for item in won])
        for name in sorted({item.target for item in chosen}):
            await self._release_if_clear(name, f"approved by {by}", by)
        return len(won)

    async def reject(self, by: str, target: str | None = None, keys: Sequence[str] | None = None) -> int:
        """Keep the access of held changes: nothing is sent; the difference stays visible as drift
        until the directory changes the resource again. Returns how many this call decided."""
        chosen = await self._chosen(target, keys)

        async def decide(item: HeldChange) -> bool:
            raw = await self.store.kv_get(_ns("brake-held", item.target), item.key)
            if raw is None or not await self.store.kv_delete(_ns("brake-held", item.target), item.key):
                return False  # another decider got there first
            record = {"by": by, "time": time.time(), "version": orjson.loads(raw).get("version")}
            await self.store.kv_put(_ns("brake-rejected", item.target), item.key, orjson.dumps(record))
            return True

        won = await _in_chunks(chosen, decide)
        await self._audit_many([self._entry("rejected", item.target, item.key, by=by) for item in won])
        for name in sorted({item.target for item in chosen}):
            await self._release_if_clear(name, f"rejected by {by}", by)
        return len(won)

    async def release(self, by: str, target: str | None = None) -> list[str]:
        """Disengage the brake of targets that hold nothing (after the cause was fixed)."""
        if target is not None and target not in self.targets:
            raise DecisionError(f"unknown target {target!r} (targets: {', '.join(self.targets) or 'none'})")
        released = []
        for name in [target] if target else self.targets:
            if await self._release_if_clear(name, f"released by {by}", by):
                released.append(name)
        return released

    async def _chosen(self, target: str | None, keys: Sequence[str] | None) -> list[HeldChange]:
        if target is not None and target not in self.targets:
            raise DecisionError(f"unknown target {target!r} (targets: {', '.join(self.targets) or 'none'})")
        held = await self.held(target)
        if keys is None:
            if not held:
                raise DecisionError("nothing is held" + (f" for {target}" if target else ""))
            return held
        wanted = {k if "/" in k else f"User/{k}" for k in keys}
        chosen = [h for h in held if h.key in wanted]
        missing = sorted(wanted - {h.key for h in chosen})
        if missing:
            reasons = [f"{key}: {await self._why_not_held(key, target)}" for key in missing]
            raise DecisionError("not held, nothing decided: " + "; ".join(reasons))
        return chosen

    async def _why_not_held(self, key: str, target: str | None) -> str:
        for name in [target] if target else self.targets:
            if await self.store.kv_get(_ns("brake-approved", name), key) is not None:
                return f"already approved in {name}"
            if await self.store.kv_get(_ns("brake-rejected", name), key) is not None:
                return f"rejected in {name}"
        return "no held change"

    async def _release_if_clear(self, target: str, why: str, by: str | None = None) -> bool:
        if await self.store.kv_items(_ns("brake-held", target)):
            return False
        if await self.store.kv_delete(ENGAGED, target):
            await self._audit("released", target, None, reason=why, by=by)
            return True
        return False

    async def _audit(self, action: str, target: str, key: str | None, **details: Any) -> None:
        await self._audit_many([self._entry(action, target, key, **details)])

    async def _audit_many(self, entries: list[bytes]) -> None:
        if entries:
            await self.store.audit_append(entries)

    def _entry(self, action: str, target: str, key: str | None, **details: Any) -> bytes:
        resource = None
        if key is not None:
            resource_type, scim_id = key.split("/", 1)
            resource = {"type": resource_type, "id": scim_id}
        entry = {
            "kind": "brake",
            "correlation": CORRELATION_ID.get(),
            "action": action,
            "target": target,
            "resource": resource,
            **details,
        }
        return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)


_T = TypeVar("_T")


async def _in_chunks(items: Sequence[_T], work: Callable[[_T], Awaitable[Any]], size: int = 25) -> list[_T]:
    """Run `work` on every item, `size` at a time: the SQLite writer commits concurrent writes
    together, so a thousand decisions are tens of transactions, not thousands; more at once would
    open as many Redis connections. Returns the items whose work answered true (or None)."""
    done: list[_T] = []
    for start in range(0, len(items), size):
        chunk = items[start : start + size]
        results = await asyncio.gather(*(work(item) for item in chunk))
        done += [item for item, result in zip(chunk, results, strict=True) if result is not False]
    return done

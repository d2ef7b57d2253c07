"""Target quarantine: a circuit breaker per target. A target that refuses the bridge's credentials,
or fails most of its recent calls, gets nothing but a probe until it answers again.

Triggers (policy `safety.quarantine`):

- **credentials**: one 401 or 403 on a core call (accounts, groups, membership) is enough. Nothing
  the bridge sends can succeed until someone fixes the key, and every change would otherwise burn
  its retries into a dead letter. Grant calls do not count: Cloudinary's Admin API takes another
  key, and a 403 there means a permission-model mismatch (sync/access_sync.py), not lost access.
- **failures**: at least `failure_percent` (50) of the calls in the last `window_seconds` (300)
  failed, once at least `min_calls` (20) were made. A failure is a 5xx, a dropped connection or a
  timeout; a 429 is the target pacing us (the rate limiter obeys it) and a 4xx is a refused
  object, so neither counts. Entra's escrow rule quarantines a job above 40 % failures but only
  from 5,000 failures per cycle (research/operators.md §1.1); the bridge syncs continuously, not in
  cycles of thousands, so it decides on a short window and a small floor, and at a higher share so
  that a target with a fault rate of one call in five (tests/sync/test_faults.py) keeps working.
  The window is counted per replica, in memory (like the OAuth throttle); the state is shared.

While quarantined, the engine sends nothing to the target: each change that would go there is
**parked** (`quarantine-parked:{target}`, with its lane) and its queue entry acknowledged, so no
entry spends its attempts or becomes a dead letter; other targets keep flowing. A **probe**
(`Target.probe`: one page of one user) runs on the back-off schedule `probe_backoff_seconds`
(1, 2, 5, 15, 30, 60 minutes, then hourly: Entra retries after 6, 12 and 24 h, which is long for a
revoked key someone rotates in minutes). One replica runs each probe (a claim in the store). When
a probe succeeds the quarantine ends by itself: parked revocations are queued first, the rest once
the revocation lane has drained (at most DRAIN_WAIT_SECONDS later), and the grants run again.

Store layout (key/value space; shared by replicas, survives restarts):

    quarantine            {target}             → {"since", "trigger", "reason", "probes", "next_probe", "last_probe"}
    quarantine-left       {target}             → epoch seconds the last quarantine ended
    quarantine-parked:{t} "{type}/{scim id}"   → lane
    quarantine-probe      "{t}:{since}:{n}"    → claimed (one replica runs probe n of a quarantine)

Entering and leaving are audit entries (`kind: "quarantine"`) and notifications (sync/notify.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, field_validator

from ..audit.context import CORRELATION_ID
from ..store import REVOCATION_LANE, STANDARD_LANE, Store
from ..targets.base import Forbidden, TargetError
from ..targets.http import PRIORITY, TargetCall

log = logging.getLogger("scim_bridge.sync")

STATE = "quarantine"
LEFT = "quarantine-left"
PROBES = "quarantine-probe"
FAILED = frozenset({"Unavailable", "TargetTimeout"})  # outcomes (TargetCall.outcome) that count as failed
NOT_COUNTED = frozenset({"Throttled"})  # the target pacing us: neither a failure nor a success
DEGRADED_PERCENT = 10.0  # below the trigger, at least this share failed: "degraded"
CACHE_SECONDS = 1.0  # how stale a replica's view of another replica's quarantine may be
DRAIN_WAIT_SECONDS = 30.0  # parked standard changes wait this long at most for the revocations

Event = Callable[[str, str, dict[str, Any]], Awaitable[None]]


def _parked(target: str) -> str:
    return f"quarantine-parked:{target}"


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class QuarantinePolicy(BaseModel):
    """Policy `safety.quarantine`."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    credentials: bool = True  # one 401/403 on a core call quarantines at once
    failure_percent: float = 50.0  # of the window's calls
    min_calls: int = 20  # the share is judged from this many calls in the window
    window_seconds: float = 300.0
    probe_backoff_seconds: list[float] = [60, 120, 300, 900, 1800, 3600]  # then the last, repeated

    @field_validator("failure_percent")
    @classmethod
    def _percent(cls, value: float) -> float:
        if not 0 < value <= 100:
            raise ValueError(f"{value:g} is not a percentage in (0, 100]")
        return value

    @field_validator("min_calls")
    @classmethod
    def _floor(cls, value: int) -> int:
        if value < 5:
            raise ValueError(f"{value} is below 5: a handful of unlucky calls would quarantine a healthy target")
        return value

    @field_validator("window_seconds")
    @classmethod
    def _window(cls, value: float) -> float:
        if value <= 0:
            raise ValueError(f"{value:g} is not a positive number of seconds")
        return value

    @field_validator("probe_backoff_seconds")
    @classmethod
    def _schedule(cls, value: list[float]) -> list[float]:
        if not value or any(step <= 0 for step in value):
            raise ValueError("give one or more positive delays in seconds, e.g. [60, 120, 300, 900, 1800, 3600]")
        return value

    def backoff(self, failed_probes: int) -> float:
        """Seconds from now to the next probe, after `failed_probes` probes failed."""
        return self.probe_backoff_seconds[min(failed_probes, len(self.probe_backoff_seconds) - 1)]


class _Window:
    """Calls and failures of the last `seconds`, in one-second buckets (bounded memory at any rate)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.buckets: deque[list[int]] = deque()  # [second, calls, failures]

    def add(self, failed: bool, now: float) -> None:
        second = int(now)
        if not self.buckets or self.buckets[-1][0] != second:
            self.buckets.append([second, 0, 0])
        self.buckets[-1][1] += 1
        self.buckets[-1][2] += int(failed)

    def counts(self, now: float) -> tuple[int, int]:
        while self.buckets and self.buckets[0][0] <= now - self.seconds:
            self.buckets.popleft()
        return sum(b[1] for b in self.buckets), sum(b[2] for b in self.buckets)

    def clear(self) -> None:
        self.buckets.clear()


class Quarantine:
    def __init__(self, store: Store, config: QuarantinePolicy, targets: Sequence[str]) -> None:
        self.store = store
        self.config = config
        self.targets = list(targets)
        self._windows = {name: _Window(config.window_seconds) for name in self.targets}
        self._cache: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._revocations_released: dict[str, float] = {}
        self.on_event: Event | None = None  # "quarantine.entered" / "quarantine.left" (notify.py)
        self.on_resume: Callable[[str], Awaitable[None]] | None = None  # e.g. re-run the grants

    # the engine's questions ----------------------------------------------------------------------
    async def blocks(self, target: str) -> bool:
        """Whether the target is quarantined (this replica's view, at most CACHE_SECONDS old)."""
        if not self.config.enabled or target not in self._windows:
            return False
        return await self._record(target) is not None

    async def holds(self, target: str, resource_type: str, scim_id: str) -> bool:
        """Before sending: True (and the change parked) while the target is quarantined."""
        if await self.blocks(target):
            await self.park(target, resource_type, scim_id)
            return True
        return False

    async def after_failure(
        self, target: str, error: TargetError, resource_type: str, scim_id: str, core: bool = True
    ) -> bool:
        """After a failed call: a refused credential on a core call quarantines; True (and the
        change parked rather than retried) when the target is quarantined now."""
        if not self.config.enabled or target not in self._windows:
            return False
        if core and self.config.credentials and isinstance(error, Forbidden):
            await self.enter(target, "credentials", f"the target refused the bridge's credentials: {error}")
        return await self.holds(target, resource_type, scim_id)

    async def park(self, target: str, resource_type: str, scim_id: str) -> None:
        """Keep the change for after the quarantine, in its lane (a revocation stays a revocation)."""
        lane = REVOCATION_LANE if PRIORITY.get() else STANDARD_LANE
        namespace, key = _parked(target), f"{resource_type}/{scim_id}"
        if lane == STANDARD_LANE and await self.store.kv_get(namespace, key) == REVOCATION_LANE.encode():
            return
        await self.store.kv_put(namespace, key, lane.encode())

    # the call observer (every target call of the sync side) ----------------------------------
    async def observe(self, call: TargetCall) -> None:
        window = self._windows.get(call.target)
        if not self.config.enabled or window is None or call.outcome in NOT_COUNTED:
            return
        now = time.time()
        failed = call.outcome in FAILED
        window.add(failed, now)
        if not failed:
            return
        calls, failures = window.counts(now)
        if calls >= self.config.min_calls and failures * 100 >= self.config.failure_percent * calls:
            if await self._record(call.target) is None:
                reason = (
                    f"{failures} of its last {calls} calls failed within {self.config.window_seconds:g} s "
                    f"(last: {call.method} {call.path} → {call.status or call.outcome})"
                )
                await self.enter(call.target, "failures", reason)

    # entering, probing, leaving -------------------------------------------------------------------
    async def enter(self, target: str, trigger: str, reason: str) -> bool:
        """Quarantine a target (no-op when it is already); True when this call did."""
        now = time.time()
        record: dict[str, Any] = {
            "since": now,
            "trigger": trigger,
            "reason": reason,
            "probes": 0,
            "next_probe": now + self.config.backoff(0),
            "last_probe": None,
        }
        won = await self.store.kv_put(STATE, target, orjson.dumps(record), only_if_absent=True)
        self._cache.pop(target, None)
        if won:
            self._cache[target] = (time.monotonic(), record)
            self._windows[target].clear()
            log.error("quarantine: %s quarantined (%s); next probe in %g s", target, reason, self.config.backoff(0))
            details = {"trigger": trigger, "reason": reason, "next_probe": iso(record["next_probe"])}
            await self._audit("entered", target, details)
            await self._event("quarantine.entered", target, details)
        return won

    async def probe_now(self, target: str, by: str) -> bool:
        """An operator fixed the cause: bring the next probe forward to now (False: not quarantined)."""
        raw = await self.store.kv_get(STATE, target)
        if raw is None:
            return False
        record = {**orjson.loads(raw), "next_probe": time.time()}
        await self.store.kv_put(STATE, target, orjson.dumps(record))
        await self._audit("probe-requested", target, {"by": by})
        return True

    async def tick(self, probes: Mapping[str, Callable[[], Awaitable[None]]]) -> None:
        """One round of the runtime's watch loop: probe what is due, release what is parked."""
        for target in self.targets:
            raw = await self.store.kv_get(STATE, target)
            if raw is None or not self.config.enabled:  # turned off by the policy: nothing stays parked
                await self._release(target)
                continue
            record = orjson.loads(raw)
            if time.time() < record["next_probe"] or target not in probes:
                continue
            claim = f"{target}:{record['since']}:{record['probes']}"
            if await self.store.kv_put(PROBES, claim, b"1", only_if_absent=True):  # one replica probes
                await self._probe(target, record, probes[target])

    async def _probe(self, target: str, record: dict[str, Any], probe: Callable[[], Awaitable[None]]) -> None:
        started = time.time()
        try:
            await probe()
        except TargetError as error:
            outcome: str | None = str(error)
        except Exception as error:  # a translator bug must not end the schedule
            outcome = f"{type(error).__name__}: {error}"
        else:
            outcome = None
        if outcome is None:
            await self._leave(target, record)
            return
        failed = record["probes"] + 1
        record = {
            **record,
            "probes": failed,
            "next_probe": time.time() + self.config.backoff(failed),
            "last_probe": {"time": started, "outcome": outcome},
        }
        await self.store.kv_put(STATE, target, orjson.dumps(record))
        log.warning("quarantine: probe %d of %s failed (%s)", failed, target, outcome)

    async def _leave(self, target: str, record: dict[str, Any]) -> None:
        if not await self.store.kv_delete(STATE, target):
            return
        now = time.time()
        self._cache.pop(target, None)
        self._windows[target].clear()  # what failed before is history now
        await self.store.kv_put(LEFT, target, str(now).encode())
        for key, _ in await self.store.kv_items(PROBES):
            if key.startswith(f"{target}:"):
                await self.store.kv_delete(PROBES, key)
        parked = len(await self.store.kv_items(_parked(target)))
        details = {
            "since": iso(record["since"]),
            "quarantined_seconds": round(now - record["since"], 1),
            "probes": record["probes"] + 1,
            "reason": record["reason"],
            "parked": parked,
        }
        log.warning(
            "quarantine: %s answers again after %.0f s; %d parked change(s) resume",
            target,
            now - record["since"],
            parked,
        )
        await self._audit("left", target, details)
        await self._event("quarantine.left", target, details)
        if self.on_resume is not None:
            await self.on_resume(target)
        await self._release(target)

    async def _release(self, target: str) -> None:
        """Queue what was parked for a target that is not quarantined: revocations first; the rest
        once the revocation lane has drained (or DRAIN_WAIT_SECONDS passed)."""
        items = await self.store.kv_items(_parked(target))
        if not items:
            return
        revocations = [key for key, lane in items if lane == REVOCATION_LANE.encode()]
        if revocations:
            await self._requeue(target, revocations, REVOCATION_LANE)
            self._revocations_released[target] = time.monotonic()
            return
        released = self._revocations_released.get(target)
        if released is not None and time.monotonic() - released < DRAIN_WAIT_SECONDS:
            if (await self.store.queue_depth()).lanes.get(REVOCATION_LANE, 0):
                return
        self._revocations_released.pop(target, None)
        await self._requeue(target, [key for key, _ in items], STANDARD_LANE)

    async def _requeue(self, target: str, keys: list[str], lane: str) -> None:
        async def one(key: str) -> None:
            resource_type, scim_id = key.split("/", 1)
            await self.store.enqueue(resource_type, scim_id, lane)
            await self.store.kv_delete(_parked(target), key)  # after: a crash in between queues it twice, harmlessly

        for start in range(0, len(keys), 25):  # as the brake's decisions: few transactions, few connections
            await asyncio.gather(*(one(key) for key in keys[start : start + 25]))

    # what operators see -------------------------------------------------------------------------
    async def status(self) -> dict[str, Any]:
        """Per target: ok / degraded / quarantined, since when and why, the next probe, this
        replica's recent failure ratio, and how many changes are parked."""
        found: dict[str, Any] = {}
        now = time.time()
        for target in self.targets:
            raw = await self.store.kv_get(STATE, target)
            record = orjson.loads(raw) if raw and self.config.enabled else None
            calls, failures = self._windows[target].counts(now)
            left = await self.store.kv_get(LEFT, target)
            if record is not None:
                state = "quarantined"
            elif calls and failures * 100 >= DEGRADED_PERCENT * calls:
                state = "degraded"
            else:
                state = "ok"
            last_probe = (record or {}).get("last_probe")
            found[target] = {
                "state": state,
                "since": iso(record["since"]) if record else iso(float(left)) if left else None,
                "trigger": record["trigger"] if record else None,
                "reason": record["reason"] if record else None,
                "probes": record["probes"] if record else None,
                "next_probe": iso(record["next_probe"]) if record else None,
                "last_probe": {"time": iso(last_probe["time"]), "outcome": last_probe["outcome"]}
                if last_probe
                else None,
                "recent": {
                    "calls": calls,
                    "failures": failures,
                    "failure_percent": round(100 * failures / calls, 1) if calls else 0.0,
                    "window_seconds": self.config.window_seconds,
                },
                "parked": len(await self.store.kv_items(_parked(target))),
            }
        return {"enabled": self.config.enabled, "targets": found}

    # inside ---------------------------------------------------------------------------------------
    async def _record(self, target: str) -> dict[str, Any] | None:
        now = time.monotonic()
        cached = self._cache.get(target)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        raw = await self.store.kv_get(STATE, target)
        record = orjson.loads(raw) if raw else None
        if record is not None and (cached is None or cached[1] is None or cached[1]["since"] != record["since"]):
            self._windows[target].clear()  # a quarantine another replica began: earlier calls are history
        self._cache[target] = (now, record)
        return record

    async def _audit(self, action: str, target: str, details: dict[str, Any]) -> None:
        entry = {"kind": "quarantine", "correlation": CORRELATION_ID.get(), "action": action, "target": target}
        await self.store.audit_append([orjson.dumps({**entry, **details}, option=orjson.OPT_SORT_KEYS)])

    async def _event(self, event: str, target: str, details: dict[str, Any]) -> None:
        if self.on_event is not None:
            await self.on_event(event, target, details)

"""GET /metrics: the Prometheus text format, for a credential with the `metrics` scope (or `admin`;
auth/scopes.py), and the middleware that counts every request.

Two kinds of series are served:

- the process's counters and histograms (scim_bridge/metrics.py): moved where things happen, per
  replica, summed by Prometheus;
- gauges read from the store when scraped (queue depth and age, dead letters, held and parked
  changes, brake and target state, the audit backlog): shared state, so every replica reports the
  same values. They are cached for CACHE_SECONDS, so several Prometheus servers (or a dashboard
  hitting /metrics) cost the store a few reads per interval, never one per request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from .. import metrics
from ..metrics import Tally
from ..store import LANES, Store, StoreUnavailable
from ..sync.idmap import IdMap
from ..sync.runtime import SyncRuntime

CACHE_SECONDS = 2.0
_OPERATIONS = {"POST": "create", "PUT": "replace", "PATCH": "patch", "DELETE": "delete"}
_SCIM = "/scim/v2/"
try:
    VERSION = version("scim-bridge")
except PackageNotFoundError:  # run from a source tree that was never installed
    VERSION = "unknown"


class RequestRecorder:
    """Counts each request by method, route template and status, and each SCIM write by resource,
    operation and outcome. Called by web/front.py's FrontDoor after the app answered, with the
    scope the router or the SCIM dispatcher wrote the matched route into; an unmatched path is
    `unmatched`, never itself.

    One per app, written from the app's event loop only: the tally it keeps per label set is its
    own (RequestSeries.tally), noted into without a lock."""

    def __init__(self) -> None:
        #: per (method, route, status): the request series' counts and the SCIM write counter's
        #: child (None for a read), looked up once (prometheus-client's `labels` validates and
        #: hashes under a lock on every call); bounded, since the method is the client's choice
        self._known: dict[tuple[str, str, int], tuple[Tally, Counter | None]] = {}

    def record(self, scope: Scope, status: int, elapsed: float) -> None:
        route = scope.get("route_template") or getattr(scope.get("route"), "path", None) or "unmatched"
        key = (scope["method"], route, status)
        known = self._known.get(key)
        if known is None:
            self._first(key, elapsed)
            return
        known[0].note(elapsed)
        if known[1] is not None:
            known[1].inc()

    def _first(self, key: tuple[str, str, int], elapsed: float) -> None:
        """A label set this recorder has not seen: its counts kept (beyond the bound, the shared ones)."""
        method, route, status = key
        writes = _write_counter(*key)
        if len(self._known) < MAX_CACHED:
            tally = metrics.HTTP.tally(method, route, str(status))
            self._known[key] = (tally, writes)
            tally.note(elapsed)
        else:
            metrics.HTTP.observe(method, route, str(status), elapsed)
        if writes is not None:
            writes.inc()


MAX_CACHED = 512


def _write_counter(method: str, route: str, status: int) -> Counter | None:
    """The SCIM write counter's child a request moves, or None when it is no SCIM write."""
    operation = _OPERATIONS.get(method)
    if operation is None or not route.startswith(_SCIM) or route.endswith("/.search"):
        return None
    resource = route[len(_SCIM) :].split("/", 1)[0]
    if resource == "Bulk":
        operation = "bulk"
    outcome = "ok" if status < 400 else "refused" if status < 500 else "error"
    return metrics.SCIM_WRITES.labels(resource, operation, outcome)


class StoreGauges(Collector):
    """The store-read gauges of one app, refreshed at most every CACHE_SECONDS."""

    def __init__(self, store: Store, sync: SyncRuntime | None) -> None:
        self.store = store
        self.sync = sync
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self._families: list[Metric] = []
        self._read_at = -CACHE_SECONDS
        self._lock = asyncio.Lock()

    def collect(self) -> Iterable[Metric]:
        return list(self._families)

    async def refresh(self) -> None:
        async with self._lock:  # concurrent scrapes wait for one read instead of each reading
            if time.monotonic() - self._read_at < CACHE_SECONDS:
                return
            try:
                families = await self._read()
                up = 1.0
            except StoreUnavailable:
                families, up = [], 0.0
            families.append(_gauge("scim_bridge_store_up", "1 when the store answered the last scrape's reads.", up))
            info = GaugeMetricFamily("scim_bridge_build_info", "The running version.", labels=["version"])
            info.add_metric([VERSION], 1.0)
            families.append(info)
            self._families, self._read_at = families, time.monotonic()

    async def _read(self) -> list[Metric]:
        store, now = self.store, time.time()
        depth, oldest = await store.queue_depth(), await store.queue_oldest()
        queue = GaugeMetricFamily("scim_bridge_queue_depth", "Entries in the sync queue, by lane.", labels=["lane"])
        age = GaugeMetricFamily(
            "scim_bridge_queue_oldest_age_seconds",
            "Age of the lane's oldest entry not synced yet (0: the lane is empty).",
            labels=["lane"],
        )
        for lane in sorted(set(LANES) | set(depth.lanes)):
            queue.add_metric([lane], float(depth.lanes.get(lane, 0)))
            age.add_metric([lane], max(0.0, now - oldest[lane]) if lane in oldest else 0.0)
        letters = len(await IdMap(store).dead_letters())
        head = await store.audit_head()
        families: list[Metric] = [
            queue,
            age,
            _gauge(
                "scim_bridge_dead_letters", "Changes that gave up after their retries (scim-bridge replay).", letters
            ),
            _gauge(
                "scim_bridge_audit_pending_entries",
                "Audit entries appended but not chained yet (Redis; SQLite chains at once).",
                head.pending,
            ),
        ]
        if self.sync is not None:
            families += await self._sync_state()
        return families

    async def _sync_state(self) -> list[Metric]:
        assert self.sync is not None
        engine = self.sync.engine
        brake, quarantine = await engine.brake.status(), await engine.quarantine.status()
        held = GaugeMetricFamily(
            "scim_bridge_held_changes", "Changes held by the mass-deprovision brake.", labels=["target"]
        )
        engaged = GaugeMetricFamily(
            "scim_bridge_brake_engaged", "1 while the target's mass-deprovision brake is engaged.", labels=["target"]
        )
        for target, state in brake["targets"].items():
            held.add_metric([target], float(state["held"]))
            engaged.add_metric([target], 1.0 if state["engaged"] else 0.0)
        states = GaugeMetricFamily(
            "scim_bridge_target_state",
            "1 for the target's current state (ok, degraded: this replica's recent failures, quarantined).",
            labels=["target", "state"],
        )
        parked = GaugeMetricFamily(
            "scim_bridge_parked_changes", "Changes parked while the target is quarantined.", labels=["target"]
        )
        for target, state in quarantine["targets"].items():
            for name in ("ok", "degraded", "quarantined"):
                states.add_metric([target, name], 1.0 if state["state"] == name else 0.0)
            parked.add_metric([target], float(state["parked"]))
        return [held, engaged, states, parked]


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))


async def endpoint(request: Request) -> Response:
    gauges: StoreGauges = request.app.state.metrics
    await gauges.refresh()
    body = generate_latest(metrics.REGISTRY) + generate_latest(gauges.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)

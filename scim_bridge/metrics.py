"""The process's Prometheus metrics: one registry that every layer records into and `/metrics`
serves (web/metrics.py). It imports nothing from the bridge, so the SCIM side, the sync engine and
the translators can all reach it without an arrow between layers.

Counters and histograms are per process: several workers in one process share them, and each
replica exposes its own (Prometheus sums them across instances). What is read from the store at
scrape time (queue, dead letters, held changes, target state, audit backlog) is shared state, the
same from every replica; web/metrics.py builds those families per scrape.

Recording must stay cheap on the hot path: one `labels(...).inc()` or `.observe()`, no I/O; what
every request records goes through RequestSeries, cheaper still.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

# The `_created` series would double every counter's output, and Prometheus does not use them.
disable_created_metrics()  # type: ignore[no-untyped-call]  # the client leaves it unannotated
REGISTRY = CollectorRegistry(auto_describe=True)

#: request latencies: SCIM answers in milliseconds, a Bulk or a slow store in seconds
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: sync lag: from a second (a quiet bridge) to an hour (a backlog, a quarantine); 300 s is the alert
_LAG_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


class Tally:
    """One label set's requests as one writer saw them (web/metrics.py's recorder: one per app, and
    an app runs in one event loop). `note` only appends the seconds, folded into bucket counts once
    FOLD of them are waiting: counting each request into its bucket as it came (a bisect, two float
    additions) cost ≈ 0.3 µs more a request in the app than an append (in process, cached GET).

    Only its writer calls `note`; a scrape from any thread reads `snapshot()` under the series'
    lock, which `fold` takes too, so a scrape never sees a batch both waiting and counted."""

    __slots__ = ("_bounds", "_counts", "_lock", "_waiting")

    def __init__(self, bounds: tuple[float, ...], lock: threading.Lock) -> None:
        self._bounds = bounds
        self._lock = lock
        self._waiting: list[float] = []
        #: one count per bucket (not cumulative; the last is +Inf), then the sum of the seconds
        self._counts = [0.0] * (len(bounds) + 2)

    def note(self, seconds: float) -> None:
        waiting = self._waiting
        waiting.append(seconds)
        if len(waiting) >= FOLD:
            with self._lock:
                self._fold()

    def _fold(self) -> None:  # the lock held
        _count_into(self._counts, self._bounds, self._waiting)
        self._waiting.clear()

    def snapshot(self) -> list[float]:
        """The counts with the waiting seconds in them (the lock held; the list copied in one C
        call, so an append racing with it is in or out, never half)."""
        counts = list(self._counts)
        _count_into(counts, self._bounds, list(self._waiting))
        return counts


#: seconds a Tally keeps before counting them: ≈ 8 KiB per label set and app
FOLD = 256


def _count_into(counts: list[float], bounds: tuple[float, ...], seconds: list[float]) -> None:
    ordered = sorted(seconds)
    below = 0
    for index, bound in enumerate(bounds):
        upto = bisect_right(ordered, bound, below)  # Prometheus' `le`: seconds ≤ bound
        counts[index] += upto - below
        below = upto
    counts[len(bounds)] += len(ordered) - below
    counts[-1] += sum(ordered)


class RequestSeries(Collector):
    """The request counter and duration histogram (`scim_bridge_http_requests_total`,
    `scim_bridge_http_request_duration_seconds`), by method, route template and status.

    Recorded for every request, so kept as plain numbers and turned into metric families when
    scraped: prometheus-client's `labels(...).inc()` plus `.observe()` cost ≈ 3 µs a request (label
    validation, one lock per value), 4 % of a cached GET /Users/{id} (profiled). A writer that
    records often (web/metrics.py's recorder) takes a Tally of its own per label set and notes into
    it without a lock; a scrape sums the tallies of each label set."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.bounds = buckets
        self._le = [floatToGoString(bound) for bound in buckets] + ["+Inf"]  # type: ignore[no-untyped-call]
        self._series: dict[tuple[str, str, str], list[Tally]] = {}  # per label set, its writers' tallies
        self._shared: dict[tuple[str, str, str], Tally] = {}  # per label set, the one `observe` notes into
        self._lock = threading.Lock()  # bridges in threads of one process (the tests) share the series

    def tally(self, method: str, route: str, status: str) -> Tally:
        """A new tally of one label set, for a caller that keeps it and is its only writer."""
        found = Tally(self.bounds, self._lock)
        with self._lock:
            self._series.setdefault((method, route, status), []).append(found)
        return found

    def observe(self, method: str, route: str, status: str, seconds: float) -> None:
        """One request, from any thread (slower than a kept tally: a lookup and the lock each time)."""
        key = (method, route, status)
        with self._lock:
            shared = self._shared.get(key)
            if shared is None:
                shared = self._shared[key] = Tally(self.bounds, self._lock)
                self._series.setdefault(key, []).append(shared)
            shared._waiting.append(seconds)
            if len(shared._waiting) >= FOLD:
                shared._fold()

    def collect(self) -> Iterable[Metric]:
        labels = ["method", "route", "status"]
        requests = CounterMetricFamily(
            "scim_bridge_http_requests",
            "Requests answered, by method, route template (never the raw path) and status code.",
            labels=labels,
        )
        duration = HistogramMetricFamily(
            "scim_bridge_http_request_duration_seconds",
            "Time to answer a request, by method, route template and status code.",
            labels=labels,
        )
        with self._lock:
            series = [(key, _summed([t.snapshot() for t in tallies])) for key, tallies in self._series.items()]
        for key, values in series:
            cumulative, buckets = 0.0, []
            for le, count in zip(self._le, values[:-1], strict=True):
                cumulative += count
                buckets.append((le, cumulative))
            requests.add_metric(list(key), cumulative)
            duration.add_metric(list(key), buckets, values[-1])
        return [requests, duration]


def _summed(writers: list[list[float]]) -> list[float]:
    return [sum(column) for column in zip(*writers, strict=True)]


HTTP = RequestSeries(_HTTP_BUCKETS)
REGISTRY.register(HTTP)
SCIM_WRITES = Counter(
    "scim_bridge_scim_writes",
    "SCIM writes by resource (Users, Groups, Bulk), operation (create, replace, patch, delete, bulk) "
    "and outcome (ok: 2xx, refused: 4xx, error: 5xx).",
    ["resource", "operation", "outcome"],
    registry=REGISTRY,
)
TARGET_REQUESTS = Counter(
    "scim_bridge_target_requests",
    "HTTP requests to a target, by target, method and status code ('none': no answer came).",
    ["target", "method", "status"],
    registry=REGISTRY,
)
TARGET_DURATION = Histogram(
    "scim_bridge_target_request_duration_seconds",
    "Time a target took to answer, by target and method (the rate limiter's wait excluded).",
    ["target", "method"],
    buckets=_HTTP_BUCKETS,
    registry=REGISTRY,
)
TARGET_RATE_LIMIT_WAITS = Counter(
    "scim_bridge_target_rate_limit_waits",
    "Target calls that waited for the client-side rate limiter or a target's Retry-After.",
    ["target"],
    registry=REGISTRY,
)
TARGET_RATE_LIMIT_WAIT_SECONDS = Counter(
    "scim_bridge_target_rate_limit_wait_seconds",
    "Time target calls spent waiting for the rate limiter.",
    ["target"],
    registry=REGISTRY,
)
TARGET_RETRIES = Counter(
    "scim_bridge_target_retries",
    "Target requests retried in place, by target and reason (Unavailable, TargetTimeout, Throttled).",
    ["target", "reason"],
    registry=REGISTRY,
)
SYNC_RETRIES = Counter(
    "scim_bridge_sync_retries",
    "Queue entries put back with a backoff after a failed sync, by lane.",
    ["lane"],
    registry=REGISTRY,
)
SYNC_DEAD_LETTERED = Counter(
    "scim_bridge_sync_dead_lettered",
    "Queue entries this process turned into dead letters, by lane.",
    ["lane"],
    registry=REGISTRY,
)
SYNC_LAG = Histogram(
    "scim_bridge_sync_lag_seconds",
    "From the change's queue entry (written in the same atomic step as the SCIM write, before its 2xx) "
    "to the target applied, by target and lane (revocation apart).",
    ["target", "lane"],
    buckets=_LAG_BUCKETS,
    registry=REGISTRY,
)
AUDIT_VERIFICATIONS = Counter(
    "scim_bridge_audit_verifications",
    "Scheduled audit chain verifications this replica ran (one replica per slot), by result (ok, broken).",
    ["result"],
    registry=REGISTRY,
)


@dataclass(frozen=True)
class Syncing:
    """The queue entry the current task syncs: when its change was queued, and in which lane."""

    enqueued: float  # epoch seconds
    lane: str
    retry: bool  # a later attempt: targets converged by an earlier one are not counted again


#: Set by the sync worker for each entry it processes; read where a pass's per-target outcome is known.
SYNCING: ContextVar[Syncing | None] = ContextVar("scim_bridge_metrics_syncing", default=None)

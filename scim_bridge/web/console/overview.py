"""Overview: each target's health, the queue, throughput, dead letters, held changes, the last
reconcile, the audit chain; refreshed by htmx polling of /console/overview/live."""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ...metrics import REGISTRY
from ...store import LANES
from ...sync.idmap import IdMap
from .charts import line_chart
from .guard import page
from .render import render
from .session import Session

RECENT_ENTRIES = 500  # how far back in the audit trail the last target error is looked for
#: outcomes that are answers, not failures: a lookup's 404 (the translators look things up by name)
NOT_ERRORS = (None, "ok", "Gone")


def _rate_limit(target: Any, name: str) -> dict[str, Any]:
    limiter = getattr(getattr(target, "http", None), "limiter", None)
    paused = max(0.0, getattr(limiter, "_paused_until", 0.0) - time.monotonic())
    waits = REGISTRY.get_sample_value("scim_bridge_target_rate_limit_waits_total", {"target": name})
    return {"rate": getattr(limiter, "rate", None), "paused": paused, "waits": int(waits or 0)}


async def _last_errors(request: Request) -> dict[str, dict[str, Any]]:
    """The newest failed call per target among the trail's last RECENT_ENTRIES entries."""
    store = request.app.state.store
    head = await store.audit_head()
    found: dict[str, dict[str, Any]] = {}
    for entry in await store.audit_read(max(0, head.last_seq - RECENT_ENTRIES), RECENT_ENTRIES):
        record = orjson.loads(entry.body)
        if record.get("kind") == "target" and record.get("outcome") not in NOT_ERRORS:
            found[record["target"]] = {
                "time": entry.time_us / 1e6,
                "what": f"{record.get('method')} {record.get('path')} → {record.get('status') or 'no answer'}"
                f" ({record.get('outcome')})",
            }
    return found


async def facts(request: Request) -> dict[str, Any]:
    app = request.app
    store, sync, console = app.state.store, app.state.sync, app.state.console
    depth, oldest = await store.queue_depth(), await store.queue_oldest()
    now = time.time()
    lanes = [
        {"name": lane, "depth": depth.lanes.get(lane, 0), "age": now - oldest[lane] if lane in oldest else None}
        for lane in LANES
    ]
    targets: list[dict[str, Any]] = []
    held_total = 0
    if sync is not None:
        health = (await sync.engine.quarantine.status())["targets"]
        brake = (await sync.engine.brake.status())["targets"]
        errors = await _last_errors(request)
        for name, target in sync.engine.targets.items():
            state = health.get(name, {})
            held_total += brake.get(name, {}).get("held") or 0
            targets.append(
                {
                    "name": name,
                    "state": state.get("state", "ok"),
                    "reason": state.get("reason"),
                    "since": state.get("since"),
                    "failure_percent": (state.get("recent") or {}).get("failure_percent"),
                    "brake": brake.get(name, {}),
                    "limit": _rate_limit(target, name),
                    "error": errors.get(name),
                }
            )
    raw = await store.kv_get("reconcile", "last")
    reconcile = orjson.loads(raw) if raw else None
    head = await store.audit_head()
    samples = list(console.history.samples)
    return {
        "lanes": lanes,
        "queue_total": depth.total,
        "targets": targets,
        "letters": len(await IdMap(store).dead_letters()),
        "held": held_total,
        "reconcile": {
            "time": reconcile.get("time"),
            "applied": reconcile.get("applied"),
            "drift": len(reconcile.get("drift", [])),
        }
        if reconcile
        else None,
        "audit": {"last_seq": head.last_seq, "pending": head.pending, "anchor": head.anchor_seq},
        "verified": await console.history.last_verification(),
        "per_minute": samples[-1].per_minute if samples else None,
        "charts": [
            line_chart("chart-queue", "Queue depth", [(s.time, s.queue) for s in samples], "entries"),
            line_chart("chart-throughput", "Throughput", [(s.time, s.per_minute) for s in samples], "entries/min"),
            line_chart("chart-lag", "Sync lag (oldest unsynced change)", [(s.time, s.lag) for s in samples], "s"),
        ],
        "sync": sync is not None,
    }


async def overview(request: Request, session: Session) -> Response:
    return render(request, "overview.html", session, title="Overview", **await facts(request))


async def live(request: Request, session: Session) -> Response:
    return render(request, "overview_live.html", session, **await facts(request))


async def verify_now(request: Request, session: Session) -> Response:
    await request.app.state.console.history.verify()
    if not request.headers.get("hx-request"):  # a plain form post (no script): back to the whole page
        return RedirectResponse("/console", 303)
    return render(request, "overview_live.html", session, **await facts(request))


ROUTES = [
    ("/console", page(overview), ["GET"]),
    ("/console/overview/live", page(live, touch=False), ["GET"]),
    ("/console/overview/verify", page(verify_now), ["POST"]),
]

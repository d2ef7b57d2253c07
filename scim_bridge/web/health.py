"""Health endpoints, all without credentials (auth/scopes.py OPEN_PATHS).

- GET /health: 200 when the store answers, else 503 (kept as it was, for existing monitors).
- GET /health/live: 200 while the process answers at all (a Kubernetes liveness probe: a failure
  restarts the pod, so it checks nothing a restart would not fix, the store least of all).
- GET /health/ready: 200 only when this replica should get traffic: the store answers a ping, the
  policy is loaded when one is configured, the sync workers run when there is a policy, and the
  bridge is not draining (SIGTERM, web/server.py). Else 503 with each check's state.

`Lifecycle` is the draining flag the server sets on SIGTERM and the readiness check reads.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..store import StoreUnavailable

#: a ping slower than this is a failed check: a probe has its own timeout (1 s in Kubernetes)
PING_TIMEOUT_SECONDS = 0.8


class Lifecycle:
    """Where the process is in its life: `draining` from the first SIGTERM on."""

    def __init__(self) -> None:
        self.draining = False


def lifecycle_of(app: Any) -> Lifecycle:
    """The app's Lifecycle, made on first use (an app that never met the server has one too)."""
    state = app.state
    if not hasattr(state, "lifecycle"):
        state.lifecycle = Lifecycle()
    found: Lifecycle = state.lifecycle
    return found


async def health(request: Request) -> JSONResponse:
    try:
        await request.app.state.store.ping()
    except StoreUnavailable:
        return JSONResponse(
            {"status": "degraded", "store": "unavailable"}, status_code=503, headers={"Retry-After": "5"}
        )
    return JSONResponse({"status": "ok", "store": "ok"})


async def live(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> JSONResponse:
    state = request.app.state
    checks = {
        "draining": "yes" if lifecycle_of(request.app).draining else "ok",
        "store": await _store(state.store),
        **_sync(state),
    }
    failed = [name for name, value in checks.items() if not _passes(value)]
    if failed:
        return JSONResponse(
            {"status": "not ready", "failed": failed, "checks": checks}, status_code=503, headers={"Retry-After": "5"}
        )
    return JSONResponse({"status": "ready", "checks": checks})


def _passes(value: str) -> bool:
    return value == "ok" or value.startswith("not configured") or value.startswith("off")


async def _store(store: Any) -> str:
    try:
        async with asyncio.timeout(PING_TIMEOUT_SECONDS):
            await store.ping()
    except StoreUnavailable:
        return "unavailable"
    except TimeoutError:
        return f"no answer within {PING_TIMEOUT_SECONDS:g} s"
    return "ok"


def _sync(state: Any) -> dict[str, str]:
    settings, sync = state.settings, getattr(state, "sync", None)
    if not settings.policy:
        return {"policy": "not configured", "workers": "not configured (no policy)"}
    if not settings.sync_workers:  # a SCIM-only replica by choice; the workers run elsewhere
        return {"policy": "off (SCIM_BRIDGE_SYNC_WORKERS=0)", "workers": "off (SCIM_BRIDGE_SYNC_WORKERS=0)"}
    if sync is None:
        return {"policy": "not loaded", "workers": "not started"}
    return {"policy": "ok", "workers": "ok" if sync.running else "stopped"}

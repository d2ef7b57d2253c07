"""Admin API for reconciliation (behind AdminAuth, like the rest of /admin/api):

GET  /admin/api/reconcile              the last report (any replica's, or the periodic job's)
POST /admin/api/reconcile?apply=true   run now; `apply` repairs what the bridge owns
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..sync.reconcile import Reconciler
from .admin import PREFIX

_RUNNING = asyncio.Lock()  # one run at a time per process: a second request waits for the first


async def last_report(request: Request) -> JSONResponse:
    raw = await request.app.state.store.kv_get("reconcile", "last")
    if raw is None:
        return JSONResponse({"error": "no reconciliation has run yet (POST /admin/api/reconcile)"}, 404)
    return JSONResponse(orjson.loads(raw))


async def run_now(request: Request) -> JSONResponse:
    sync = request.app.state.sync
    if sync is None or not sync.engine.targets:
        return JSONResponse({"error": "no sync policy with targets runs here (SCIM_BRIDGE_POLICY)"}, 404)
    apply = request.query_params.get("apply", "false").lower() in ("1", "true", "yes")
    async with _RUNNING:
        drift = await Reconciler(request.app.state.store, sync.engine.policy, sync.engine.targets).run(apply)
    return JSONResponse({"applied": apply, "drift": [asdict(d) for d in drift]})


def routes() -> list[Route]:
    return [
        Route(f"{PREFIX}/reconcile", last_report, methods=["GET"]),
        Route(f"{PREFIX}/reconcile", run_now, methods=["POST"]),
    ]

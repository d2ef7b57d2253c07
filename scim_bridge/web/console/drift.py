"""Drift: the last reconcile report; check now (reads the targets, changes nothing); repair what
the bridge owns after a confirmation page (operators only)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ...sync.reconcile import Reconciler
from .guard import page
from .render import render
from .session import Session

_RUNNING = asyncio.Lock()  # one console run at a time per process (a run lists every target)


async def _last(request: Request) -> dict[str, Any] | None:
    raw = await request.app.state.store.kv_get("reconcile", "last")
    return orjson.loads(raw) if raw else None


async def _run(request: Request, apply: bool) -> dict[str, Any]:
    sync = request.app.state.sync
    async with _RUNNING:
        found = await Reconciler(request.app.state.store, sync.engine.policy, sync.engine.targets).run(apply)
    return {"applied": apply, "drift": [asdict(d) for d in found]}


def _available(request: Request) -> bool:
    sync = request.app.state.sync
    return sync is not None and bool(sync.engine.targets)


async def drift(request: Request, session: Session) -> Response:
    return render(
        request, "drift.html", session, title="Drift", report=await _last(request), available=_available(request)
    )


async def check(request: Request, session: Session) -> Response:
    if not _available(request):
        return render(request, "drift.html", session, 404, title="Drift", report=None, available=False)
    report = await _run(request, apply=False)
    return render(
        request,
        "drift.html",
        session,
        title="Drift",
        report=await _last(request) or report,
        available=True,
        checked=True,
    )


async def confirm(request: Request, session: Session) -> Response:
    report = await _last(request)
    repairs = [d for d in (report or {}).get("drift", []) if d.get("repair")]
    return render(request, "drift_confirm.html", session, title="Repair drift", report=report, repairs=repairs)


async def apply(request: Request, session: Session) -> Response:
    if not _available(request):
        return render(request, "drift.html", session, 404, title="Drift", report=None, available=False)
    await _run(request, apply=True)
    return render(
        request, "drift.html", session, title="Drift", report=await _last(request), available=True, repaired=True
    )


ROUTES = [
    ("/console/drift", page(drift), ["GET"]),
    ("/console/drift/check", page(check), ["POST"]),
    ("/console/drift/apply", page(confirm, operator=True), ["GET"]),
    ("/console/drift/apply", page(apply, operator=True), ["POST"]),
]

"""Provisioning log: one row per object per target per sync pass, filtered, paged, exportable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ...audit import provisioning
from ...audit.trail import parse_time
from .guard import page
from .render import render
from .session import Session

PAGE = 100
FIELDS = ("user", "group", "target", "status", "correlation", "since", "until")


def _filters(request: Request) -> provisioning.ProvisioningFilter:
    p = request.query_params
    return provisioning.ProvisioningFilter(
        user=p.get("user") or None,
        group=p.get("group") or None,
        target=p.get("target") or None,
        status=p.get("status") or None,
        correlation=p.get("correlation") or None,
        since=parse_time(p.get("since") or None),
        until=parse_time(p.get("until") or None),
    )


async def log_page(request: Request, session: Session) -> Response:
    values = {name: request.query_params.get(name, "") for name in FIELDS}
    rows: list[dict[str, Any]] = []
    next_seq, error = None, None
    try:
        filters = _filters(request)
        after = int(request.query_params.get("after") or 0)
        found, next_seq = await provisioning.query(request.app.state.audit, filters, PAGE, after)
        rows = [row for record in found for row in provisioning.csv_rows(record)]
    except ValueError as problem:
        error = f"bad filter: {problem}"
    query = urlencode({k: v for k, v in request.query_params.items() if k in FIELDS and v})
    sync = request.app.state.sync
    return render(
        request,
        "log.html",
        session,
        400 if error else 200,
        title="Provisioning log",
        rows=rows,
        next_seq=next_seq,
        values=values,
        error=error,
        statuses=provisioning.STATUSES,
        targets=list(sync.engine.targets) if sync else [],
        query=query,
    )


async def export(request: Request, session: Session) -> Response:
    try:
        filters = _filters(request)
    except ValueError as problem:
        return render(request, "error.html", session, 400, title="Bad filter", message=str(problem))

    async def records() -> AsyncIterator[dict[str, Any]]:
        async for record in provisioning.entries(request.app.state.audit, filters):
            yield record

    return StreamingResponse(
        provisioning.export(records(), "csv"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="provisioning.csv"'},
    )


ROUTES = [
    ("/console/log", page(log_page), ["GET"]),
    ("/console/log/export", page(export), ["GET"]),
]

"""GET /admin/api/audit: the audit trail for operators (behind the admin tokens, web/admin.py).

Filters: user (SCIM id or userName), group (SCIM id or displayName), target, correlation,
since / until (ISO 8601, or seconds since the epoch), after (a seq, to page on). `format=json`
(default) answers {"entries": [...], "next": seq or null} with at most `limit` (default 100, at
most 1000) entries; `format=jsonl` and `format=csv` stream every match (or `limit` of them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..audit.export import export
from ..audit.trail import AuditFilter, AuditTrail, parse_time

MEDIA_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


async def audit(request: Request) -> Response:
    trail: AuditTrail = request.app.state.audit
    params = request.query_params
    try:
        filters = AuditFilter(
            user=params.get("user") or None,
            group=params.get("group") or None,
            target=params.get("target") or None,
            correlation=params.get("correlation") or None,
            since=parse_time(params.get("since")),
            until=parse_time(params.get("until")),
        )
        after = int(params.get("after") or 0)
        limit = int(params["limit"]) if params.get("limit") else None
    except ValueError as error:
        return JSONResponse({"error": f"bad filter: {error}"}, 400)
    fmt = params.get("format", "json")
    if fmt == "json":
        entries, next_seq = await trail.query(filters, min(limit or 100, 1000), after)
        return JSONResponse({"entries": entries, "next": next_seq})
    if fmt not in MEDIA_TYPES:
        return JSONResponse({"error": "format is json, jsonl or csv"}, 400)

    async def records() -> AsyncIterator[dict[str, Any]]:
        count = 0
        async for record in trail.entries(filters, after):
            yield record
            count += 1
            if limit is not None and count >= limit:
                return

    return StreamingResponse(
        export(records(), fmt),
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="audit.{fmt}"'},
    )


def routes(prefix: str) -> list[Route]:
    return [Route(f"{prefix}/audit", audit, methods=["GET"])]

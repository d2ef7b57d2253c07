"""GET /admin/api/audit: the audit trail for operators (behind the admin tokens, web/admin.py).

GET /admin/api/people/{person}/timeline: one person's timeline (audit/timeline.py), a SCIM id or
userName; since / until (ISO 8601), limit (default 1000, at most 10000: the newest), format json
(default: {"person", "entries"}), jsonl or csv. Both need the `admin` scope (auth/scopes.py).

Filters: user (SCIM id or userName), group (SCIM id or displayName), target, correlation,
since / until (ISO 8601, or seconds since the epoch), after (a seq, to page on). `format=json`
(default) answers {"entries": [...], "next": seq or null} with at most `limit` (default 100, at
most 1000) entries; `format=jsonl` and `format=csv` stream every match (or `limit` of them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..audit import timeline
from ..audit.activity import instant
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


async def person_timeline(request: Request) -> Response:
    params, person = request.query_params, request.path_params["person"]
    since, until = instant(params.get("since")), instant(params.get("until"))
    if (params.get("since") and since is None) or (params.get("until") and until is None):
        return JSONResponse({"error": "since and until are ISO 8601 times (or Unix times)"}, 400)
    try:
        limit = min(max(int(params.get("limit") or timeline.LIMIT), 1), 10_000)
    except ValueError:
        return JSONResponse({"error": "limit must be a number"}, 400)
    fmt = params.get("format", "json")
    if fmt not in ("json", *MEDIA_TYPES):
        return JSONResponse({"error": "format is json, jsonl or csv"}, 400)
    store = request.app.state.store
    found = await timeline.find_person(store, person)
    hooks = getattr(request.app.state, "webhooks", None)
    entries = await timeline.person_timeline(
        store, person, since, until, limit, request.app.state.audit, hooks.activity if hooks else None
    )
    if found is None and not entries:
        return JSONResponse({"error": f"no user {person!r} in the directory or the audit trail"}, 404)
    if fmt == "csv":
        return Response(timeline.csv_text(entries), media_type=MEDIA_TYPES["csv"])
    if fmt == "jsonl":
        body = "".join(orjson.dumps(e.as_json()).decode() + "\n" for e in entries)
        return Response(body, media_type=MEDIA_TYPES["jsonl"])
    who = {"id": found.id, "userName": found.user_name} if found else {"id": person, "userName": None}
    return JSONResponse({"person": who, "entries": [e.as_json() for e in entries]})


def routes(prefix: str) -> list[Route]:
    return [
        Route(f"{prefix}/audit", audit, methods=["GET"]),
        Route(f"{prefix}/people/{{person}}/timeline", person_timeline, methods=["GET"]),
    ]

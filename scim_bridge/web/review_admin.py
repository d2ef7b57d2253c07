"""GET /admin/api/review: the access review (audit/review.py), behind AdminAuth like the rest of
/admin/api.

    ?format=json (default) | csv | html    ?dormant_days=90    ?section=users (CSV only: one section)

It reads every target as it is now, so it takes as long as listing them does; nothing is changed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..audit.review import build_review
from ..audit.review_report import FORMATS, SECTIONS, render
from .admin import PREFIX


async def review(request: Request) -> Response:
    sync = request.app.state.sync
    if sync is None or not sync.engine.targets:
        return JSONResponse({"error": "no sync policy with targets runs here (SCIM_BRIDGE_POLICY)"}, 404)
    params = request.query_params
    fmt, section = params.get("format", "json"), params.get("section") or None
    if fmt not in FORMATS:
        return JSONResponse({"error": f"format is one of {', '.join(FORMATS)}"}, 400)
    if section is not None and (fmt != "csv" or section not in SECTIONS):
        return JSONResponse({"error": f"section (CSV only) is one of {', '.join(SECTIONS)}"}, 400)
    try:
        dormant_days = int(params.get("dormant_days", "90"))
        if dormant_days < 0:
            raise ValueError
    except ValueError:
        return JSONResponse({"error": "dormant_days must be a whole number of days"}, 400)
    result = await build_review(
        request.app.state.store,
        sync.engine.policy,
        sync.engine.targets,
        dormant_days,
        policy_file=request.app.state.settings.policy,
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"access-review-{stamp}{'-' + section if section else ''}.{fmt}"
    headers = {
        "Content-Disposition": f'{"inline" if fmt == "html" else "attachment"}; filename="{name}"',
        "X-Content-Type-Options": "nosniff",
    }
    if fmt == "html":  # the page needs no script and no outside asset: say so to the browser too
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return Response(render(result, fmt, section), media_type=FORMATS[fmt], headers=headers)


def routes() -> list[Route]:
    return [Route(f"{PREFIX}/review", review, methods=["GET"])]

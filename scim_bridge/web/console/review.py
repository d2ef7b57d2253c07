"""Access review: the existing report (audit/review.py) on screen, and its exports.

Building the report reads every target (at their rate limits: seconds in the sandbox), so the page
shows the last one built (kept in the store, for every replica) and "Run the review now" builds a
new one; the exports build a fresh one, as GET /admin/api/review does. Nothing is changed. The
tables are drawn from the report's JSON form, so they follow the report."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ...audit.review import build_review
from ...audit.review_report import FORMATS, SECTIONS
from ...audit.review_report import render as render_report
from .guard import page
from .render import HEADERS, render
from .session import Session

LAST = ("console", "review")  # {"time", "by", "report": the report's JSON}
TABLE_SECTIONS = ("users", "orphans", "dormant", "external")
MAX_COLUMNS, MAX_ROWS = 8, 200


async def _review(request: Request) -> Any:
    sync = request.app.state.sync
    return await build_review(
        request.app.state.store, sync.engine.policy, sync.engine.targets, policy_file=request.app.state.settings.policy
    )


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    return "" if value is None else str(value)


def _table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    columns = [k for k in (rows[0] if rows else {}) if not isinstance(rows[0][k], dict)][:MAX_COLUMNS]
    return {
        "columns": columns,
        "rows": [[_cell(r.get(c)) for c in columns] for r in rows[:MAX_ROWS]],
        "total": len(rows),
    }


async def review(request: Request, session: Session) -> Response:
    sync = request.app.state.sync
    if sync is None or not sync.engine.targets:
        message = "no sync policy with targets runs here"
        return render(request, "error.html", session, 404, title="Access review", message=message)
    raw = await request.app.state.store.kv_get(*LAST)
    last = orjson.loads(raw) if raw else None
    document = last["report"] if last else {}
    tables = {name: _table(document.get(name) or []) for name in TABLE_SECTIONS if isinstance(document.get(name), list)}
    summary = {k: _cell(v) for k, v in (document.get("summary") or {}).items()}
    meta = {k: document.get(k) for k in ("generated", "policy_source", "policy_digest", "dormant_days")}
    return render(
        request,
        "review.html",
        session,
        title="Access review",
        last=last,
        summary=summary,
        tables=tables,
        meta=meta,
        sections=SECTIONS,
    )


async def run(request: Request, session: Session) -> Response:
    sync = request.app.state.sync
    if sync is not None and sync.engine.targets:
        report = orjson.loads(render_report(await _review(request), "json"))
        await request.app.state.store.kv_put(*LAST, orjson.dumps({"by": session.name, "report": report}))
    return RedirectResponse("/console/review", 303)


async def export(request: Request, session: Session) -> Response:
    sync = request.app.state.sync
    fmt, section = request.query_params.get("format", "csv"), request.query_params.get("section") or None
    if sync is None or not sync.engine.targets or fmt not in FORMATS or (section and section not in SECTIONS):
        return render(request, "error.html", session, 400, title="Access review", message="unknown format or section")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"access-review-{stamp}{'-' + section if section else ''}.{fmt}"
    headers = {**HEADERS, "Content-Disposition": f'{"inline" if fmt == "html" else "attachment"}; filename="{name}"'}
    if fmt == "html":
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return Response(
        render_report(await _review(request), fmt, section if fmt == "csv" else None),
        media_type=FORMATS[fmt],
        headers=headers,
    )


ROUTES = [
    ("/console/review", page(review), ["GET"]),
    ("/console/review/run", page(run), ["POST"]),
    ("/console/review/export", page(export), ["GET"]),
]

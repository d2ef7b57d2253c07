"""Jinja2 templates shipped in the package (templates/), autoescaped, and the console's headers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from .session import Session

ENV = Environment(
    loader=PackageLoader("scim_bridge.web.console", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)

#: the pages load only their own script and style; no frame may hold them (clickjacking)
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

SCREENS = (
    ("overview", "Overview", "/console"),
    ("people", "People", "/console/people"),
    ("groups", "Groups", "/console/groups"),
    ("log", "Provisioning log", "/console/log"),
    ("letters", "Dead letters", "/console/dead-letters"),
    ("held", "Held changes", "/console/held"),
    ("drift", "Drift", "/console/drift"),
    ("review", "Access review", "/console/review"),
    ("policy", "Policy", "/console/policy"),
)


def when(value: Any) -> str:
    """Epoch seconds or ISO text → "2026-12-03 08:15:02 UTC"; anything else as given."""
    if value is None or value == "":
        return "—"
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    text = str(value)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return text


def age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


ENV.filters["when"] = when
ENV.filters["age"] = age


def render(request: Request, template: str, session: Session | None, status: int = 200, **context: Any) -> HTMLResponse:
    page = ENV.get_template(template).render(
        session=session, screens=SCREENS, path=request.url.path, request=request, **context
    )
    return HTMLResponse(page, status, headers=HEADERS)

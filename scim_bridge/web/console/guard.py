"""Every console page passes here: a live session (else the login page), the CSRF token on every
POST (else 403), and the operator role for the actions that change something (else 403)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .render import render
from .session import Session, Sessions

Handler = Callable[[Request, Session], Awaitable[Response]]
CSRF_FIELD, CSRF_HEADER = "csrf_token", "x-csrf-token"
MAX_FORM_BYTES = 1024 * 1024  # a pasted or uploaded policy is the largest form


def sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.console.sessions  # app.state is untyped
    return sessions


async def form(request: Request) -> FormData:
    """The request's form (parsed once; the guard already read it for the CSRF token)."""
    cached = request.scope.get("console_form")
    if cached is None:
        cached = await request.form(max_files=1, max_fields=200, max_part_size=MAX_FORM_BYTES)
        request.scope["console_form"] = cached
    return cached


def page(handler: Handler, *, operator: bool = False, touch: bool = True) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        session = await sessions(request).current(request, touch=touch)
        if session is None:
            target = "/console/login?next=" + quote(request.url.path, safe="/")
            if request.headers.get("hx-request"):  # htmx follows HX-Redirect with a full page load
                return Response(status_code=401, headers={"HX-Redirect": target})
            if request.method != "GET":
                return forbidden(request, None, "your session has ended: log in again", 401)
            return RedirectResponse(target, 303)
        if request.method == "POST":
            given = request.headers.get(CSRF_HEADER) or _field(await form(request))
            if not session.csrf_ok(given):
                return forbidden(request, session, "the form's CSRF token is missing or wrong: reload the page")
        if operator and not session.operator:
            return forbidden(request, session, "this needs the operator role (a credential with the admin scope)")
        return await handler(request, session)

    return endpoint


def _field(data: FormData) -> str | None:
    value: Any = data.get(CSRF_FIELD)
    return value if isinstance(value, str) else None


def forbidden(request: Request, session: Session | None, message: str, status: int = 403) -> Response:
    return render(request, "error.html", session, status, title="Not allowed", message=message)

"""Log in with a console or admin bearer token, and log out.

The login form has its own CSRF token before any session exists: a random value both in a
cookie scoped to the login path and in the form, which must match (a cross-site page can set
neither, and the cookie is SameSite=Strict).
"""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ...store import StoreUnavailable
from .guard import CSRF_FIELD, forbidden, form, sessions
from .render import render
from .session import COOKIE, Session, clear_cookie, role_of, set_cookie

LOGIN_COOKIE = "sb_console_login"
LOGIN_PATH = "/console/login"
THROTTLE_KEY = "console-login"  # the throttle's per-client bucket at each address


def _next(value: str | None) -> str:
    """Only a console path: a login link must not send anyone elsewhere (open redirect)."""
    if value and value.startswith("/console") and "//" not in value and "\\" not in value:
        return value
    return "/console"


def _login_page(request: Request, status: int = 200, error: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        None,
        status,
        csrf=token,
        error=error,
        next=_next(request.query_params.get("next")),
        idle_minutes=round(request.app.state.settings.console_idle_minutes),
    )
    set_cookie(response, request, LOGIN_COOKIE, token, LOGIN_PATH)
    return response


async def login_form(request: Request) -> Response:
    return _login_page(request)


async def login(request: Request) -> Response:
    data = await form(request)
    given, expected = data.get(CSRF_FIELD), request.cookies.get(LOGIN_COOKIE)
    if not (isinstance(given, str) and expected and hmac.compare_digest(given.encode(), expected.encode())):
        return forbidden(request, None, "the login form's CSRF token is missing or wrong: reload the page")
    token = data.get("token")
    token = token.strip() if isinstance(token, str) else ""
    authenticator = request.app.state.auth
    # failed logins are throttled like failed client authentications at /oauth/token (auth/throttle.py)
    address = request.client.host if request.client else ""
    wait = authenticator.throttle.retry_after(address, THROTTLE_KEY)
    if wait:
        response = _login_page(request, 429, f"too many failed logins from here: try again in {wait} s")
        response.headers["Retry-After"] = str(wait)
        return response
    try:
        principal = await authenticator.authenticate({"authorization": f"Bearer {token}"}) if token else None
    except StoreUnavailable:
        return _login_page(request, 503, "the store is unavailable: try again shortly")
    if principal is None:
        authenticator.throttle.failed(address, THROTTLE_KEY)
        return _login_page(request, 401, "that credential is not valid")
    role = role_of(principal)
    if role is None:
        return _login_page(
            request,
            403,
            "that credential has neither the console nor the admin scope "
            "(scim-bridge credentials create-token NAME --scope console)",
        )
    session_id, _ = await sessions(request).create(principal, role)
    target = data.get("next")
    response = RedirectResponse(_next(target if isinstance(target, str) else None), 303)
    set_cookie(response, request, COOKIE, session_id)
    clear_cookie(response, request, LOGIN_COOKIE, LOGIN_PATH)
    return response


async def logout(request: Request, session: Session) -> Response:
    await sessions(request).end(session)
    response = RedirectResponse(LOGIN_PATH + "?bye=1", 303)
    clear_cookie(response, request, COOKIE)
    return response

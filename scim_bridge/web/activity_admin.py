"""Admin API for activity in the targets (behind AdminAuth, like the rest of /admin/api):

GET  /admin/api/activity?user=&type=&since=&until=&limit=   webhook events, newest first
GET  /admin/api/last-login?user=                             last login per target (all users without `user`)
POST /admin/api/last-login/poll                              poll the targets now
"""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..audit.activity import instant
from ..audit.last_login import LastLoginPoller
from ..scim.filters import fold
from .admin import PREFIX

MAX_LIMIT = 1000


def _when(request: Request, name: str) -> tuple[datetime | None, str | None]:
    value = request.query_params.get(name)
    if not value:
        return None, None
    moment = instant(value)
    return (moment, None) if moment else (None, f"{name} must be an ISO 8601 time or date, or a Unix time")


async def activity(request: Request) -> JSONResponse:
    q = request.query_params
    since, problem = _when(request, "since")
    until, problem_until = _when(request, "until")
    if problem or problem_until:
        return JSONResponse({"error": problem or problem_until}, 400)
    if until is not None and len(q.get("until", "")) == 10:  # a bare date: the whole day
        until = until.replace(hour=23, minute=59, second=59, microsecond=999999)
    try:
        limit = min(max(int(q.get("limit", "100")), 1), MAX_LIMIT)
    except ValueError:
        return JSONResponse({"error": "limit must be a number"}, 400)
    records = await request.app.state.webhooks.activity.query(q.get("user"), q.get("type"), since, until, limit)
    return JSONResponse({"count": len(records), "records": records})


def _poller(request: Request) -> LastLoginPoller | None:
    return request.app.state.last_login  # type: ignore[no-any-return]  # Starlette's app.state is untyped


async def last_login(request: Request) -> JSONResponse:
    poller = _poller(request)
    if poller is None:
        return JSONResponse(
            {
                "error": "last-login polling is off (no sync policy with targets, or "
                "SCIM_BRIDGE_LAST_LOGIN_POLL_SECONDS=0)"
            },
            404,
        )
    user = request.query_params.get("user")
    if not user:
        return JSONResponse({"users": await poller.everyone()})
    store, scim_id = request.app.state.store, user
    if await store.get("User", user) is None:  # a userName, then
        scim_id = next(iter(await store.lookup("User", "username", fold(user))), user)
    return JSONResponse({"user": scim_id, "targets": await poller.for_user(scim_id)})


async def poll_now(request: Request) -> JSONResponse:
    poller = _poller(request)
    if poller is None:
        return JSONResponse({"error": "last-login polling is off"}, 404)
    return JSONResponse(await poller.poll_once())


def routes() -> list[Route]:
    return [
        Route(f"{PREFIX}/activity", activity, methods=["GET"]),
        Route(f"{PREFIX}/last-login", last_login, methods=["GET"]),
        Route(f"{PREFIX}/last-login/poll", poll_now, methods=["POST"]),
    ]

"""The operator console at /console: server-rendered pages (Jinja2, htmx, inline SVG), shipped in
the package (templates/, static/): no CDN, no JavaScript build step.

Each screen is a module of its own (overview, people, groups, log, letters, held, drift, review,
policy) built on the same functions the admin JSON API and the CLI call. Login, the session, the
CSRF token and the two roles live in session.py, login.py and guard.py; auth/scopes.py lets
/console through AuthMiddleware because the console checks its own session.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ...store import Store
from . import drift, groups, held, letters, log, login, overview, people, policy, review
from .guard import page
from .history import History
from .session import Sessions


class Console:
    """What the console keeps per app: the sessions (in the store) and the charts' samples."""

    def __init__(self, store: Store, idle_minutes: float) -> None:
        self.sessions = Sessions(store, idle_minutes * 60)
        self.history = History(store)

    def start(self) -> None:
        self.history.start()

    async def stop(self) -> None:
        await self.history.stop()


def routes() -> list[BaseRoute]:
    found: list[BaseRoute] = [
        Mount("/console/static", StaticFiles(packages=[("scim_bridge.web.console", "static")]), name="console-static"),
        Route("/console/login", login.login_form, methods=["GET"]),
        Route("/console/login", login.login, methods=["POST"]),
        Route("/console/logout", page(login.logout, touch=False), methods=["POST"]),
    ]
    for module in (overview, people, groups, log, letters, held, drift, review, policy):
        found += [Route(path, endpoint, methods=methods) for path, endpoint, methods in module.ROUTES]
    return found

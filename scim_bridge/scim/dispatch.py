"""The SCIM endpoints' dispatcher: a dictionary lookup instead of a regex per route.

Starlette's router tries each route's regex in turn and wraps every request in its exception
middleware; on `GET /Users/{id}` that was a third of the bridge's own time (profiled with
cProfile and py-spy under wrk). SCIM paths have two shapes, `/{Endpoint}` and
`/{Endpoint}/{id}`, so the routes declared in routes.py are compiled into two dictionaries, and
SCIM errors are answered here, once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..store import StoreUnavailable
from .errors import SCIM_CONTENT_TYPE, ScimError

log = logging.getLogger("scim_bridge.scim")

Endpoint = Callable[[Request], Awaitable[Response]]
PREFIX = "/scim/v2"


def error_response(error: ScimError) -> Response:
    return Response(error.body(), status_code=error.status, headers=error.headers, media_type=SCIM_CONTENT_TYPE)


class Unanswered(Response):
    """What a request whose client went away gets: nothing (uvicorn would drop it anyway)."""

    def __init__(self) -> None:
        super().__init__(status_code=499)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        return None


def client_gone(scope: Scope) -> Response:
    # The client's doing, not a fault of the bridge: INFO, no traceback.
    log.info("client disconnected before its request was complete: %s %s", scope["method"], scope["path"])
    return Unanswered()


class ScimDispatcher:
    """ASGI middleware: requests under /scim/v2 go to their endpoint, anything else to `app`."""

    def __init__(self, app: ASGIApp, routes: list[Route]) -> None:
        self.app = app
        self.exact: dict[str, dict[str, Endpoint]] = {}
        self.with_param: dict[str, tuple[str, dict[str, Endpoint]]] = {}
        #: lowercased lookup key → the route as declared: the metrics' `route` label (never the raw path)
        self.templates: dict[str, str] = {}
        for route in routes:
            methods = {m for m in (route.methods or ()) if m != "HEAD"} or {"GET"}
            if "{" in route.path:
                prefix, _, param = route.path.rpartition("/")
                table = self.with_param.setdefault(prefix.lower(), (param.strip("{}"), {}))[1]
                self.templates.setdefault("{}" + prefix.lower(), PREFIX + route.path)
            else:
                table = self.exact.setdefault(route.path.lower(), {})
                self.templates.setdefault(route.path.lower(), PREFIX + route.path)
            for method in methods:
                table[method] = route.endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        response = await self._respond(scope, receive, path[len(PREFIX) :])
        await response(scope, receive, send)

    async def _respond(self, scope: Scope, receive: Receive, subpath: str) -> Response:
        path_params: dict[str, str] = {}
        table = self.exact.get(subpath.lower())
        if table is not None:
            scope["route_template"] = self.templates[subpath.lower()]
        else:
            prefix, _, value = subpath.rpartition("/")
            found = self.with_param.get(prefix.lower())
            if found is not None and value:
                path_params[found[0]] = value
                table = found[1]
                scope["route_template"] = self.templates["{}" + prefix.lower()]
        try:
            if table is None:
                raise ScimError(404, "no such endpoint")
            endpoint = table.get(scope["method"])
            if endpoint is None:
                raise ScimError(405, "method not allowed on this endpoint", headers={"Allow": ", ".join(sorted(table))})
            scope["path_params"] = path_params
            return await endpoint(Request(scope, receive))
        except ScimError as error:
            return error_response(error)
        except ClientDisconnect:
            return client_gone(scope)
        except StoreUnavailable:
            return error_response(ScimError(503, "the store is unavailable, retry later", headers={"Retry-After": "5"}))
        except Exception:
            log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            return error_response(ScimError(500, "internal error; the request was not applied"))

"""The admin JSON API (/admin/api/), read-mostly, with its own bearer tokens (SCIM_BRIDGE_ADMIN_TOKENS):
sync status for operators — queue depth per lane, dead letters, one resource's state in every
target — and the replay of dead letters. Without admin tokens configured it answers 404."""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..sync.idmap import IdMap
from ..sync.status import target_status
from . import audit_admin, held_admin

PREFIX = "/admin/api"


class AdminAuth:
    """Admin paths take admin tokens only; SCIM credentials do not open them."""

    def __init__(self, app: ASGIApp, tokens: list[str]) -> None:
        self.app = app
        self.tokens = [t.encode() for t in tokens if t]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/admin"):
            await self.app(scope, receive, send)
            return
        if not self.tokens:
            await JSONResponse({"error": "the admin API is off (set SCIM_BRIDGE_ADMIN_TOKENS)"}, 404)(
                scope, receive, send
            )
            return
        authorization = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = authorization.partition(b" ")
        if scheme.lower() != b"bearer" or not any(hmac.compare_digest(token.strip(), t) for t in self.tokens):
            await JSONResponse(
                {"error": "admin credentials required"},
                401,
                headers={"WWW-Authenticate": 'Bearer realm="scim-bridge-admin"'},
            )(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _sync(request: Request) -> Any:
    return request.app.state.sync


async def queue(request: Request) -> JSONResponse:
    store = request.app.state.store
    depth = await store.queue_depth()
    letters = await IdMap(store).dead_letters()
    return JSONResponse(
        {
            "lanes": depth.lanes,
            "total": depth.total,
            "dead_letters": len(letters),
            "targets": list(_sync(request).engine.targets) if _sync(request) else [],
        }
    )


async def dead_letters(request: Request) -> JSONResponse:
    letters = await IdMap(request.app.state.store).dead_letters()
    return JSONResponse([{"resource": key, **value} for key, value in letters])


async def replay(request: Request) -> JSONResponse:
    return JSONResponse({"requeued": await IdMap(request.app.state.store).replay()})


def _resource_state(resource_type: str) -> Any:
    async def endpoint(request: Request) -> JSONResponse:
        store, scim_id = request.app.state.store, request.path_params["id"]
        record = await store.get(resource_type, scim_id)
        targets = list(_sync(request).engine.targets) if _sync(request) else []
        document = orjson.loads(record.body) if record else None
        modified = (document or {}).get("meta", {}).get("lastModified")
        idmap = IdMap(store)
        entries = {name: await idmap.get(name, resource_type, scim_id) for name in targets}
        if record is None and not any(entries.values()):
            return JSONResponse({"error": f"{resource_type} {scim_id} not found"}, 404)
        return JSONResponse(
            {
                "id": scim_id,
                "scim": document,
                "targets": {name: target_status(entry, modified) for name, entry in entries.items()},
            }
        )

    return endpoint


def routes() -> list[Route]:
    return [
        Route(f"{PREFIX}/queue", queue, methods=["GET"]),
        Route(f"{PREFIX}/dead-letters", dead_letters, methods=["GET"]),
        Route(f"{PREFIX}/replay", replay, methods=["POST"]),
        Route(PREFIX + "/users/{id}", _resource_state("User"), methods=["GET"]),
        Route(PREFIX + "/groups/{id}", _resource_state("Group"), methods=["GET"]),
        *audit_admin.routes(PREFIX),
        *held_admin.routes(PREFIX),
    ]

"""The admin JSON API (/admin/api/), read-mostly, for credentials with the `admin` scope: the tokens
of SCIM_BRIDGE_ADMIN_TOKENS, and stored tokens or OAuth clients made with
`scim-bridge credentials create-token NAME --scope admin` (rotated and revoked like any other).
Sync status for operators — queue depth per lane, dead letters, one resource's state in every
target — and the replay of dead letters. Without any admin credential it answers 404."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..auth import scopes
from ..auth.middleware import Authenticator, forbidden
from ..store import StoreUnavailable
from ..sync.idmap import IdMap
from ..sync.status import target_status
from . import audit_admin, held_admin, provision_admin, targets_admin

PREFIX = "/admin/api"


class AdminAuth:
    """Admin paths need a credential with the `admin` scope; SCIM and app credentials get 403.

    Credentials are checked by the app's Authenticator (`app.state.auth`, the same one
    AuthMiddleware uses), so admin tokens from the environment and from the store, and OAuth
    access tokens of admin clients, are all accepted, and revocation reaches them the same way.
    `tokens` (SCIM_BRIDGE_ADMIN_TOKENS) is kept for the signature; the book holds them."""

    def __init__(
        self, app: ASGIApp, tokens: list[str] | None = None, authenticator: Authenticator | None = None
    ) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(scopes.ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        authenticator: Authenticator = self.authenticator or scope["app"].state.auth
        try:
            principal = await authenticator.from_scope(scope)
            if principal is not None and scopes.allows(principal.scopes, scopes.ADMIN):
                scope.setdefault("state", {})["principal"] = principal
                await self.app(scope, receive, send)
                return
            off = not await authenticator.book.has_admin_credentials()
        except StoreUnavailable:
            await JSONResponse({"error": "the store is unavailable, retry later"}, 503, headers={"Retry-After": "5"})(
                scope, receive, send
            )
            return
        if off:
            message = (
                "the admin API is off: set SCIM_BRIDGE_ADMIN_TOKENS or create an admin credential "
                "(scim-bridge credentials create-token NAME --scope admin)"
            )
            response = JSONResponse({"error": message}, 404)
        elif principal is None:
            response = JSONResponse(
                {"error": "admin credentials required"},
                401,
                headers={"WWW-Authenticate": 'Bearer realm="scim-bridge-admin"'},
            )
        else:
            response = JSONResponse({"error": forbidden(principal, scopes.ADMIN, scope["method"], scope["path"])}, 403)
        await response(scope, receive, send)


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
        *provision_admin.routes(PREFIX),
        *targets_admin.routes(PREFIX),
    ]

"""Per request under /scim/v2 and /admin: the correlation id (the client's X-Request-Id when it
sends a sane one, else a new one; always echoed in X-Request-Id), who is asking, and a record of
the write requests the bridge refused (4xx after authentication, and the failed operations of a
Bulk request). Applied writes are recorded by the store step that applies them (trail.py)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..targets.http import CALL_OBSERVER
from .context import CORRELATION_ID, SCIM_REQUEST, ScimRequest, accept_correlation_id
from .trail import AuditTrail

SCIM_PREFIX = "/scim/v2"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_TYPES = {"users": "User", "groups": "Group"}


class AuditMiddleware:
    def __init__(self, app: ASGIApp, trail: AuditTrail | None) -> None:
        self.app = app
        self.trail = trail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        is_scim = path.startswith(SCIM_PREFIX)
        if scope["type"] != "http" or not (is_scim or path.startswith("/admin")):
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        correlation = accept_correlation_id(given)
        CORRELATION_ID.set(correlation)  # this request's own task and context
        method = scope["method"]
        recorded = is_scim and self.trail is not None and method in WRITE_METHODS and not path.endswith("/.search")
        state = scope.setdefault("state", {})  # shared with the auth middleware, which adds the principal
        if recorded:  # SCIM reads record nothing and call no target: their path stays lean
            SCIM_REQUEST.set(ScimRequest(method, path, state))
        if (recorded or not is_scim) and self.trail is not None:
            CALL_OBSERVER.set(self.trail.record_target_call)
        header = (b"x-request-id", correlation.encode())
        response: dict[str, Any] = {"status": 0, "body": []}
        bulk = path.lower().endswith("/bulk")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            elif recorded and message["type"] == "http.response.body" and (bulk or response["status"] >= 400):
                response["body"].append(message.get("body", b""))
                if not message.get("more_body") and state.get("principal") is not None:
                    # Recorded before the client has the answer, so the trail keeps the order in which
                    # a client's requests happened (its next request cannot be recorded first).
                    await self._record_refusals(method, path, response["status"], b"".join(response["body"]), bulk)
            await send(message)

        await self.app(scope, receive, send_with_id)

    async def _record_refusals(self, method: str, path: str, status: int, body: bytes, bulk: bool) -> None:
        assert self.trail is not None
        if 400 <= status < 500:
            resource_type, resource_id = _resource_of(path)
            detail, scim_type = _error_of(body)
            await self.trail.refused(method, path, status, detail, scim_type, resource_type, resource_id)
        elif bulk and status == 200:
            try:
                operations = orjson.loads(body).get("Operations") or []
            except (orjson.JSONDecodeError, AttributeError):
                return
            for operation in operations:
                if not isinstance(operation, dict) or int(operation.get("status") or 0) < 400:
                    continue
                detail, scim_type = _error_of(orjson.dumps(operation.get("response") or {}))
                if operation.get("bulkId"):
                    detail = f"bulkId {operation['bulkId']}: {detail}"
                await self.trail.refused(
                    str(operation.get("method", "")), path, int(operation["status"]), detail, scim_type
                )


def _resource_of(path: str) -> tuple[str | None, str | None]:
    parts = [part for part in path[len(SCIM_PREFIX) :].split("/") if part]
    resource_type = _TYPES.get(parts[0].lower()) if parts else None
    return resource_type, (parts[1] if resource_type and len(parts) > 1 else None)


def _error_of(body: bytes) -> tuple[str, str | None]:
    try:
        error = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace"), None
    if not isinstance(error, dict):
        return str(error)[:200], None
    return str(error.get("detail", "")), error.get("scimType")

"""iconik Notifications service: webhook CRUD (`/API/notifications/v1/webhooks/`) and delivery.

From ../shared/specs/iconik/notifications.json and research/iconik.md §7.2. Other services call
`Notifier.emit` when something a webhook can subscribe to happens (collections created, updated or
deleted; ACLs changed); each matching ENABLED webhook gets a POST, fire-and-forget.

Delivered payload — UNCONFIRMED, iconik publishes no field list ("a payload containing information
about what has happened … in JSON"):
    {"event_type": "collections", "realm": "entity" | "acls", "operation": "create" | "update" | "delete",
     "object_id": "<id>", "system_domain_id": "<id>", "user_id": "<token user>",
     "request_id": "<uuid>", "date_created": "<timestamp>", "data": {<the object, or the ACL change>}}
Only `data` has any public footing: the spec's `query` example filters on `data.status`,
`data.external_id`, so the changed object sits under `data`. The rest mirrors the webhook's own
subscription fields. Custom `headers` configured on the webhook are sent; there is no signature.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .iconik_common import Refusal, find, json_body, new_id, now

if TYPE_CHECKING:
    from .iconik import IconikState, IconikSwitches

PREFIX = "/API/notifications/v1"
WEBHOOK_STATUSES = ("ENABLED", "DISABLED", "FAILING", "DELETED")
WRITABLE = ("name", "description", "url", "event_type", "realm", "operation", "object_id", "status", "headers", "query")


class Notifier:
    def __init__(self, state: IconikState, switches: IconikSwitches) -> None:
        self.state, self.switches = state, switches
        self.in_flight: set[asyncio.Task[None]] = set()  # held so the loop does not drop running deliveries

    def emit(self, event_type: str, realm: str, operation: str, object_id: str, data: dict[str, Any]) -> None:
        if not self.switches.webhooks_deliver:
            return
        payload = {
            "event_type": event_type,
            "realm": realm,
            "operation": operation,
            "object_id": object_id,
            "system_domain_id": self.state.system_domain_id,
            "user_id": self.state.token_user_id,
            "request_id": new_id(),
            "date_created": now(),
            "data": data,
        }
        for hook in list(self.state.webhooks.values()):
            if self._matches(hook, payload):
                task = asyncio.get_running_loop().create_task(self._deliver(hook, payload))
                self.in_flight.add(task)
                task.add_done_callback(self.in_flight.discard)

    @staticmethod
    def _matches(hook: dict[str, Any], event: dict[str, Any]) -> bool:
        # An unset realm/operation/object_id subscribes to all of them. The `query` filter language is
        # not emulated: such webhooks get every event of their type (UNCONFIRMED grammar).
        if hook["status"] not in ("ENABLED", "FAILING") or hook["event_type"] != event["event_type"]:
            return False
        return all(hook.get(name) in (None, "", "all", event[name]) for name in ("realm", "operation", "object_id"))

    async def _deliver(self, hook: dict[str, Any], payload: dict[str, Any]) -> None:
        try:
            async with httpx.AsyncClient(timeout=self.switches.webhook_timeout_seconds) as client:
                answer = await client.post(hook["url"], json=payload, headers=hook.get("headers") or {})
            failure = None if answer.is_success else f"HTTP {answer.status_code}"
        except (httpx.HTTPError, OSError) as exc:  # failures never reach the API caller
            failure = f"{type(exc).__name__}: {exc}"
        hook["last_payload"] = _compact(payload)
        if failure is None:
            hook.pop("first_failed_at", None)
            hook["failures"] = 0
            if hook["status"] == "FAILING":
                hook["status"] = "ENABLED"
            return
        hook["last_error"] = failure
        hook.setdefault("first_failed_at", now())
        hook["failures"] = hook.get("failures", 0) + 1
        # research/iconik.md §7.2: status is auto-set to FAILING when calls keep failing; after how
        # many failures (and whether it ever recovers by itself) is UNCONFIRMED, hence the switch.
        if hook["failures"] >= self.switches.webhook_failures_before_failing and hook["status"] == "ENABLED":
            hook["status"] = "FAILING"


def _compact(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))


def _view(hook: dict[str, Any]) -> dict[str, Any]:
    # The spec types the timestamps and last_* as plain strings: unset ones are left out, not null.
    return {
        k: v for k, v in hook.items() if k != "failures" and (v is not None or k in ("realm", "operation", "object_id"))
    }


def _checked(body: dict[str, Any]) -> dict[str, Any]:
    problems: dict[str, list[str]] = {}
    for name in ("event_type", "status", "url"):  # WebhookCreateSchema.required
        if not body.get(name):
            problems[name] = ["Missing data for required field."]
    if body.get("status") and body["status"] not in WEBHOOK_STATUSES:
        problems["status"] = [f"Must be one of: {', '.join(WEBHOOK_STATUSES)}."]
    headers = body.get("headers")
    if headers is not None and not (isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values())):
        problems["headers"] = ["Must be an object of strings."]
    if problems:
        raise Refusal(problems, 400)
    return {name: body.get(name) for name in WRITABLE}


def routes(state: IconikState, switches: IconikSwitches) -> list[Route]:
    async def list_webhooks(request: Request) -> JSONResponse:
        # Unpaginated {"objects": [...]} (WebhooksSchema); DELETED ones are gone from the list.
        return JSONResponse({"objects": [_view(h) for h in state.webhooks.values() if h["status"] != "DELETED"]})

    async def create_webhook(request: Request) -> JSONResponse:
        hook = {"id": new_id(), **_checked(await json_body(request)), "date_created": now(), "date_modified": now()}
        state.webhooks[hook["id"]] = hook
        return JSONResponse(_view(hook), status_code=201)

    async def get_webhook(request: Request) -> JSONResponse:
        hook = find("Webhook", state.webhooks, request.path_params["webhook_id"])
        # The spec documents 201 for this GET (research/iconik.md §7.2: probably a spec error); the
        # switch lets a test pin either.
        return JSONResponse(_view(hook), status_code=switches.webhook_get_status)

    async def replace_webhook(request: Request) -> JSONResponse:
        hook = find("Webhook", state.webhooks, request.path_params["webhook_id"])
        hook.update(_checked(await json_body(request)))
        hook["date_modified"] = now()
        return JSONResponse(_view(hook))

    async def delete_webhook(request: Request) -> Response:
        hook = find("Webhook", state.webhooks, request.path_params["webhook_id"])
        del state.webhooks[hook["id"]]
        return Response(status_code=204)

    return [
        Route(f"{PREFIX}/webhooks/", list_webhooks, methods=["GET"]),
        Route(f"{PREFIX}/webhooks/", create_webhook, methods=["POST"]),
        Route(f"{PREFIX}/webhooks/{{webhook_id}}/", get_webhook, methods=["GET"]),
        Route(f"{PREFIX}/webhooks/{{webhook_id}}/", replace_webhook, methods=["PUT"]),
        Route(f"{PREFIX}/webhooks/{{webhook_id}}/", delete_webhook, methods=["DELETE"]),
    ]

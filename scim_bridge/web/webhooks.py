"""Webhook receivers: POST /webhooks/<target> for every registered target with a receiver
(targets/<name>_webhook.py: how a delivery is proven, what it says), feeding audit/activity.py.

They authenticate by what the sender can prove, not by the bridge's bearer tokens (AuthMiddleware
lets /webhooks/ through), and are never open: a receiver whose secret is not configured answers
404, as /admin/api does without admin tokens — the endpoint does not exist until it is configured.
A delivery the target's receiver refuses (unsigned, forged, stale, a wrong secret) gets 401.

Each answers 200 for a delivery stored or already stored (duplicates are harmless; a vendor may
retry anything but 200), 401 for a refused one, 400 for a body that is not a JSON object.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..audit.activity import ActivityLog, Event, Identities
from ..config import Settings
from ..store import STANDARD_LANE, Store, StoreUnavailable
from ..sync.access_sync import governed_content_added
from ..sync.approvals import queue_arrivals
from ..sync.engine import ACCESS_ENTRY
from ..sync.policy import Policy, PolicyError, load_policy, target_credentials
from ..targets.capabilities import WebhookReceiver
from ..targets.registry import TARGETS

log = logging.getLogger("scim_bridge.webhooks")

PREFIX = "/webhooks"


@dataclass
class Receivers:
    activity: ActivityLog
    by_target: dict[str, WebhookReceiver] = field(default_factory=dict)
    max_body: int = 1024 * 1024
    policy: Policy | None = None  # for the deliveries that must re-run the grants


def receivers(settings: Settings, store: Store, policy: Policy | None) -> Receivers:
    """Each registered target's receiver, its secrets from the policy's target credentials
    (optional `webhook_secret`); a target the policy does not enable has one that is off."""
    found: dict[str, WebhookReceiver] = {}
    owners: dict[str, str] = {}
    try:
        if policy is None and settings.policy:
            policy = load_policy(settings.policy)
    except PolicyError as error:
        log.warning("webhook receivers off: %s", error)
    for name, entry in TARGETS.items():
        section = policy.targets.section(name) if policy is not None else None
        section = section if section is not None and section.enabled else None
        credentials: dict[str, str] = {}
        try:
            if section is not None:
                credentials = target_credentials(section)
        except PolicyError as error:  # a SCIM-only process (no workers) need not hold target credentials
            log.warning("webhook receivers off: %s", error)
        receiver = entry.webhook_receiver(credentials, section, settings.webhook_max_age_seconds)
        if receiver is not None:
            found[name] = receiver
            owners.update(receiver.key_owners)
    return Receivers(ActivityLog(store, Identities(store, owners)), found, settings.max_body_bytes, policy)


def _refuse(request: Request, status: int, message: str) -> JSONResponse:
    if status == 401:
        client = request.client.host if request.client else "?"
        log.warning("webhook refused on %s from %s: %s", request.url.path, client, message)
    return JSONResponse({"error": message}, status_code=status)


async def _capped_body(request: Request, limit: int) -> bytes | None:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _json_object(request: Request, limit: int) -> tuple[bytes | None, dict[str, Any] | JSONResponse]:
    body = await _capped_body(request, limit)
    if body is None:
        return None, _refuse(request, 413, f"body larger than {limit} bytes")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict):
        return body, _refuse(request, 400, "the body must be a JSON object")
    return body, payload


async def _store(hooks: Receivers, event: Event) -> JSONResponse:
    try:
        stored, record = await hooks.activity.ingest(event)
    except StoreUnavailable:
        return JSONResponse({"error": "the store is unavailable, retry later"}, 503, headers={"Retry-After": "5"})
    return JSONResponse(
        {
            "stored": stored,
            "duplicate": not stored,
            "event_id": record["event_id"],
            "type": record["type"],
            "actor": record["actor"],
        }
    )


def receive(name: str) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def delivery(request: Request) -> JSONResponse:
        """A delivery: proven as the target's receiver says, normalized, stored."""
        hooks: Receivers = request.app.state.webhooks
        receiver = hooks.by_target.get(name)
        if receiver is None or not receiver.configured:
            return _refuse(request, 404, receiver.off_message if receiver else f"no webhook receiver for {name}")
        unproven = receiver.header_refusal(request.headers)
        if unproven:
            return _refuse(request, 401, unproven)
        body, payload = await _json_object(request, hooks.max_body)
        if body is None:
            assert isinstance(payload, JSONResponse)
            return payload
        refused = receiver.refusal(request.headers, body, time.time())
        if refused:
            return _refuse(request, 401, refused)
        if isinstance(payload, JSONResponse):
            return payload
        answer = await _store(hooks, receiver.normalise(payload, request.headers))
        if answer.status_code == 200 and hooks.policy is not None and receiver.regrants_on_content:
            # Content made under an apply_to_contents collection gets its ACL now, not at the next
            # periodic grants pass.
            try:
                if await governed_content_added(hooks.activity.store, hooks.policy, payload):
                    await hooks.activity.store.enqueue(*ACCESS_ENTRY, STANDARD_LANE)
            except StoreUnavailable:
                log.warning("webhook: could not queue the grants run; the periodic pass covers it")
        if answer.status_code == 200 and hooks.policy is not None:
            # New content under a reviewer rule: its approval request (sync/approvals.py). Queued
            # for a duplicate delivery too: routing asks once however often it runs.
            try:
                await queue_arrivals(hooks.activity.store, hooks.policy, name, receiver.arrivals(payload))
            except StoreUnavailable:
                log.warning("webhook: could not queue reviewer routing; the content waits for a repeated delivery")
        return answer

    return delivery


def routes() -> list[Route]:
    return [
        Route(f"{PREFIX}/{name}", receive(name), methods=["POST"])
        for name, entry in TARGETS.items()
        if entry.webhook is not None
    ]

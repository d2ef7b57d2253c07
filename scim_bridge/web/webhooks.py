"""Webhook receivers: POST /webhooks/cloudinary and POST /webhooks/iconik, feeding audit/activity.py.

They authenticate by what the sender can prove, not by the bridge's bearer tokens (AuthMiddleware
lets /webhooks/ through), and are never open: a receiver whose secret is not configured answers
404, as /admin/api does without admin tokens — the endpoint does not exist until it is configured.

- Cloudinary signs every notification: `X-Cld-Signature` is the hex SHA-1 or SHA-256 digest of
  body + `X-Cld-Timestamp` + the product environment's API secret (Cloudinary docs, "Verifying
  notification signatures"; research/cloudinary.md §5.2). Unsigned, forged or stale deliveries get
  401. Stale: older than `webhook_max_age_seconds` (default 7200, the `valid_for` default of the
  Cloudinary SDK's verify_notification_signature) or more than 5 minutes in the future.
- iconik signs nothing; a webhook can carry custom `headers` (WebhookCreateSchema, research/iconik.md
  §7.2), so it is created with `X-Bridge-Secret: <secret>` and the receiver compares that header.
  UNCONFIRMED that iconik sends the configured headers on every delivery (the spec has the field; no
  page says more).

Both answer 200 for a delivery stored or already stored (duplicates are harmless; Cloudinary retries
anything but 200), 401 for a refused one, 400 for a body that is not a JSON object.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..audit.activity import ActivityLog, Event, Identities, normalize_cloudinary, normalize_iconik
from ..config import Settings
from ..store import STANDARD_LANE, Store, StoreUnavailable
from ..sync.access_sync import governed_content_added
from ..sync.engine import ACCESS_ENTRY
from ..sync.policy import Policy, PolicyError, load_policy, target_credentials

log = logging.getLogger("scim_bridge.webhooks")

PREFIX = "/webhooks"
ICONIK_SECRET_HEADER = "x-bridge-secret"
FUTURE_SKEW_SECONDS = 300
_DIGESTS = {40: "sha1", 64: "sha256"}  # hex length → algorithm


@dataclass
class Receivers:
    activity: ActivityLog
    cloudinary_secrets: list[str] = field(default_factory=list)
    iconik_secret: str | None = None
    max_age: float = 7200.0
    max_body: int = 1024 * 1024
    policy: Policy | None = None  # for the iconik deliveries that must re-run the grants


def receivers(settings: Settings, store: Store, policy: Policy | None) -> Receivers:
    """The receivers' secrets from the policy's target credentials (optional `webhook_secret`)."""
    cloudinary_secrets: list[str] = []
    iconik_secret, owners = None, {}
    try:
        if policy is None and settings.policy:
            policy = load_policy(settings.policy)
        if policy is not None and policy.targets.cloudinary.enabled:
            value = target_credentials(policy.targets.cloudinary).get("webhook_secret", "")
            # Several product environments (or a rotation) may notify the same URL: one secret each.
            cloudinary_secrets = [s.strip() for s in value.split(",") if s.strip()]
            owners = dict(policy.targets.cloudinary.api_key_owners)
        if policy is not None and policy.targets.iconik.enabled:
            iconik_secret = target_credentials(policy.targets.iconik).get("webhook_secret") or None
    except PolicyError as error:  # a SCIM-only process (no workers) need not hold target credentials
        log.warning("webhook receivers off: %s", error)
    return Receivers(
        ActivityLog(store, Identities(store, owners)),
        cloudinary_secrets,
        iconik_secret,
        settings.webhook_max_age_seconds,
        settings.max_body_bytes,
        policy,
    )


def cloudinary_signature_ok(body: bytes, timestamp: str, signature: str, secrets: list[str]) -> bool:
    signature = signature.strip().lower()
    algorithm = _DIGESTS.get(len(signature))
    if algorithm is None:
        return False
    matched = False
    for secret in secrets:  # every secret is tried, so the time taken does not say which one matched
        expected = hashlib.new(algorithm, body + timestamp.encode() + secret.encode()).hexdigest()
        matched |= hmac.compare_digest(expected, signature)
    return matched


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


async def cloudinary(request: Request) -> JSONResponse:
    """A Cloudinary notification: verified (signature, then freshness), normalized, stored."""
    hooks: Receivers = request.app.state.webhooks
    if not hooks.cloudinary_secrets:
        return _refuse(
            request,
            404,
            "the Cloudinary webhook receiver is off: set webhook_secret in the Cloudinary "
            "credentials (CLOUDINARY_WEBHOOK_SECRET)",
        )
    timestamp = request.headers.get("x-cld-timestamp", "").strip()
    signature = request.headers.get("x-cld-signature", "").strip()
    body, payload = await _json_object(request, hooks.max_body)
    if body is None:
        assert isinstance(payload, JSONResponse)
        return payload
    if not timestamp or not signature:
        return _refuse(request, 401, "unsigned notification: X-Cld-Timestamp and X-Cld-Signature are required")
    if not cloudinary_signature_ok(body, timestamp, signature, hooks.cloudinary_secrets):
        return _refuse(request, 401, "the X-Cld-Signature does not match the body and timestamp")
    if not timestamp.isdigit():
        return _refuse(request, 401, "X-Cld-Timestamp is not a Unix time")
    age = time.time() - int(timestamp)
    if age > hooks.max_age:
        return _refuse(
            request, 401, f"stale notification: signed {int(age)} s ago, the limit is {int(hooks.max_age)} s"
        )
    if age < -FUTURE_SKEW_SECONDS:
        return _refuse(request, 401, "X-Cld-Timestamp is in the future")
    if isinstance(payload, JSONResponse):
        return payload
    return await _store(hooks, normalize_cloudinary(payload, timestamp))


async def iconik(request: Request) -> JSONResponse:
    """An iconik webhook delivery: the shared secret header compared, normalized, stored."""
    hooks: Receivers = request.app.state.webhooks
    if not hooks.iconik_secret:
        return _refuse(
            request,
            404,
            "the iconik webhook receiver is off: set webhook_secret in the iconik credentials (ICONIK_WEBHOOK_SECRET)",
        )
    given = request.headers.get(ICONIK_SECRET_HEADER, "")
    if not given:
        return _refuse(request, 401, "missing X-Bridge-Secret header")
    if not hmac.compare_digest(given.encode(), hooks.iconik_secret.encode()):
        return _refuse(request, 401, "the X-Bridge-Secret header does not match")
    _, payload = await _json_object(request, hooks.max_body)
    if isinstance(payload, JSONResponse):
        return payload
    answer = await _store(hooks, normalize_iconik(payload))
    if answer.status_code == 200 and hooks.policy is not None:
        # A sub-collection made in iconik under an apply_to_contents collection gets its ACL now,
        # not at the next periodic grants pass (access.iconik.regrant_seconds).
        try:
            if await governed_content_added(hooks.activity.store, hooks.policy, payload):
                await hooks.activity.store.enqueue(*ACCESS_ENTRY, STANDARD_LANE)
        except StoreUnavailable:
            log.warning("webhook: could not queue the grants run; the periodic pass covers it")
    return answer


def routes() -> list[Route]:
    return [
        Route(f"{PREFIX}/cloudinary", cloudinary, methods=["POST"]),
        Route(f"{PREFIX}/iconik", iconik, methods=["POST"]),
    ]

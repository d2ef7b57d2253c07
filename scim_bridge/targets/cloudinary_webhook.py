"""Cloudinary's webhook deliveries (Capability.ACTIVITY): a notification is signed, so the receiver
(web/webhooks.py, POST /webhooks/cloudinary) checks the signature and its age, then this module turns
the payload into an activity Event (audit/activity.py).

Cloudinary signs every notification: `X-Cld-Signature` is the hex SHA-1 or SHA-256 digest of
body + `X-Cld-Timestamp` + the product environment's API secret (Cloudinary docs, "Verifying
notification signatures"; research/cloudinary.md §5.2). Unsigned, forged or stale deliveries are
refused. Stale: older than `webhook_max_age_seconds` (default 7200, the `valid_for` default of the
Cloudinary SDK's verify_notification_signature) or more than 5 minutes in the future.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..audit.activity import OBJECT_IDS_LIMIT, Event, body_digest, instant, object_field, trimmed
from .capabilities import ContentArrival

FUTURE_SKEW_SECONDS = 300
_DIGESTS = {40: "sha1", 64: "sha256"}  # hex length → algorithm

# Cloudinary notification_type → activity type (research/cloudinary.md §5.2 lists the event types).
CLOUDINARY_TYPES = {
    "upload": "upload",
    "delete": "delete",
    "delete_by_token": "delete",
    "moderation": "moderation",
    "moderation_summary": "moderation",
    "access_control_changed": "access_control",
}


@dataclass
class CloudinaryReceiver:
    secrets: list[str]  # one per product environment (or rotation) that notifies the same URL
    max_age: float = 7200.0
    key_owners: Mapping[str, str] = field(default_factory=dict)  # API key → who holds it (policy api_key_owners)
    regrants_on_content: bool = False
    off_message: str = (
        "the Cloudinary webhook receiver is off: set webhook_secret in the Cloudinary "
        "credentials (CLOUDINARY_WEBHOOK_SECRET)"
    )

    @property
    def configured(self) -> bool:
        return bool(self.secrets)

    def header_refusal(self, headers: Mapping[str, str]) -> str | None:
        if not headers.get("x-cld-timestamp", "").strip() or not headers.get("x-cld-signature", "").strip():
            return "unsigned notification: X-Cld-Timestamp and X-Cld-Signature are required"
        return None  # the signature covers the body: checked once it is read

    def refusal(self, headers: Mapping[str, str], body: bytes, now: float) -> str | None:
        unsigned = self.header_refusal(headers)
        if unsigned:
            return unsigned
        timestamp = headers["x-cld-timestamp"].strip()
        signature = headers["x-cld-signature"].strip()
        if not signature_ok(body, timestamp, signature, self.secrets):
            return "the X-Cld-Signature does not match the body and timestamp"
        if not timestamp.isdigit():
            return "X-Cld-Timestamp is not a Unix time"
        age = now - int(timestamp)
        if age > self.max_age:
            return f"stale notification: signed {int(age)} s ago, the limit is {int(self.max_age)} s"
        if age < -FUTURE_SKEW_SECONDS:
            return "X-Cld-Timestamp is in the future"
        return None

    def normalise(self, payload: dict[str, Any], headers: Mapping[str, str]) -> Event:
        return normalize_cloudinary(payload, headers.get("x-cld-timestamp", "").strip())

    def arrivals(self, payload: dict[str, Any]) -> list[ContentArrival]:
        return []  # moderation is a queue with no assignee (research §4.1): nothing to request


def receiver(credentials: Mapping[str, str], section: Any, max_age: float) -> CloudinaryReceiver:
    """The registry's webhook factory: the secrets from the credentials' optional `webhook_secret`."""
    value = credentials.get("webhook_secret", "")
    secrets = [s.strip() for s in value.split(",") if s.strip()]
    return CloudinaryReceiver(secrets, max_age, dict(getattr(section, "api_key_owners", {}) or {}))


def signature_ok(body: bytes, timestamp: str, signature: str, secrets: list[str]) -> bool:
    signature = signature.strip().lower()
    algorithm = _DIGESTS.get(len(signature))
    if algorithm is None:
        return False
    matched = False
    for secret in secrets:  # every secret is tried, so the time taken does not say which one matched
        expected = hashlib.new(algorithm, body + timestamp.encode() + secret.encode()).hexdigest()
        matched |= hmac.compare_digest(expected, signature)
    return matched


def normalize_cloudinary(payload: dict[str, Any], timestamp: str) -> Event:
    """A Cloudinary notification (research/cloudinary.md §5.2). The acting identity is
    notification_context.triggered_by: source "ui" carries the Console user's id (= the Provisioning
    user id), source "api" the API key — both UNCONFIRMED against a live payload."""
    notification_type = str(payload.get("notification_type") or "unknown")
    context = object_field(payload, "notification_context")
    triggered_by = object_field(context, "triggered_by")
    source, actor_id = triggered_by.get("source"), triggered_by.get("id")
    kind = {"ui": "user", "api": "api_key"}.get(str(source), "unknown") if actor_id else "unknown"
    moment = instant(context.get("triggered_at")) or instant(payload.get("timestamp")) or instant(timestamp)
    return Event(
        "cloudinary",
        body_digest(payload),
        CLOUDINARY_TYPES.get(notification_type, notification_type),
        notification_type,
        _cloudinary_object(payload),
        moment or datetime.now(UTC),
        kind,
        str(actor_id) if actor_id else None,
        trimmed(payload),
    )


def _cloudinary_object(payload: dict[str, Any]) -> dict[str, Any]:
    # Uploads name one public_id; deletes and access-control changes list `resources` (a list of
    # assets, or a mapping keyed by public_id — which one each type sends is UNCONFIRMED).
    ids: list[str] = []
    if payload.get("public_id"):
        ids.append(str(payload["public_id"]))
    resources = payload.get("resources")
    if isinstance(resources, list):
        ids += [str(r["public_id"]) for r in resources if isinstance(r, dict) and r.get("public_id")]
    elif isinstance(resources, dict):
        ids += [str(key) for key in resources]
    folder = payload.get("folder_path") or payload.get("path") or payload.get("folder")
    kind = "asset" if ids else ("folder" if folder else "unknown")
    if not ids and folder:
        ids.append(str(folder))
    found: dict[str, Any] = {"kind": kind, "id": ids[0] if ids else None}
    if len(ids) > 1:
        found["ids"] = ids[:OBJECT_IDS_LIMIT]
    if payload.get("asset_id"):
        found["asset_id"] = payload["asset_id"]
    return found

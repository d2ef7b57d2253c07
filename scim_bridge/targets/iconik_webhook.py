"""iconik's webhook deliveries (Capability.ACTIVITY): iconik signs nothing; a webhook can carry
custom `headers` (WebhookCreateSchema, research/iconik.md §7.2), so it is created with
`X-Bridge-Secret: <secret>` and the receiver (web/webhooks.py, POST /webhooks/iconik) compares that
header. UNCONFIRMED that iconik sends the configured headers on every delivery (the spec has the
field; no page says more). A stored delivery may announce content under an `apply_to_contents`
collection, so the receiver asks for a grants run (`regrants_on_content`).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..audit.activity import Event, body_digest, instant, object_field, trimmed
from .capabilities import ContentArrival

SECRET_HEADER = "x-bridge-secret"
ICONIK_KINDS = {"collections": "collection", "assets": "asset"}


@dataclass
class IconikReceiver:
    secret: str | None
    key_owners: Mapping[str, str] = field(default_factory=dict)
    regrants_on_content: bool = True
    off_message: str = (
        "the iconik webhook receiver is off: set webhook_secret in the iconik credentials (ICONIK_WEBHOOK_SECRET)"
    )

    @property
    def configured(self) -> bool:
        return bool(self.secret)

    def header_refusal(self, headers: Mapping[str, str]) -> str | None:
        return self.refusal(headers, b"", 0.0)  # the shared secret is the whole proof

    def refusal(self, headers: Mapping[str, str], body: bytes, now: float) -> str | None:
        given = headers.get(SECRET_HEADER, "")
        if not given:
            return "missing X-Bridge-Secret header"
        if not hmac.compare_digest(given.encode(), (self.secret or "").encode()):
            return "the X-Bridge-Secret header does not match"
        return None

    def normalise(self, payload: dict[str, Any], headers: Mapping[str, str]) -> Event:
        return normalize_iconik(payload)

    def arrivals(self, payload: dict[str, Any]) -> list[ContentArrival]:
        return content_arrivals(payload)


def receiver(credentials: Mapping[str, str], section: Any, max_age: float) -> IconikReceiver:
    """The registry's webhook factory: the secret from the credentials' optional `webhook_secret`."""
    return IconikReceiver(credentials.get("webhook_secret") or None)


def normalize_iconik(payload: dict[str, Any]) -> Event:
    """An iconik webhook delivery. iconik publishes no payload field list (research/iconik.md §7.2,
    UNCONFIRMED); this reads the shape the emulator sends: event_type, realm, operation, object_id,
    user_id, request_id, date_created, data."""
    event_type, realm = str(payload.get("event_type") or "unknown"), str(payload.get("realm") or "")
    operation, object_id = str(payload.get("operation") or ""), payload.get("object_id")
    kind = ICONIK_KINDS.get(event_type, event_type)
    data = object_field(payload, "data")
    # One request may change several objects: the request id alone is not an event id.
    request_id = payload.get("request_id")
    event_id = f"{request_id}:{realm}:{operation}:{object_id}" if request_id else body_digest(payload)
    found: dict[str, Any] = {"kind": kind, "id": str(object_id) if object_id else None}
    if data.get("title") or data.get("name"):
        found["title"] = data.get("title") or data.get("name")
    user_id = payload.get("user_id")
    return Event(
        "iconik",
        event_id,
        "access_control" if realm == "acls" else kind,
        operation or realm,
        found,
        instant(payload.get("date_created")) or datetime.now(UTC),
        "user" if user_id else "unknown",
        str(user_id) if user_id else None,
        trimmed(payload),
    )


def content_arrivals(payload: dict[str, Any]) -> list[ContentArrival]:
    """The asset a delivery says is new: a created asset (`assets`/`entity`/`create`), or one added
    to a collection (`collections`/`contents`/`create`, `data` a CollectionContentSchema). The
    payload shape is the emulator's (UNCONFIRMED, research/iconik.md §7.2); which of the two events
    iconik sends for an upload into a collection is UNCONFIRMED too, so both are read. The router
    reads where the asset sits from iconik itself, not from the payload."""
    event_type, realm, operation = payload.get("event_type"), payload.get("realm"), payload.get("operation")
    data = object_field(payload, "data")
    if event_type == "assets" and realm in (None, "entity") and operation == "create" and payload.get("object_id"):
        return [ContentArrival("assets", str(payload["object_id"]))]
    if event_type == "collections" and realm == "contents" and operation == "create":
        if data.get("object_type") == "assets" and data.get("object_id"):
            return [ContentArrival("assets", str(data["object_id"]))]
    return []

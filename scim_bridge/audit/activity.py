"""Activity in the targets, from their webhooks: each event normalized, joined to the identity behind
it, and kept beside the audit trail.

Neither target offers an audit query API (research/cloudinary.md §5.1, research/iconik.md §7.1), so
what people do there reaches the bridge as webhook deliveries. Each becomes one record:

    {"source": "cloudinary" | "iconik", "event_id", "type", "action", "object": {"kind", "id", "ids"?,
     "title"?}, "time", "received", "actor": {"kind": "user" | "api_key" | "unknown", "target_id",
     "scim_id", "userName", "owner", "agency"?: the agency of a key the bridge created},
     "raw": {the payload, trimmed}}

`type` is what a reviewer filters on (upload, delete, moderation, access_control, asset, collection,
or Cloudinary's own notification type when it is none of those); `action` is the target's own word.

Store layout, in the store's key/value space (shared by every replica):

    activity:{YYYY-MM-DD}  "{source}:{event id}" → record   (the UTC day of the event's time)
    activity-seen          "{source}:{event id}" → day      (a retried delivery is stored once)
    activity-days          day → "1"                        (which day namespaces exist)

A query reads only the days between `since` and `until`.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ..store import Store
from ..sync.idmap import IdMap

SEEN = "activity-seen"
AGENCY_KEY_MARK = ":agency-key:"  # the grants run keeps "{target}:agency-key:{agency}" → API key
DAYS = "activity-days"
RAW_LIMIT = 4096  # bytes of payload kept per record; bigger ones keep their top-level scalars
OBJECT_IDS_LIMIT = 100


def day_namespace(day: str) -> str:
    return f"activity:{day}"


@dataclass
class Event:
    """A delivery, normalized but not yet joined to an identity."""

    source: str
    event_id: str
    type: str
    action: str
    object: dict[str, Any]
    time: datetime
    actor_kind: str  # "user": a target account id; "api_key": a Cloudinary API key; "unknown"
    actor_id: str | None
    raw: dict[str, Any] = field(default_factory=dict)


def instant(value: Any) -> datetime | None:
    """An ISO 8601 string or a Unix epoch as an aware UTC datetime; None when it is neither."""
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def body_digest(payload: Any) -> str:
    """A stable id for a payload that carries none: the same content re-serialized hashes the same."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def trimmed(payload: dict[str, Any]) -> dict[str, Any]:
    if len(orjson.dumps(payload)) <= RAW_LIMIT:
        return payload
    scalars = {k: v for k, v in payload.items() if isinstance(v, str | int | float | bool) or v is None}
    return {**{k: (v[:200] if isinstance(v, str) else v) for k, v in scalars.items()}, "_trimmed": True}


# normalizers -----------------------------------------------------------------------------------------
def object_field(payload: dict[str, Any], name: str) -> dict[str, Any]:
    """payload[name] when it is a JSON object, else {}: a vendor may send null or a string there."""
    value = payload.get(name)
    return value if isinstance(value, dict) else {}


# identities ------------------------------------------------------------------------------------------
class Identities:
    """Target account id → SCIM user through the ID map, and Cloudinary API key → its holder: the
    agency whose key the bridge itself created (policy `agency_keys`, kept in the grants run's kv),
    else the operator's `api_key_owners`.

    The ID map is keyed by SCIM id, so the reverse index is built by one scan per target, kept, and
    rebuilt on a miss — at most once per `rescan_seconds` for the same id (an account the bridge does
    not manage, acting again and again, must not cost a scan per event)."""

    def __init__(
        self, store: Store, api_key_owners: dict[str, str] | None = None, rescan_seconds: float = 30.0
    ) -> None:
        self.store, self.idmap = store, IdMap(store)
        self.api_key_owners = api_key_owners or {}
        self.rescan_seconds = rescan_seconds
        self._index: dict[str, dict[str, str]] = {}
        self._missed: dict[tuple[str, str], float] = {}  # (target, account id) → when a scan last missed it
        self._agency_keys: dict[str, str] = {}  # API key → agency, as the grants run recorded them
        self._keys_read = float("-inf")

    async def reverse_index(self, target: str) -> dict[str, str]:
        """Target user id → SCIM id, fresh from the ID map."""
        index = {
            entry["id"]: key.split("/", 1)[1]
            for key, entry in await self.idmap.entries(target)
            if key.startswith("User/") and entry.get("id")
        }
        self._index[target] = index
        return index

    async def scim_id(self, target: str, account_id: str) -> str | None:
        index = self._index.get(target) or {}
        if account_id in index:
            return index[account_id]
        now = time.monotonic()
        if now - self._missed.get((target, account_id), float("-inf")) < self.rescan_seconds:
            return None
        found = (await self.reverse_index(target)).get(account_id)
        if found is None:
            if len(self._missed) > 10_000:
                self._missed.clear()
            self._missed[(target, account_id)] = now
        return found

    async def agency_of_key(self, api_key: str) -> str | None:
        """The agency whose key the bridge created; re-read at most once per `rescan_seconds`."""
        if api_key not in self._agency_keys and time.monotonic() - self._keys_read >= self.rescan_seconds:
            from ..sync.access_sync import ACCESS

            self._agency_keys = {
                value.decode(): key.split(AGENCY_KEY_MARK, 1)[1]
                for key, value in await self.store.kv_items(ACCESS)
                if AGENCY_KEY_MARK in key
            }
            self._keys_read = time.monotonic()
        return self._agency_keys.get(api_key)

    async def user_name(self, scim_id: str) -> str | None:
        record = await self.store.get("User", scim_id)
        return orjson.loads(record.body).get("userName") if record else None

    async def actor(self, event: Event) -> dict[str, Any]:
        actor: dict[str, Any] = {
            "kind": event.actor_kind,
            "target_id": event.actor_id,
            "scim_id": None,
            "userName": None,
            "owner": None,
        }
        if event.actor_kind == "api_key" and event.actor_id:
            # The key is an identifier, not a secret (it is in every signed upload URL); the
            # secret is never part of a payload.
            agency = await self.agency_of_key(event.actor_id)
            if agency is not None:
                actor["agency"] = agency
            # what the operator wrote wins: it may name the key more precisely than the group does
            actor["owner"] = self.api_key_owners.get(event.actor_id) or agency or f"api-key:{event.actor_id}"
        elif event.actor_kind == "user" and event.actor_id:
            scim_id = await self.scim_id(event.source, event.actor_id)
            if scim_id is not None:
                actor["scim_id"], actor["userName"] = scim_id, await self.user_name(scim_id)
                actor["owner"] = actor["userName"]
        return actor


# the log ---------------------------------------------------------------------------------------------
class ActivityLog:
    def __init__(self, store: Store, identities: Identities) -> None:
        self.store, self.identities = store, identities

    async def ingest(self, event: Event) -> tuple[bool, dict[str, Any]]:
        """Join and store one event; (False, record) when this delivery was already stored."""
        record: dict[str, Any] = {
            "source": event.source,
            "event_id": event.event_id,
            "type": event.type,
            "action": event.action,
            "object": event.object,
            "time": iso(event.time),
            "received": iso(datetime.now(UTC)),
            "actor": await self.identities.actor(event),
            "raw": event.raw,
        }
        key, day = f"{event.source}:{event.event_id}", record["time"][:10]
        if not await self.store.kv_put(SEEN, key, day.encode(), only_if_absent=True):
            day = (await self.store.kv_get(SEEN, key) or day.encode()).decode()
            if await self.store.kv_get(day_namespace(day), key) is not None:
                return False, record
            # seen but not stored: the process stopped in between; store it now
        await self.store.kv_put(DAYS, day, b"1")
        await self.store.kv_put(day_namespace(day), key, orjson.dumps(record))
        return True, record

    async def prune(self, retention_days: float, now: datetime | None = None) -> int:
        """Forget whole days older than the retention (the audit trail's own); returns how many
        events went. Their dedupe marks go too: a delivery that old is refused as stale anyway."""
        cutoff = ((now or datetime.now(UTC)) - timedelta(days=retention_days)).date().isoformat()
        old_days = {day for day, _ in await self.store.kv_items(DAYS) if day < cutoff}
        if not old_days:
            return 0
        gone = 0
        for key, seen_day in await self.store.kv_items(SEEN):
            if seen_day.decode() in old_days:
                await self.store.kv_delete(SEEN, key)
        for day in sorted(old_days):
            for key, _ in await self.store.kv_items(day_namespace(day)):
                await self.store.kv_delete(day_namespace(day), key)
                gone += 1
            await self.store.kv_delete(DAYS, day)
        return gone

    async def query(
        self,
        user: str | None = None,
        type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Records newest first; `user` matches a SCIM id, a userName, a target account id or an
        API key's holder; `type` matches the type or the target's own action word."""
        days = sorted((key for key, _ in await self.store.kv_items(DAYS)), reverse=True)
        first, last = (since.date().isoformat() if since else ""), (until.date().isoformat() if until else "9999")
        found: list[dict[str, Any]] = []
        for day in (d for d in days if first <= d <= last):
            for _, raw in await self.store.kv_items(day_namespace(day)):
                record = orjson.loads(raw)
                if _matches(record, user, type, since, until):
                    found.append(record)
            if len(found) >= limit:
                break  # older days cannot hold newer records
        found.sort(key=lambda r: r["time"], reverse=True)
        return found[:limit]


def _matches(
    record: dict[str, Any], user: str | None, type: str | None, since: datetime | None, until: datetime | None
) -> bool:
    if type and type.lower() not in (str(record.get("type")).lower(), str(record.get("action")).lower()):
        return False
    if user:
        actor = record.get("actor") or {}
        names = {str(actor.get(k)).lower() for k in ("scim_id", "userName", "target_id", "owner") if actor.get(k)}
        if user.lower() not in names:
            return False
    moment = instant(record.get("time"))
    if moment is None:
        return since is None and until is None
    return (since is None or moment >= since) and (until is None or moment <= until)

"""SCIM resource rules (RFC 7643/7644 §3.3–§3.6) over the store; no HTTP here.

Writes are validated by scim2-models and stored as canonical JSON together with their index
keys and sync-queue entry (one atomic store step). Reads serve the stored JSON; the only thing
computed on read is a User's `groups`, which RFC 7643 §4.1.2 derives from group memberships.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import orjson
from pydantic import ValidationError
from scim2_models import Context, PatchOp, SCIMException, ScimPolicy

from ..store import (
    REVOCATION_LANE,
    STANDARD_LANE,
    NotFound,
    Record,
    Store,
    StoreUnavailable,
    UniqueViolation,
    VersionMismatch,
    Write,
)
from . import concurrency, extension_patch, group_patch, normalize, plain_bodies
from .errors import ScimError, invalid_value, not_found, precondition_failed, unavailable, uniqueness
from .filters import fold
from .schemas import GROUP, SYNC_STATUS, USER, ResourceTypeInfo

log = logging.getLogger("scim_bridge.scim")
T = TypeVar("T")

# Entra's PATCH shapes (scim-clients.md §2.4, §2.6) through scim2-models' own switches.
POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)


@dataclass(frozen=True)
class ServiceOptions:
    delete_mode: str = "hard"  # or "deactivate": DELETE /Users/{id} sets active=false
    put_keeps_active: bool = True  # a PUT without `active` keeps the current value (Okta, §3.2)
    put_keeps_members: bool = True  # a Group PUT without `members` keeps them (Keycloak, §4.4)
    strict_members: bool = False  # unknown member ids: skip and report (False) or 400 (True)
    # RFC 7644 §3.5.2: 200 with the resource (what scim-sanity and Okta expect), or 204, which
    # Entra prefers for groups (scim-clients.md §2.6); both are valid for every client.
    group_patch_returns_resource: bool = True


@dataclass
class Outcome:
    """A write's result: the stored record, the document to return, and what was skipped."""

    record: Record
    document: dict[str, Any]
    skipped_members: tuple[str, ...] = ()


class WriteAudit(Protocol):
    """The audit trail as the service sees it (audit/trail.py): an entry to store with each write."""

    def entry(
        self, operation: str, resource_type: str, id: str, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> tuple[bytes, str | None]:
        """(audit entry, correlation id of the current request)."""

    async def unchanged(self, operation: str, resource_type: str, id: str, document: dict[str, Any]) -> None:
        """Record a write request that changed nothing."""


def etag(version: int) -> str:
    return f'W/"{version}"'


def parse_etag(value: str) -> int | None:
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    # ASCII digits only: str.isdigit() also accepts '²', which int() refuses (a 500). A tag that
    # does not parse matches no version (RFC 7232 §3.1: If-Match then fails with 412).
    return int(value) if value.isascii() and value.isdigit() and len(value) < 20 else None


def new_id() -> str:
    """A UUIDv7 (RFC 9562 §5.7) as 32 hex digits: 48 bits of Unix milliseconds, then 74 random.

    Time-ordered, so that SQLite's B-trees keyed by id (the resources' key, the index owner and
    queue keys) append into one page instead of dirtying a random page per write: in a group
    commit of four creates that was ~20 % less writer CPU and half the bytes to fsync
    (bench/post_inprocess.py). The creation time it shows is meta.created, served anyway. The
    random bits come from a pooled os.urandom: each call of it gave the interpreter lock away."""
    global _random_pool
    if len(_random_pool) < 10:
        _random_pool = os.urandom(4096)
    rand, _random_pool = int.from_bytes(_random_pool[:10]), _random_pool[10:]
    millis = time.time_ns() // 1_000_000
    # 48 bits time | version 7 | 12 bits rand_a | variant 0b10 | 62 bits rand_b
    value = (millis & (2**48 - 1)) << 80 | 0x7 << 76 | (rand >> 62 & 0xFFF) << 64 | 0b10 << 62 | rand & (2**62 - 1)
    return f"{value:032x}"


_random_pool = b""


def _now() -> str:
    """The current UTC time as meta.created/lastModified: 2026-12-04T19:35:07.123Z. The part up
    to the second is formatted once per second (datetime's isoformat was ~2 % of a POST)."""
    global _second
    second, millis = divmod(time.time_ns() // 1_000_000, 1000)
    cached = _second  # one tuple: read and replaced whole, whichever thread calls
    if cached[0] != second:
        cached = _second = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{cached[1]}.{millis:03d}Z"


_second: tuple[int, str] = (-1, "")


def _validation_detail(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        location = ".".join(str(part) for part in item["loc"] if not isinstance(part, int)) or "body"
        parts.append(f"{location}: {item['msg']}")
    return "; ".join(parts)


class ResourceService:
    def __init__(self, store: Store, options: ServiceOptions | None = None) -> None:
        self.store = store
        self.options = options or ServiceOptions()
        self._group_names: dict[str, tuple[float, str]] = {}
        self._locks = concurrency.ResourceLocks()
        # (resource type, id, lastModified) → one entry per target; set when a sync policy runs.
        self.sync_status: Callable[[str, str, str | None], Awaitable[list[dict[str, Any]]]] | None = None
        # Each write carries its audit entry into the store's atomic step; set by the app.
        self.audit: WriteAudit | None = None

    # reads -------------------------------------------------------------------------------------
    async def get_record(self, resource_type: ResourceTypeInfo, id: str) -> Record:
        record = await self._store_call(self.store.get(resource_type.name, id))
        if record is None:
            raise not_found(resource_type.name, id)
        return record

    async def with_groups(self, documents: list[dict[str, Any]], base_url: str) -> None:
        """Fill the read-only `groups` of User documents from group memberships (RFC 7643 §4.1.2)."""
        for document in documents:
            groups = await self.groups_of(document["id"], base_url)
            if groups:
                document["groups"] = groups

    async def with_sync_status(self, resource_type: ResourceTypeInfo, documents: list[dict[str, Any]]) -> None:
        """Fill the read-only sync-status extension (asked for with ?attributes=)."""
        for document in documents:
            targets = (
                await self.sync_status(
                    resource_type.name, document["id"], (document.get("meta") or {}).get("lastModified")
                )
                if self.sync_status
                else []
            )
            document[SYNC_STATUS] = {"targets": targets}
            document["schemas"] = [*document.get("schemas", []), SYNC_STATUS]

    async def get_user_with_groups(self, id: str) -> tuple[Record, list[str]]:
        """A User record and its group ids, in one store round trip (the hot read path)."""
        record, group_ids = await self._store_call(self.store.get_with_referrers("User", id, "Group", "members.value"))
        if record is None:
            raise not_found("User", id)
        return record, group_ids

    async def groups_of(self, user_id: str, base_url: str, group_ids: list[str] | None = None) -> list[dict[str, Any]]:
        if group_ids is None:
            group_ids = await self._store_call(self.store.lookup("Group", "members.value", user_id))
        if not group_ids:
            return []
        names = await self._group_display_names(group_ids)
        return [
            {"value": gid, "$ref": f"{base_url}/Groups/{gid}", "display": names[gid], "type": "direct"}
            for gid in group_ids
            if gid in names
        ]

    async def _group_display_names(self, group_ids: list[str]) -> dict[str, str]:
        # Group bodies can hold thousands of members; a short cache keeps a User read from
        # parsing them. Writes through this process invalidate it; other replicas see a rename
        # within the TTL.
        now = time.monotonic()
        names: dict[str, str] = {}
        missing = []
        for gid in group_ids:
            cached = self._group_names.get(gid)
            if cached and cached[0] > now:
                names[gid] = cached[1]
            else:
                missing.append(gid)
        if missing:
            for record in await self._store_call(self.store.get_many("Group", missing)):
                name = orjson.loads(record.body).get("displayName", "")
                names[record.id] = name
                self._group_names[record.id] = (now + 5.0, name)
        return names

    # writes ------------------------------------------------------------------------------------
    async def create(self, resource_type: ResourceTypeInfo, body: Any, base_url: str) -> Outcome:
        """Create a resource (RFC 7644 §3.3)."""
        unknown = normalize.split_unknown_extensions(body, resource_type) if isinstance(body, dict) else {}
        payload = normalize.resource_body(body, resource_type, base_url)
        if resource_type is USER:
            payload.setdefault("active", True)  # absent means active (checklist 35)
        document = self._stored_form(resource_type, payload, unknown, Context.RESOURCE_CREATION_REQUEST)
        skipped: tuple[str, ...] = ()
        if resource_type is GROUP:
            skipped = await self._resolve_members(document, set(), base_url)
        resource_id = new_id()
        now = _now()
        document = self._with_identity(document, resource_type, resource_id, now, now, 1, base_url)
        record = await self._write(resource_type, document, create=True, lane=STANDARD_LANE, operation="create")
        return Outcome(record, document, skipped)

    async def replace(
        self, resource_type: ResourceTypeInfo, id: str, body: Any, base_url: str, if_match: str | None
    ) -> Outcome:
        """Replace a resource (RFC 7644 §3.5.1)."""
        unknown = normalize.split_unknown_extensions(body, resource_type) if isinstance(body, dict) else {}
        payload = normalize.resource_body(body, resource_type, base_url)

        async def change(current: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
            replacement = dict(payload)
            if resource_type is USER and "active" not in replacement and self.options.put_keeps_active:
                replacement["active"] = current.get("active", True)
            if resource_type is GROUP and "members" not in replacement and self.options.put_keeps_members:
                if current.get("members"):
                    replacement["members"] = current["members"]
            document = self._stored_form(
                resource_type, replacement, dict(unknown), Context.RESOURCE_REPLACEMENT_REQUEST
            )
            skipped: tuple[str, ...] = ()
            if resource_type is GROUP:
                skipped = await self._resolve_members(document, _member_ids(current), base_url)
            return document, skipped

        return await self._read_modify_write(resource_type, id, if_match, base_url, change, operation="replace")

    async def patch(
        self, resource_type: ResourceTypeInfo, id: str, body: Any, base_url: str, if_match: str | None
    ) -> Outcome:
        """Modify a resource (RFC 7644 §3.5.2): all operations apply, in order, or none does."""
        operations = normalize.patch_body(body, resource_type, id, base_url)

        async def change(current: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
            document = self._patched(resource_type, current, operations)
            skipped: tuple[str, ...] = ()
            if resource_type is GROUP:
                skipped = await self._resolve_members(document, _member_ids(current), base_url)
            return document, skipped

        return await self._read_modify_write(resource_type, id, if_match, base_url, change, operation="patch")

    def _patched(
        self, resource_type: ResourceTypeInfo, current: dict[str, Any], operations: dict[str, Any]
    ) -> dict[str, Any]:
        """The document after the PATCH operations (nothing written yet)."""
        if resource_type is GROUP:
            fast = group_patch.apply(current, operations["Operations"])
            if fast is not None:
                return fast
        # Operations into extensions the bridge has no schema for act on their stored blocks
        # (extension_patch.py); scim2-models applies the rest to the modelled resource.
        modelled, verbatim = extension_patch.split(operations["Operations"], resource_type)
        blocks = {k: v for k, v in current.items() if k.startswith("urn:") and k not in resource_type.all_schemas}
        unknown = extension_patch.apply(blocks, verbatim, resource_type)
        stored = {k: v for k, v in current.items() if k not in blocks and k not in ("id", "meta", "groups")}
        stored["schemas"] = [s for s in stored.get("schemas", []) if s in resource_type.all_schemas]
        if modelled:
            model = self._validate(resource_type, stored, Context.RESOURCE_REPLACEMENT_REQUEST)
            try:
                with POLICY:
                    patch = PatchOp[resource_type.model].model_validate(  # type: ignore[name-defined]
                        {"schemas": operations["schemas"], "Operations": modelled},
                        scim_ctx=Context.RESOURCE_PATCH_REQUEST,
                    )
                    patch.patch(model)
            except ValidationError as error:
                raise self._patch_error(error) from None
            except SCIMException as error:
                raise ScimError(400, error.detail or str(error), error.scim_type) from None
            except (ValueError, TypeError) as error:
                raise invalid_value(f"invalid PATCH: {error}") from None
            document = self._dump(model)
        else:  # nothing for the model to do: keep the stored form as it is
            document = stored
        self._check_required(resource_type, document)
        document.update(unknown)
        if unknown:
            document["schemas"] = [*document["schemas"], *[u for u in unknown if u not in document["schemas"]]]
        return document

    async def delete(self, resource_type: ResourceTypeInfo, id: str, if_match: str | None, base_url: str) -> None:
        """Delete a resource (RFC 7644 §3.6), or only deactivate a User when so configured."""
        if resource_type is USER and self.options.delete_mode == "deactivate":

            async def deactivate(current: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
                return {**current, "active": False}, ()

            await self._read_modify_write(resource_type, id, if_match, base_url, deactivate, operation="delete")
            return
        async with self._locks.hold(resource_type.name, id):
            for attempt in concurrency.attempts():
                record = await self.get_record(resource_type, id)
                self._check_if_match(record, if_match)
                audit, correlation = (
                    self.audit.entry("delete", resource_type.name, id, orjson.loads(record.body), None)
                    if self.audit
                    else (None, None)
                )
                try:
                    await self._store_call(
                        self.store.delete(
                            resource_type.name,
                            id,
                            record.version,
                            lane=REVOCATION_LANE,
                            audit=audit,
                            correlation=correlation,
                        ),
                        write=True,
                    )
                except NotFound:
                    raise not_found(resource_type.name, id) from None
                except VersionMismatch:
                    await self._conflict(if_match, attempt)
                    continue
                self._group_names.pop(id, None)
                return

    async def _read_modify_write(
        self,
        resource_type: ResourceTypeInfo,
        id: str,
        if_match: str | None,
        base_url: str,
        change: Callable[[dict[str, Any]], Awaitable[tuple[dict[str, Any], tuple[str, ...]]]],
        *,
        operation: str,
    ) -> Outcome:
        """Read, change, write with the version read; on a conflict without a precondition from
        the client, read again and re-apply the change (concurrency.py)."""
        async with self._locks.hold(resource_type.name, id):
            for attempt in concurrency.attempts():
                record = await self.get_record(resource_type, id)
                self._check_if_match(record, if_match)
                current = orjson.loads(record.body)
                document, skipped = await change(current)
                try:
                    return await self._update(
                        resource_type, record, current, document, base_url, skipped, operation=operation
                    )
                except VersionMismatch:
                    await self._conflict(if_match, attempt)
        raise precondition_failed("the resource changed while this request was applied; retry")  # unreachable

    @staticmethod
    async def _conflict(if_match: str | None, attempt: int) -> None:
        """412 when the client sent a precondition (RFC 7644 §3.14) or the retries ran out;
        otherwise wait a little before the caller re-reads and re-applies."""
        if (if_match is not None and if_match.strip() != "*") or attempt >= concurrency.MAX_ATTEMPTS - 1:
            raise precondition_failed("the resource changed while this request was applied; retry")
        await concurrency.backoff(attempt)

    # steps ---------------------------------------------------------------------------------------
    async def _update(
        self,
        resource_type: ResourceTypeInfo,
        record: Record,
        current: dict[str, Any],
        document: dict[str, Any],
        base_url: str,
        skipped: tuple[str, ...],
        *,
        operation: str,
    ) -> Outcome:
        meta = current.get("meta", {})
        if _same_content(current, document):  # nothing changed: keep version and lastModified
            if self.audit:
                await self._store_call(self.audit.unchanged(operation, resource_type.name, record.id, current))
            return Outcome(record, current, skipped)
        document = self._with_identity(
            document, resource_type, record.id, meta.get("created", _now()), _now(), record.version + 1, base_url
        )
        lane = REVOCATION_LANE if _is_revocation(resource_type, current, document) else STANDARD_LANE
        stored = await self._write(
            resource_type,
            document,
            create=False,
            lane=lane,
            expected_version=record.version,
            operation=operation,
            before=current,
        )
        if resource_type is GROUP:
            self._group_names.pop(record.id, None)
        return Outcome(stored, document, skipped)

    async def _write(
        self,
        resource_type: ResourceTypeInfo,
        document: dict[str, Any],
        *,
        create: bool,
        lane: str,
        expected_version: int | None = None,
        operation: str,
        before: dict[str, Any] | None = None,
    ) -> Record:
        index_keys, unique_keys = index_keys_of(resource_type, document)
        audit, correlation = (
            self.audit.entry(operation, resource_type.name, document["id"], before, document)
            if self.audit
            else (None, None)
        )
        write = Write(
            resource_type.name,
            document["id"],
            orjson.dumps(document),
            index_keys,
            unique_keys,
            lane,
            audit=audit,
            correlation=correlation,
        )
        try:
            if create:
                return await self._store_call(self.store.create(write), write=True)
            return await self._store_call(self.store.replace(write, expected_version), write=True)
        except UniqueViolation as error:
            attribute = {"username": "userName", "displayname": "displayName"}.get(error.key[0], error.key[0])
            raise uniqueness(f"{attribute} {document.get(attribute, '')!r} is already taken") from None
        except NotFound:
            raise not_found(resource_type.name, document["id"]) from None
        # VersionMismatch goes to _read_modify_write, which re-applies the change or answers 412.

    async def _store_call(self, awaitable: Awaitable[T], *, write: bool = False) -> T:
        try:
            return await awaitable
        except StoreUnavailable:
            log.warning("store unavailable")
            if write:  # both stores make this true: SQLite rolled back, Redis fenced (redis_fence.py)
                raise unavailable("the store did not confirm the change, so it was not applied; retry later") from None
            raise unavailable() from None

    def _validate(self, resource_type: ResourceTypeInfo, payload: dict[str, Any], context: Context) -> Any:
        try:
            return resource_type.model.model_validate(payload, scim_ctx=context, scim_policy=POLICY)
        except ValidationError as error:
            raise invalid_value(_validation_detail(error)) from None
        except SCIMException as error:
            raise ScimError(400, error.detail or str(error), error.scim_type or "invalidValue") from None

    def _stored_form(
        self, resource_type: ResourceTypeInfo, payload: dict[str, Any], unknown: dict[str, Any], context: Context
    ) -> dict[str, Any]:
        """A full body (POST, PUT) validated by scim2-models, kept as normalised: its dump of a
        freshly validated body is the same document and cost a third of a POST (profiled under
        wrk; tests/scim/test_canonical.py holds the two equal). Unknown extensions ride along.
        A body of plain attributes only, which scim2-models is known to accept, skips the model
        (plain_bodies.py: the validation was the largest step of a POST)."""
        if not plain_bodies.accepts(resource_type, payload):
            self._validate(resource_type, payload, context)
        document = normalize.canonical(payload)
        document.update(unknown)
        if unknown:
            document["schemas"] = [*document["schemas"], *unknown]
        return document

    @staticmethod
    def _dump(model: Any) -> dict[str, Any]:
        document: dict[str, Any] = model.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        document.pop("groups", None)
        return document

    @staticmethod
    def _check_required(resource_type: ResourceTypeInfo, document: dict[str, Any]) -> None:
        for info in resource_type.attributes[""].values():
            if info.required and document.get(info.name) in (None, "", []):
                raise ScimError(400, f"{info.name} is required and cannot be removed", "mutability")

    def _patch_error(self, error: ValidationError) -> ScimError:
        detail = _validation_detail(error)
        for item in error.errors():
            context = item.get("ctx") or {}
            scim_type = context.get("scim_type") if isinstance(context, dict) else None
            if scim_type:
                return ScimError(400, detail, scim_type)
            if "path" in str(item.get("loc", "")).lower():
                return ScimError(400, detail, "invalidPath")
        return ScimError(400, detail, "invalidValue")

    @staticmethod
    def _check_if_match(record: Record, if_match: str | None) -> None:
        """RFC 7644 §3.14 with RFC 7232 weak comparison; `*` matches any version."""
        if if_match is None:
            return
        tags = [tag.strip() for tag in if_match.split(",")]
        if "*" in tags:
            return
        if record.version not in {parse_etag(tag) for tag in tags}:
            raise precondition_failed()

    @staticmethod
    def _with_identity(
        document: dict[str, Any],
        resource_type: ResourceTypeInfo,
        resource_id: str,
        created: str,
        modified: str,
        version: int,
        base_url: str,
    ) -> dict[str, Any]:
        ordered: dict[str, Any] = {"schemas": document.pop("schemas"), "id": resource_id}
        ordered.update((k, v) for k, v in document.items() if k not in ("id", "meta"))
        ordered["meta"] = {
            "resourceType": resource_type.name,
            "created": created,
            "lastModified": modified,
            "location": f"{base_url}{resource_type.endpoint}/{resource_id}",
            "version": etag(version),
        }
        return ordered

    async def _resolve_members(self, document: dict[str, Any], previous: set[str], base_url: str) -> tuple[str, ...]:
        """Give new members their `type` and `$ref`; skip and report unknown ids (checklist 72)."""
        members = document.get("members") or []
        new_ids = [m["value"] for m in members if m.get("value") not in previous]
        if not new_ids:
            return ()
        users = {r.id for r in await self._store_call(self.store.get_many("User", new_ids))}
        rest = [i for i in new_ids if i not in users]
        groups = {r.id for r in await self._store_call(self.store.get_many("Group", rest))} if rest else set()
        unknown = tuple(i for i in new_ids if i not in users and i not in groups)
        if unknown and self.options.strict_members:
            raise invalid_value(f"unknown member ids: {', '.join(unknown[:10])}")
        if unknown:
            log.warning("skipped %d unknown member id(s) in group %s", len(unknown), document.get("displayName"))
        kept = []
        for member in members:
            value = member.get("value")
            if value in users or value in groups:
                kind = "User" if value in users else "Group"
                member = {**member, "type": kind, "$ref": f"{base_url}/{kind}s/{value}"}
            elif value in unknown:
                continue
            kept.append(member)
        document["members"] = kept
        if not kept:
            del document["members"]
        return unknown


def _member_ids(document: dict[str, Any]) -> set[str]:
    return {
        m["value"] for m in document.get("members") or [] if isinstance(m, dict) and isinstance(m.get("value"), str)
    }


def _same_content(current: dict[str, Any], document: dict[str, Any]) -> bool:
    strip = ("id", "meta", "groups")
    return {k: v for k, v in current.items() if k not in strip} == {k: v for k, v in document.items() if k not in strip}


def _is_revocation(resource_type: ResourceTypeInfo, before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Disable and membership removal go to the revocation lane (DESIGN.md, "Revocation first")."""
    if resource_type is USER:
        return before.get("active", True) is not False and after.get("active", True) is False
    return bool(_member_ids(before) - _member_ids(after))


def index_keys_of(
    resource_type: ResourceTypeInfo, document: dict[str, Any]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The index and unique keys the store keeps for `eq` lookups and uniqueness."""
    keys: list[tuple[str, str]] = []
    unique: list[tuple[str, str]] = []
    if document.get("externalId"):
        keys.append(("externalid", str(document["externalId"])))
    if document.get("displayName"):
        keys.append(("displayname", fold(str(document["displayName"]))))
    if resource_type is USER:
        unique.append(("username", fold(str(document["userName"]))))
        for email in document.get("emails") or []:
            if isinstance(email, dict) and email.get("value"):
                keys.append(("emails.value", fold(str(email["value"]))))
    else:
        unique.append(("displayname", fold(str(document["displayName"]))))
        for member in document.get("members") or []:
            keys.append(("members.value", str(member["value"])))
    return keys, unique


#: How a filter value becomes an index value, per indexed attribute path (see filters.index_plan).
INDEXED: dict[str, dict[str, Any]] = {
    "User": {
        "username": lambda v: fold(v) if isinstance(v, str) else None,
        "externalid": lambda v: v if isinstance(v, str) else None,
        "emails.value": lambda v: fold(v) if isinstance(v, str) else None,
        "displayname": lambda v: fold(v) if isinstance(v, str) else None,
    },
    "Group": {
        "displayname": lambda v: fold(v) if isinstance(v, str) else None,
        "externalid": lambda v: v if isinstance(v, str) else None,
        "members.value": lambda v: v if isinstance(v, str) else None,
    },
}

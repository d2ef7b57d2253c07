"""Query resources (RFC 7644 §3.4.2): filter, sort, index and cursor paging (RFC 9865).

Order is creation order unless `sortBy` asks otherwise, so pages are stable (Okta imports page
through `startIndex`). A cursor is the creation position of the last resource returned, sealed
with an HMAC so that a client cannot forge one.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import hashlib
import hmac
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from scim2_models.path import AttrPath

from ..store import Record
from .errors import ScimError, invalid_filter, invalid_syntax, invalid_value
from .filters import CompiledFilter, as_datetime, fold, parse, terms
from .projection import Projection
from .resources import INDEXED, ResourceService
from .schemas import LIST_RESPONSE, SYNC_STATUS, USER, ResourceTypeInfo

DEFAULT_COUNT = 100
MAX_COUNT = 1000
MAX_SAFE_INTEGER = 2**53 - 1
# Measured: ≈0.6 µs per comparison and ≈9 µs per resource read; 1,000,000 is ≈0.6 s of comparisons
# (a 100-term `or` over 10,000 users is ≈0.7 s in all). Scans yield to the event loop meanwhile.
DEFAULT_MAX_FILTER_COST = 1_000_000
YIELD_EVERY = 256
_INTEGER = re.compile(r"[+-]?[0-9]+")  # ASCII digits only: str.isdigit() also takes '²'


@dataclass
class Query:
    filter: str | None = None
    sort_by: str | None = None
    sort_order: str = "ascending"
    start_index: int = 1
    count: int = DEFAULT_COUNT
    cursor: str | None = None
    attributes: str | None = None
    excluded_attributes: str | None = None

    @classmethod
    def from_params(cls, params: Any) -> Query:
        """From URL query parameters (names case-insensitive; unknown ones ignored, checklist 6)."""
        lowered = {k.lower(): v for k, v in params.items()}
        return cls.build(lowered)

    @classmethod
    def build(cls, fields: dict[str, Any], *, body: bool = False) -> Query:
        """From lower-cased names to values: URL parameters (always text) or, with body=True, a
        SearchRequest's members, whose JSON types RFC 7644 §3.4.3 fixes (a wrong type is a body
        that does not conform to the request schema: 400 invalidSyntax, §3.12)."""
        wrong_type = invalid_syntax if body else invalid_value

        def integer(name: str, default: int) -> int:
            raw = fields.get(name.lower())
            if raw is None or raw == "":
                return default
            value: int | None = None
            if isinstance(raw, int) and not isinstance(raw, bool):
                value = raw
            elif isinstance(raw, float) and raw.is_integer() and abs(raw) <= MAX_SAFE_INTEGER:
                value = int(raw)  # 10.0 is the number 10 in JSON (RFC 8259 §6)
            elif isinstance(raw, str) and _INTEGER.fullmatch(raw.strip()):
                digits = raw.strip().lstrip("+-").lstrip("0")
                # Python refuses to convert over 4,300 digits (a ValueError, not an answer).
                sign = -1 if raw.strip().startswith("-") else 1
                value = int(raw.strip()) if len(digits) <= 20 else sign * (MAX_SAFE_INTEGER + 1)
            if value is None:
                raise wrong_type(f"{name} must be an integer")
            return value

        start_index = integer("startIndex", 1)
        # Beyond JSON's interoperable range (RFC 8259 §6) neither a store offset nor the echoed
        # startIndex is exact (orjson and SQLite stop at 64 bits): refused, not clamped, as the
        # answer would name another index than the one asked for.
        if start_index > MAX_SAFE_INTEGER:
            raise invalid_value(f"startIndex must be at most {MAX_SAFE_INTEGER}")

        def text(name: str, multi: bool = False) -> str | None:
            value = fields.get(name.lower())
            if multi and isinstance(value, list) and all(isinstance(v, str) for v in value):
                value = ",".join(value)  # SearchRequest: attributes are a list of strings
            if value is not None and not isinstance(value, str):
                raise wrong_type(f"{name} must be a string" + (" or a list of strings" if multi else ""))
            return value or None

        sort_order = (text("sortOrder") or "ascending").lower()
        if sort_order not in ("ascending", "descending"):
            raise invalid_value("sortOrder must be ascending or descending")
        count = integer("count", DEFAULT_COUNT)
        cursor = fields.get("cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise wrong_type("cursor must be a string")  # RFC 9865 §3: an opaque string
        return cls(
            filter=text("filter"),
            sort_by=text("sortBy"),
            sort_order=sort_order,
            start_index=max(1, start_index),  # RFC 7644 §3.4.2.4: < 1 means 1
            count=min(max(0, count), MAX_COUNT),  # negative means 0; above the maximum is clamped
            cursor=cursor,
            attributes=text("attributes", multi=True),
            excluded_attributes=text("excludedAttributes", multi=True),
        )


class CursorCodec:
    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def encode(self, resource_type: str, seq: int, query_key: str) -> str:
        payload = f"{resource_type}:{seq}:{query_key}".encode()
        mac = hmac.new(self.secret, payload, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(payload + b"." + mac).decode().rstrip("=")

    def decode(self, cursor: str, resource_type: str, query_key: str) -> int:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            payload, mac = raw[:-13], raw[-12:]  # the MAC has a fixed length and may contain "."
            expected = hmac.new(self.secret, payload, hashlib.sha256).digest()[:12]
            kind, seq, key = payload.decode().split(":", 2)
        except (ValueError, UnicodeDecodeError):
            raise ScimError(400, "invalid cursor", "invalidCursor") from None
        if not hmac.compare_digest(mac, expected) or kind != resource_type or key != query_key:
            raise ScimError(400, "invalid cursor", "invalidCursor")
        return int(seq)


class Lister:
    def __init__(
        self, service: ResourceService, cursors: CursorCodec, max_filter_cost: int = DEFAULT_MAX_FILTER_COST
    ) -> None:
        self.service = service
        self.store = service.store
        self.cursors = cursors
        # A filter no index answers costs its comparisons × the resources scanned; past this
        # bound it is refused before the scan (0: no bound).
        self.max_filter_cost = max_filter_cost

    async def list(
        self, resource_type: ResourceTypeInfo, query: Query, base_url: str, *, strict: bool = True
    ) -> dict[str, Any]:
        """One page of matches; strict=False (root search) lets an attribute that this type lacks match nothing."""
        projection = Projection(resource_type, query.attributes, query.excluded_attributes)
        compiled = (
            CompiledFilter(parse(query.filter), resource_type, strict=strict, source=query.filter)
            if query.filter
            else None
        )
        if query.sort_by and query.cursor is not None:
            raise invalid_value("sortBy cannot be combined with cursor paging")
        if query.cursor is not None:
            return await self._cursor_page(resource_type, query, compiled, projection, base_url)

        offset = query.start_index - 1
        if compiled is None and not query.sort_by:
            total = await self.service._store_call(self.store.count(resource_type.name))
            records = (
                await self.service._store_call(self.store.page(resource_type.name, offset, query.count))
                if query.count
                else []
            )
            found = None
        else:
            # An indexed User filter fetches each match's groups with it when they are returned
            found = Found(referrers=resource_type is USER and projection.wants("groups"))
            matches = await self._matching(resource_type, compiled, found)
            if query.sort_by:
                matches = _sorted(matches, resource_type, query.sort_by, query.sort_order == "descending")
            total = len(matches)
            records = matches[offset : offset + query.count]
        resources = await self._render(resource_type, records, projection, base_url, found)
        return {
            "schemas": [LIST_RESPONSE],
            "totalResults": total,
            "startIndex": query.start_index,
            "itemsPerPage": len(resources),
            "Resources": resources,
        }

    async def _cursor_page(
        self,
        resource_type: ResourceTypeInfo,
        query: Query,
        compiled: CompiledFilter | None,
        projection: Projection,
        base_url: str,
    ) -> dict[str, Any]:
        """RFC 9865: `cursor` empty for the first page, `nextCursor` until the last one."""
        query_key = hashlib.sha256((query.filter or "").encode()).hexdigest()[:16]
        after = self.cursors.decode(query.cursor, resource_type.name, query_key) if query.cursor else 0
        records: builtins.list[Record] = []
        last_seq = after
        more = False
        if compiled is not None:
            await self.check_cost(resource_type, compiled, scans=True)
        seen = 0
        async for record in self.store.scan(resource_type.name, after_seq=after):
            seen += 1
            if seen % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            if compiled is not None and not compiled.matches(orjson.loads(record.body)):
                last_seq = record.seq
                continue
            if len(records) == query.count:
                more = True
                break
            records.append(record)
            last_seq = record.seq
        resources = await self._render(resource_type, records, projection, base_url)
        page: dict[str, Any] = {
            "schemas": [LIST_RESPONSE],
            "itemsPerPage": len(resources),
            "Resources": resources,
        }
        if more:
            page["nextCursor"] = self.cursors.encode(resource_type.name, last_seq, query_key)
        return page

    # In this class's signatures `list` is the method above: builtins.list is the type.
    async def check_cost(self, resource_type: ResourceTypeInfo, compiled: CompiledFilter, *, scans: bool) -> int:
        """Refuse a scanning filter whose cost (comparisons × resources) exceeds the bound.

        400 tooMany (RFC 7644 §3.12: "more results than the server is willing to calculate or
        process") rather than invalidFilter: the filter is valid, and an indexed form of it
        (`userName eq`, `id eq`, `emails.value eq`… joined by `or`) or fewer terms is accepted.
        """
        if not scans or not self.max_filter_cost:
            return 0
        resources = await self.service._store_call(self.store.count(resource_type.name))
        cost = terms(compiled.ast) * int(resources)
        if cost > self.max_filter_cost:
            raise ScimError(
                400,
                f"filter too costly: {terms(compiled.ast)} comparisons × {resources} {resource_type.name} resources "
                f"scanned exceeds the limit of {self.max_filter_cost} (SCIM_BRIDGE_MAX_FILTER_COST); "
                "use fewer terms or indexed eq terms (userName, externalId, emails.value, displayName, id)",
                "tooMany",
            )
        return cost

    def plan(self, resource_type: ResourceTypeInfo, compiled: CompiledFilter) -> builtins.list[tuple[str, str]] | None:
        return compiled.index_plan({**INDEXED[resource_type.name], "id": _as_id})

    async def _matching(
        self, resource_type: ResourceTypeInfo, compiled: CompiledFilter | None, found: Found | None = None
    ) -> builtins.list[Record]:
        if compiled is None:
            return [record async for record in self.store.scan(resource_type.name)]
        plan = self.plan(resource_type, compiled)
        await self.check_cost(resource_type, compiled, scans=plan is None)
        needs_groups = resource_type is USER and _mentions_groups(compiled)
        candidates: AsyncIterator[Record]
        if plan is not None:
            ids: builtins.list[str] = []
            for attribute, value in plan:
                if attribute == "id":
                    ids.append(value)
                else:
                    ids.extend(await self.service._store_call(self.store.lookup(resource_type.name, attribute, value)))
            if found is not None and (found.referrers or needs_groups) and resource_type is USER:
                pairs = await self.service._store_call(
                    self.store.get_many_with_referrers(resource_type.name, ids, "Group", "members.value")
                )
                found.group_ids = {record.id: group_ids for record, group_ids in pairs}
                candidates = _iterate([record for record, _ in pairs])
            else:
                candidates = _iterate(await self.service._store_call(self.store.get_many(resource_type.name, ids)))
        else:
            candidates = self.store.scan(resource_type.name)
        # The matches of an index read are few: the documents parsed to match them are the ones
        # rendered (a scan's matches could be the whole directory: those are parsed again).
        keep = found is not None and plan is not None and not needs_groups
        result = []
        seen = 0
        async for record in candidates:
            document = orjson.loads(record.body)
            if needs_groups:
                group_ids = found.group_ids.get(record.id) if found is not None and found.group_ids else None
                groups = await self.service.groups_of(record.id, "", group_ids)
                if groups:
                    document["groups"] = groups
            if compiled.matches(document):
                result.append(record)
                if keep:
                    assert found is not None
                    found.documents[record.id] = document
            seen += 1
            if seen % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a long evaluation must not hold the event loop (/health, others)
        return result

    async def _render(
        self,
        resource_type: ResourceTypeInfo,
        records: builtins.list[Record],
        projection: Projection,
        base_url: str,
        found: Found | None = None,
    ) -> builtins.list[dict[str, Any]]:
        parsed = found.documents if found is not None else {}
        documents = [parsed.pop(record.id, None) or orjson.loads(record.body) for record in records]
        if resource_type is USER and projection.wants("groups"):
            group_ids = found.group_ids if found is not None else None
            if group_ids is None:
                await self.service.with_groups(documents, base_url)
            else:  # fetched with the records (get_many_with_referrers)
                for document in documents:
                    ids = group_ids.get(document["id"])
                    groups = await self.service.groups_of(document["id"], base_url, ids) if ids is None or ids else []
                    if groups:
                        document["groups"] = groups
        if projection.asks_for(SYNC_STATUS):
            await self.service.with_sync_status(resource_type, documents)
        return [projection.apply(document) for document in documents] if not projection.is_identity else documents


@dataclass
class Found:
    """What a filtered list learned on the way, for rendering its page: the documents parsed to
    match (not parsed twice), and each User's group ids when they were read with it."""

    referrers: bool = False  # read each match's group ids with it (an indexed User filter)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    group_ids: dict[str, builtins.list[str]] | None = None


def _as_id(value: Any) -> str | None:
    return value if isinstance(value, str) else None


async def _iterate(records: list[Record]) -> AsyncIterator[Record]:
    for record in records:
        yield record


def _mentions_groups(compiled: CompiledFilter) -> bool:
    """Whether the filter reads `groups`, which is computed, not stored (cheap textual check)."""
    return "groups" in compiled.source.lower()


def _sorted(records: list[Record], resource_type: ResourceTypeInfo, sort_by: str, descending: bool) -> list[Record]:
    """RFC 7644 §3.4.2.3: missing values sort last ascending, first descending.

    sortBy names a simple attribute or a sub-attribute (`name.familyName`). A multi-valued
    complex attribute sorts by its `value` sub-attribute, taken from the primary value, else the
    first (§3.4.2.3). A complex attribute without `value` (`name`, `meta`) has no order of its
    own: 400 invalidValue, so the client learns to name the sub-attribute it means.
    """
    try:
        path = parse(f"{sort_by} pr").attr_path if " " not in sort_by else None
    except ScimError:
        path = None
    if not isinstance(path, AttrPath):
        raise invalid_value(f"invalid sortBy: {sort_by}")
    found = resource_type.resolve(path.attr, path.uri)
    if found is None:
        raise invalid_filter(f"unknown sortBy attribute {sort_by}")
    urn, info = found
    sub = info.sub(path.sub_attr) if path.sub_attr else (info.sub("value") if info.type == "complex" else None)
    if path.sub_attr and sub is None:
        raise invalid_filter(f"unknown sortBy attribute {sort_by}")
    leaf = sub or info
    if leaf.type == "complex":
        raise invalid_value(f"sortBy {sort_by} is a complex attribute; name one of its sub-attributes")

    def key(record: Record) -> tuple[int, int, Any]:
        document = orjson.loads(record.body)
        container = document.get(urn, {}) if urn else document
        value = container.get(info.name) if isinstance(container, dict) else None
        if isinstance(value, list):  # multi-valued: the primary value, else the first
            value = next((v for v in value if isinstance(v, dict) and v.get("primary")), value[0] if value else None)
        if sub is not None:
            value = value.get(sub.name) if isinstance(value, dict) else None
        if isinstance(value, list):  # a multi-valued simple sub-attribute: its first value
            value = value[0] if value else None
        if value is None or isinstance(value, (dict, list)):
            return (1, 0, "")
        if leaf.type == "dateTime" and isinstance(value, str):
            moment = as_datetime(value)  # offsets differ between clients: compare instants
            if moment is not None:
                return (0, 0, moment)
        if isinstance(value, str) and not leaf.case_exact:
            value = fold(value)
        # Values of one attribute share a type once validated; the rank keeps a stray one from
        # making Python compare a str with a number (TypeError).
        return (0, _TYPE_RANK.get(type(value), 9), value if type(value) in _TYPE_RANK else str(value))

    keyed = [(key(record), record) for record in records]
    present = [(k, r) for k, r in keyed if k[0] == 0]
    absent = [r for k, r in keyed if k[0] == 1]
    present.sort(key=lambda pair: pair[0], reverse=descending)
    ordered = [r for _, r in present]
    return absent + ordered if descending else ordered + absent


_TYPE_RANK = {bool: 1, int: 2, float: 2, str: 3}

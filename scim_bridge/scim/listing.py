"""Query resources (RFC 7644 §3.4.2): filter, sort, index and cursor paging (RFC 9865).

Order is creation order unless `sortBy` asks otherwise, so pages are stable (Okta imports page
through `startIndex`). A cursor is the creation position of the last resource returned, sealed
with an HMAC so that a client cannot forge one.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import orjson
from scim2_models.path import AttrPath

from ..store import Record
from .errors import ScimError, invalid_filter, invalid_value
from .filters import CompiledFilter, fold, parse
from .projection import Projection
from .resources import INDEXED, ResourceService
from .schemas import LIST_RESPONSE, SYNC_STATUS, USER, ResourceTypeInfo

DEFAULT_COUNT = 100
MAX_COUNT = 1000


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
    def build(cls, fields: dict[str, Any]) -> Query:
        def integer(name: str, default: int) -> int:
            raw = fields.get(name.lower())
            if raw is None or raw == "":
                return default
            try:
                return int(raw)
            except (TypeError, ValueError):
                raise invalid_value(f"{name} must be an integer") from None

        def text(name: str) -> str | None:
            value = fields.get(name.lower())
            if isinstance(value, list):  # SearchRequest bodies carry lists
                value = ",".join(str(v) for v in value)
            return str(value) if value not in (None, "") else None

        sort_order = (text("sortOrder") or "ascending").lower()
        if sort_order not in ("ascending", "descending"):
            raise invalid_value("sortOrder must be ascending or descending")
        count = integer("count", DEFAULT_COUNT)
        return cls(
            filter=text("filter"),
            sort_by=text("sortBy"),
            sort_order=sort_order,
            start_index=max(1, integer("startIndex", 1)),  # RFC 7644 §3.4.2.4: < 1 means 1
            count=min(max(0, count), MAX_COUNT),  # negative means 0; above the maximum is clamped
            cursor=fields.get("cursor") if fields.get("cursor") is not None else None,
            attributes=text("attributes"),
            excluded_attributes=text("excludedAttributes"),
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
    def __init__(self, service: ResourceService, cursors: CursorCodec) -> None:
        self.service = service
        self.store = service.store
        self.cursors = cursors

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
        else:
            matches = await self._matching(resource_type, compiled)
            if query.sort_by:
                matches = _sorted(matches, resource_type, query.sort_by, query.sort_order == "descending")
            total = len(matches)
            records = matches[offset : offset + query.count]
        resources = await self._render(resource_type, records, projection, base_url)
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
        records: list[Record] = []
        last_seq = after
        more = False
        async for record in self.store.scan(resource_type.name, after_seq=after):
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
    async def _matching(
        self, resource_type: ResourceTypeInfo, compiled: CompiledFilter | None
    ) -> builtins.list[Record]:
        if compiled is None:
            return [record async for record in self.store.scan(resource_type.name)]
        plan = _id_plan(compiled.ast) or compiled.index_plan(INDEXED[resource_type.name])
        if plan is not None:
            ids: list[str] = []
            for attribute, value in plan:
                if attribute == "id":
                    ids.append(value)
                else:
                    ids.extend(await self.service._store_call(self.store.lookup(resource_type.name, attribute, value)))
            candidates = await self.service._store_call(self.store.get_many(resource_type.name, ids))
        else:
            candidates = [record async for record in self.store.scan(resource_type.name)]
        needs_groups = resource_type is USER and _mentions_groups(compiled)
        result = []
        for record in candidates:
            document = orjson.loads(record.body)
            if needs_groups:
                await self.service.with_groups([document], "")
            if compiled.matches(document):
                result.append(record)
        return result

    async def _render(
        self, resource_type: ResourceTypeInfo, records: builtins.list[Record], projection: Projection, base_url: str
    ) -> builtins.list[dict[str, Any]]:
        documents = [orjson.loads(record.body) for record in records]
        if resource_type is USER and projection.wants("groups"):
            await self.service.with_groups(documents, base_url)
        if projection.asks_for(SYNC_STATUS):
            await self.service.with_sync_status(resource_type, documents)
        return [projection.apply(document) for document in documents] if not projection.is_identity else documents


def _id_plan(ast: Any) -> list[tuple[str, str]] | None:
    from scim2_models.path import Comparison, LogicalExpr

    if (
        isinstance(ast, Comparison)
        and ast.op.value == "eq"
        and ast.attr_path.attr.lower() == "id"
        and not ast.attr_path.sub_attr
    ):
        return [("id", str(ast.value))]
    if isinstance(ast, LogicalExpr) and ast.op == "and":
        for term in ast.terms:
            plan = _id_plan(term)
            if plan:
                return plan
    return None


def _mentions_groups(compiled: CompiledFilter) -> bool:
    """Whether the filter reads `groups`, which is computed, not stored (cheap textual check)."""
    return "groups" in compiled.source.lower()


def _sorted(records: list[Record], resource_type: ResourceTypeInfo, sort_by: str, descending: bool) -> list[Record]:
    """RFC 7644 §3.4.2.3: missing values sort last ascending, first descending."""
    path = parse(f"{sort_by} pr").attr_path if " " not in sort_by else None
    if not isinstance(path, AttrPath):
        raise invalid_value(f"invalid sortBy: {sort_by}")
    found = resource_type.resolve(path.attr, path.uri)
    if found is None:
        raise invalid_filter(f"unknown sortBy attribute {sort_by}")
    urn, info = found
    sub = info.sub(path.sub_attr) if path.sub_attr else (info.sub("value") if info.type == "complex" else None)
    leaf = sub or info

    def key(record: Record) -> tuple[int, Any]:
        document = orjson.loads(record.body)
        container = document.get(urn, {}) if urn else document
        value = container.get(info.name) if isinstance(container, dict) else None
        if isinstance(value, list):  # multi-valued: the primary value, else the first
            value = next((v for v in value if isinstance(v, dict) and v.get("primary")), value[0] if value else None)
        if sub is not None and isinstance(value, dict):
            value = value.get(sub.name)
        if value is None:
            return (1, "")
        if isinstance(value, str) and not leaf.case_exact:
            value = fold(value)
        return (0, value)

    present = [r for r in records if key(r)[0] == 0]
    absent = [r for r in records if key(r)[0] == 1]
    present.sort(key=key, reverse=descending)
    return absent + present if descending else present + absent

"""`attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9) on plain JSON documents."""

from __future__ import annotations

from typing import Any

from .errors import invalid_value
from .schemas import ResourceTypeInfo

# Returned "always" (RFC 7643 §7): never removed by excludedAttributes, always kept by attributes.
_ALWAYS = {"id", "schemas"}


class Projection:
    """A parsed attributes/excludedAttributes pair, ready to apply to many documents."""

    def __init__(self, resource_type: ResourceTypeInfo, attributes: str | None, excluded: str | None) -> None:
        self.resource_type = resource_type
        self.include = self._parse(attributes)
        self.exclude = self._parse(excluded)
        if self.include and self.exclude:
            raise invalid_value("attributes and excludedAttributes cannot be used together")

    @property
    def is_identity(self) -> bool:
        return not self.include and not self.exclude

    def asks_for(self, urn: str) -> bool:
        """Whether `attributes=` names this extension or one of its attributes (what a
        returned="request" extension needs before it is computed at all)."""
        return any(path[0] is not None and path[0].lower() == urn.lower() for path in self.include)

    def wants(self, attribute: str) -> bool:
        """Whether a top-level core attribute survives (lets callers skip computing it)."""
        key = (None, attribute.lower())
        if self.include:
            return any(path[:2] == key for path in self.include)
        return not any(path == key for path in self.exclude)

    def _parse(self, value: str | None) -> list[tuple[str | None, str, str | None]]:
        """Each entry: (extension urn or None, attribute lower, sub-attribute lower or None)."""
        if not value:
            return []
        paths: list[tuple[str | None, str, str | None]] = []
        for raw in value.split(","):
            raw = raw.strip()
            if not raw:
                continue
            urn, name = _split_urn(raw, self.resource_type)
            if name is None:  # the whole extension: urn:...:User
                paths.append((urn, "", None))
                continue
            attr, _, sub = name.partition(".")
            paths.append((urn, attr.lower(), sub.lower() or None))
        return paths

    def apply(self, document: dict[str, Any]) -> dict[str, Any]:
        if self.include:
            return self._include(document)
        if self.exclude:
            return self._exclude(document)
        return document

    def _include(self, document: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in document.items():
            lower = key.lower()
            if lower in _ALWAYS:
                result[key] = value
                continue
            if lower.startswith("urn:") and isinstance(value, dict):
                wanted = [p for p in self.include if p[0] and p[0].lower() == lower]
                if any(p[1] == "" for p in wanted):
                    result[key] = value
                elif wanted:
                    kept = _pick(value, [(p[1], p[2]) for p in wanted])
                    if kept:
                        result[key] = kept
                continue
            wanted_core = [(p[1], p[2]) for p in self.include if p[0] is None and p[1] == lower]
            if wanted_core:
                picked = _pick({key: value}, wanted_core)
                if key in picked:
                    result[key] = picked[key]
        return result

    def _exclude(self, document: dict[str, Any]) -> dict[str, Any]:
        result = dict(document)
        for urn, attr, sub in self.exclude:
            if urn is not None:
                container_key = next((k for k in result if k.lower() == urn.lower()), None)
                if container_key is None:
                    continue
                if attr == "":
                    del result[container_key]
                    continue
                result[container_key] = _drop(result[container_key], attr, sub)
                continue
            if attr in _ALWAYS:
                continue
            result = _drop(result, attr, sub)
        return result


def _split_urn(raw: str, resource_type: ResourceTypeInfo) -> tuple[str | None, str | None]:
    lower = raw.lower()
    for urn in resource_type.all_schemas:
        prefix = urn.lower()
        if lower == prefix:
            return (None if urn == resource_type.core_schema else urn), None
        if lower.startswith(prefix + ":"):
            rest = raw[len(prefix) + 1 :]
            return (None if urn == resource_type.core_schema else urn), rest
    return None, raw


def _pick(container: dict[str, Any], wanted: list[tuple[str, str | None]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in container.items():
        lower = key.lower()
        subs = [sub for attr, sub in wanted if attr == lower]
        if not subs:
            continue
        if any(sub is None for sub in subs):
            result[key] = value
            continue
        names = set(subs)
        if isinstance(value, list):
            items = [{k: v for k, v in item.items() if k.lower() in names} for item in value if isinstance(item, dict)]
            items = [item for item in items if item]
            if items:
                result[key] = items
        elif isinstance(value, dict):
            kept = {k: v for k, v in value.items() if k.lower() in names}
            if kept:
                result[key] = kept
    return result


def _drop(container: dict[str, Any], attr: str, sub: str | None) -> dict[str, Any]:
    result = dict(container)
    key = next((k for k in result if k.lower() == attr), None)
    if key is None:
        return result
    if sub is None:
        del result[key]
        return result
    value = result[key]
    if isinstance(value, list):
        result[key] = [{k: v for k, v in item.items() if k.lower() != sub} for item in value if isinstance(item, dict)]
    elif isinstance(value, dict):
        result[key] = {k: v for k, v in value.items() if k.lower() != sub}
    return result

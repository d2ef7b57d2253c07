"""PATCH into extensions the bridge keeps verbatim (issue 10 §5).

A resource may carry extension blocks the bridge has no schema for (an agency's
`urn:example:params:scim:schemas:extension:agency:2.0:User`, OTDS's own URNs): POST and PUT store
them as sent (normalize.split_unknown_extensions). scim2-models only knows the modelled schemas
and, with `unknown=ignore`, silently dropped a PATCH into such a block: 200, nothing changed, a
contractor's shortened `accessExpires` never applied. Here those operations are applied on the
stored JSON with RFC 7644 §3.5.2 semantics, in each shape clients send:

    {"op": "replace", "path": "urn:…:User:accessExpires", "value": "2027-01-31"}
    {"op": "replace", "path": "urn:…:User", "value": {"accessExpires": "2027-01-31"}}
    {"op": "replace", "value": {"urn:…:User": {"accessExpires": "2027-01-31"}}}
    {"op": "replace", "value": {"urn:…:User:accessExpires": "2027-01-31"}}
    {"op": "remove", "path": "urn:…:User:accessExpires"}      (or the URN: the whole block)

Names compare case-insensitively (RFC 7643 §2.1); a new attribute keeps the client's spelling,
an existing one its stored spelling.

Without a schema, where the URN ends and the attribute begins is read from the resource first
(a block it already holds), then from RFC 7643's grammar: an attribute name starts with a letter
(§2.1), so `…:2.0` is never an attribute; and an extension URN for a resource ends with the
resource type's name (`…:User`, `…:Group`, as every published extension does), so a path whose
last segment is `User` names the block. Value filters (`attr[…]`) need a schema to know what the
attribute holds: they are refused with 400 invalidPath rather than guessed.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from .errors import ScimError, invalid_value
from .schemas import ResourceTypeInfo

_ATTRNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_$-]*(\.[A-Za-z][A-Za-z0-9_$-]*)?$")
_EMPTY: tuple[Any, ...] = (None, "", [], {})


def is_verbatim(name: str, resource_type: ResourceTypeInfo) -> bool:
    """Whether a path or a no-path key names an extension no schema of the resource type covers."""
    lower = name.split("[", 1)[0].lower()
    if not lower.startswith("urn:"):
        return False
    return not any(lower == urn.lower() or lower.startswith(urn.lower() + ":") for urn in resource_type.all_schemas)


def split(
    operations: list[dict[str, Any]], resource_type: ResourceTypeInfo
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(operations for scim2-models, operations on verbatim extension blocks). The two touch
    disjoint parts of the resource, so applying each list in its order keeps RFC order."""
    modelled: list[dict[str, Any]] = []
    verbatim: list[dict[str, Any]] = []
    for operation in operations:
        path = operation.get("path")
        if path is not None:
            (verbatim if is_verbatim(path, resource_type) else modelled).append(operation)
            continue
        value = operation.get("value")
        if not isinstance(value, dict) or not value:
            modelled.append(operation)
            continue
        ours = {k: v for k, v in value.items() if is_verbatim(k, resource_type)}
        rest = {k: v for k, v in value.items() if k not in ours}
        if ours:
            verbatim.append({**operation, "value": ours})
        if rest:
            modelled.append({**operation, "value": rest})
    return modelled, verbatim


def apply(blocks: dict[str, Any], operations: list[dict[str, Any]], resource_type: ResourceTypeInfo) -> dict[str, Any]:
    """The verbatim extension blocks after the operations (a new dict; `blocks` is untouched)."""
    result = copy.deepcopy(blocks)
    for operation in operations:
        op, path, value = operation["op"], operation.get("path"), operation.get("value")
        if path is None:
            if op == "remove":
                raise ScimError(400, "a remove operation needs a path", "noTarget")
            for key, item in (value or {}).items():  # split() hands over object values only
                _apply_one(result, op, key, item, True, resource_type)
        else:
            _apply_one(result, op, path, value, "value" in operation, resource_type)
    for urn in list(result):
        if not isinstance(result[urn], dict) or not result[urn]:
            del result[urn]
    return result


def _apply_one(
    blocks: dict[str, Any], op: str, name: str, value: Any, has_value: bool, resource_type: ResourceTypeInfo
) -> None:
    if "[" in name:
        raise ScimError(
            400,
            f"value filters are not supported inside {name.split('[', 1)[0]}: the bridge has no schema for it",
            "invalidPath",
        )
    urn, attribute = _locate(name, blocks, value, resource_type)
    if attribute is None:  # the whole block
        if op == "remove":
            blocks.pop(urn, None)
            return
        if not isinstance(value, dict):
            raise invalid_value(f"{urn} must be an object")
        block = blocks.setdefault(urn, {})
        for key, item in value.items():
            if key.lower() == "schemas":
                continue
            _set(block, op, key, item)
        return
    block = blocks.get(urn)
    if op == "remove":
        if isinstance(block, dict):
            _remove(block, attribute, value if has_value else None)
        return
    if not has_value:
        raise invalid_value(f"{op} {name} needs a value")
    block = blocks.setdefault(urn, {})
    _set(block, op, attribute, value)


def _locate(name: str, blocks: dict[str, Any], value: Any, resource_type: ResourceTypeInfo) -> tuple[str, str | None]:
    """(block key, attribute path or None for the block itself)."""
    lower = name.lower()
    for urn in blocks:
        if lower == urn.lower():
            return urn, None
        if lower.startswith(urn.lower() + ":"):
            return urn, name[len(urn) + 1 :]
    head, _, last = name.rpartition(":")
    if not _ATTRNAME.match(last) or last.lower() == resource_type.name.lower() or head.count(":") < 2:
        return name, None
    return head, last


def _key(container: dict[str, Any], name: str) -> str:
    """The stored spelling of `name` in `container` (case-insensitive), or `name` itself."""
    lower = name.lower()
    return next((k for k in container if k.lower() == lower), name)


def _set(block: dict[str, Any], op: str, attribute: str, value: Any) -> None:
    name, _, sub = attribute.partition(".")
    key = _key(block, name)
    if value in _EMPTY:  # RFC 7643 §2.5: null/empty is unassigned
        if sub:
            _remove(block, attribute, None)
        else:
            block.pop(key, None)
        return
    if sub:
        current = block.get(key)
        if isinstance(current, list):  # no filter: every value of the multi-valued attribute
            for item in current:
                if isinstance(item, dict):
                    item[_key(item, sub)] = value
            return
        if not isinstance(current, dict):
            current = block[key] = {}
        current[_key(current, sub)] = value
        return
    current = block.get(key)
    if op == "add" and isinstance(current, list):  # add to a multi-valued attribute appends
        for item in value if isinstance(value, list) else [value]:
            if item not in current:
                current.append(item)
        return
    if isinstance(current, dict) and isinstance(value, dict):  # sub-attributes given replace theirs
        for sub_name, item in value.items():
            if item in _EMPTY:
                current.pop(_key(current, sub_name), None)
            else:
                current[_key(current, sub_name)] = item
        if not current:
            block.pop(key)
        return
    block[key] = value


def _remove(block: dict[str, Any], attribute: str, value: Any) -> None:
    name, _, sub = attribute.partition(".")
    key = _key(block, name)
    if key not in block:
        return
    current = block[key]
    if sub:
        items = current if isinstance(current, list) else [current]
        for item in items:
            if isinstance(item, dict):
                item.pop(_key(item, sub), None)
        if isinstance(current, list):
            block[key] = [item for item in current if item not in _EMPTY]
        if block[key] in _EMPTY:
            del block[key]
        return
    if value is not None and isinstance(current, list):  # remove exactly these values
        gone = value if isinstance(value, list) else [value]
        block[key] = [item for item in current if item not in gone and not _same_value(item, gone)]
        if not block[key]:
            del block[key]
        return
    del block[key]


def _same_value(item: Any, gone: list[Any]) -> bool:
    """A complex value named by its `value` sub-attribute (Entra's `[{"value": …}]` removes)."""
    if not isinstance(item, dict):
        return False
    value = item.get(_key(item, "value"))
    return value is not None and any(isinstance(g, dict) and g.get(_key(g, "value")) == value for g in gone)

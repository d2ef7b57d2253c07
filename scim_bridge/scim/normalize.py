"""Lenient reading of what real SCIM clients send (research/scim-clients.md §5, §6).

"Lenient parser, strict responder": before scim2-models validates a body, the shapes that real
identity providers send and the RFC does not allow are mapped to their RFC form, each at one
place with the client that needs it. Nothing here decides a SCIM rule.
"""

from __future__ import annotations

from typing import Any

from .errors import ScimError, invalid_syntax, invalid_value
from .schemas import PATCH_OP, AttributeInfo, ResourceTypeInfo

# SCIM 1.1 core URN that OneLogin templates still send on v2 apps (scim-clients.md §4.1).
_SCIM1_CORE = "urn:scim:schemas:core:1.0"
# Client-sent values the server owns (RFC 7643 §3.1) or never stores (`password`, §4.1.1).
_SERVER_OWNED = {"id", "meta", "groups", "password", "schemas"}


def split_unknown_extensions(body: dict[str, Any], resource_type: ResourceTypeInfo) -> dict[str, Any]:
    """Remove and return URN-keyed blocks of extensions the bridge does not model; they are kept
    verbatim beside the resource (issue 2: "unknown extension URNs kept")."""
    known = {urn.lower() for urn in resource_type.all_schemas}
    unknown = {}
    for key in list(body):
        if key.lower().startswith("urn:") and key.lower() not in known and isinstance(body[key], dict):
            if _is_known_urn_prefix(key, resource_type):
                continue  # an URN-qualified attribute of a known schema, e.g. "urn:...:User:department"
            unknown[key] = body.pop(key)
    return unknown


def _is_known_urn_prefix(key: str, resource_type: ResourceTypeInfo) -> bool:
    return any(key.lower().startswith(urn.lower() + ":") for urn in resource_type.all_schemas)


def resource_body(body: Any, resource_type: ResourceTypeInfo, base_url: str) -> dict[str, Any]:
    """Map a POST/PUT body to the shape the scim2-models class validates."""
    if not isinstance(body, dict):
        raise invalid_syntax("the request body must be a JSON object")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or not schemas:
        raise invalid_value(f"schemas is required and must list {resource_type.core_schema}")
    lowered = {str(s).lower() for s in schemas}
    if resource_type.core_schema.lower() not in lowered and _SCIM1_CORE not in lowered:
        raise invalid_value(f"schemas must contain {resource_type.core_schema}")

    result: dict[str, Any] = {}
    extensions: dict[str, dict[str, Any]] = {}
    core = resource_type.attributes[""]
    # An extension block or an URN-qualified attribute begins with its extension's URN: any other
    # key (most of them) skips both searches below.
    urns = tuple(u.lower() for u in resource_type.extensions)
    for key, value in body.items():
        lower = key.lower()
        if lower in _SERVER_OWNED or value is None or value == "":
            continue
        if lower.startswith(urns):
            extension = next((u for u in resource_type.extensions if u.lower() == lower), None)
            if extension is not None:
                if not isinstance(value, dict):
                    raise invalid_value(f"{extension} must be an object")
                extensions.setdefault(extension, {}).update(
                    _clean_object(value, resource_type.attributes[extension.lower()])
                )
                continue
            qualified = _urn_qualified(key, resource_type)
            if qualified is not None:  # "urn:...:enterprise:2.0:User:department": value
                urn, attr = qualified
                extensions.setdefault(urn, {})[attr.name] = _clean(value, attr)
                continue
        info = core.get(lower)
        if info is not None:
            if info.mutability == "readOnly":
                continue
            cleaned = _clean(value, info)
            if cleaned not in ([], {}):
                result[info.name] = cleaned
            continue
        # Entra's samples put enterprise attributes at the top level (scim-clients.md §2.3).
        for urn in resource_type.extensions:
            ext_info = resource_type.attributes[urn.lower()].get(lower)
            if ext_info is not None:
                extensions.setdefault(urn, {})[ext_info.name] = _clean(value, ext_info)
                break
        # Anything else is an attribute no schema defines: ignored (checklist 39).

    for urn, block in extensions.items():
        block = {k: v for k, v in block.items() if v not in (None, "", [], {})}
        if "manager" in block:
            block["manager"] = manager_value(block["manager"], base_url)
        if block:
            result[urn] = block
    result["schemas"] = [resource_type.core_schema, *[u for u in resource_type.extensions if u in result]]
    if resource_type.name == "Group" and "members" in result:
        result["members"] = member_list(result["members"])
    return result


def _urn_qualified(key: str, resource_type: ResourceTypeInfo) -> tuple[str, AttributeInfo] | None:
    for urn in resource_type.extensions:
        if key.lower().startswith(urn.lower() + ":"):
            attr = resource_type.attributes[urn.lower()].get(key[len(urn) + 1 :].lower())
            if attr is not None:
                return urn, attr
    return None


def _clean_object(value: dict[str, Any], table: dict[str, AttributeInfo]) -> dict[str, Any]:
    cleaned = {}
    for key, item in value.items():
        info = table.get(key.lower())
        # RFC 7643 §7: values of readOnly attributes sent by a client SHALL be ignored.
        if info is None or item is None or item == "" or info.mutability == "readOnly":
            continue
        item = _clean(item, info)
        if item not in ([], {}):
            cleaned[info.name] = item
    return cleaned


def canonical(document: dict[str, Any]) -> dict[str, Any]:
    """The stored form of a validated body: no empty lists or objects (scim2-models' dump of the
    same body is equal; tests/scim/test_canonical.py holds them to it)."""
    return {k: v for k, v in document.items() if v not in ([], {}, None, "")}


def _clean(value: Any, info: AttributeInfo) -> Any:
    """Canonical attribute names, string booleans, and no nulls inside complex values."""
    if info.multi_valued and isinstance(value, list):
        items = [_clean_single(item, info) for item in value if item not in (None, "")]
        return [item for item in items if item not in (None, {}, "")]
    if info.multi_valued and info.type == "complex" and isinstance(value, dict):
        return [_clean_single(value, info)]  # a single object where a list is expected
    return _clean_single(value, info)


def _clean_single(value: Any, info: AttributeInfo) -> Any:
    if info.name == "manager":
        return value  # any of four shapes; manager_value() reads them all
    if info.type == "boolean":
        return _bool(value, info.name)
    if info.type == "complex" and isinstance(value, dict):
        return _clean_object(value, info.sub_attributes)
    return value


def _bool(value: Any, name: str) -> Any:
    # Entra sends "True"/"False" and OneLogin templates render "{$user.active}" as a string.
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def manager_value(value: Any, base_url: str) -> Any:
    """The manager as RFC 7643 §4.3 wants it, from any of the four shapes clients send
    (checklist 37): an id string, {"value"}, {"managerId"}, or [{"value", "$ref"}]."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, str):
        value = {"value": value}
    if not isinstance(value, dict):
        return value
    manager_id = value.get("value") or value.get("managerId") or value.get("managerid")
    if not manager_id:
        return None
    result = {"value": str(manager_id), "$ref": f"{base_url}/Users/{manager_id}"}
    # manager.displayName is readOnly (RFC 7643 §4.3): the client's copy is not kept.
    return result


def member_list(members: Any) -> list[dict[str, Any]]:
    """Group members without `$ref: null` (Entra) and with `type` optional (Okta)."""
    result = []
    for member in members if isinstance(members, list) else [members]:
        if isinstance(member, str):
            member = {"value": member}
        if not isinstance(member, dict) or not member.get("value"):
            raise invalid_value("each member needs a value (the member's id)")
        # `$ref` is recomputed by the server from the member's type; a client's (often null) is dropped.
        result.append({k: v for k, v in member.items() if v is not None and k.lower() != "$ref"})
    return result


def patch_body(body: Any, resource_type: ResourceTypeInfo, resource_id: str, base_url: str) -> dict[str, Any]:
    """Map a PatchOp body to RFC 7644 §3.5.2 form (op names in any case, `operations`, Okta's
    rename carrying `id`, Entra's `manager` path and string booleans)."""
    if not isinstance(body, dict):
        raise invalid_syntax("the request body must be a JSON object")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or PATCH_OP.lower() not in {str(s).lower() for s in schemas}:
        raise invalid_value(f"schemas must contain {PATCH_OP}")
    operations = next((v for k, v in body.items() if k.lower() == "operations"), None)
    if not isinstance(operations, list) or not operations:
        raise invalid_value("Operations must be a non-empty list")
    return {
        "schemas": [PATCH_OP],
        "Operations": [_operation(o, resource_type, resource_id, base_url) for o in operations],
    }


def _operation(operation: Any, resource_type: ResourceTypeInfo, resource_id: str, base_url: str) -> dict[str, Any]:
    if not isinstance(operation, dict):
        raise invalid_syntax("each operation must be a JSON object")
    fields = {k.lower(): v for k, v in operation.items()}
    op = fields.get("op")
    if not isinstance(op, str) or op.lower() not in ("add", "replace", "remove"):
        raise invalid_value(f"op must be add, replace or remove, not {op!r}")
    result: dict[str, Any] = {"op": op.lower()}
    path = fields.get("path")
    if path is not None:
        if not isinstance(path, str) or not path.strip():
            raise ScimError(400, "path must be a non-empty string", "invalidPath")
        path = _patch_path(path.strip(), resource_type)
        _check_read_only_extension(op.lower(), path, fields.get("value"), resource_type)
        _check_path_target(path, resource_type)
        result["path"] = path
    if "value" in fields:
        result["value"] = _patch_value(fields["value"], path, resource_type, resource_id, base_url)
    return result


def _check_read_only_extension(op: str, path: str, value: Any, resource_type: ResourceTypeInfo) -> None:
    """Writing into a read-only extension is `mutability` (RFC 7644 §3.5.2). Adding the bare
    extension with no attribute in it changes nothing, so it is allowed (scim2-tester does that
    for every extension a resource type lists)."""
    head = path.split("[", 1)[0].lower()
    for urn in resource_type.read_only_extensions:
        if (
            head == urn.lower()
            and op in ("add", "replace")
            and isinstance(value, dict)
            and not any(v not in (None, [], {}) for k, v in value.items() if k.lower() != "schemas")
        ):
            return
        if head == urn.lower() or head.startswith(urn.lower() + ":"):
            raise ScimError(400, f"{urn} is read-only: the bridge fills it", "mutability")


def _patch_path(path: str, resource_type: ResourceTypeInfo) -> str:
    """A bare extension attribute name becomes its URN path (Entra's `manager`, §2.4)."""
    head = path.split("[", 1)[0].split(".", 1)[0]
    if head.lower().startswith("urn:") or head.lower() in resource_type.attributes[""]:
        return path
    for urn in resource_type.extensions:
        if head.lower() in resource_type.attributes[urn.lower()]:
            return f"{urn}:{path}"
    return path


def _check_path_target(path: str, resource_type: ResourceTypeInfo) -> None:
    """A path naming an attribute of no known schema is `invalidPath` (RFC 7644 §3.5.2);
    paths into an extension the bridge does not model are left to the lenient reading."""
    head = path.split("[", 1)[0]
    for urn in resource_type.all_schemas:
        if head.lower().startswith(urn.lower() + ":"):
            # the core schema's table under "" also holds id, externalId and meta (RFC 7643 §3.1)
            core = urn == resource_type.core_schema
            head, table = head[len(urn) + 1 :], resource_type.attributes["" if core else urn.lower()]
            break
    else:
        if head.lower().startswith("urn:"):
            return
        table = resource_type.attributes[""]
    name = head.split(".", 1)[0]
    if name.lower() not in table:
        raise ScimError(400, f"unknown attribute in path: {path}", "invalidPath")


def _patch_value(value: Any, path: str | None, resource_type: ResourceTypeInfo, resource_id: str, base_url: str) -> Any:
    if path is None:
        if not isinstance(value, dict):
            raise invalid_value("an operation without a path needs an object value")
        cleaned: dict[str, Any] = {}
        for key, item in value.items():
            lower = key.lower()
            if lower == "id":  # Okta sends the group's own id in every rename (§3.3)
                if str(item) != resource_id:
                    raise ScimError(400, "id is immutable", "mutability")
                continue
            if lower in ("meta", "schemas") or lower in {u.lower() for u in resource_type.read_only_extensions}:
                continue
            cleaned[_patch_path(key, resource_type) if not lower.startswith("urn:") else key] = _patch_value(
                item, key, resource_type, resource_id, base_url
            )
        return cleaned
    target = path.split("[", 1)[0].lower()
    if target.endswith(":manager") or target == "manager":
        return manager_value(value, base_url)
    if target == "members" or target.startswith("members"):
        return member_list(value) if isinstance(value, (list, dict)) and "[" not in path else value
    if target.split(":")[-1] == "active":
        return _bool(value, "active")
    if isinstance(value, dict) and target.lower() in resource_type.attributes[""]:
        info = resource_type.attributes[""][target]
        return _clean(value, info)
    if isinstance(value, list) and target in resource_type.attributes[""]:
        return _clean(value, resource_type.attributes[""][target])
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        leaf = _leaf_info(path, resource_type)
        if leaf is not None and leaf.type == "boolean":
            return value.strip().lower() == "true"
    return value


def _leaf_info(path: str, resource_type: ResourceTypeInfo) -> AttributeInfo | None:
    name = path.split("[", 1)[0]
    attr, _, sub = name.partition(".")
    info = resource_type.attributes[""].get(attr.lower())
    if info is not None and sub:
        return info.sub(sub)
    if info is not None and "]." in path:
        return info.sub(path.rsplit("].", 1)[1])
    return info

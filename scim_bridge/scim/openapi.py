"""The bridge's own SCIM API as an OpenAPI 3.1 document (`GET /scim/v2/openapi.json`).

Generated on each request from what the bridge serves: the resource types and their schema
documents (schemas.py, the same ones /Schemas returns), the paging limits (listing.py), Bulk's
limits (discovery.py) and the body limit from the settings, so it cannot drift from them.
Resource bodies are JSON Schema 2020-12 (OpenAPI 3.1's dialect) built from the RFC 7643 §7
attribute definitions: `mutability` becomes readOnly/writeOnly, `multiValued` an array,
`canonicalValues` examples (RFC 7643 §2.3.1 lets clients send others), and every object admits
more members (attribute names are case-insensitive, §2.1, and unknown extensions ride along).

Does not: describe the admin, apps or webhook APIs (they are not SCIM), nor validate anything.
"""

from __future__ import annotations

from typing import Any

from .discovery import BULK_MAX_OPERATIONS
from .errors import ERROR_SCHEMA
from .listing import DEFAULT_COUNT, MAX_COUNT, MAX_SAFE_INTEGER
from .schemas import (
    BULK_REQUEST,
    BULK_RESPONSE,
    LIST_RESPONSE,
    PATCH_OP,
    RESOURCE_TYPES,
    SEARCH_REQUEST,
    ResourceTypeInfo,
)

OPENAPI_VERSION = "3.1.0"
# RFC 7644 §3.12 Table 9, with RFC 9865 §3's cursor errors.
SCIM_TYPES = [
    "invalidFilter",
    "tooMany",
    "uniqueness",
    "mutability",
    "invalidSyntax",
    "invalidPath",
    "noTarget",
    "invalidValue",
    "invalidVers",
    "sensitive",
    "invalidCursor",
    "expiredCursor",
]
_SIMPLE: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "boolean": {"type": "boolean"},
    "decimal": {"type": "number"},
    "integer": {"type": "integer"},
    "dateTime": {"type": "string", "format": "date-time"},
    "reference": {"type": "string"},
    "binary": {"type": "string", "contentEncoding": "base64"},
}
_REF = "#/components/schemas/"
_JSON_TYPES = ["application/scim+json", "application/json"]


def attribute_schema(attribute: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema of one RFC 7643 §7 attribute definition."""
    if attribute.get("type") == "complex":
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {sub["name"]: attribute_schema(sub) for sub in attribute.get("subAttributes", [])},
        }
    else:
        schema = dict(_SIMPLE.get(attribute.get("type", "string"), {"type": "string"}))
        if attribute.get("canonicalValues"):
            schema["examples"] = list(attribute["canonicalValues"])
    if attribute.get("multiValued"):
        schema = {"type": "array", "items": schema}
    if attribute.get("description"):
        schema["description"] = attribute["description"]
    if attribute.get("mutability") == "readOnly":
        schema["readOnly"] = True
    elif attribute.get("mutability") == "writeOnly":
        schema["writeOnly"] = True
    return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema, admitting null at this level and in every member and item below it."""
    result = dict(schema)
    if "properties" in result:
        result["properties"] = {name: _nullable(sub) for name, sub in result["properties"].items()}
    if "items" in result:
        result["items"] = _nullable(result["items"])
    if isinstance(result.get("type"), str):
        result["type"] = [result["type"], "null"]
    return result


def _meta() -> dict[str, Any]:
    return {
        "type": "object",
        "readOnly": True,
        "properties": {
            "resourceType": {"type": "string"},
            "created": {"type": "string", "format": "date-time"},
            "lastModified": {"type": "string", "format": "date-time"},
            "location": {"type": "string"},
            "version": {"type": "string"},
        },
    }


def resource_schema(info: ResourceTypeInfo, syncing: bool, *, answer: bool = False) -> dict[str, Any]:
    """A resource as written (answer=False) or as read: core attributes at the top, each extension
    under its URN. An answer requires only `schemas` and `id`: `attributes=` may leave out any
    other (RFC 7644 §3.4.2.5)."""
    core = info.schema_documents[info.core_schema]
    properties: dict[str, Any] = {
        # RFC 7643 §3: the core schema, and the URN of each extension the body carries.
        "schemas": {"type": "array", "items": {"type": "string"}, "contains": {"const": info.core_schema}},
        "id": {"type": "string", "readOnly": True},
        "externalId": {"type": "string"},
        "meta": _meta(),
    }
    properties.update({a["name"]: attribute_schema(a) for a in core["attributes"]})
    extensions = [*info.extensions, *(info.read_only_extensions if syncing else ())]
    for urn in extensions:
        document = info.schema_documents[urn]
        schema = {
            "type": "object",
            "description": document.get("description") or document.get("name", urn),
            "properties": {a["name"]: attribute_schema(a) for a in document["attributes"]},
        }
        if urn in info.read_only_extensions:
            schema["readOnly"] = True
        properties[urn] = schema
    if answer:
        # RFC 7643 §2.5: null is the same state as unassigned, and a stored document may say it so.
        properties = {
            name: schema if name in ("schemas", "id") else _nullable(schema) for name, schema in properties.items()
        }
    required = (
        ["schemas", "id"] if answer else ["schemas", *(a["name"] for a in core["attributes"] if a.get("required"))]
    )
    return {
        "type": "object",
        "description": (
            f"{info.name}{' as answered' if answer else ''} "
            f"(schema {info.core_schema}; extensions: {', '.join(extensions) or 'none'})"
        ),
        "properties": properties,
        "required": required,
    }


def _message(urn: str, properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "schemas": {"type": "array", "items": {"type": "string"}, "contains": {"const": urn}},
            **properties,
        },
        "required": ["schemas", *(required or [])],
    }


def _components(syncing: bool, max_body_bytes: int) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for info in RESOURCE_TYPES.values():
        schemas[info.name] = resource_schema(info, syncing)
        schemas[f"{info.name}Answer"] = resource_schema(info, syncing, answer=True)
        schemas[f"{info.name}ListResponse"] = _list_response({"$ref": _REF + f"{info.name}Answer"}, cursor=True)
    schemas["ListResponse"] = _list_response({"type": "object"}, cursor=False)
    schemas["Error"] = {
        "type": "object",
        "description": "RFC 7644 §3.12: `status` is the HTTP status as a string.",
        "properties": {
            "schemas": {"type": "array", "items": {"const": ERROR_SCHEMA}, "minItems": 1},
            "status": {"type": "string", "pattern": "^[1-5][0-9][0-9]$"},
            "scimType": {"type": "string", "enum": SCIM_TYPES},
            "detail": {"type": "string"},
        },
        "required": ["schemas", "status"],
    }
    schemas["SearchRequest"] = _message(
        SEARCH_REQUEST,
        {
            "attributes": {"type": "array", "items": {"type": "string"}},
            "excludedAttributes": {"type": "array", "items": {"type": "string"}},
            "filter": {"type": "string", "description": "RFC 7644 §3.4.2.2 filter"},
            "sortBy": {"type": "string"},
            "sortOrder": {"type": "string", "enum": ["ascending", "descending"]},
            "startIndex": {"type": "integer", "maximum": MAX_SAFE_INTEGER},
            "count": {"type": "integer"},
            "cursor": {"type": "string", "description": "RFC 9865: empty for the first page (per resource type)"},
        },
    )
    schemas["PatchOp"] = _message(
        PATCH_OP,
        {
            "Operations": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        # RFC 7644 §3.5.2; Entra sends "Replace", so the case is not fixed.
                        "op": {"type": "string", "examples": ["add", "remove", "replace"]},
                        "path": {"type": "string"},
                        "value": {},
                    },
                    "required": ["op"],
                },
            }
        },
        ["Operations"],
    )
    schemas["BulkRequest"] = _message(
        BULK_REQUEST,
        {
            "failOnErrors": {"type": "integer", "minimum": 1},
            "Operations": {
                "type": "array",
                "maxItems": BULK_MAX_OPERATIONS,
                "items": {
                    "type": "object",
                    "properties": {
                        "method": {"type": "string", "enum": ["POST", "PUT", "PATCH", "DELETE"]},
                        "bulkId": {"type": "string"},
                        "version": {"type": "string"},
                        "path": {"type": "string", "examples": ["/Users", "/Groups/{id}"]},
                        "data": {"type": "object"},
                    },
                    "required": ["method", "path"],
                },
            },
        },
        ["Operations"],
    )
    schemas["BulkResponse"] = _message(
        BULK_RESPONSE,
        {
            "Operations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "method": {"type": "string"},
                        "bulkId": {"type": "string"},
                        "version": {"type": "string"},
                        "location": {"type": "string"},
                        "status": {"type": "string"},
                        "response": {"type": "object"},
                    },
                    "required": ["status"],
                },
            }
        },
        ["Operations"],
    )
    for name in ("ServiceProviderConfig", "ResourceType", "Schema"):
        schemas[name] = {"type": "object", "properties": {"schemas": {"type": "array"}}, "required": ["schemas"]}
    return {
        "schemas": schemas,
        "parameters": _parameters(),
        "responses": _responses(max_body_bytes),
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "Static token, OAuth access token or JWT"},
            "basic": {"type": "http", "scheme": "basic"},
        },
    }


def _list_response(item: dict[str, Any], *, cursor: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "schemas": {"type": "array", "items": {"const": LIST_RESPONSE}},
        "totalResults": {"type": "integer", "minimum": 0},
        "startIndex": {"type": "integer", "minimum": 1},
        "itemsPerPage": {"type": "integer", "minimum": 0, "maximum": MAX_COUNT},
        "Resources": {"type": "array", "items": item, "maxItems": MAX_COUNT},
    }
    if cursor:
        properties["nextCursor"] = {"type": "string"}
    return {"type": "object", "properties": properties, "required": ["schemas", "itemsPerPage", "Resources"]}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _parameters() -> dict[str, Any]:
    return {
        "filter": _query("filter", {"type": "string"}, "RFC 7644 §3.4.2.2"),
        "sortBy": _query("sortBy", {"type": "string"}, "a simple attribute or sub-attribute (§3.4.2.3)"),
        "sortOrder": _query("sortOrder", {"type": "string", "enum": ["ascending", "descending"]}, "§3.4.2.3"),
        "startIndex": _query("startIndex", {"type": "integer", "maximum": MAX_SAFE_INTEGER}, "1-based; < 1 means 1"),
        "count": _query("count", {"type": "integer"}, f"default {DEFAULT_COUNT}, at most {MAX_COUNT}"),
        "cursor": _query("cursor", {"type": "string"}, "RFC 9865: empty for the first page"),
        "attributes": _query("attributes", {"type": "string"}, "comma-separated (§3.4.2.5)"),
        "excludedAttributes": _query("excludedAttributes", {"type": "string"}, "comma-separated (§3.4.2.5)"),
        "id": {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
        "If-Match": {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"}},
        "If-None-Match": {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}},
    }


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {media: {"schema": {"$ref": _REF + "Error"}} for media in _JSON_TYPES[:1]},
    }


def _responses(max_body_bytes: int) -> dict[str, Any]:
    return {
        "400": _error("Bad request: `scimType` says why (RFC 7644 §3.12)"),
        "401": _error("No valid credentials"),
        "403": _error("The credentials do not allow this"),
        "404": _error("No such resource or endpoint"),
        "409": _error("Uniqueness conflict"),
        "412": _error("The ETag in If-Match does not match (RFC 7644 §3.14)"),
        "413": _error(f"The body exceeds {max_body_bytes} bytes"),
        "415": _error("The body is not JSON"),
        "501": _error("Not implemented (/Me)"),
        "503": _error("The store is unavailable; retry after Retry-After"),
    }


def _ok(description: str, ref: str | None, status: str = "200") -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if ref:
        response["content"] = {media: {"schema": {"$ref": _REF + ref}} for media in _JSON_TYPES[:1]}
    return {status: response}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/{s}"} for s in sorted({401, 403, 503, *statuses})}


def _body(ref: str) -> dict[str, Any]:
    return {"required": True, "content": {media: {"schema": {"$ref": _REF + ref}} for media in _JSON_TYPES}}


def _params(*names: str) -> list[dict[str, Any]]:
    return [{"$ref": f"#/components/parameters/{name}"} for name in names]


_LIST_PARAMS = ("filter", "sortBy", "sortOrder", "startIndex", "count", "cursor", "attributes", "excludedAttributes")
_PROJECTION = ("attributes", "excludedAttributes")
_BODY_ERRORS = (400, 413, 415)


def _resource_paths(info: ResourceTypeInfo) -> dict[str, Any]:
    name, endpoint = info.name, info.endpoint
    tag = [name + "s"]
    answer = f"{name}Answer"
    patch_ok = {**_ok("The modified resource", answer)}
    if name == "Group":  # group_patch_returns_resource=false answers 204 (Entra's expectation)
        patch_ok["204"] = {"description": "Modified; no body"}
    return {
        endpoint: {
            "get": {
                "operationId": f"list{name}s",
                "tags": tag,
                "summary": f"Query {name}s (RFC 7644 §3.4.2)",
                "parameters": _params(*_LIST_PARAMS),
                "responses": {**_ok("A page of matches", f"{name}ListResponse"), **_errors(400)},
            },
            "post": {
                "operationId": f"create{name}",
                "tags": tag,
                "summary": f"Create a {name} (RFC 7644 §3.3)",
                "parameters": _params(*_PROJECTION),
                "requestBody": _body(name),
                "responses": {**_ok("Created", answer, "201"), **_errors(*_BODY_ERRORS, 409)},
            },
        },
        f"{endpoint}/.search": {
            "post": {
                "operationId": f"search{name}s",
                "tags": tag,
                "summary": f"Query {name}s with POST (RFC 7644 §3.4.3)",
                "requestBody": _body("SearchRequest"),
                "responses": {**_ok("A page of matches", f"{name}ListResponse"), **_errors(*_BODY_ERRORS)},
            }
        },
        f"{endpoint}/{{id}}": {
            "parameters": _params("id"),
            "get": {
                "operationId": f"get{name}",
                "tags": tag,
                "summary": f"Retrieve a {name} (RFC 7644 §3.4.1)",
                "parameters": _params(*_PROJECTION, "If-None-Match"),
                "responses": {
                    **_ok(f"The {name}", answer),
                    "304": {"description": "Unchanged since the ETag in If-None-Match"},
                    **_errors(400, 404),
                },
            },
            "put": {
                "operationId": f"replace{name}",
                "tags": tag,
                "summary": f"Replace a {name} (RFC 7644 §3.5.1)",
                "parameters": _params(*_PROJECTION, "If-Match"),
                "requestBody": _body(name),
                "responses": {**_ok(f"The replaced {name}", answer), **_errors(*_BODY_ERRORS, 404, 409, 412)},
            },
            "patch": {
                "operationId": f"patch{name}",
                "tags": tag,
                "summary": f"Modify a {name} (RFC 7644 §3.5.2)",
                "parameters": _params(*_PROJECTION, "If-Match"),
                "requestBody": _body("PatchOp"),
                "responses": {**patch_ok, **_errors(*_BODY_ERRORS, 404, 409, 412)},
            },
            "delete": {
                "operationId": f"delete{name}",
                "tags": tag,
                "summary": f"Delete a {name} (RFC 7644 §3.6)",
                "parameters": _params("If-Match"),
                "responses": {"204": {"description": "Deleted"}, **_errors(404, 412)},
            },
        },
    }


def _discovery_paths() -> dict[str, Any]:
    def get(operation: str, summary: str, ref: str, *errors: int, params: tuple[str, ...] = ()) -> dict[str, Any]:
        operation_doc: dict[str, Any] = {
            "operationId": operation,
            "tags": ["Discovery"],
            "summary": summary,
            "responses": {**_ok(summary, ref), **_errors(*errors)},
        }
        if params:
            operation_doc["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params
            ]
        return {"get": operation_doc}

    return {
        "/ServiceProviderConfig": get(
            "getServiceProviderConfig", "Service provider configuration (RFC 7644 §4)", "ServiceProviderConfig"
        ),
        "/ResourceTypes": get("listResourceTypes", "Resource types (RFC 7644 §4)", "ListResponse"),
        "/ResourceTypes/{name}": get("getResourceType", "One resource type", "ResourceType", 404, params=("name",)),
        "/Schemas": get("listSchemas", "Schemas (RFC 7644 §4)", "ListResponse"),
        "/Schemas/{urn}": get("getSchema", "One schema", "Schema", 404, params=("urn",)),
    }


def _me_paths() -> dict[str, Any]:
    # RFC 7644 §3.11 lets a provider answer 501: the bridge's clients are provisioning systems.
    operations = {}
    for method in ("get", "post", "put", "patch", "delete"):
        operations[method] = {
            "operationId": f"{method}Me",
            "tags": ["Me"],
            "summary": "The authenticated subject (RFC 7644 §3.11): not implemented",
            "responses": {"501": {"$ref": "#/components/responses/501"}, **_errors()},
        }
    return {"/Me": operations}


def document(base_url: str, *, syncing: bool = False, max_body_bytes: int = 4 * 1024 * 1024) -> dict[str, Any]:
    """The OpenAPI 3.1 document, with `base_url` (…/scim/v2) as its server."""
    paths: dict[str, Any] = {}
    for info in RESOURCE_TYPES.values():
        paths.update(_resource_paths(info))
    paths["/.search"] = {
        "post": {
            "operationId": "searchAll",
            "tags": ["Search"],
            "summary": "Query every resource type (RFC 7644 §3.4.3): Users, then Groups, paged",
            "requestBody": _body("SearchRequest"),
            "responses": {**_ok("A page of matches", "ListResponse"), **_errors(*_BODY_ERRORS)},
        }
    }
    paths["/Bulk"] = {
        "post": {
            "operationId": "bulk",
            "tags": ["Bulk"],
            "summary": f"Bulk operations (RFC 7644 §3.7), at most {BULK_MAX_OPERATIONS}",
            "requestBody": _body("BulkRequest"),
            "responses": {**_ok("One answer per operation", "BulkResponse"), **_errors(*_BODY_ERRORS)},
        }
    }
    paths.update(_me_paths())
    paths.update(_discovery_paths())
    return {
        "openapi": OPENAPI_VERSION,
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "scim-bridge SCIM 2.0 service provider",
            "version": "2.0",
            "description": "RFC 7643 / RFC 7644 as this bridge serves them; generated from its own schemas.",
        },
        "servers": [{"url": base_url}],
        "security": [{"bearer": []}, {"basic": []}],
        "paths": paths,
        "components": _components(syncing, max_body_bytes),
    }

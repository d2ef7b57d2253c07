"""HTTP endpoints of the SCIM service provider (RFC 7644 §3.2): translate, call, answer.

Each handler reads the request, calls the service, and writes the response; SCIM rules live in
resources.py, listing.py and bulk.py. Every response is `application/scim+json`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, NoReturn
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import discovery, openapi
from .bulk import BulkProcessor
from .errors import SCIM_CONTENT_TYPE, ScimError, invalid_syntax, invalid_value
from .listing import Lister, Query
from .projection import Projection
from .resources import ResourceService, etag, parse_etag
from .schemas import GROUP, LIST_RESPONSE, RESOURCE_TYPES, SEARCH_REQUEST, SYNC_STATUS, USER, ResourceTypeInfo

DEFAULT_MAX_BODY = 4 * 1024 * 1024


class ScimResponse:
    """A JSON response written straight to ASGI: Starlette's Response spent more time building
    its headers than the bridge spends reading the store on a GET."""

    __slots__ = ("body", "status_code", "raw_headers")

    def __init__(self, body: bytes, status_code: int = 200, headers: dict[str, str] | None = None) -> None:
        self.body = body
        self.status_code = status_code
        self.raw_headers = [(b"content-type", _SCIM_TYPE), (b"content-length", str(len(body)).encode())]
        if headers:
            self.raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body})


_SCIM_TYPE = SCIM_CONTENT_TYPE.encode()


def scim_response(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = document if isinstance(document, bytes) else orjson.dumps(document)
    return ScimResponse(body, status, headers)  # type: ignore[return-value]  # duck-types Response (ASGI callable)


def base_url(request: Request) -> str:
    """The SCIM base URL for the URLs this request writes or returns: never from a Host header the
    bridge does not trust (scim_bridge/origins.py), since a stored meta.location is served to all."""
    origin: str = request.app.state.origins.origin(request.scope)  # Starlette's app.state is untyped
    return origin + "/scim/v2"


async def read_json(request: Request) -> Any:
    """Read the body with a cap (413 before memory fills), then parse it (400 invalidSyntax).

    A refused body is still read, and thrown away, up to DRAIN_FACTOR times the limit: urllib and
    many connectors send the whole body before reading the answer, and a server closing on unread
    data makes the kernel reset the connection, so they would see a reset instead of the 413.
    Beyond that bound (or when the client waits for `100 Continue`), the 413 closes the connection."""
    limit = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        await _refuse_body(request, limit, int(declared))
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and "json" not in content_type:
        raise ScimError(415, "send application/scim+json or application/json")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            await _refuse_body(request, limit, None, size)
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError:
        raise invalid_syntax("the request body is not valid JSON") from None


DRAIN_FACTOR = 4


async def _refuse_body(request: Request, limit: int, declared: int | None, received: int = 0) -> NoReturn:
    detail = f"request body exceeds the limit of {limit} bytes"
    bound = DRAIN_FACTOR * limit
    expects_continue = request.headers.get("expect", "").lower() == "100-continue" and received == 0
    if expects_continue or (declared is not None and declared > bound):
        raise ScimError(413, detail, headers={"Connection": "close"})
    async for chunk in request.stream():  # the rest of a body already on its way: read, not kept
        received += len(chunk)
        if received > bound:
            raise ScimError(413, detail, headers={"Connection": "close"})
    raise ScimError(413, detail)


def _service(request: Request) -> ResourceService:
    return request.app.state.scim_service  # type: ignore[no-any-return]  # Starlette's app.state is untyped


def _lister(request: Request) -> Lister:
    return request.app.state.scim_lister  # type: ignore[no-any-return]  # Starlette's app.state is untyped


def _projection(request: Request, resource_type: ResourceTypeInfo) -> Projection:
    params = {k.lower(): v for k, v in request.query_params.items()}
    return Projection(resource_type, params.get("attributes"), params.get("excludedattributes"))


def _resource_response(
    request: Request,
    resource_type: ResourceTypeInfo,
    document: dict[str, Any],
    version: int,
    status: int = 200,
    extra: dict[str, str] | None = None,
) -> Response:
    headers = {"ETag": etag(version), **(extra or {})}
    if status == 201:
        headers["Location"] = document["meta"]["location"]
    if not request.scope["query_string"]:  # nothing to project: no query parameters parsed
        return scim_response(document, status, headers)
    return scim_response(_projection(request, resource_type).apply(document), status, headers)


def _skipped_header(skipped: tuple[str, ...]) -> dict[str, str]:
    """Unknown member ids are skipped, not refused (checklist 72); these headers report them.

    The ids are client text, and the write has already committed when the answer is built: one
    with CR/LF closed the connection and one outside Latin-1 became a 500 "not applied" for an
    applied change. So each id is percent-encoded (RFC 3986, UTF-8; a uuid stays as it is), the
    list is capped (a client's header limit is ~8–16 KB), and the count says how many there were.
    """
    if not skipped:
        return {}
    shown: list[str] = []
    size = 0
    for member in skipped[:_SKIPPED_SHOWN]:
        encoded = quote(member, safe="")
        if size + len(encoded) + 1 > _SKIPPED_HEADER_BYTES:
            break
        shown.append(encoded)
        size += len(encoded) + 1
    return {"X-Scim-Bridge-Skipped-Members": ",".join(shown), "X-Scim-Bridge-Skipped-Count": str(len(skipped))}


_SKIPPED_SHOWN = 50
_SKIPPED_HEADER_BYTES = 2048


def resource_routes(resource_type: ResourceTypeInfo) -> list[Route]:
    endpoint = resource_type.endpoint

    async def list_resources(request: Request) -> Response:
        """Query resources (RFC 7644 §3.4.2)."""
        page = await _lister(request).list(resource_type, Query.from_params(request.query_params), base_url(request))
        return scim_response(page)

    async def search(request: Request) -> Response:
        """Query resources with POST (RFC 7644 §3.4.3)."""
        body = await read_json(request)
        query = _search_query(body)
        page = await _lister(request).list(resource_type, query, base_url(request))
        return scim_response(page)

    async def create(request: Request) -> Response:
        """Create a resource (RFC 7644 §3.3)."""
        # A new user is in no group yet: unknown member ids are never stored, so none can name it.
        outcome = await _service(request).create(resource_type, await read_json(request), base_url(request))
        return _resource_response(
            request,
            resource_type,
            outcome.document,
            outcome.record.version,
            201,
            _skipped_header(outcome.skipped_members),
        )

    async def get(request: Request) -> Response:
        """Retrieve a resource (RFC 7644 §3.4.1); If-None-Match answers 304 when unchanged."""
        service = _service(request)
        group_ids: list[str] = []
        if resource_type is USER:
            record, group_ids = await service.get_user_with_groups(request.path_params["id"])
        else:
            record = await service.get_record(resource_type, request.path_params["id"])
        if_none_match = next((v.decode("latin-1") for k, v in request.scope["headers"] if k == b"if-none-match"), None)
        if if_none_match and (
            if_none_match.strip() == "*" or record.version in {parse_etag(tag) for tag in if_none_match.split(",")}
        ):
            return Response(status_code=304, headers={"ETag": etag(record.version)})
        plain = b"attributes" not in request.scope["query_string"].lower()  # no projection asked
        groups = await service.groups_of(record.id, base_url(request), group_ids) if group_ids else []
        if plain and not groups:  # the fast path: the stored bytes as they are, the ETag header made as bytes
            response = ScimResponse(record.body)
            response.raw_headers.append((b"etag", b'W/"%d"' % record.version))  # etag(version), encoded
            return response  # type: ignore[return-value]  # duck-types Response (ASGI callable)
        document = orjson.loads(record.body)
        if groups:
            document["groups"] = groups
        if not plain and _projection(request, resource_type).asks_for(SYNC_STATUS):  # returned "request"
            await service.with_sync_status(resource_type, [document])
        return _resource_response(request, resource_type, document, record.version)

    async def replace(request: Request) -> Response:
        """Replace a resource (RFC 7644 §3.5.1)."""
        service = _service(request)
        outcome = await service.replace(
            resource_type,
            request.path_params["id"],
            await read_json(request),
            base_url(request),
            request.headers.get("if-match"),
        )
        if resource_type is USER:
            await service.with_groups([outcome.document], base_url(request))
        return _resource_response(
            request,
            resource_type,
            outcome.document,
            outcome.record.version,
            extra=_skipped_header(outcome.skipped_members),
        )

    async def patch(request: Request) -> Response:
        """Modify a resource (RFC 7644 §3.5.2)."""
        service = _service(request)
        outcome = await service.patch(
            resource_type,
            request.path_params["id"],
            await read_json(request),
            base_url(request),
            request.headers.get("if-match"),
        )
        headers = {"ETag": etag(outcome.record.version), **_skipped_header(outcome.skipped_members)}
        wants_body = any(k.lower() in ("attributes", "excludedattributes") for k in request.query_params)
        if resource_type is GROUP and not wants_body and not service.options.group_patch_returns_resource:
            return Response(status_code=204, headers=headers)
        if resource_type is USER:
            await service.with_groups([outcome.document], base_url(request))
        return _resource_response(request, resource_type, outcome.document, outcome.record.version, extra=headers)

    async def delete(request: Request) -> Response:
        """Delete a resource (RFC 7644 §3.6)."""
        await _service(request).delete(
            resource_type, request.path_params["id"], request.headers.get("if-match"), base_url(request)
        )
        return Response(status_code=204)

    return [
        Route(endpoint, list_resources, methods=["GET"]),
        Route(endpoint, create, methods=["POST"]),
        Route(f"{endpoint}/.search", search, methods=["POST"]),
        Route(endpoint + "/{id}", get, methods=["GET"]),
        Route(endpoint + "/{id}", replace, methods=["PUT"]),
        Route(endpoint + "/{id}", patch, methods=["PATCH"]),
        Route(endpoint + "/{id}", delete, methods=["DELETE"]),
    ]


def _search_query(body: Any) -> Query:
    if not isinstance(body, dict):
        raise invalid_syntax("the request body must be a JSON object")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or SEARCH_REQUEST.lower() not in {str(s).lower() for s in schemas}:
        raise ScimError(400, f"schemas must contain {SEARCH_REQUEST}", "invalidValue")
    return Query.build({k.lower(): v for k, v in body.items()}, body=True)


async def root_search(request: Request) -> Response:
    """Query every resource type at once (RFC 7644 §3.4.3, POST /.search), one page at a time.

    The result is each type's matches in turn (Users, then Groups), each in its own order;
    `startIndex` and `count` page through that sequence like a per-type list (default 100,
    at most MAX_COUNT), so only the page is rendered. Cursor paging is per resource type.
    """
    query = _search_query(await read_json(request))
    if query.cursor is not None:
        raise invalid_value("cursor paging is per resource type: POST /Users/.search or /Groups/.search")
    lister = _lister(request)
    offset = query.start_index - 1
    total = 0
    resources: list[dict[str, Any]] = []
    for resource_type in RESOURCE_TYPES.values():
        # The part of this type's matches that falls in the page (count 0 still counts them).
        local = replace(query, start_index=max(offset - total, 0) + 1, count=query.count - len(resources))
        page = await lister.list(resource_type, local, base_url(request), strict=False)
        total += page["totalResults"]
        resources.extend(page["Resources"])
    return scim_response(
        {
            "schemas": [LIST_RESPONSE],
            "totalResults": total,
            "startIndex": query.start_index,
            "itemsPerPage": len(resources),
            "Resources": resources,
        }
    )


async def bulk(request: Request) -> Response:
    """Bulk operations (RFC 7644 §3.7)."""
    processor: BulkProcessor = request.app.state.scim_bulk
    body = await read_json(request)
    status, document = await processor.run(body, base_url(request))
    return scim_response(document, status)


async def openapi_document(request: Request) -> Response:
    """This SCIM API as an OpenAPI 3.1 document, generated from the schemas it serves (openapi.py)."""
    document = openapi.document(
        base_url(request),
        syncing=discovery.syncing(request),
        max_body_bytes=request.app.state.settings.max_body_bytes,
    )
    return Response(orjson.dumps(document), media_type="application/json")


async def me(request: Request) -> Response:
    raise ScimError(501, "/Me is not supported: the bridge's clients are provisioning systems, not users")


def routes() -> list[Route]:
    result: list[Route] = []
    for resource_type in RESOURCE_TYPES.values():
        result.extend(resource_routes(resource_type))
    result += [
        Route("/.search", root_search, methods=["POST"]),
        Route("/Bulk", bulk, methods=["POST"]),
        Route("/Me", me, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        Route("/openapi.json", openapi_document, methods=["GET"]),
        *discovery.routes(scim_response, base_url),
    ]
    return result

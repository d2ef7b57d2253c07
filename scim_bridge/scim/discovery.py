"""Discovery endpoints (RFC 7644 §4): they announce only what the bridge really does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .errors import not_found
from .listing import MAX_COUNT
from .schemas import LIST_RESPONSE, RESOURCE_TYPES, schema_documents

SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"

BULK_MAX_OPERATIONS = 1000


def service_provider_config(request: Request, base_url: str) -> dict[str, Any]:
    settings = request.app.state.settings
    return {
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://github.com/scim-bridge/scim-bridge#readme",
        "patch": {"supported": True},
        "bulk": {"supported": True, "maxOperations": BULK_MAX_OPERATIONS, "maxPayloadSize": settings.max_body_bytes},
        "filter": {"supported": True, "maxResults": MAX_COUNT},
        "changePassword": {"supported": False},
        "sort": {"supported": True},
        "etag": {"supported": True},
        # RFC 9865 §4: cursor paging beside index paging.
        "pagination": {
            "cursor": True,
            "index": True,
            "defaultPaginationMethod": "index",
            "defaultPageSize": 100,
            "maxPageSize": MAX_COUNT,
            "cursorTimeout": 3600,
        },
        "authenticationSchemes": request.app.state.auth.schemes_document(),
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{base_url}/ServiceProviderConfig"},
    }


def _list(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": len(resources),
        "startIndex": 1,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


def syncing(request: Request) -> bool:
    """The sync-status extension exists only where a sync policy runs: discovery says so then."""
    return getattr(request.app.state.scim_service, "sync_status", None) is not None


def routes(respond: Callable[..., Response], base_url: Callable[[Request], str]) -> list[Route]:
    async def spc(request: Request) -> Response:
        return respond(service_provider_config(request, base_url(request)))

    async def resource_types(request: Request) -> Response:
        return respond(
            _list(
                [info.resource_type_document(base_url(request), syncing(request)) for info in RESOURCE_TYPES.values()]
            )
        )

    async def resource_type(request: Request) -> Response:
        name = request.path_params["name"]
        info = next((i for i in RESOURCE_TYPES.values() if i.name.lower() == name.lower()), None)
        if info is None:
            raise not_found("ResourceType", name)
        return respond(info.resource_type_document(base_url(request), syncing(request)))

    async def schemas(request: Request) -> Response:
        return respond(_list(schema_documents(base_url(request), syncing(request))))

    async def schema(request: Request) -> Response:
        urn = request.path_params["urn"]
        document = next(
            (d for d in schema_documents(base_url(request), syncing(request)) if d["id"].lower() == urn.lower()), None
        )
        if document is None:
            raise not_found("Schema", urn)
        return respond(document)

    return [
        Route("/ServiceProviderConfig", spc, methods=["GET"]),
        Route("/ResourceTypes", resource_types, methods=["GET"]),
        Route("/ResourceTypes/{name}", resource_type, methods=["GET"]),
        Route("/Schemas", schemas, methods=["GET"]),
        Route("/Schemas/{urn}", schema, methods=["GET"]),
    ]

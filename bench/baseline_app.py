"""The ceiling: a bare Starlette app answering fixed JSON, served exactly like the bridge."""

from __future__ import annotations

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

USER = orjson.dumps(
    {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "2819c223",
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "active": True,
    }
)


async def get_user(request: Request) -> Response:
    return Response(USER, media_type="application/scim+json")


async def post_user(request: Request) -> Response:
    return Response(
        orjson.dumps(orjson.loads(await request.body())), status_code=201, media_type="application/scim+json"
    )


app = Starlette(
    routes=[
        Route("/scim/v2/Users", get_user, methods=["GET"]),
        Route("/scim/v2/Users/{id}", get_user, methods=["GET"]),
        Route("/scim/v2/Users", post_user, methods=["POST"]),
    ]
)

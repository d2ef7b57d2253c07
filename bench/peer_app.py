"""The peer: python-scim's scim2-server (PyPI) as an ASGI app over its async in-memory storage,
with the RFC 7643 schemas, resource types and service provider configuration it ships, and a
static bearer token, served by uvicorn exactly like the bridge."""

from __future__ import annotations

import os

from scim2_models import ScimProvider, UnauthorizedException
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage
from scim2_server.requests import ScimRequest
from scim2_server.service import ScimService
from scim2_server.testserver.application import BEARER_TOKEN_SCHEME
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
)

TOKEN = os.environ.get("PEER_TOKEN", "tok")


class BearerApplication(ASGIApplication):
    def check_auth(self, request: ScimRequest) -> None:
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or token != TOKEN:
            raise UnauthorizedException


config = load_default_service_provider_config()
config.authentication_schemes = [*(config.authentication_schemes or []), BEARER_TOKEN_SCHEME]
provider = ScimProvider.from_discovery(
    load_default_schemas().values(), load_default_resource_types().values(), config=config
)
app = BearerApplication(AsyncInMemoryStorage(), provider, ScimService(provider, secret="bench-secret"))

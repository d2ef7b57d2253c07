"""Authentication for every endpoint but health and the token endpoint.

Several methods are on at once (scim-clients.md §5.5): static bearer tokens (Entra, Okta,
OneLogin, JumpCloud), the bridge's own OAuth access tokens (OTDS), external JWTs (JWKS),
HTTP Basic (Ping, SailPoint) and an API key header or a raw `Authorization: <key>` (JumpCloud).
A failure is a 401 with a SCIM error body and `WWW-Authenticate`; nothing secret is logged.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ..scim.errors import SCIM_CONTENT_TYPE, ScimError
from ..store import StoreUnavailable
from . import tokens
from .credentials import CredentialBook, Principal

log = logging.getLogger("scim_bridge.auth")

OPEN_PATHS = ("/health", "/oauth/token")


class Authenticator:
    def __init__(
        self, book: CredentialBook, api_key_header: str | None, external: tokens.ExternalIssuer | None
    ) -> None:
        self.book = book
        self.api_key_header = api_key_header.lower() if api_key_header else None
        self.external = external
        # ASGI header names are lower-case bytes; only these are read.
        self.header_names = {b"authorization"} | (
            {self.api_key_header.encode("latin-1")} if self.api_key_header else set()
        )

    def schemes_document(self) -> list[dict[str, Any]]:
        """authenticationSchemes of ServiceProviderConfig (RFC 7643 §5)."""
        schemes = [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "primary": True,
                "description": "Static bearer tokens, or access tokens from POST /oauth/token (client credentials)",
            }
        ]
        if self.book.has_basic:
            schemes.append({"type": "httpbasic", "name": "HTTP Basic", "description": "HTTP Basic authentication"})
        return schemes

    def challenge(self) -> str:
        value = 'Bearer realm="scim-bridge"'
        if self.book.has_basic:
            value += ', Basic realm="scim-bridge"'
        return value

    async def authenticate(self, headers: dict[str, str]) -> Principal | None:
        authorization = headers.get("authorization", "").strip()
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        if scheme.lower() == "bearer" and credential:
            return await self._bearer(credential)
        if scheme.lower() == "basic" and credential:
            return self._basic(credential)
        if self.book.has_api_keys:
            if self.api_key_header and headers.get(self.api_key_header):
                return Principal("api-key", "api-key") if self.book.api_key(headers[self.api_key_header]) else None
            if authorization and " " not in authorization and self.book.api_key(authorization):
                return Principal("api-key", "api-key")
        return None

    async def _bearer(self, token: str) -> Principal | None:
        name = await self.book.token_owner(token)
        if name is not None:
            return Principal("token", name)
        if token.count(".") == 2:  # a JWT: ours first, then the external issuer's
            subject = tokens.verify_own(token, await self.book.signing_key())
            if subject is not None:
                return Principal("oauth", subject)
            if self.external is not None:
                subject = await self.external.verify(token)
                if subject is not None:
                    return Principal("jwt", subject)
        return None

    def _basic(self, credential: str) -> Principal | None:
        try:
            user, _, password = base64.b64decode(credential, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return Principal("basic", user) if self.book.basic_user(user, password) else None


class AuthMiddleware:
    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        # /admin has its own tokens (web/admin.py); /emulators only exists in the sandbox; /webhooks
        # authenticate by the sender's signature or shared secret (web/webhooks.py).
        if (
            scope["type"] != "http"
            or path.rstrip("/") in OPEN_PATHS
            or path.startswith(("/emulators/", "/admin", "/webhooks/"))
        ):
            await self.app(scope, receive, send)
            return
        wanted = self.authenticator.header_names
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in wanted}
        try:
            principal = await self.authenticator.authenticate(headers)
        except StoreUnavailable:
            await _send_error(
                send, ScimError(503, "the store is unavailable, retry later", headers={"Retry-After": "5"})
            )
            return
        if principal is None:
            error = ScimError(
                401, "missing or invalid credentials", headers={"WWW-Authenticate": self.authenticator.challenge()}
            )
            await _send_error(send, error)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


async def _send_error(send: Send, error: ScimError) -> None:
    body = error.body()
    headers = [(b"content-type", SCIM_CONTENT_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

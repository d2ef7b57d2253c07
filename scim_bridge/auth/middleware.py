"""Authentication for every endpoint but health and the token endpoint.

Several methods are on at once (scim-clients.md §5.5): static bearer tokens (Entra, Okta,
OneLogin, JumpCloud), the bridge's own OAuth access tokens (OTDS), external JWTs (JWKS),
HTTP Basic (Ping, SailPoint) and an API key header or a raw `Authorization: <key>` (JumpCloud).
A failure is a 401 with a SCIM error body and `WWW-Authenticate`; nothing secret is logged.
Then the credential's scopes must cover what the route needs (auth/scopes.py), else 403: a SCIM
error body, or `{"error": …}` on /api/v1 like the rest of the apps' API.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from ..scim.errors import SCIM_CONTENT_TYPE, ScimError
from ..store import StoreUnavailable
from . import scopes, tokens
from .credentials import CredentialBook, Principal
from .throttle import TokenEndpointThrottle

log = logging.getLogger("scim_bridge.auth")

#: spellings of environment tokens' Authorization headers remembered (`Bearer t`, `bearer  t`, …)
MAX_FIXED_HEADERS = 64


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
        self.throttle = TokenEndpointThrottle()  # failed client authentications at /oauth/token
        #: Authorization header value → the environment token's principal it authenticated as
        #: (CredentialBook.fixed): what every request of an IdP holding such a token sends, answered
        #: without a digest and a comparison per token each time. Only verdicts that cannot change
        #: while the process runs are kept; a stored token, an OAuth access token (it expires, its
        #: client may be revoked), Basic and API keys take the full path every time.
        self._fixed_headers: dict[bytes, Principal] = {}

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

    async def from_scope(self, scope: Scope) -> Principal | None:
        """Who sent an ASGI request; raises StoreUnavailable when stored credentials cannot be read."""
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value  # the last one, as the dictionary below keeps it
        if authorization is not None:
            known = self._fixed_headers.get(authorization)
            if known is not None:
                return known
        wanted = self.header_names
        principal = await self.authenticate(
            {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in wanted}
        )
        if (
            principal is not None
            and authorization is not None
            and self.book.fixed(principal)
            and len(self._fixed_headers) < MAX_FIXED_HEADERS
        ):
            self._fixed_headers[authorization] = principal
        return principal

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
        owner = await self.book.token_owner(token)
        if owner is not None:
            return owner
        if token.count(".") == 2:  # a JWT: ours first, then the external issuer's
            claims = tokens.verify_own(token, await self.book.signing_key())
            if claims is not None:
                return await self._own_token(claims)
            if self.external is not None:
                found = await self.external.verify(token)
                if found is not None:
                    return Principal("jwt", found[0], found[1])
        return None

    async def _own_token(self, claims: dict[str, Any]) -> Principal | None:
        """An access token from /oauth/token is only as good as its client: a revoked client's
        tokens fail here (within the book's cache bound), and a token never has more scopes than
        its client has now. Tokens from before the `client_id` claim name their client in `sub`, and
        their `scope` was an echo of whatever was asked, so they get the client's scopes."""
        client_id = str(claims.get("client_id") or claims.get("sub") or "")
        client_scopes = await self.book.client_scopes(client_id) if client_id else None
        if client_scopes is None:
            return None
        granted = scopes.from_claims(claims) if "client_id" in claims and "scope" in claims else client_scopes
        return Principal("oauth", client_id, scopes.within(granted, client_scopes))

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
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        needed = scopes.required(scope["method"], path)
        state = scope.setdefault("state", {})
        # None: open or authenticated elsewhere (auth/scopes.py). /admin was let through by AdminAuth
        # (web/admin.py, JSON errors) only with the admin scope; anything else is checked here.
        if needed is None or (needed == scopes.ADMIN and path.startswith(scopes.ADMIN_PREFIX) and _admin(state)):
            await self.app(scope, receive, send)
            return
        try:
            principal = await self.authenticator.from_scope(scope)
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
        if not scopes.allows(principal.scopes, needed):
            detail = forbidden(principal, needed, scope["method"], path)
            # Who was refused helps an operator fix a credential's scopes; names are not secrets.
            log.info("403 for %s %s: %s %r lacks %s", scope["method"], path, principal.kind, principal.name, needed)
            if path.startswith(scopes.APPS_PREFIX + "/"):
                await _send_json(send, 403, {"error": detail})
            else:
                await _send_error(send, ScimError(403, detail))
            return
        state["principal"] = principal
        await self.app(scope, receive, send)


def forbidden(principal: Principal, needed: str, method: str, path: str) -> str:
    """The 403 detail: which scope the request needs and which the credential has (no secrets)."""
    return f"{method} {path} needs the {needed} scope; this credential has {scopes.describe(principal.scopes)}"


def _admin(state: dict[str, Any]) -> bool:
    principal = state.get("principal")
    return isinstance(principal, Principal) and scopes.allows(principal.scopes, scopes.ADMIN)


async def _send_json(send: Send, status: int, document: dict[str, Any]) -> None:
    body = orjson.dumps(document)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Send, error: ScimError) -> None:
    body = error.body()
    headers = [(b"content-type", SCIM_CONTENT_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

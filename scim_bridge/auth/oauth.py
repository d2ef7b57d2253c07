"""POST /oauth/token: OAuth 2.0 client credentials (RFC 6749 §4.4), the way OTDS's SCIM push
connector gets its bearer token (scim-clients.md §1.1). Client authentication is accepted in
the Basic header (client_secret_basic) or in the form body (client_secret_post).

The token is granted the client's scopes, or the subset a `scope` parameter asks for (RFC 6749
§3.3; asking beyond them is `invalid_scope`), and says so in the response's `scope`. Failed
client authentications are throttled per address and per client (auth/throttle.py): 429 with
`Retry-After` and an RFC 6749 §5.2 error body."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl, unquote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..store import StoreUnavailable
from . import scopes, tokens
from .throttle import TokenEndpointThrottle

MAX_FORM_BYTES = 8192


def _error(code: str, description: str, status: int = 400) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="scim-bridge"'
    return JSONResponse({"error": code, "error_description": description}, status_code=status, headers=headers)


def _throttled(seconds: int) -> JSONResponse:
    # RFC 6749 has no error code for this; `slow_down` is the one registered for the token endpoint
    # (RFC 8628 §3.5), and the description says what happened in words.
    description = f"too many failed client authentications from this address; retry in {seconds} s"
    return JSONResponse(
        {"error": "slow_down", "error_description": description},
        status_code=429,
        headers={"Retry-After": str(seconds), "Cache-Control": "no-store"},
    )


async def token_endpoint(request: Request) -> JSONResponse:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return _error("invalid_request", "request too large")
    form = dict(parse_qsl(body.decode("utf-8", "replace")))
    if form.get("grant_type") != "client_credentials":
        return _error("unsupported_grant_type", "only grant_type=client_credentials is supported")
    throttle: TokenEndpointThrottle = request.app.state.auth.throttle
    address = request.client.host if request.client else ""
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return _failed(throttle, address, "", "malformed Basic credentials")
        raw_id, _, raw_secret = decoded.partition(":")
        # RFC 6749 §2.3.1: the Basic credentials are form-urlencoded first.
        client_id, client_secret = unquote_plus(raw_id), unquote_plus(raw_secret)
    if not client_id or client_secret is None:
        return _failed(throttle, address, client_id or "", "client authentication is required")
    wait = throttle.retry_after(address, client_id)
    if wait:  # before the secret is looked at: a refused attempt learns nothing and costs nothing
        return _throttled(wait)
    book = request.app.state.auth.book
    settings = request.app.state.settings
    try:
        client = await book.client(client_id, client_secret)
        if client is None:
            return _failed(throttle, address, client_id, "unknown client or wrong secret")
        try:
            granted = scopes.parse([form["scope"]]) if form.get("scope", "").strip() else client.scopes
        except scopes.ScopeError as error:
            return _error("invalid_scope", str(error))
        if scopes.within(granted, client.scopes) != granted:
            beyond = scopes.describe(granted - scopes.within(granted, client.scopes))
            return _error(
                "invalid_scope", f"this client may not have {beyond}; it has {scopes.describe(client.scopes)}"
            )
        if not granted:
            return _error("invalid_scope", "this client has no scopes to grant")
        scope = scopes.describe(granted)
        lifetime = settings.oauth_token_lifetime
        access_token = tokens.issue(await book.signing_key(), client_id, lifetime, scope)
    except StoreUnavailable:
        return JSONResponse({"error": "temporarily_unavailable"}, status_code=503, headers={"Retry-After": "5"})
    # `scope` is always returned: it may differ from what was asked (RFC 6749 §5.1).
    document = {"access_token": access_token, "token_type": "Bearer", "expires_in": lifetime, "scope": scope}
    return JSONResponse(document, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _failed(throttle: TokenEndpointThrottle, address: str, client_id: str, description: str) -> JSONResponse:
    """A failed client authentication: counted, then 401 — or 429 once this address has failed too often."""
    wait = throttle.retry_after(address, client_id)
    if wait:
        return _throttled(wait)
    throttle.failed(address, client_id)
    return _error("invalid_client", description, 401)

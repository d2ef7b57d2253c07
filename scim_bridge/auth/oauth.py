"""POST /oauth/token: OAuth 2.0 client credentials (RFC 6749 §4.4), the way OTDS's SCIM push
connector gets its bearer token (scim-clients.md §1.1). Client authentication is accepted in
the Basic header (client_secret_basic) or in the form body (client_secret_post)."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl, unquote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..store import StoreUnavailable
from . import tokens

MAX_FORM_BYTES = 8192


def _error(code: str, description: str, status: int = 400) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="scim-bridge"'
    return JSONResponse({"error": code, "error_description": description}, status_code=status, headers=headers)


async def token_endpoint(request: Request) -> JSONResponse:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return _error("invalid_request", "request too large")
    form = dict(parse_qsl(body.decode("utf-8", "replace")))
    if form.get("grant_type") != "client_credentials":
        return _error("unsupported_grant_type", "only grant_type=client_credentials is supported")
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return _error("invalid_client", "malformed Basic credentials", 401)
        raw_id, _, raw_secret = decoded.partition(":")
        # RFC 6749 §2.3.1: the Basic credentials are form-urlencoded first.
        client_id, client_secret = unquote_plus(raw_id), unquote_plus(raw_secret)
    if not client_id or client_secret is None:
        return _error("invalid_client", "client authentication is required", 401)
    book = request.app.state.auth.book
    settings = request.app.state.settings
    try:
        name = await book.client(client_id, client_secret)
        if name is None:
            return _error("invalid_client", "unknown client or wrong secret", 401)
        scope = form.get("scope")  # accepted and echoed; scopes do not restrict the SCIM API yet
        lifetime = settings.oauth_token_lifetime
        access_token = tokens.issue(await book.signing_key(), client_id, lifetime, scope)
    except StoreUnavailable:
        return JSONResponse({"error": "temporarily_unavailable"}, status_code=503, headers={"Retry-After": "5"})
    document = {"access_token": access_token, "token_type": "Bearer", "expires_in": lifetime}
    if scope:
        document["scope"] = scope
    return JSONResponse(document, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

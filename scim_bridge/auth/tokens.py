"""JWT access tokens: the bridge's own (HS256, from POST /oauth/token) and an external issuer's
(validated against its JWKS URL, e.g. Entra's or an OAuth server in front of OTDS).

The bridge's own tokens carry the `client_id` that got them (RFC 9068 §2.2) and the scopes
granted; the caller (auth/middleware.py) checks that client against the store on every use, so
a revoked client's tokens stop working within the CredentialBook's cache bound.
`exp` and `nbf` are allowed LEEWAY_SECONDS of clock skew, no more: a token is short-lived, and a
leeway is time a leaked or revoked token keeps working."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey

from . import scopes

log = logging.getLogger("scim_bridge.auth")

OWN_ISSUER = "scim-bridge"
OWN_AUDIENCE = "scim-bridge/scim"
LEEWAY_SECONDS = 5


def issue(key: bytes, client_id: str, lifetime: int, scope: str | None) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": OWN_ISSUER,
        "aud": OWN_AUDIENCE,
        "sub": client_id,
        "client_id": client_id,
        "iat": now,
        "exp": now + lifetime,
    }
    if scope:
        claims["scope"] = scope
    return jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, OctKey.import_key(key), algorithms=["HS256"])


def verify_own(token: str, key: bytes) -> dict[str, Any] | None:
    """The claims of a valid, unexpired token the bridge issued, else None."""
    try:
        decoded = jwt.decode(token, OctKey.import_key(key), algorithms=["HS256"])
    except (JoseError, ValueError):
        return None
    return decoded.claims if _checked(decoded.claims, OWN_ISSUER, OWN_AUDIENCE) is not None else None


def _checked(claims: dict[str, Any], issuer: str | None, audience: str | None) -> str | None:
    now = time.time()
    if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] < now - LEEWAY_SECONDS:
        return None
    if isinstance(claims.get("nbf"), (int, float)) and claims["nbf"] > now + LEEWAY_SECONDS:
        return None
    if issuer and claims.get("iss") != issuer:
        return None
    if audience:
        aud = claims.get("aud")
        if audience not in (aud if isinstance(aud, list) else [aud]):
            return None
    return str(claims.get("sub") or claims.get("azp") or claims.get("appid") or "external")


class ExternalIssuer:
    """Validates JWTs signed by keys published at a JWKS URL; keys are cached and refetched on
    an unknown `kid` (key rotation) at most once a minute."""

    def __init__(self, jwks_url: str, issuer: str | None, audience: str | None) -> None:
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self._keys: KeySet | None = None
        self._fetched = 0.0

    async def verify(self, token: str) -> tuple[str, frozenset[str]] | None:
        """The subject and scopes (auth/scopes.py `from_claims`) of a valid token, else None."""
        keys = await self._key_set(force=False)
        found = self._try(token, keys)
        if found is None and time.monotonic() - self._fetched > 60:
            found = self._try(token, await self._key_set(force=True))
        return found

    def _try(self, token: str, keys: KeySet | None) -> tuple[str, frozenset[str]] | None:
        if keys is None:
            return None
        try:
            decoded = jwt.decode(token, keys, algorithms=["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"])
        except (JoseError, ValueError):
            return None
        subject = _checked(decoded.claims, self.issuer, self.audience)
        return (subject, scopes.from_claims(decoded.claims)) if subject is not None else None

    async def _key_set(self, force: bool) -> KeySet | None:
        if self._keys is not None and not force and time.monotonic() - self._fetched < 600:
            return self._keys
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                response = await client.get(self.jwks_url)
                response.raise_for_status()
                self._keys = KeySet.import_key_set(response.json())
        except (httpx.HTTPError, ValueError, JoseError) as error:
            log.warning("cannot load JWKS from %s: %s", self.jwks_url, type(error).__name__)
        self._fetched = time.monotonic()
        return self._keys

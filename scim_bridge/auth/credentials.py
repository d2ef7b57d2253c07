"""Credentials the bridge accepts: static bearer tokens, OAuth clients, Basic users, signing key.

Secrets are stored only as SHA-256 digests (they are long random strings, so a plain digest is
enough) and compared with `hmac.compare_digest`. Tokens from SCIM_BRIDGE_TOKENS and
SCIM_BRIDGE_ADMIN_TOKENS live in memory only; tokens and clients made with `scim-bridge
credentials` live in the store, so replicas share them, each with its scopes (auth/scopes.py).
Lookups on the request path are cached for at most CACHE_SECONDS, which bounds how long a
revoked token or client keeps working on any replica.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from ..store import Store
from . import scopes as scope_names

TOKENS = "auth-tokens"  # sha256(token) → {"name", "created", "scopes"?}
CLIENTS = "auth-clients"  # client_id → {"name", "secret_sha256", "created", "scopes"?}
KEYS = "auth-keys"  # "jwt-hs256" → raw key bytes


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same_secret(given: str, expected_digest: str) -> bool:
    return hmac.compare_digest(digest(given), expected_digest)


@dataclass(frozen=True)
class Principal:
    """Who made a request: shown in logs, capture files and (later) the audit trail."""

    kind: str  # "token", "oauth", "basic", "jwt", "api-key", "admin-token"
    name: str
    scopes: frozenset[str] = scope_names.DEFAULT


@dataclass(frozen=True)
class StoredCredential:
    """What the request path needs of a stored token or client: its name and its scopes."""

    name: str
    scopes: frozenset[str]


class CredentialBook:
    """Reads and writes credentials in the store, with a short cache on the request path."""

    CACHE_SECONDS = 2.0

    def __init__(
        self,
        store: Store,
        static_tokens: list[str],
        basic_users: dict[str, str],
        api_keys: list[str],
        admin_tokens: list[str] | None = None,
    ) -> None:
        self.store = store
        self._static = [digest(t) for t in static_tokens if t]
        self._admin = [digest(t) for t in admin_tokens or [] if t]
        # One Principal per environment token, made once: `fixed` tells them by identity (a stored
        # token may carry any name, "env-token-1" included, and is revocable; these are not).
        self._static_principals = [Principal("token", f"env-token-{i + 1}") for i in range(len(self._static))]
        self._admin_principals = [
            Principal("admin-token", f"env-admin-token-{i + 1}", scope_names.ADMIN_ONLY)
            for i in range(len(self._admin))
        ]
        self._fixed = {id(p) for p in self._static_principals + self._admin_principals}
        self._basic = {user: digest(password) for user, password in basic_users.items()}
        self._api_keys = [digest(k) for k in api_keys if k]
        # token digest or "client:" + client_id → (until, what the store said); one cache, one bound
        self._cache: dict[str, tuple[float, StoredCredential | None]] = {}
        self._admin_stored: tuple[float, bool] = (0.0, False)

    @property
    def has_basic(self) -> bool:
        return bool(self._basic)

    @property
    def has_api_keys(self) -> bool:
        return bool(self._api_keys)

    @property
    def has_admin_tokens(self) -> bool:
        return bool(self._admin)

    # request path ------------------------------------------------------------------------------
    async def token_owner(self, token: str) -> Principal | None:
        """Who holds a bearer token (from the environment or the store), or None."""
        hashed = digest(token)
        for index, expected in enumerate(self._static):
            if hmac.compare_digest(hashed, expected):
                return self._static_principals[index]
        for index, expected in enumerate(self._admin):
            if hmac.compare_digest(hashed, expected):
                return self._admin_principals[index]
        found = await self._cached(hashed, TOKENS, hashed)
        return Principal("token", found.name, found.scopes) if found else None

    def fixed(self, principal: Principal) -> bool:
        """Whether this is an environment token's principal: the same for the process's life (no
        store, no revocation, no expiry), so a verdict on it may be remembered."""
        return id(principal) in self._fixed

    async def client_scopes(self, client_id: str) -> frozenset[str] | None:
        """The current scopes of an OAuth client, or None once it is revoked: checked on every use
        of its access tokens, so revoking a client ends them within CACHE_SECONDS."""
        found = await self._cached("client:" + client_id, CLIENTS, client_id)
        return found.scopes if found else None

    async def has_admin_credentials(self) -> bool:
        """Whether any admin credential exists (environment or store): without one the admin API is off."""
        if self._admin:
            return True
        now = time.monotonic()
        if self._admin_stored[0] > now:
            return self._admin_stored[1]
        found = False
        for namespace in (TOKENS, CLIENTS):
            for _key, raw in await self.store.kv_items(namespace):
                found = found or scope_names.ADMIN in scope_names.stored(orjson.loads(raw))
        self._admin_stored = (now + self.CACHE_SECONDS, found)
        return found

    async def _cached(self, cache_key: str, namespace: str, key: str) -> StoredCredential | None:
        now = time.monotonic()
        cached = self._cache.get(cache_key)
        if cached and cached[0] > now:
            return cached[1]
        raw = await self.store.kv_get(namespace, key)
        record = orjson.loads(raw) if raw else None
        found = StoredCredential(record["name"], scope_names.stored(record)) if record else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[cache_key] = (now + self.CACHE_SECONDS, found)
        return found

    def basic_user(self, user: str, password: str) -> bool:
        expected = self._basic.get(user)
        # Compare even for unknown users so timing does not reveal which user names exist.
        return hmac.compare_digest(digest(password), expected or digest("\0unknown\0")) and expected is not None

    def api_key(self, key: str) -> bool:
        hashed = digest(key)
        return any(hmac.compare_digest(hashed, expected) for expected in self._api_keys)

    async def client(self, client_id: str, client_secret: str) -> StoredCredential | None:
        """An OAuth client whose secret matches (read from the store, never cached), or None."""
        raw = await self.store.kv_get(CLIENTS, client_id)
        if raw is None:
            same_secret(client_secret, digest(""))  # same work either way
            return None
        record = orjson.loads(raw)
        if not same_secret(client_secret, record["secret_sha256"]):
            return None
        return StoredCredential(record["name"], scope_names.stored(record))

    async def signing_key(self) -> bytes:
        """The HS256 key for the bridge's own access tokens; created once, shared by replicas."""
        key = await self.store.kv_get(KEYS, "jwt-hs256")
        if key is None:
            await self.store.kv_put(KEYS, "jwt-hs256", secrets.token_bytes(32), only_if_absent=True)
            key = await self.store.kv_get(KEYS, "jwt-hs256")
        assert key is not None
        return key

    # administration (scim-bridge credentials) ----------------------------------------------------
    async def create_token(self, name: str, scopes: frozenset[str] = scope_names.DEFAULT) -> str:
        # An admin token says so in its prefix, so one pasted in the wrong place is recognisable.
        token = ("sba_" if scope_names.ADMIN in scopes else "sbt_") + secrets.token_urlsafe(32)
        record = {"name": name, "created": _now(), "scopes": _sorted(scopes)}
        await self.store.kv_put(TOKENS, digest(token), orjson.dumps(record))
        return token

    async def create_client(self, name: str, scopes: frozenset[str] = scope_names.DEFAULT) -> tuple[str, str]:
        client_id = "sbc_" + secrets.token_urlsafe(12)
        secret = secrets.token_urlsafe(32)
        record = {"name": name, "secret_sha256": digest(secret), "created": _now(), "scopes": _sorted(scopes)}
        await self.store.kv_put(CLIENTS, client_id, orjson.dumps(record))
        return client_id, secret

    async def list(self) -> list[dict[str, Any]]:
        rows = []
        for kind, namespace in (("token", TOKENS), ("oauth-client", CLIENTS)):
            for key, raw in await self.store.kv_items(namespace):
                record = orjson.loads(raw)
                rows.append(
                    {
                        "kind": kind,
                        "id": key[:12] if namespace == TOKENS else key,
                        "name": record["name"],
                        "created": record["created"],
                        "scopes": scope_names.describe(scope_names.stored(record)),
                    }
                )
        return rows

    async def revoke(self, identifier: str) -> bool:
        """Revoke an OAuth client by id, or a token by the 12-character id `list` shows, or by itself."""
        if await self.store.kv_delete(CLIENTS, identifier):
            return True
        for key, _raw in await self.store.kv_items(TOKENS):
            if key.startswith(identifier) and len(identifier) >= 12 or key == digest(identifier):
                return await self.store.kv_delete(TOKENS, key)
        return False


def _sorted(scopes: frozenset[str]) -> list[str]:
    return [name for name in scope_names.KNOWN if name in scopes]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")

"""Credentials the bridge accepts: static bearer tokens, OAuth clients, Basic users, signing key.

Secrets are stored only as SHA-256 digests (they are long random strings, so a plain digest is
enough) and compared with `hmac.compare_digest`. Tokens from SCIM_BRIDGE_TOKENS live in memory
only; tokens made with `scim-bridge credentials` live in the store, so replicas share them.
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

TOKENS = "auth-tokens"  # sha256(token) → {"name", "created"}
CLIENTS = "auth-clients"  # client_id → {"name", "secret_sha256", "created"}
KEYS = "auth-keys"  # "jwt-hs256" → raw key bytes


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same_secret(given: str, expected_digest: str) -> bool:
    return hmac.compare_digest(digest(given), expected_digest)


@dataclass(frozen=True)
class Principal:
    """Who made a request: shown in logs, capture files and (later) the audit trail."""

    kind: str  # "token", "oauth", "basic", "jwt", "api-key"
    name: str


class CredentialBook:
    """Reads and writes credentials in the store, with a short cache on the request path."""

    CACHE_SECONDS = 2.0

    def __init__(
        self, store: Store, static_tokens: list[str], basic_users: dict[str, str], api_keys: list[str]
    ) -> None:
        self.store = store
        self._static = [digest(t) for t in static_tokens if t]
        self._basic = {user: digest(password) for user, password in basic_users.items()}
        self._api_keys = [digest(k) for k in api_keys if k]
        self._cache: dict[str, tuple[float, str | None]] = {}

    @property
    def has_basic(self) -> bool:
        return bool(self._basic)

    @property
    def has_api_keys(self) -> bool:
        return bool(self._api_keys)

    # request path ------------------------------------------------------------------------------
    async def token_owner(self, token: str) -> str | None:
        """The name of a static bearer token, or None."""
        hashed = digest(token)
        for index, expected in enumerate(self._static):
            if hmac.compare_digest(hashed, expected):
                return f"env-token-{index + 1}"
        now = time.monotonic()
        cached = self._cache.get(hashed)
        if cached and cached[0] > now:
            return cached[1]
        raw = await self.store.kv_get(TOKENS, hashed)
        name = orjson.loads(raw)["name"] if raw else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[hashed] = (now + self.CACHE_SECONDS, name)
        return name

    def basic_user(self, user: str, password: str) -> bool:
        expected = self._basic.get(user)
        # Compare even for unknown users so timing does not reveal which user names exist.
        return hmac.compare_digest(digest(password), expected or digest("\0unknown\0")) and expected is not None

    def api_key(self, key: str) -> bool:
        hashed = digest(key)
        return any(hmac.compare_digest(hashed, expected) for expected in self._api_keys)

    async def client(self, client_id: str, client_secret: str) -> str | None:
        raw = await self.store.kv_get(CLIENTS, client_id)
        if raw is None:
            same_secret(client_secret, digest(""))  # same work either way
            return None
        record = orjson.loads(raw)
        return record["name"] if same_secret(client_secret, record["secret_sha256"]) else None

    async def signing_key(self) -> bytes:
        """The HS256 key for the bridge's own access tokens; created once, shared by replicas."""
        key = await self.store.kv_get(KEYS, "jwt-hs256")
        if key is None:
            await self.store.kv_put(KEYS, "jwt-hs256", secrets.token_bytes(32), only_if_absent=True)
            key = await self.store.kv_get(KEYS, "jwt-hs256")
        assert key is not None
        return key

    # administration (scim-bridge credentials) ----------------------------------------------------
    async def create_token(self, name: str) -> str:
        token = "sbt_" + secrets.token_urlsafe(32)
        await self.store.kv_put(TOKENS, digest(token), orjson.dumps({"name": name, "created": _now()}))
        return token

    async def create_client(self, name: str) -> tuple[str, str]:
        client_id = "sbc_" + secrets.token_urlsafe(12)
        secret = secrets.token_urlsafe(32)
        record = {"name": name, "secret_sha256": digest(secret), "created": _now()}
        await self.store.kv_put(CLIENTS, client_id, orjson.dumps(record))
        return client_id, secret

    async def list(self) -> list[dict[str, Any]]:
        rows = []
        for key, raw in await self.store.kv_items(TOKENS):
            record = orjson.loads(raw)
            rows.append({"kind": "token", "id": key[:12], "name": record["name"], "created": record["created"]})
        for key, raw in await self.store.kv_items(CLIENTS):
            record = orjson.loads(raw)
            rows.append({"kind": "oauth-client", "id": key, "name": record["name"], "created": record["created"]})
        return rows

    async def revoke(self, identifier: str) -> bool:
        """Revoke an OAuth client by id, or a token by the 12-character id `list` shows, or by itself."""
        if await self.store.kv_delete(CLIENTS, identifier):
            return True
        for key, _raw in await self.store.kv_items(TOKENS):
            if key.startswith(identifier) and len(identifier) >= 12 or key == digest(identifier):
                return await self.store.kv_delete(TOKENS, key)
        return False


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")

"""Authentication: static tokens, OAuth client credentials, Basic, API keys, external JWTs."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from scim_bridge.auth import tokens
from scim_bridge.auth.credentials import CredentialBook, Principal
from scim_bridge.store.sqlite import SqliteStore
from tests.live import TOKEN, LiveBridge, free_port


@pytest.fixture(scope="module")
def jwks() -> Iterator[tuple[str, RSAKey]]:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    document = json.dumps({"keys": [key.as_dict(private=False)]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/jwks.json", key
    server.shutdown()


@pytest.fixture(scope="module")
def secured(
    tmp_path_factory: pytest.TempPathFactory, jwks: tuple[str, RSAKey]
) -> Iterator[tuple[LiveBridge, str, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('auth')}/auth.db"

    async def make_client() -> tuple[str, str]:
        store = SqliteStore(url)
        await store.open()
        try:
            return await CredentialBook(store, [], {}, []).create_client("otds")
        finally:
            await store.close()

    client_id, secret = asyncio.run(make_client())
    with LiveBridge(
        url,
        tokens=[TOKEN, "rotated-token"],
        basic_users=["ping:pa55word"],
        api_keys=["raw-key-1"],
        api_key_header="X-API-Key",
        jwks_url=jwks[0],
        jwt_issuer="https://issuer.example",
        jwt_audience="8adf8e6e",
        oauth_token_lifetime=900,
    ) as bridge:
        yield bridge, client_id, secret


def status(bridge: LiveBridge, headers: dict[str, str]) -> int:
    return httpx.get(f"{bridge.base}/Users", headers=headers).status_code


def test_missing_or_wrong_credentials_are_401_scim_errors(secured: tuple[LiveBridge, str, str]) -> None:
    bridge = secured[0]
    for headers in (
        {},
        {"Authorization": "non-token"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic !!"},
    ):
        response = httpx.get(f"{bridge.base}/Users", headers=headers)
        assert response.status_code == 401
        assert response.json() == {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": "401",
            "detail": "missing or invalid credentials",
        }
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_static_tokens_basic_and_api_keys(secured: tuple[LiveBridge, str, str]) -> None:
    bridge = secured[0]
    assert status(bridge, {"Authorization": f"Bearer {TOKEN}"}) == 200
    assert status(bridge, {"Authorization": f"bearer {TOKEN}"}) == 200  # scheme case-insensitive
    assert status(bridge, {"Authorization": "Bearer rotated-token"}) == 200
    basic = base64.b64encode(b"ping:pa55word").decode()
    assert status(bridge, {"Authorization": f"Basic {basic}"}) == 200
    assert status(bridge, {"Authorization": "Basic " + base64.b64encode(b"ping:wrong").decode()}) == 401
    assert status(bridge, {"X-API-Key": "raw-key-1"}) == 200
    assert status(bridge, {"Authorization": "raw-key-1"}) == 200
    assert status(bridge, {"X-API-Key": "raw-key-2"}) == 401


def test_oauth_client_credentials_in_header_or_body(secured: tuple[LiveBridge, str, str]) -> None:
    bridge, client_id, secret = secured
    by_header = httpx.post(
        f"{bridge.root}/oauth/token",
        data={"grant_type": "client_credentials", "scope": "scim"},
        auth=(client_id, secret),
    )
    assert by_header.status_code == 200, by_header.text
    token = by_header.json()
    assert token["token_type"] == "Bearer" and token["expires_in"] >= 900
    assert token["scope"] == "scim:read scim:write"  # the old `scope=scim` of OTDS set-ups, spelled out
    by_body = httpx.post(
        f"{bridge.root}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert by_body.status_code == 200
    assert status(bridge, {"Authorization": f"Bearer {token['access_token']}"}) == 200
    wrong = httpx.post(
        f"{bridge.root}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, "nope")
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    grant = httpx.post(f"{bridge.root}/oauth/token", data={"grant_type": "password"}, auth=(client_id, secret))
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"


def test_expired_or_tampered_access_tokens_are_refused(secured: tuple[LiveBridge, str, str]) -> None:
    bridge, client_id, secret = secured
    token = httpx.post(
        f"{bridge.root}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    ).json()["access_token"]
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "someone-else"
    tampered = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    assert status(bridge, {"Authorization": f"Bearer {header}.{tampered}.{signature}"}) == 401

    async def signing_key() -> bytes:
        store = SqliteStore(bridge.settings.store)
        await store.open()
        try:
            return await CredentialBook(store, [], {}, []).signing_key()
        finally:
            await store.close()

    key = asyncio.run(signing_key())
    assert status(bridge, {"Authorization": f"Bearer {tokens.issue(key, client_id, 900, None)}"}) == 200
    expired = tokens.issue(key, client_id, -60, None)  # validly signed, expired a minute ago
    assert status(bridge, {"Authorization": f"Bearer {expired}"}) == 401


def test_external_jwts_validated_by_jwks(secured: tuple[LiveBridge, str, str], jwks: tuple[str, RSAKey]) -> None:
    bridge, key = secured[0], jwks[1]
    now = int(time.time())

    def token(**claims: object) -> str:
        base = {"iss": "https://issuer.example", "aud": "8adf8e6e", "sub": "entra", "iat": now, "exp": now + 300}
        return jwt.encode({"alg": "RS256", "kid": "k1"}, {**base, **claims}, key)

    assert status(bridge, {"Authorization": f"Bearer {token()}"}) == 200
    assert status(bridge, {"Authorization": f"Bearer {token(aud='someone-else')}"}) == 401
    assert status(bridge, {"Authorization": f"Bearer {token(exp=now - 600)}"}) == 401
    assert status(bridge, {"Authorization": f"Bearer {token(iss='https://evil.example')}"}) == 401


def test_stored_tokens_can_be_created_and_revoked(secured: tuple[LiveBridge, str, str]) -> None:
    bridge = secured[0]

    async def make() -> tuple[str, CredentialBook, SqliteStore]:
        store = SqliteStore(bridge.settings.store)
        await store.open()
        book = CredentialBook(store, [], {}, [])
        return await book.create_token("okta"), book, store

    async def revoke(book: CredentialBook, store: SqliteStore, token: str) -> bool:
        try:
            return await book.revoke(token)
        finally:
            await store.close()

    token, book, store = asyncio.run(make())
    assert status(bridge, {"Authorization": f"Bearer {token}"}) == 200
    assert asyncio.run(revoke(book, store, token))
    time.sleep(CredentialBook.CACHE_SECONDS + 0.2)
    assert status(bridge, {"Authorization": f"Bearer {token}"}) == 401


def test_expiry_leeway_is_at_most_5_seconds_for_the_bridges_own_tokens(secured: tuple[LiveBridge, str, str]) -> None:
    bridge, client_id, _ = secured

    async def signing_key() -> bytes:
        store = SqliteStore(bridge.settings.store)
        await store.open()
        try:
            return await CredentialBook(store, [], {}, []).signing_key()
        finally:
            await store.close()

    key = asyncio.run(signing_key())
    assert tokens.LEEWAY_SECONDS <= 5
    assert status(bridge, {"Authorization": f"Bearer {tokens.issue(key, client_id, -2, None)}"}) == 200  # clock skew
    assert status(bridge, {"Authorization": f"Bearer {tokens.issue(key, client_id, -10, None)}"}) == 401


def test_expiry_leeway_is_at_most_5_seconds_for_external_jwts(
    secured: tuple[LiveBridge, str, str], jwks: tuple[str, RSAKey]
) -> None:
    bridge, key = secured[0], jwks[1]
    now = int(time.time())

    def bearer(**claims: object) -> dict[str, str]:
        base = {"iss": "https://issuer.example", "aud": "8adf8e6e", "sub": "entra", "iat": now, "exp": now + 300}
        return {"Authorization": "Bearer " + jwt.encode({"alg": "RS256", "kid": "k1"}, {**base, **claims}, key)}

    assert status(bridge, bearer(exp=now - 2)) == 200
    assert status(bridge, bearer(exp=now - 10)) == 401  # accepted for 30 s before
    assert status(bridge, bearer(nbf=now + 2)) == 200
    assert status(bridge, bearer(nbf=now + 10)) == 401


def test_external_jwt_scope_and_scp_claims_map_onto_the_bridges_scopes(
    secured: tuple[LiveBridge, str, str], jwks: tuple[str, RSAKey]
) -> None:
    bridge, key = secured[0], jwks[1]
    now = int(time.time())

    def bearer(**claims: object) -> dict[str, str]:
        base = {"iss": "https://issuer.example", "aud": "8adf8e6e", "sub": "idp", "iat": now, "exp": now + 300}
        return {"Authorization": "Bearer " + jwt.encode({"alg": "RS256", "kid": "k1"}, {**base, **claims}, key)}

    new_user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"jwt-{now}@example.com"}

    def write(headers: dict[str, str]) -> int:
        return httpx.post(f"{bridge.base}/Users", headers=headers, json=new_user).status_code

    reader = bearer(scope="openid scim:read")  # names the bridge does not know are ignored
    assert status(bridge, reader) == 200 and write(reader) == 403
    assert status(bridge, bearer(scp="scim.read")) == 200  # dotted, for issuers without colons
    apps_only = bearer(scp=["apps"])  # Entra's list form
    assert status(bridge, apps_only) == 403 and write(apps_only) == 403
    assert status(bridge, bearer(scope="openid profile")) == 403  # scopes, none of them ours
    assert write(bearer(scope="scim:write")) == 201
    assert status(bridge, bearer()) == 200  # no scope claim at all: the default, as before scopes


def test_access_tokens_issued_before_the_upgrade_keep_working_with_their_clients_scopes(
    secured: tuple[LiveBridge, str, str],
) -> None:
    bridge, client_id, _ = secured

    async def signing_key() -> bytes:
        store = SqliteStore(bridge.settings.store)
        await store.open()
        try:
            return await CredentialBook(store, [], {}, []).signing_key()
        finally:
            await store.close()

    now = int(time.time())
    old_claims = {"iss": tokens.OWN_ISSUER, "aud": tokens.OWN_AUDIENCE, "sub": client_id, "iat": now, "exp": now + 600}
    key = OctKey.import_key(asyncio.run(signing_key()))
    for claims in (old_claims, {**old_claims, "scope": "whatever-was-asked"}):  # no client_id claim yet
        old = jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, key, algorithms=["HS256"])
        assert status(bridge, {"Authorization": f"Bearer {old}"}) == 200
    unknown = jwt.encode({"alg": "HS256"}, {**old_claims, "sub": "sbc_gone"}, key, algorithms=["HS256"])
    assert status(bridge, {"Authorization": f"Bearer {unknown}"}) == 401  # no such client: refused


# -- the environment tokens' remembered headers (auth/middleware.py `_fixed_headers`) ------------


def _scope(authorization: bytes) -> dict[str, object]:
    return {"type": "http", "headers": [(b"host", b"x"), (b"authorization", authorization)]}


async def test_an_environment_token_is_checked_once_per_spelling_then_remembered(tmp_path: Path) -> None:
    from scim_bridge.auth.middleware import Authenticator

    store = SqliteStore(f"sqlite:///{tmp_path}/a.db")
    await store.open()
    try:
        book = CredentialBook(store, ["env-secret"], {}, [], admin_tokens=["admin-secret"])
        authenticator = Authenticator(book, None, None)
        checks = 0
        token_owner = book.token_owner

        async def counted(token: str) -> Principal | None:
            nonlocal checks
            checks += 1
            return await token_owner(token)

        book.token_owner = counted  # type: ignore[method-assign]
        first = await authenticator.from_scope(_scope(b"Bearer env-secret"))
        again = [await authenticator.from_scope(_scope(b"Bearer env-secret")) for _ in range(3)]
        admin = await authenticator.from_scope(_scope(b"Bearer admin-secret"))
        wrong = [await authenticator.from_scope(_scope(b"Bearer env-secreT")) for _ in range(2)]
        assert first is not None and first.name == "env-token-1" and all(p is first for p in again)
        assert admin is not None and admin.kind == "admin-token"
        assert wrong == [None, None]
        assert checks == 1 + 1 + 2  # each wrong one is checked every time, the right ones once
        # the last Authorization header counts, as before: a remembered first one does not win
        two = {"type": "http", "headers": [(b"authorization", b"Bearer env-secret"), (b"authorization", b"Bearer no")]}
        assert await authenticator.from_scope(two) is None
    finally:
        await store.close()


async def test_a_stored_token_named_like_an_environment_one_is_never_remembered(tmp_path: Path) -> None:
    from scim_bridge.auth.middleware import Authenticator

    store = SqliteStore(f"sqlite:///{tmp_path}/a.db")
    await store.open()
    try:
        book = CredentialBook(store, ["env-secret"], {}, [])
        book.CACHE_SECONDS = 0.0  # type: ignore[misc]  # every check reads the store
        authenticator = Authenticator(book, None, None)
        stored = await book.create_token("env-token-1")
        header = b"Bearer " + stored.encode()
        found = await authenticator.from_scope(_scope(header))
        assert found is not None and found.name == "env-token-1"
        assert await book.revoke(stored)
        assert await authenticator.from_scope(_scope(header)) is None  # revoked: refused at once
    finally:
        await store.close()

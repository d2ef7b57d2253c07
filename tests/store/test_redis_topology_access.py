"""Redis over TLS with a client certificate, and as an ACL user with only the bridge's rights,
configured the way an operator does it (SCIM_BRIDGE_REDIS_* in the environment) and used over
the bridge's real HTTP stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from scim_bridge.config import ConfigError, load_settings
from scim_bridge.redaction import redact_text
from scim_bridge.store import STANDARD_LANE, StoreUnavailable, Write
from scim_bridge.store.redis import RedisStore
from scim_bridge.store.redis_connect import RedisOptions
from tests.live import LiveBridge
from tests.redis_topology import Node, acl_server, make_certificates, tls_server

USER = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada@example.com", "active": True}


def _started(start: object) -> Node:
    try:
        return start()  # type: ignore[operator, no-any-return]
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
def certificates(tmp_path: Path) -> dict[str, Path]:
    return make_certificates(tmp_path)


@pytest.fixture
def tls(certificates: dict[str, Path]) -> Iterator[Node]:
    server = _started(lambda: tls_server(certificates))
    yield server
    server.stop()


def _scim_round_trip(bridge: LiveBridge) -> None:
    with bridge.client() as client:
        created = client.post("/Users", json=USER)
        assert created.status_code == 201, created.text
        id = created.json()["id"]
        assert client.get(f"/Users/{id}").json()["userName"] == "ada@example.com"
        found = client.get("/Users", params={"filter": 'userName eq "ada@example.com"'}).json()
        assert [r["id"] for r in found["Resources"]] == [id]
        assert client.delete(f"/Users/{id}").status_code == 204
        assert client.get(f"/Users/{id}").status_code == 404


def test_tls_with_a_ca_and_a_client_certificate(
    tls: Node, certificates: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIM_BRIDGE_REDIS_TLS_CA_FILE", str(certificates["ca.crt"]))
    monkeypatch.setenv("SCIM_BRIDGE_REDIS_TLS_CERT_FILE", str(certificates["client.crt"]))
    monkeypatch.setenv("SCIM_BRIDGE_REDIS_TLS_KEY_FILE", str(certificates["client.key"]))
    with LiveBridge(f"rediss://127.0.0.1:{tls.port}/0") as bridge:
        _scim_round_trip(bridge)


async def test_tls_refuses_a_missing_client_certificate_or_a_foreign_server(
    tls: Node, certificates: dict[str, Path], tmp_path: Path
) -> None:
    url = f"rediss://127.0.0.1:{tls.port}/0"
    (tmp_path / "other").mkdir()
    other_ca = make_certificates(tmp_path / "other")
    client_pair = {"tls_cert_file": certificates["client.crt"], "tls_key_file": certificates["client.key"]}
    for options in (
        RedisOptions(tls_ca_file=certificates["ca.crt"]),  # the server demands a client certificate
        RedisOptions(tls_ca_file=other_ca["ca.crt"], **client_pair),  # a server our CA did not sign
    ):
        store = RedisStore(url, options)
        await store.open()
        try:
            with pytest.raises(StoreUnavailable):  # a 503, like any outage, never a 500
                await store.ping()
        finally:
            await store.close()
    plain = RedisStore(f"redis://127.0.0.1:{tls.port}/0")  # plain text to the TLS port
    await plain.open()
    try:
        with pytest.raises(StoreUnavailable):
            await plain.create(Write("User", "u1", b"{}"))
    finally:
        await plain.close()


def test_tls_files_without_rediss_are_a_configuration_error(certificates: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="rediss"):
        load_settings(store="redis://127.0.0.1:6399/0", redis_tls_ca_file=str(certificates["ca.crt"]))
    with pytest.raises(ConfigError, match="KEY_FILE"):
        load_settings(store="rediss://127.0.0.1:6399/0", redis_tls_cert_file=str(certificates["client.crt"]))


@pytest.fixture
def acl() -> Iterator[Node]:
    server = _started(lambda: acl_server("scim-bridge", "pw-Zq901-acl"))
    yield server
    server.stop()


async def test_an_acl_user_with_only_the_bridges_rights_runs_everything(
    acl: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "redis-password"
    secret.write_text("pw-Zq901-acl\n")  # a mounted secret ends with a newline
    monkeypatch.setenv("SCIM_BRIDGE_REDIS_USERNAME", "scim-bridge")
    monkeypatch.setenv("SCIM_BRIDGE_REDIS_PASSWORD_FILE", str(secret))
    url = f"redis://127.0.0.1:{acl.port}/0"
    with LiveBridge(url) as bridge:  # its sync worker claims and acks under the same user
        _scim_round_trip(bridge)
    # every other path of the store under that user: queue, lease, audit chain, key/value
    store = RedisStore(url, load_settings(store=url).redis_options())
    await store.open()
    try:
        for left in await store.claim("drain", limit=100):  # what the bridge above queued
            await store.ack(left)
        await store.create(Write("User", "u1", b"{}", [("emails.value", "a@x")], [("username", "ada")], audit=b"e1"))
        await store.replace(Write("User", "u1", b"{}", [], [("username", "adele")]), expected_version=1)
        [entry] = await store.claim("worker")
        assert await store.defer(entry, 0) == 1
        lease = await store.lease("User", "u1", "provision", 30)
        assert lease is not None
        assert await store.release(lease, "provision")
        await store.enqueue("User", "u2", STANDARD_LANE)
        for claimed in await store.claim("worker", limit=10):
            await store.ack(claimed)
        await store.audit_append([b"e2"])
        assert await store.audit_seal() >= 2 and len(await store.audit_read(since=0)) >= 2
        assert (await store.audit_head()).pending == 0 and await store.audit_prune(0) == 0
        assert await store.kv_put("k", "a", b"1") and await store.kv_items("k") == [("a", b"1")]
        assert await store.kv_delete("k", "a")
        assert (await store.queue_depth()).total == 0 and await store.queue_oldest() == {}
    finally:
        await store.close()
    # ... and nothing more: other keys and server administration are refused to it
    with redis.Redis(port=acl.port, username="scim-bridge", password="pw-Zq901-acl") as client:
        for forbidden in (
            lambda: client.get("someone-else:key"),
            client.flushall,
            lambda: client.config_get("*"),
            lambda: client.acl_list(),
        ):
            with pytest.raises(redis.exceptions.NoPermissionError):
                forbidden()


async def test_a_wrong_redis_password_is_an_outage_and_never_logged(
    acl: Node, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://scim-bridge:wrong-Zq902@127.0.0.1:{acl.port}/0"
    store = RedisStore(url)
    await store.open()
    try:
        with pytest.raises(StoreUnavailable) as refused:
            await store.get("User", "u1")
    finally:
        await store.close()
    assert "wrong-Zq902" not in str(refused.value) and "wrong-Zq902" not in caplog.text
    assert redact_text(f"store {url}") == f"store redis://scim-bridge:[redacted]@127.0.0.1:{acl.port}/0"
    settings = load_settings(store=f"redis://127.0.0.1:{acl.port}/0", redis_password="pw-Zq903")
    assert "pw-Zq903" not in repr(settings) and settings.redis_options().password == "pw-Zq903"
    with pytest.raises(ConfigError, match="PASSWORD_FILE"):  # at start, in one line, not at the first request
        load_settings(store=f"redis://127.0.0.1:{acl.port}/0", redis_password_file="/nonexistent/redis-password")

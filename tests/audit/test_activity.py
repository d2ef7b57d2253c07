"""Activity ingestion end to end: the emulators deliver webhooks to the bridge over real HTTP, the
bridge verifies, joins them to SCIM users through the ID map, stores them once; last logins are
polled from the emulators' users."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml

from scim_bridge.emulators import cloudinary, iconik
from tests.emulators.live import LiveApp
from tests.live import LiveBridge
from tests.scim.conftest import ENTERPRISE, USER
from tests.sync.conftest import POLICY, World

ADMIN = {"Authorization": "Bearer admin-token-for-tests"}
ICONIK_SECRET = "iconik-shared-secret-for-tests"
AGENCY_KEY = "555000111222333"


@contextmanager
def activity_world(
    tmp_path: Path, store_url: str, poll_seconds: float = 3600.0, secrets: bool = True
) -> Iterator[tuple[World, dict[str, str]]]:
    """make_world with the webhook secrets in the credentials files and an agency's API key named."""
    cld_state, ico_state = cloudinary.CloudinaryState(), iconik.IconikState()
    (environment_id,) = cld_state.environments
    env_key = cld_state.access_keys[environment_id][0]  # the key /_emulator/notify signs with
    with LiveApp(cloudinary.build(cld_state)) as cld, LiveApp(iconik.build(ico_state)) as ico:
        cld_creds = {"account_id": cld_state.account_id, "key": cld_state.key, "secret": cld_state.secret}
        ico_creds = {"app_id": ico_state.app_id, "auth_token": ico_state.auth_token}
        if secrets:
            cld_creds["webhook_secret"] = f"an-older-secret, {env_key['api_secret']}"
            ico_creds["webhook_secret"] = ICONIK_SECRET
        (tmp_path / "cld.json").write_text(json.dumps(cld_creds))
        (tmp_path / "ico.json").write_text(json.dumps(ico_creds))
        policy = {
            **POLICY,
            "targets": {
                "cloudinary": {
                    "enabled": True,
                    "base_url": cld.url,
                    "credentials_file": str(tmp_path / "cld.json"),
                    "rate": 200,
                    "api_key_owners": {AGENCY_KEY: "Agency Nord"},
                },
                "iconik": {
                    "enabled": True,
                    "base_url": ico.url,
                    "credentials_file": str(tmp_path / "ico.json"),
                    "rate": 200,
                    "service_account_email": "bridge-service@example.com",
                },
            },
        }
        (tmp_path / "policy.yml").write_text(yaml.safe_dump(policy))
        with (
            LiveBridge(
                store_url,
                policy=tmp_path / "policy.yml",
                admin_tokens=["admin-token-for-tests"],
                last_login_poll_seconds=poll_seconds,
            ) as bridge,
            bridge.client() as scim,
        ):
            yield World(bridge, scim, cld_state, ico_state, cld.url, ico.url), env_key


def synced_user(world: World, email: str) -> dict[str, Any]:
    response = world.scim.post(
        "/Users",
        json={
            "schemas": [USER, ENTERPRISE],
            "userName": email,
            "displayName": "Ada Lovelace",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": email, "type": "work", "primary": True}],
            "active": True,
            ENTERPRISE: {"department": "Marketing"},
        },
    )
    assert response.status_code == 201, response.text
    user = response.json()

    def synced(w: World) -> bool:
        state = httpx.get(f"{w.bridge.root}/admin/api/users/{user['id']}", headers=ADMIN).json()
        return all(t["state"] == "synced" for t in state["targets"].values())

    world.converge(synced)
    return user


def activity(world: World, **query: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{world.bridge.root}/admin/api/activity", params=query, headers=ADMIN)
    assert response.status_code == 200, response.text
    return list(response.json()["records"])


def notify(world: World, **body: Any) -> dict[str, Any]:
    """Have the Cloudinary emulator sign and deliver a notification to the bridge."""
    answer = httpx.post(
        f"{world.cloudinary_url}/_emulator/notify",
        json={"url": f"{world.bridge.root}/webhooks/cloudinary", **body},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def signed(body: bytes, secret: str, timestamp: int, algorithm: str = "sha1") -> dict[str, str]:
    signature = hashlib.new(algorithm, body + str(timestamp).encode() + secret.encode()).hexdigest()
    return {"Content-Type": "application/json", "X-Cld-Timestamp": str(timestamp), "X-Cld-Signature": signature}


def cloudinary_flow(world: World, env_key: dict[str, str]) -> None:
    ada = synced_user(world, "ada@example.com")
    console_id = world.cld_user("ada@example.com")["id"]
    upload = {
        "notification_type": "upload",
        "public_id": "campaigns/spring/hero",
        "asset_id": "a1",
        "notification_context": {
            "triggered_at": "2025-04-01T09:30:00+00:00",
            "triggered_by": {"source": "ui", "id": console_id},
        },
    }
    first = notify(world, payload=upload)
    assert first["status"] == 200
    # A retry (same body, a new timestamp, the other digest) is accepted and stored once.
    again = notify(world, payload=upload, algorithm="sha256")
    assert again["status"] == 200 and again["signature"] != first["signature"]
    records = activity(world, user="ada@example.com")
    assert len(records) == 1, records
    (record,) = records
    assert record["source"] == "cloudinary" and record["type"] == "upload"
    assert record["object"] == {"kind": "asset", "id": "campaigns/spring/hero", "asset_id": "a1"}
    assert record["time"] == "2025-04-01T09:30:00.000000Z"
    assert record["actor"] == {
        "kind": "user",
        "target_id": console_id,
        "scim_id": ada["id"],
        "userName": "ada@example.com",
        "owner": "ada@example.com",
    }
    # An API-key action: the key's holder from the policy; an unnamed key as itself, never a secret.
    notify(
        world,
        payload={
            "notification_type": "delete",
            "resources": [{"public_id": "old/one"}, {"public_id": "old/two"}],
            "notification_context": {"triggered_by": {"source": "api", "id": AGENCY_KEY}},
        },
    )
    notify(world, notification_type="access_control_changed")  # the emulator's default: its own key
    (deleted,) = activity(world, type="delete")
    assert deleted["actor"]["owner"] == "Agency Nord" and deleted["object"]["ids"] == ["old/one", "old/two"]
    (changed,) = activity(world, type="access_control")
    assert changed["actor"] == {
        "kind": "api_key",
        "target_id": env_key["api_key"],
        "scim_id": None,
        "userName": None,
        "owner": f"api-key:{env_key['api_key']}",
    }
    assert env_key["api_secret"] not in json.dumps(activity(world))
    assert [r["type"] for r in activity(world, since="2025-04-01", until="2025-04-01")] == ["upload"]


def test_cloudinary_notification_is_verified_joined_and_stored_once(tmp_path: Path) -> None:
    with activity_world(tmp_path, f"sqlite:///{tmp_path}/bridge.db") as (world, env_key):
        cloudinary_flow(world, env_key)


def test_forged_unsigned_and_stale_cloudinary_deliveries_are_refused(tmp_path: Path) -> None:
    with activity_world(tmp_path, f"sqlite:///{tmp_path}/bridge.db") as (world, env_key):
        url, secret, now = f"{world.bridge.root}/webhooks/cloudinary", env_key["api_secret"], int(time.time())
        body = json.dumps({"notification_type": "delete", "public_id": "brand/logo"}).encode()
        attempts = {
            "forged": signed(body, "not-the-secret", now),
            "unsigned": {"Content-Type": "application/json"},
            "no timestamp": {"X-Cld-Signature": signed(body, secret, now)["X-Cld-Signature"]},
            "stale": signed(body, secret, now - 3 * 3600),
            "future": signed(body, secret, now + 3600, "sha256"),
            "garbled": {**signed(body, secret, now), "X-Cld-Signature": "zz"},
        }
        for name, headers in attempts.items():
            answer = httpx.post(url, content=body, headers=headers)
            assert answer.status_code == 401, (name, answer.text)
            assert answer.json()["error"], name
        tampered = httpx.post(url, content=body.replace(b"logo", b"logo2"), headers=signed(body, secret, now))
        assert tampered.status_code == 401 and "does not match" in tampered.json()["error"]
        # The bridge's own bearer token opens nothing here.
        with_token = httpx.post(url, content=body, headers={"Authorization": "Bearer test-token-0123456789"})
        assert with_token.status_code == 401
        assert activity(world) == []
        # The same body, rightly signed, goes in.
        assert httpx.post(url, content=body, headers=signed(body, secret, now)).json()["stored"] is True
        assert len(activity(world)) == 1
        # A sender without any proof is refused before its body is read: 401, not the body limit's 413.
        oversized = b"x" * (world.bridge.settings.max_body_bytes + 1)
        for name, headers in (("cloudinary", {}), ("iconik", {"X-Bridge-Secret": "guess"})):
            answer = httpx.post(f"{world.bridge.root}/webhooks/{name}", content=oversized, headers=headers)
            assert answer.status_code == 401, (name, answer.status_code)


def test_iconik_collection_event_is_joined_to_the_scim_user(tmp_path: Path) -> None:
    with activity_world(tmp_path, f"sqlite:///{tmp_path}/bridge.db") as (world, _):
        ada = synced_user(world, "ada@example.com")
        ico = httpx.Client(
            base_url=f"{world.iconik_url}/API",
            timeout=10,
            headers={"App-ID": world.iconik.app_id, "Auth-Token": world.iconik.auth_token},
        )
        hook = {"url": f"{world.bridge.root}/webhooks/iconik", "event_type": "collections", "status": "ENABLED"}
        good = ico.post("/notifications/v1/webhooks/", json={**hook, "headers": {"X-Bridge-Secret": ICONIK_SECRET}})
        bad = ico.post("/notifications/v1/webhooks/", json={**hook, "headers": {"X-Bridge-Secret": "guess"}})
        unsent = ico.post("/notifications/v1/webhooks/", json=hook)
        assert good.status_code == bad.status_code == unsent.status_code == 201
        # Ada acts in iconik: the emulator's token runs as her for one call.
        service_user, world.iconik.token_user_id = world.iconik.token_user_id, world.ico_user("ada@example.com")["id"]
        try:
            created = ico.post("/assets/v1/collections/", json={"title": "Spring campaign"})
        finally:
            world.iconik.token_user_id = service_user
        assert created.status_code == 201, created.text
        world.converge(lambda w: len(activity(w)) == 1 and all("last_payload" in h for h in w.iconik.webhooks.values()))
        (record,) = activity(world, user=ada["id"])
        assert record["source"] == "iconik" and record["type"] == "collection" and record["action"] == "create"
        assert record["object"] == {"kind": "collection", "id": created.json()["id"], "title": "Spring campaign"}
        assert record["actor"]["scim_id"] == ada["id"] and record["actor"]["userName"] == "ada@example.com"
        errors = {
            h["headers"].get("X-Bridge-Secret") if h.get("headers") else None: h.get("last_error")
            for h in world.iconik.webhooks.values()
        }
        assert errors == {ICONIK_SECRET: None, "guess": "HTTP 401", None: "HTTP 401"}
        # A redelivery of the same event is harmless.
        payload = json.loads(world.iconik.webhooks[good.json()["id"]]["last_payload"])
        again = httpx.post(
            f"{world.bridge.root}/webhooks/iconik", json=payload, headers={"X-Bridge-Secret": ICONIK_SECRET}
        )
        assert again.json()["duplicate"] is True and len(activity(world)) == 1


def test_last_login_is_polled_from_both_targets(tmp_path: Path) -> None:
    with activity_world(tmp_path, f"sqlite:///{tmp_path}/bridge.db") as (world, _):
        ada = synced_user(world, "ada@example.com")
        world.cld_user("ada@example.com")["last_login"] = "2025-05-01T10:00:00Z"
        world.ico_user("ada@example.com")["last_web_login"] = "2025-05-02T11:00:00.000000+00:00"
        report = httpx.post(f"{world.bridge.root}/admin/api/last-login/poll", headers=ADMIN).json()
        assert report["cloudinary"]["changed"] == 1 and report["iconik"]["changed"] == 1
        assert report["iconik"]["unmapped"] == 1  # the bridge's own service account
        answer = httpx.get(
            f"{world.bridge.root}/admin/api/last-login", params={"user": "ADA@example.com"}, headers=ADMIN
        ).json()
        assert answer["user"] == ada["id"]
        assert answer["targets"]["cloudinary"]["last_login"] == "2025-05-01T10:00:00.000000Z"
        assert answer["targets"]["iconik"]["last_login"] == "2025-05-02T11:00:00.000000Z"
        assert answer["targets"]["cloudinary"]["target_id"] == world.cld_user("ada@example.com")["id"]
        again = httpx.post(f"{world.bridge.root}/admin/api/last-login/poll", headers=ADMIN).json()
        assert again["cloudinary"]["changed"] == again["iconik"]["changed"] == 0


def test_receivers_without_secrets_do_not_exist(tmp_path: Path) -> None:
    with activity_world(tmp_path, f"sqlite:///{tmp_path}/bridge.db", secrets=False) as (world, env_key):
        body = b'{"notification_type": "upload"}'
        cld = httpx.post(
            f"{world.bridge.root}/webhooks/cloudinary",
            content=body,
            headers=signed(body, env_key["api_secret"], int(time.time())),
        )
        ico = httpx.post(f"{world.bridge.root}/webhooks/iconik", content=body, headers={"X-Bridge-Secret": ""})
        assert cld.status_code == ico.status_code == 404
        assert "webhook_secret" in cld.json()["error"] and "webhook_secret" in ico.json()["error"]


def test_on_redis_with_scheduled_polling(tmp_path: Path, redis_url: str) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    with activity_world(tmp_path, redis_url, poll_seconds=0.2) as (world, env_key):
        cloudinary_flow(world, env_key)
        world.ico_user("ada@example.com")["last_web_login"] = "2025-06-01T08:00:00.000000+00:00"

        def polled(w: World) -> bool:
            answer = httpx.get(f"{w.bridge.root}/admin/api/last-login", headers=ADMIN).json()
            return any(
                t.get("iconik", {}).get("last_login") == "2025-06-01T08:00:00.000000Z" for t in answer["users"].values()
            )

        world.converge(polled, timeout=30)


def test_activity_older_than_the_retention_is_pruned_with_its_dedupe_marks(tmp_path: Path) -> None:
    import asyncio
    from datetime import UTC, datetime, timedelta

    from scim_bridge.audit.activity import ActivityLog, Event, Identities
    from scim_bridge.store import open_store

    async def run() -> tuple[int, list[str]]:
        store = open_store(f"sqlite:///{tmp_path}/activity.db")
        await store.open()
        try:
            log = ActivityLog(store, Identities(store))
            now = datetime.now(UTC)
            for event_id, age in (("old", 400), ("recent", 3)):
                await log.ingest(
                    Event(
                        "cloudinary",
                        event_id,
                        "upload",
                        "upload",
                        {"kind": "asset", "id": event_id},
                        now - timedelta(days=age),
                        "api",
                        "key-1",
                    )
                )
            gone = await log.prune(365, now)
            kept = [r["event_id"] for r in await log.query(limit=10)]
            stored_again, _ = await log.ingest(
                Event(
                    "cloudinary",
                    "old",
                    "upload",
                    "upload",
                    {"kind": "asset", "id": "old"},
                    now - timedelta(days=400),
                    "api",
                    "key-1",
                )
            )
            assert stored_again  # its dedupe mark went with it
            return gone, kept
        finally:
            await store.close()

    assert asyncio.run(run()) == (1, ["recent"])

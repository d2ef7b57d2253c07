"""Target calls in the audit trail: the bridge and both emulators over real HTTP (make_world), both
stores. A SCIM request's correlation id reaches every target call it causes; no secret of any
kind reaches the log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.audit import tamper
from tests.live import TOKEN
from tests.sync.conftest import World, make_world

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PASSWORD = "Sup3r-Secret-Passw0rd!"


@pytest.fixture
def world(bridge_store_url: str, tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path, bridge_store_url)


def test_target_calls_carry_the_correlation_id_of_their_scim_request(world: World, tmp_path: Path) -> None:
    url = world.bridge.settings.store
    created = world.scim.post(
        "/Users",
        headers={"X-Request-Id": "otds-join-42"},
        json={
            "schemas": [USER],
            "userName": "grace@example.com",
            "password": PASSWORD,
            "name": {"givenName": "Grace", "familyName": "H"},
            "emails": [{"value": "grace@example.com", "primary": True}],
        },
    )
    assert created.status_code == 201
    user_id = created.json()["id"]
    world.converge(lambda w: bool(w.cld_user("grace@example.com") and w.ico_user("grace@example.com")))
    disabled = world.scim.patch(
        f"/Users/{user_id}",
        headers={"X-Request-Id": "otds-leave-43"},
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
    )
    assert disabled.status_code == 200
    world.converge(
        lambda w: (
            w.cld_user("grace@example.com")["enabled"] is False  # type: ignore[index]
            and w.ico_user("grace@example.com")["status"] != "ACTIVE"
        )
    )  # type: ignore[index]

    def calls(correlation: str) -> list[dict[str, object]]:
        return [r for r in tamper.records(url) if r["kind"] == "target" and r["correlation"] == correlation]

    world.converge(lambda w: {c["target"] for c in calls("otds-leave-43")} == {"cloudinary", "iconik"}, timeout=10)
    joined = calls("otds-join-42")
    assert {c["target"] for c in joined} == {"cloudinary", "iconik"}
    assert any(c["method"] == "POST" and c["status"] in (200, 201) for c in joined)
    for call in joined + calls("otds-leave-43"):
        assert call["resource"] == {"type": "User", "id": user_id}
        assert call["outcome"] == "ok" and isinstance(call["latency_ms"], float) and "?" not in str(call["path"])
    # Cloudinary names each request (X-Request-Id); the id is kept to quote to its support
    assert all(c["request_id"] for c in joined if c["target"] == "cloudinary")
    scim = [r for r in tamper.records(url) if r["kind"] == "scim"]
    assert [r["correlation"] for r in scim] == ["otds-join-42", "otds-leave-43"]
    assert tamper.verify(url).ok

    secrets = [
        PASSWORD,
        TOKEN,
        "admin-token-for-tests",
        world.cloudinary.secret,
        world.iconik.auth_token,
        json.loads((tmp_path / "cld.json").read_text())["secret"],
    ]
    raw = tamper.raw_bytes(url)
    for secret in secrets:
        assert secret.encode() not in raw, f"a secret reached the audit log: {secret[:4]}…"

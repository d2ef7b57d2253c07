"""The Cloudinary emulator's Permissions API custom policies, over real HTTP, checked against the
vendor's response schemas (permissions.yml): create 201, list, get, update, delete 204, the v2
error shape, and a legacy account refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scim_bridge.emulators import cloudinary
from tests.emulators.spec import assert_matches
from tests.emulators.test_cloudinary_media import PERMS, V2, Emulator, _emulator

STATEMENT = (
    'permit(principal in Cloudinary::Group::"g1", action == Cloudinary::Action::"moderate", '
    'resource is Cloudinary::Asset) when { resource.ancestor_ids.contains("f1") };'
)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    yield from _emulator(cloudinary.CloudinarySwitches())


def test_custom_policies_round_trip(emu: Emulator) -> None:
    body = {"name": "legal on campaigns", "policy_statement": STATEMENT, "scope_type": "prodenv"}
    created = emu.perms.post("/policies/custom", json={**body, "scope_id": emu.environment_id})
    assert created.status_code == 201, created.text
    assert_matches(PERMS, f"{V2}/policies/custom", "post", 201, created.json())
    policy = created.json()["data"]
    assert policy["policy_statement"] == STATEMENT and policy["enabled"] is True
    listed = emu.perms.get("/policies/custom", params={"scope_type": "prodenv", "scope_id": emu.environment_id})
    assert_matches(PERMS, f"{V2}/policies/custom", "get", 200, listed.json())
    assert [p["id"] for p in listed.json()["data"]] == [policy["id"]]
    changed = emu.perms.put(
        f"/policies/custom/{policy['id']}", json={**body, "scope_id": emu.environment_id, "enabled": False}
    )
    assert changed.status_code == 200 and changed.json()["data"]["enabled"] is False
    assert emu.perms.delete(f"/policies/custom/{policy['id']}").status_code == 204
    gone = emu.perms.get(f"/policies/custom/{policy['id']}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "ACCOUNTS_00003"


def test_bad_custom_policies_are_refused_in_the_v2_shape(emu: Emulator) -> None:
    missing = emu.perms.post("/policies/custom", json={"name": "x"})
    assert missing.status_code == 400 and set(missing.json()["error"]["details"]["fields"]) == {
        "policy_statement",
        "scope_type",
    }
    bad = {"name": "x", "policy_statement": "allow everything", "scope_type": "prodenv", "scope_id": "all"}
    assert emu.perms.post("/policies/custom", json=bad).status_code == 400
    unknown = {"name": "x", "policy_statement": STATEMENT, "scope_type": "prodenv", "scope_id": "nope"}
    assert emu.perms.post("/policies/custom", json=unknown).status_code == 404


def test_a_legacy_account_has_no_custom_policies() -> None:
    for emu in _emulator(cloudinary.CloudinarySwitches(permission_model="legacy")):
        assert emu.perms.get("/policies/custom").status_code == 403

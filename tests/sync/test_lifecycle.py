"""Joiner, mover, leaver end to end: SCIM in, Cloudinary and iconik emulators out, real HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml

from tests.live import LiveBridge
from tests.scim.conftest import ENTERPRISE, GROUP, USER, patch_ops
from tests.sync.conftest import World, make_world


def joiner(world: World, email: str, department: str = "Marketing", **extra: object) -> dict:
    response = world.scim.post(
        "/Users",
        json={
            "schemas": [USER, ENTERPRISE],
            "userName": email,
            "displayName": email.split("@")[0].title(),
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": email, "type": "work", "primary": True}],
            "active": True,
            ENTERPRISE: {"department": department},
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


def group(world: World, name: str, members: list[str]) -> dict:
    response = world.scim.post(
        "/Groups", json={"schemas": [GROUP], "displayName": name, "members": [{"value": m} for m in members]}
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_joiner_gets_accounts_roles_and_groups_on_day_one(world: World) -> None:
    ada = joiner(world, "ada@example.com")
    group(world, "Marketing EMEA", [ada["id"]])
    world.converge(
        lambda w: (
            w.cld_groups_of("ada@example.com") == {"Marketing EMEA", "dept-Marketing"}
            and w.ico_groups_of("ada@example.com") == {"Marketing EMEA", "dept-Marketing"}
        )
    )
    cld, ico = world.cld_user("ada@example.com"), world.ico_user("ada@example.com")
    assert cld["role"] == "media_library_user" and cld["enabled"] is True and cld["name"] == "Ada"
    assert ico["type"] == "BROWSE_ONLY" and ico["status"] == "ACTIVE" and ico["first_name"] == "Ada"
    assert len([u for u in world.cloudinary.users.values() if u["email"] == "ada@example.com"]) == 1


def test_mover_changes_role_and_groups(world: World) -> None:
    bob = joiner(world, "bob@example.com", department="Marketing")
    legal = group(world, "Legal Reviewers", [])
    world.converge(lambda w: w.cld_groups_of("bob@example.com") == {"dept-Marketing"})
    world.scim.patch(
        f"/Groups/{legal['id']}", json=patch_ops({"op": "add", "path": "members", "value": [{"value": bob["id"]}]})
    )
    world.scim.patch(
        f"/Users/{bob['id']}",
        json=patch_ops({"op": "replace", "path": f"{ENTERPRISE}:department", "value": "Post Production"}),
    )
    world.converge(
        lambda w: (
            w.cld_user("bob@example.com")["role"] == "media_library_admin"
            and w.cld_groups_of("bob@example.com") == {"Legal Reviewers", "dept-Post Production"}
            and w.ico_groups_of("bob@example.com") == {"Legal Reviewers", "dept-Post Production"}
            and w.ico_user("bob@example.com")["type"] == "STANDARD"
        )
    )  # first matching rule wins
    # Leaving the legal group takes the admin role away again.
    world.scim.patch(
        f"/Groups/{legal['id']}", json=patch_ops({"op": "remove", "path": f'members[value eq "{bob["id"]}"]'})
    )
    world.converge(
        lambda w: (
            w.cld_user("bob@example.com")["role"] == "media_library_user"
            and w.cld_groups_of("bob@example.com") == {"dept-Post Production"}
            and w.ico_user("bob@example.com")["type"] == "POWER"
        )
    )


def test_leaver_is_disabled_everywhere_and_reactivation_restores(world: World) -> None:
    cy = joiner(world, "cy@example.com")
    group(world, "Brand", [cy["id"]])
    world.converge(lambda w: w.ico_groups_of("cy@example.com") == {"Brand", "dept-Marketing"})
    world.scim.patch(f"/Users/{cy['id']}", json=patch_ops({"op": "Replace", "path": "active", "value": "False"}))
    world.converge(
        lambda w: (
            w.cld_user("cy@example.com")["enabled"] is False and w.ico_user("cy@example.com")["status"] == "INACTIVE"
        )
    )
    world.scim.patch(f"/Users/{cy['id']}", json=patch_ops({"op": "replace", "value": {"active": True}}))
    world.converge(
        lambda w: (
            w.cld_user("cy@example.com")["enabled"] is True
            and w.ico_user("cy@example.com")["status"] == "ACTIVE"
            and w.cld_groups_of("cy@example.com") == {"Brand", "dept-Marketing"}
        )
    )


def test_rename_and_group_delete(world: World) -> None:
    dee = joiner(world, "dee@example.com")
    campaign = group(world, "Campaign Spring", [dee["id"]])
    world.converge(lambda w: "Campaign Spring" in w.cld_groups_of("dee@example.com"))
    world.scim.patch(
        f"/Groups/{campaign['id']}",
        json=patch_ops({"op": "replace", "path": "displayName", "value": "Campaign Summer"}),
    )
    world.scim.patch(
        f"/Users/{dee['id']}", json=patch_ops({"op": "replace", "path": "displayName", "value": "Dee Renamed"})
    )
    world.converge(
        lambda w: (
            w.cld_groups_of("dee@example.com") == {"Campaign Summer", "dept-Marketing"}
            and w.ico_groups_of("dee@example.com") == {"Campaign Summer", "dept-Marketing"}
            and w.cld_user("dee@example.com")["name"] == "Dee Renamed"
        )
    )
    assert not [g for g in world.cloudinary.groups.values() if g["name"] == "Campaign Spring"]
    world.scim.delete(f"/Groups/{campaign['id']}")
    world.converge(
        lambda w: (
            w.cld_groups_of("dee@example.com") == {"dept-Marketing"}
            and not [g for g in w.iconik.groups.values() if g["name"] == "Campaign Summer"]
            and not [g for g in w.cloudinary.groups.values() if g["name"] == "Campaign Summer"]
        )
    )


def test_excluded_groups_and_external_guardrail(world: World) -> None:
    eve = joiner(world, "eve@agency.example", userType="External Agency")
    group(world, "Legal Reviewers", [eve["id"]])
    group(world, "project-apollo", [eve["id"]])  # excluded from mirroring by the policy
    world.converge(lambda w: w.cld_groups_of("eve@agency.example") == {"Legal Reviewers", "dept-Marketing"})
    # The rule would make her a media_library_admin; the guardrail keeps external users off admin roles.
    assert world.cld_user("eve@agency.example")["role"] == "media_library_user"
    assert not [g for g in world.iconik.groups.values() if g["name"] == "project-apollo"]


def test_delete_mode_removes_accounts(tmp_path: Path) -> None:
    for world in make_world(tmp_path, f"sqlite:///{tmp_path}/d.db", deprovision="delete"):
        fay = joiner(world, "fay@example.com")
        world.converge(
            lambda w: w.cld_user("fay@example.com") is not None and w.ico_user("fay@example.com") is not None
        )
        assert world.scim.delete(f"/Users/{fay['id']}").status_code == 204
        world.converge(lambda w: w.cld_user("fay@example.com") is None and w.ico_user("fay@example.com") is None)
        # The bridge's own iconik account is never touched.
        assert world.iconik.users[world.iconik.token_user_id]["status"] == "ACTIVE"


def test_a_changed_policy_re_evaluates_the_directory_at_the_next_start(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/bridge.db"
    for world in make_world(tmp_path, store):
        joiner(world, "ada@example.com", department="Brand")
        world.converge(
            lambda w: (
                w.cld_user("ada@example.com") is not None
                and w.cld_user("ada@example.com")["role"] == "media_library_user"
            )
        )  # type: ignore[index]
        world.bridge.__exit__(None, None, None)  # stop it; the emulators stay
        policy = yaml.safe_load((tmp_path / "policy.yml").read_text())
        policy["roles"].append({"when": {"attribute": {"department": "Brand"}}, "cloudinary": "media_library_admin"})
        (tmp_path / "next.yml").write_text(yaml.safe_dump(policy))
        with LiveBridge(store, policy=tmp_path / "next.yml"):  # no directory change at all
            world.converge(lambda w: w.cld_user("ada@example.com")["role"] == "media_library_admin")  # type: ignore[index]


def test_a_leaver_is_disabled_in_one_target_without_waiting_for_a_slow_other(world: World) -> None:
    """A revocation syncs every target at once: a slow Cloudinary (3 s per call here) does not hold
    up the iconik disable, which the targets one after the other did."""
    dee = joiner(world, "dee@example.com")
    world.converge(lambda w: w.ico_user("dee@example.com") is not None and w.cld_user("dee@example.com") is not None)
    world.converge(lambda w: w.ico_groups_of("dee@example.com") == {"dept-Marketing"})
    assert httpx.put(f"{world.cloudinary_url}/_emulator/faults", json={"latency_ms": 3000}).status_code == 200
    world.scim.patch(f"/Users/{dee['id']}", json=patch_ops({"op": "replace", "path": "active", "value": False}))
    world.converge(lambda w: w.ico_user("dee@example.com")["status"] == "INACTIVE", timeout=20)
    assert world.cld_user("dee@example.com")["enabled"] is True  # its disable is still on the wire
    world.converge(lambda w: w.cld_user("dee@example.com")["enabled"] is False, timeout=30)

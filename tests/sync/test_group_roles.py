"""iconik role assignments from the policy (`access.iconik.group_roles`, issue 9 item 6): applied to
the group over real HTTP, explained with their rule, planned when the policy changes, found by
reconcile when changed by hand and repaired by --apply."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from tests.sync.conftest import World, make_world
from tests.sync.test_lifecycle import group, joiner

ADMIN = {"Authorization": "Bearer admin-token-for-tests"}
LEGAL_ROLES = ["can_read_assets", "can_write_approval_status"]
ACCESS = {"iconik": {"group_roles": [{"group": "Legal Reviewers", "roles": LEGAL_ROLES}]}}


def cli(world: World, store: str, *args: str, policy: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scim_bridge", *args, "--store", store, "--policy", str(policy or world.policy)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def legal_roles(world: World) -> list[str]:
    legal = next(g for g in world.iconik.groups.values() if g["name"] == "Legal Reviewers")
    return sorted(legal.get("roles") or [])


def test_group_roles_are_applied_explained_planned_and_reconciled(tmp_path: Path, bridge_store_url: str) -> None:
    for world in make_world(tmp_path, bridge_store_url, access=ACCESS):
        xia = joiner(world, "xia@example.com", department="Legal")
        group(world, "Legal Reviewers", [xia["id"]])
        world.converge(
            lambda w: legal_roles(w) == LEGAL_ROLES and "Legal Reviewers" in w.ico_groups_of("xia@example.com")
        )
        # iconik answers the user's effective roles from its groups
        effective = httpx.get(
            f"{world.iconik_url}/API/users/v1/users/{world.ico_user('xia@example.com')['id']}/roles/",  # type: ignore[index]
            headers={"App-ID": world.iconik.app_id, "Auth-Token": world.iconik.auth_token},
        ).json()["objects"]
        assert sorted(effective) == LEGAL_ROLES

        explained = json.loads(cli(world, bridge_store_url, "explain", "xia@example.com", "--json").stdout)
        [line] = [i for i in explained["targets"]["iconik"] if i["grant"].startswith("group-role")]
        assert line["grant"] == "group-role Legal Reviewers: can_read_assets, can_write_approval_status"
        assert line["because"] == "access.iconik.group_roles[0] via group Legal Reviewers"
        assert not any(i["grant"].startswith("group-role") for i in explained["targets"]["cloudinary"])

        # a changed policy: plan says what it would take away and add
        changed = yaml.safe_load(world.policy.read_text())  # type: ignore[union-attr]
        changed["access"]["iconik"]["group_roles"][0]["roles"] = ["can_read_assets", "can_read_collections"]
        (tmp_path / "next.yml").write_text(yaml.safe_dump(changed))
        lines = cli(world, bridge_store_url, "plan", policy=tmp_path / "next.yml").stdout.splitlines()
        assert "iconik     revoke         roles of Legal Reviewers  can_write_approval_status" in lines
        assert "iconik     grant          roles of Legal Reviewers  can_read_collections" in lines
        assert cli(world, bridge_store_url, "plan").stdout.splitlines()[-1] == "plan: 0 change(s): nothing to change"

        # by hand in iconik: the approval role taken away, a delete role added
        legal = next(g for g in world.iconik.groups.values() if g["name"] == "Legal Reviewers")
        legal["roles"] = ["can_read_assets", "can_delete_assets"]
        url = f"{world.bridge.root}/admin/api/reconcile"
        drift = httpx.post(url, headers=ADMIN, timeout=60).json()["drift"]
        [found] = [d for d in drift if d["kind"] == "wrong-group-roles"]
        assert found["subject"] == "Legal Reviewers" and "can_delete_assets" in found["detail"]
        assert legal_roles(world) == ["can_delete_assets", "can_read_assets"]  # a report changes nothing
        httpx.post(f"{url}?apply=true", headers=ADMIN, timeout=60)
        assert legal_roles(world) == LEGAL_ROLES
        assert httpx.post(url, headers=ADMIN, timeout=60).json()["drift"] == []

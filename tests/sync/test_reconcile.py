"""`scim-bridge reconcile`: drift made by hand in the targets is reported, then repaired by
--apply, and accounts the bridge does not own are never touched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.live import TOKEN
from tests.sync.conftest import World, make_world
from tests.sync.test_lifecycle import group, joiner

ACCESS = {
    "cloudinary": {
        "product_environment": "production",
        "folders": [{"path": "campaigns/emea", "grants": [{"group": "Marketing EMEA", "role": "contributor"}]}],
    },
    "iconik": {
        "collections": [{"title": "EMEA", "grants": [{"group": "Marketing EMEA", "permissions": ["read", "write"]}]}]
    },
}
RECONCILE = {"owned_email_domains": ["example.com"], "orphans": "disable"}


def reconcile(world: World, tmp_path: Path, store: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "scim_bridge",
            "reconcile",
            "--store",
            store,
            "--policy",
            str(tmp_path / "policy.yml"),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SCIM_BRIDGE_PROGRESS": "always"},  # piped: progress only when asked for
    )


def test_drift_is_reported_then_repaired_and_foreign_accounts_are_left_alone(
    tmp_path: Path, bridge_store_url: str
) -> None:
    store = bridge_store_url
    for world in make_world(tmp_path, store, access=ACCESS, reconcile=RECONCILE):
        ada = joiner(world, "ada@example.com")
        bob = joiner(world, "bob@example.com")
        group(world, "Marketing EMEA", [ada["id"]])
        group(world, "Brand", [bob["id"]])
        world.converge(
            lambda w: (
                w.cld_folder_roles("ada@example.com") == {"campaigns/emea": {"contributor"}}
                and w.ico_collection_rights("ada@example.com") == {"EMEA": {"read", "write"}}
                and "Brand" in w.cld_groups_of("bob@example.com")
            )
        )
        assert reconcile(world, tmp_path, store).returncode == 0  # in step

        # Drift, by hand, straight into the targets:
        cld, ico = world.cloudinary, world.iconik
        world.cld_user("bob@example.com")["role"] = "admin"  # type: ignore[index]  # a role raised
        emea = next(g for g, v in cld.groups.items() if v["name"] == "Marketing EMEA")
        cld.members[emea].append(world.cld_user("bob@example.com")["id"])  # type: ignore[index]  # a user added
        ico_emea = next(g for g, v in ico.groups.items() if v["name"] == "Marketing EMEA")
        world.ico_user("bob@example.com")["groups"].append(ico_emea)  # type: ignore[index]
        cld.role_assignments[:] = [a for a in cld.role_assignments if a["principal_id"] != emea]  # a grant deleted
        collection = next(c for c, v in ico.collections.items() if v["title"] == "EMEA")
        ico.acls[f"collections/{collection}"]["groups"].pop(ico_emea)
        for email in ("ghost@example.com", "partner@agency.example"):  # orphans: one ours, one not
            cld.users[email] = {
                "id": email,
                "name": email,
                "email": email,
                "role": "media_library_user",
                "enabled": True,
                "pending": False,
                "created_at": "2026-01-01T00:00:00Z",
                "updated_at": "2026-01-01T00:00:00Z",
                "all_sub_accounts": True,
            }

        report = reconcile(world, tmp_path, store)
        assert report.returncode == 1, report.stderr
        lines = report.stdout.splitlines()
        assert any("wrong-role" in line and "bob@example.com" in line and "admin" in line for line in lines)
        assert (
            sum("extra-member" in line and "bob@example.com" in line and "Marketing EMEA" in line for line in lines)
            == 2
        )  # in both targets
        assert any("missing-grant" in line and "campaigns/emea" in line for line in lines)
        assert any(line.startswith("iconik") and "missing-grant" in line and "EMEA" in line for line in lines)
        assert any("orphan" in line and "ghost@example.com" in line and "→ disable" in line for line in lines)
        assert any("orphan" in line and "partner@agency.example" in line and "(report only)" in line for line in lines)
        assert "reconcile: cloudinary: " in report.stderr  # progress on the way
        # nothing was changed by the report
        assert world.cld_user("bob@example.com")["role"] == "admin"  # type: ignore[index]

        repaired = reconcile(world, tmp_path, store, "--apply", "--json")
        assert repaired.returncode == 0, repaired.stderr
        assert json.loads(repaired.stdout)["applied"] is True
        assert world.cld_user("bob@example.com")["role"] == "media_library_user"  # type: ignore[index]
        assert "Marketing EMEA" not in world.cld_groups_of("bob@example.com")
        assert "Marketing EMEA" not in world.ico_groups_of("bob@example.com")
        assert world.cld_folder_roles("ada@example.com") == {"campaigns/emea": {"contributor"}}
        assert world.ico_collection_rights("ada@example.com") == {"EMEA": {"read", "write"}}
        assert cld.users["ghost@example.com"]["enabled"] is False  # owned orphan: disabled
        assert cld.users["partner@agency.example"]["enabled"] is True  # not ours: never touched
        # the audit trail shows the repair: the report, then the target calls that made it, one correlation id
        exported = subprocess.run(
            [sys.executable, "-m", "scim_bridge", "audit", "export", "--format", "jsonl", "--store", store],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert exported.returncode == 0, exported.stderr
        entries = [json.loads(line) for line in exported.stdout.splitlines()]
        report_entry = [e for e in entries if e.get("kind") == "reconcile" and e.get("applied")][-1]
        calls = [
            e for e in entries if e.get("kind") == "target" and e.get("correlation") == report_entry["correlation"]
        ]
        bob_id = world.cld_user("bob@example.com")["id"]  # type: ignore[index]
        assert any(c["method"] == "PUT" and c["path"].endswith(f"/users/{bob_id}") for c in calls)
        assert any(c["method"] == "DELETE" and f"/users/{bob_id}" in c["path"] for c in calls)  # membership removed
        assert any(c["method"] == "PUT" and c["path"].endswith("/users/ghost@example.com") for c in calls)
        after = reconcile(world, tmp_path, store)
        assert [line for line in after.stdout.splitlines() if "partner@agency.example" not in line] == [
            "reconcile: 1 difference(s)"
        ], after.stdout


def test_periodic_reconciliation_repairs_and_reports_through_the_admin_api(tmp_path: Path) -> None:
    admin = {"Authorization": "Bearer admin-token-for-tests"}
    for world in make_world(
        tmp_path, f"sqlite:///{tmp_path}/bridge.db", reconcile={"interval_seconds": 1, "repair": True}
    ):
        cy = joiner(world, "cy@example.com")
        world.converge(lambda w: w.cld_user("cy@example.com") is not None and w.ico_user("cy@example.com") is not None)
        url = f"{world.bridge.root}/admin/api/reconcile"
        world.cld_user("cy@example.com")["role"] = "master_admin"  # type: ignore[index]  # raised by hand
        world.converge(
            lambda w: w.cld_user("cy@example.com")["role"] == "media_library_user",  # type: ignore[index]
            timeout=30,
        )
        world.converge(lambda w: httpx.get(url, headers=admin).status_code == 200)
        assert httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 403  # not admin
        ran = httpx.post(url, headers=admin, timeout=60).json()  # on demand, report only
        assert ran == {"applied": False, "drift": []}
        world.ico_user("cy@example.com")["status"] = "INACTIVE"  # type: ignore[index]  # disabled by hand
        world.converge(lambda w: w.ico_user("cy@example.com")["status"] == "ACTIVE", timeout=30)  # type: ignore[index]
        # the pass that repaired it stores its report just after its repairs: wait for that report,
        # not the on-demand one above
        world.converge(lambda w: httpx.get(url, headers=admin).json()["applied"] is True, timeout=30)
        last = httpx.get(url, headers=admin).json()
        assert last["applied"] is True and last["correlation"].startswith("reconcile-")
        assert cy

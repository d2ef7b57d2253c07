"""The sandbox (one process, one port, sample data flowing into both emulators) and the admin API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.live import free_port


@pytest.mark.slow  # ~17 s: the whole sandbox in a subprocess, synced into both emulators
def test_sandbox_fills_both_targets_and_reports_through_the_admin_api(tmp_path: Path) -> None:
    port, access_file = free_port(), tmp_path / "access.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scim_bridge",
            "sandbox",
            "--port",
            str(port),
            "--credentials-file",
            str(access_file),
            "--store",
            f"sqlite:///{tmp_path}/sb.db",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ.copy(),
    )
    try:
        banner = process.stdout.readline()  # type: ignore[union-attr]
        assert "sandbox" in banner
        access = json.loads(access_file.read_text())
        assert set(access) == {"scim", "cloudinary", "iconik", "admin", "cli", "webhooks", "edited_policy"}
        admin = httpx.Client(
            base_url=access["admin"]["base_url"],
            headers={"Authorization": f"Bearer {access['admin']['token']}"},
            timeout=10,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                queue = admin.get("/queue").json()
                if queue["total"] == 0:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the sandbox did not finish its initial load"
            time.sleep(0.2)
        assert queue["targets"] == ["cloudinary", "iconik"] and queue["dead_letters"] == 0
        cld = httpx.get(f"{access['cloudinary']['base_url']}/_emulator/state").json()
        ico = httpx.get(f"{access['iconik']['base_url']}/_emulator/state").json()
        # 37 sample users: a leaver and an agency user whose access date has passed are never
        # provisioned; iconik also has the token's user.
        assert len(cld["users"]) == 35 and len(ico["users"]) == 36
        assert not any(u["email"] == "kenji.martin@brightideas.example" for u in cld["users"])
        names = {g["name"] for g in cld["groups"]}
        assert {"Legal Reviewers", "Marketing EMEA", "dept-Marketing", "region-EMEA"} <= names
        assert not any(name.startswith(("project-", "campaign-")) for name in names)
        # The sample policy's access section: folders, collections, workspaces and project teams.
        assert {"campaigns/emea", "masters", "catalog", "agencies/bright-ideas"} <= {f["path"] for f in cld["folders"]}
        assert {"Brand Masters", "Region EMEA", "Regions"} <= {c["title"] for c in ico["collections"]}
        assert {p["name"] for p in ico["projects"]} == {"project-spring-launch", "campaign-summer-2027"}
        # The admin API explains one user's state in every target; SCIM tokens do not open it.
        scim = httpx.Client(
            base_url=access["scim"]["base_url"], headers={"Authorization": f"Bearer {access['scim']['token']}"}
        )
        grace = scim.get("/Users", params={"filter": 'userName eq "grace.costa@example.com"'}).json()["Resources"][0]
        state = admin.get(f"/users/{grace['id']}").json()
        assert state["targets"]["cloudinary"]["state"] == "not-provisioned"
        assert (
            httpx.get(
                f"{access['admin']['base_url']}/queue", headers={"Authorization": f"Bearer {access['scim']['token']}"}
            ).status_code
            == 403  # a SCIM token lacks the admin scope
        )
        legal = scim.get("/Groups", params={"filter": 'displayName eq "Legal Reviewers"'}).json()["Resources"][0]
        member = legal["members"][0]["value"]
        legal_state = admin.get(f"/users/{member}").json()["targets"]["cloudinary"]
        assert legal_state["state"] == "synced" and legal_state["role"] == "media_library_admin"
        # Provision on demand of a sample user, from the command line, on the sandbox's own store
        cli = access["cli"]
        started = time.monotonic()
        run = subprocess.run(
            [sys.executable, "-m", "scim_bridge", "provision", "ava.andersen@example.com", "--json"]
            + ["--store", cli["store"], "--policy", cli["policy"]],
            capture_output=True,
            text=True,
            timeout=60,
        )
        elapsed = time.monotonic() - started
        print(f"scim-bridge provision in the sandbox: {elapsed:.2f} s (the brief asks under 2 s)")
        assert run.returncode == 0, run.stderr
        steps = [s["step"] for s in json.loads(run.stdout)["steps"]]
        assert steps == ["directory", "rules", "guardrails", "accounts", "actions", "results"]
        assert elapsed < 10  # generous: a loaded 2-core machine; measured ≈0.9 s alone
    finally:
        process.terminate()
        process.wait(timeout=15)

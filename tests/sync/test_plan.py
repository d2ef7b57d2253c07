"""`scim-bridge plan`: what a policy would change, before anything is applied, and nothing once applied."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.scim.conftest import patch_ops
from tests.sync.conftest import make_world
from tests.sync.test_lifecycle import group, joiner


def run_plan(store: str, policy: Path) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "scim_bridge", "plan", "--store", store, "--policy", str(policy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()


def test_plan_shows_changes_then_nothing_once_synced(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/plan.db"
    for world in make_world(tmp_path, store):
        ada = joiner(world, "ada@example.com")
        group(world, "Legal Reviewers", [ada["id"]])
        world.converge(
            lambda w: (
                w.cld_groups_of("ada@example.com") == {"Legal Reviewers", "dept-Marketing"}
                and w.ico_groups_of("ada@example.com") == {"Legal Reviewers", "dept-Marketing"}
            )
        )
        policy = tmp_path / "policy.yml"
        assert run_plan(store, policy)[-1] == "plan: 0 change(s): nothing to change"
        # A stricter policy: legal reviewers lose the admin role, a new derived group appears.
        changed = yaml.safe_load(policy.read_text())
        changed["roles"] = []
        changed["derived_groups"] = ["dept-{department}", "domain-{emailDomain}"]
        (tmp_path / "next.yml").write_text(yaml.safe_dump(changed))
        lines = run_plan(store, tmp_path / "next.yml")
        assert "cloudinary update-user    ada@example.com  role media_library_admin → media_library_user" in lines
        assert "iconik     add-member     ada@example.com  to domain-example.com" in lines
        assert "cloudinary create-group   domain-example.com" in lines
        world.scim.patch(f"/Users/{ada['id']}", json=patch_ops({"op": "replace", "path": "active", "value": False}))
        world.converge(lambda w: w.cld_user("ada@example.com")["enabled"] is False)
        assert run_plan(store, policy)[-1].startswith("plan: 0 change(s)")


def test_a_bad_policy_is_one_line_naming_line_and_field(tmp_path: Path) -> None:
    policy = tmp_path / "bad.yml"
    policy.write_text(
        "targets:\n  cloudinary:\n    enabled: true\nroles:\n  - when: {group: x}\n    cloudinary: emperor\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "scim_bridge", "plan", "--store", f"sqlite:///{tmp_path}/x.db", "--policy", str(policy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "line 6" in result.stderr and "roles.0.cloudinary" in result.stderr


def test_missing_policy_or_credentials_is_one_line(tmp_path: Path) -> None:
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "scim_bridge",
            "serve",
            "--policy",
            str(tmp_path / "nope.yml"),
            "--store",
            f"sqlite:///{tmp_path}/x.db",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "nope.yml" in missing.stderr
    policy = tmp_path / "p.yml"
    policy.write_text(yaml.safe_dump({"targets": {"iconik": {"enabled": True}}}))
    env_less = subprocess.run(
        [
            sys.executable,
            "-m",
            "scim_bridge",
            "serve",
            "--policy",
            str(policy),
            "--store",
            f"sqlite:///{tmp_path}/x.db",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in __import__("os").environ.items() if not k.startswith("ICONIK_")},
    )
    assert env_less.returncode == 2 and "ICONIK_APP_ID" in env_less.stderr and "Traceback" not in env_less.stderr

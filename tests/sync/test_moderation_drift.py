"""Folder-scoped moderation is reconciled and reviewed like any grant: a bridge-named Cloudinary
custom policy deleted by hand is `missing-grant` drift, one no reviewer rule gives is `extra-grant`,
`reconcile --apply` repairs both through the engine, and `review` lists each policy as a
`moderation` resource with its rule and who reaches it. End to end over real HTTP, on both stores."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.audit.test_review import review_cli
from tests.sync.conftest import World, make_world
from tests.sync.test_access import ACCESS, GUARDRAILS, collection_role
from tests.sync.test_lifecycle import group, joiner

PREFIX = "scim-bridge reviewers: Legal Reviewers on "


def reconcile(tmp_path: Path, store: str, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "scim_bridge", "reconcile", "--store", store, "--policy"]
    return subprocess.run(
        [*command, str(tmp_path / "policy.yml"), "--json", *extra], capture_output=True, text=True, timeout=120
    )


def moderation_drift(tmp_path: Path, store: str) -> set[tuple[str, str]]:
    report = reconcile(tmp_path, store)
    assert report.returncode in (0, 1), report.stderr
    return {(d["kind"], d["subject"]) for d in json.loads(report.stdout)["drift"] if d["subject"].startswith(PREFIX)}


def moderation(review: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in review["resources"] if r["kind"] == "moderation"}


def held(world: World) -> set[str]:
    return {p["name"] for p in world.cloudinary.custom_policies.values()}


def test_a_moderation_policy_deleted_or_added_by_hand_is_drift_that_apply_repairs_and_review_shows(
    tmp_path: Path, bridge_store_url: str
) -> None:
    for world in make_world(
        tmp_path, bridge_store_url, before_start=collection_role, access=ACCESS, guardrails=GUARDRAILS
    ):
        xia = joiner(world, "xia@example.com", department="Legal")
        group(world, "Legal Reviewers", [xia["id"]])
        wanted = {PREFIX + path for path in ("campaigns/apac", "campaigns/emea", "masters")}
        world.converge(lambda w: held(w) == wanted)
        assert moderation_drift(tmp_path, bridge_store_url) == set()

        # by hand, in the Console: the masters policy deleted, one for catalog (no rule's folder) added
        policies = world.cloudinary.custom_policies
        masters = next(k for k, p in policies.items() if p["name"] == PREFIX + "masters")
        copied = dict(policies.pop(masters))
        policies["hand-made-policy-id-000001"] = {
            **copied,
            "id": "hand-made-policy-id-000001",
            "name": PREFIX + "catalog",
        }

        reviewed = moderation(review_cli(tmp_path, bridge_store_url))
        assert set(reviewed) == {PREFIX + "campaigns/apac", PREFIX + "campaigns/emea", PREFIX + "catalog"}
        emea = reviewed[PREFIX + "campaigns/emea"]
        assert [g["rule"] for g in emea["grants"]] == ["access.reviewers[0]"]
        assert emea["grants"][0]["principal"] == "group Legal Reviewers" and emea["grants"][0]["rights"] == ["moderate"]
        assert [r["user_name"] for r in emea["reachers"]] == ["xia@example.com"]
        assert reviewed[PREFIX + "catalog"]["grants"][0]["rule"].startswith("not in the policy")

        assert moderation_drift(tmp_path, bridge_store_url) == {
            ("missing-grant", PREFIX + "masters"),
            ("extra-grant", PREFIX + "catalog"),
        }
        assert held(world) == wanted - {PREFIX + "masters"} | {PREFIX + "catalog"}  # only reported

        repaired = reconcile(tmp_path, bridge_store_url, "--apply")
        assert repaired.returncode in (0, 1), repaired.stderr
        assert held(world) == wanted
        assert moderation_drift(tmp_path, bridge_store_url) == set()
        assert set(moderation(review_cli(tmp_path, bridge_store_url))) == wanted

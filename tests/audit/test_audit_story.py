"""The audit trail tells the story, over real HTTP against both emulators, on both stores: a grant
withheld from an external sample user is an entry naming the rule, an expiry is one too, target
calls say what they are for ("disable ava.andersen@example.com"), the agency key the bridge made
is attributed to its agency in target activity, and one person's timeline joins SCIM changes,
target calls and activity in time order (admin API and `audit export --person`)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.audit import tamper
from tests.live import TOKEN
from tests.sync.conftest import World, make_world
from tests.sync.test_lifecycle import group

ADMIN = {"Authorization": "Bearer admin-token-for-tests"}
SANDBOX = resources.files("scim_bridge.sandbox")
SAMPLE_POLICY = yaml.safe_load((SANDBOX / "policy.yml").read_text())
SAMPLE_USERS = {u["userName"]: u for u in json.loads((SANDBOX / "sample-directory.json").read_text())["users"]}
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
AGENCY = "Agency - Bright Ideas"


@pytest.fixture
def world(bridge_store_url: str, tmp_path: Path) -> Iterator[World]:
    sections = ("roles", "groups", "derived_groups", "deprovision", "guardrails", "access")
    yield from make_world(
        tmp_path, bridge_store_url, cloudinary_webhooks=True, **{k: SAMPLE_POLICY[k] for k in sections}
    )


def sample(world: World, user_name: str) -> dict[str, Any]:
    created = world.scim.post("/Users", json=SAMPLE_USERS[user_name])
    assert created.status_code == 201, created.text
    return dict(created.json())


def records(world: World) -> list[dict[str, Any]]:
    return tamper.records(world.bridge.settings.store)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scim_bridge", *args], capture_output=True, text=True, timeout=60)


def test_guardrails_expiry_intents_agency_keys_and_a_persons_timeline(world: World) -> None:
    url = world.bridge.settings.store
    hana = sample(world, "hana.lopez@brightideas.example")  # a contractor, division EMEA
    kenji = sample(world, "kenji.martin@brightideas.example")  # a contractor whose access date has passed
    ava = sample(world, "ava.andersen@example.com")
    for name, members in (("Marketing EMEA", [ava]), (AGENCY, [hana, kenji]), ("project-spring-launch", [ava, hana])):
        group(world, name, [m["id"] for m in members])
    world.converge(
        lambda w: (
            w.cld_folder_roles("ava.andersen@example.com") == {"campaigns/emea": {"contributor"}}
            and w.cld_folder_roles("hana.lopez@brightideas.example") == {"agencies/bright-ideas": {"contributor"}}
            and "Region EMEA" in w.ico_collection_rights("ava.andersen@example.com")
        )
    )

    # 1. the guardrail's decisions are entries that name the rule whose grant was withheld
    def decisions(user_id: str) -> list[dict[str, Any]]:
        return [r for r in records(world) if r["kind"] == "guardrail" and r["resource"]["id"] == user_id]

    world.converge(lambda w: any(d["group"] == "region-EMEA" for d in decisions(hana["id"])), timeout=10)
    withheld = {(d["group"], d["rule"]) for d in decisions(hana["id"]) if d["decision"] == "withhold-group"}
    assert ("region-EMEA", "access.iconik.workspaces[0]") in withheld  # an internal region workspace
    assert ("project-spring-launch", "access.iconik.projects") in withheld  # an internal project collection
    region = next(d for d in decisions(hana["id"]) if d["group"] == "region-EMEA")
    assert region["state"] == "applied" and "Region EMEA" in region["detail"]
    assert "access.external.collections" in region["detail"]  # the limit it breaks
    assert decisions(ava["id"]) == []  # nothing withheld from an internal person
    # one entry per decision, not one per sync pass: re-syncing the same facts adds none
    before = len(decisions(hana["id"]))

    def passes() -> int:
        return sum(1 for r in records(world) if r["kind"] == "provisioning" and r["resource"]["id"] == hana["id"])

    passes_before = passes()
    assert world.scim.patch(
        f"/Users/{hana['id']}",
        json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "Senior Designer"}]},
    ).is_success
    world.converge(lambda w: passes() > passes_before, timeout=15)
    assert len(decisions(hana["id"])) == before
    # an expiry is an entry with its rule
    world.converge(lambda w: any(d["decision"] == "expire" for d in decisions(kenji["id"])), timeout=10)
    [expiry] = [d for d in decisions(kenji["id"]) if d["decision"] == "expire"]
    assert expiry["rule"].startswith("access.external.expiry_attribute") and "accessExpires" in expiry["rule"]

    # 2. target calls carry their intent in words, beside method and path
    calls = [r for r in records(world) if r["kind"] == "target"]
    grant = "grant Marketing EMEA contributor on campaigns/emea"
    assert any(c["intent"] == grant and c["target"] == "cloudinary" for c in calls), sorted(
        {str(c["intent"]) for c in calls}
    )[:80]
    assert all(c["method"] and c["path"] for c in calls)
    disabled = world.scim.patch(
        f"/Users/{ava['id']}",
        json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]},
    )
    assert disabled.status_code == 200
    world.converge(lambda w: w.cld_user("ava.andersen@example.com")["enabled"] is False)  # type: ignore[index]

    def disables() -> set[str]:
        return {
            c["target"]
            for c in records(world)
            if c["kind"] == "target"
            and c["intent"] == "disable ava.andersen@example.com"
            and c["resource"] == {"type": "User", "id": ava["id"]}
        }

    world.converge(lambda w: disables() == {"cloudinary", "iconik"}, timeout=15)

    # 3. the agency key the bridge created is attributed to its agency in activity (no api_key_owners)
    keys = next(iter(world.cloudinary.access_keys.values()))
    world.converge(lambda w: any(k["name"] == f"scim-bridge: {AGENCY}" for k in keys))
    agency_key = next(k for k in keys if k["name"] == f"scim-bridge: {AGENCY}")
    hana_cld = world.cld_user("hana.lopez@brightideas.example")
    assert hana_cld is not None
    for source, actor in (("api", agency_key["api_key"]), ("ui", hana_cld["id"])):
        delivered = httpx.post(
            f"{world.cloudinary_url}/_emulator/notify",
            json={
                "url": f"{world.bridge.root}/webhooks/cloudinary",
                "payload": {
                    "notification_type": "upload",
                    "public_id": f"agencies/bright-ideas/{source}-upload",
                    "notification_context": {
                        "triggered_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                        # milliseconds: a whole-second stamp can sort before the create made in that same second
                        "triggered_by": {"source": source, "id": actor},
                    },
                },
            },
            timeout=10,
        )
        assert delivered.status_code == 200 and delivered.json()["status"] == 200, delivered.text
    activity = httpx.get(f"{world.bridge.root}/admin/api/activity", headers=ADMIN).json()["records"]
    by_key = next(r for r in activity if r["actor"]["target_id"] == agency_key["api_key"])
    assert by_key["actor"]["agency"] == AGENCY and by_key["actor"]["owner"] == AGENCY
    assert agency_key["api_secret"] not in json.dumps(activity)

    # 4. one timeline per person: SCIM changes, guardrail decisions, target calls and activity, in time order
    answer = httpx.get(f"{world.bridge.root}/admin/api/people/{hana['userName']}/timeline", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["person"] == {"id": hana["id"], "userName": hana["userName"]}
    entries = body["entries"]
    kinds = {(e["source"], e["kind"]) for e in entries}
    assert {("audit", "scim"), ("audit", "target"), ("audit", "guardrail"), ("activity", "upload")} <= kinds
    times = [datetime.fromisoformat(e["time"].replace("Z", "+00:00")) for e in entries]
    assert times == sorted(times)
    assert entries[0]["kind"] == "scim" and "create" in entries[0]["summary"]  # the story starts at the join
    upload = next(e for e in entries if e["source"] == "activity")
    assert upload["summary"].startswith("cloudinary: hana.lopez@brightideas.example upload")
    assert any("joined group Agency - Bright Ideas" in e["summary"] for e in entries)
    assert not any(e["record"].get("resource", {}).get("id") == ava["id"] for e in entries)  # hers only
    # the admin scope only
    scim_token = {"Authorization": f"Bearer {TOKEN}"}
    assert (
        httpx.get(f"{world.bridge.root}/admin/api/people/{hana['id']}/timeline", headers=scim_token).status_code == 403
    )
    assert (
        httpx.get(f"{world.bridge.root}/admin/api/people/nobody@example.com/timeline", headers=ADMIN).status_code == 404
    )
    # the same timeline from the command line
    exported = cli("audit", "export", "--person", hana["id"], "--store", url)
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in exported.stdout.splitlines()]

    def story(found: list[dict[str, Any]]) -> list[tuple[str, int | None, str]]:
        return [(e["source"], e["seq"], e["summary"]) for e in found]

    print("\n".join(f"{e['time']} {e['summary']}" for e in lines))
    assert story(lines)[: len(entries)] == story(entries)  # later entries (of later passes) may follow
    as_csv = cli("audit", "export", "--person", hana["userName"], "--format", "csv", "--store", url)
    assert as_csv.stdout.splitlines()[0] == "time,source,kind,target,summary,correlation,seq"

    # the chain still verifies, and no secret reached it
    assert tamper.verify(url).ok
    raw = tamper.raw_bytes(url)
    for secret in (TOKEN, world.cloudinary.secret, world.iconik.auth_token, agency_key["api_secret"]):
        assert secret.encode() not in raw

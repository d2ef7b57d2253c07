"""Provision on demand and the provisioning log, over real HTTP against both emulators, on both
stores. Most tests run the bridge without a worker (SCIM and the admin API only) and provision
with `scim-bridge provision` on the same store, so what the provision did is not raced by a
worker; the race itself has its own test, with the worker on."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scim_bridge.audit.provisioning import CSV_COLUMNS
from scim_bridge.cli import main
from tests.sync.conftest import World, make_world

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
ADMIN = {"Authorization": "Bearer admin-token-for-tests"}
STEP_KINDS = ["directory", "rules", "guardrails", "accounts", "actions", "results"]


@pytest.fixture
def quiet(bridge_store_url: str, tmp_path: Path) -> Iterator[World]:
    """Both emulators and a bridge with no worker: only provision on demand syncs."""
    yield from make_world(tmp_path, bridge_store_url, sync=False, safety={"deprovision": {"max_count": 1}})


def admin(world: World) -> httpx.Client:
    return httpx.Client(base_url=world.bridge.root, headers=ADMIN, timeout=30)


def provision(world: World, capsys: pytest.CaptureFixture[str], who: str, *flags: str) -> dict[str, Any]:
    policy = world.policy
    capsys.readouterr()
    store = world.bridge.settings.store
    code = main(["provision", who, "--json", "--store", store, "--policy", str(policy), *flags])
    out = capsys.readouterr().out
    assert code == 0, out
    answer: dict[str, Any] = json.loads(out)
    return answer


def joiner(world: World, name: str, department: str = "Post Production", groups: tuple[str, ...] = ()) -> str:
    answer = world.scim.post(
        "/Users",
        json={
            "schemas": [USER, ENTERPRISE],
            "userName": f"{name}@example.com",
            "name": {"givenName": name.title(), "familyName": "Example"},
            "emails": [{"value": f"{name}@example.com", "primary": True}],
            ENTERPRISE: {"department": department},
        },
    )
    assert answer.status_code == 201, answer.text
    scim_id: str = answer.json()["id"]
    for group in groups:
        add_to_group(world, group, scim_id)
    return scim_id


def add_to_group(world: World, group: str, scim_id: str) -> str:
    found = world.scim.get("/Groups", params={"filter": f'displayName eq "{group}"'}).json()["Resources"]
    if not found:
        created = world.scim.post("/Groups", json={"schemas": [GROUP], "displayName": group, "members": []})
        found = [created.json()]
    group_id: str = found[0]["id"]
    patch = {"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": [{"value": scim_id}]}]}
    assert world.scim.patch(f"/Groups/{group_id}", json=patch).status_code in (200, 204)
    return group_id


def step(answer: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(s for s in answer["steps"] if s["step"] == kind)


def change(changes: list[dict[str, Any]], prop: str) -> dict[str, Any]:
    return next(c for c in changes if c["property"] == prop)


def without_call_counts(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {name: {k: v for k, v in state.items() if k != "calls"} for name, state in snapshot.items()}


def log(world: World, **filters: str) -> list[dict[str, Any]]:
    with admin(world) as client:
        answer = client.get("/admin/api/provisioning", params=filters)
        assert answer.status_code == 200, answer.text
        entries: list[dict[str, Any]] = answer.json()["entries"]
        return entries


def test_a_joiner_provisioned_on_demand_shows_every_step_and_appears_in_both_emulators(
    quiet: World, capsys: pytest.CaptureFixture[str]
) -> None:
    joiner(quiet, "ines", groups=("Legal Reviewers",))
    started = time.perf_counter()
    answer = provision(quiet, capsys, "ines@example.com")
    print(f"provision on demand of a joiner: {time.perf_counter() - started:.2f} s in-process")
    assert [s["step"] for s in answer["steps"]] == STEP_KINDS
    assert answer["status"] == "success" and answer["correlation"].startswith("provision-")
    assert step(answer, "directory")["record"]["userName"] == "ines@example.com"
    assert [g["displayName"] for g in step(answer, "directory")["groups"]] == ["Legal Reviewers"]
    rules = step(answer, "rules")["targets"]["cloudinary"]
    assert any(r["grant"] == "role media_library_admin" and r["because"].startswith("roles[0]") for r in rules)
    assert step(answer, "guardrails")["targets"]["iconik"]["brake"] == "nothing to revoke"
    assert step(answer, "accounts")["targets"]["cloudinary"]["found"] is None  # nobody had it yet
    actions = step(answer, "actions")["targets"]
    assert actions["cloudinary"]["action"] == "create" and actions["iconik"]["action"] == "create"
    assert change(actions["cloudinary"]["changes"], "role") == {
        "property": "role",
        "old": None,
        "new": "media_library_admin",
    }
    groups = change(actions["iconik"]["changes"], "groups")
    assert groups["added"] == ["Legal Reviewers", "dept-Post Production"] and groups["removed"] == []
    results = step(answer, "results")["targets"]
    for target in ("cloudinary", "iconik"):
        calls = results[target]["calls"]
        assert results[target]["status"] == "success" and calls
        assert all(c["status"] < 400 and c["latency_ms"] >= 0 and c["path"].startswith("/") for c in calls)
    # The accounts are there, with the rules' role and groups
    account = quiet.cld_user("ines@example.com")
    assert account is not None and account["role"] == "media_library_admin"
    assert {"Legal Reviewers", "dept-Post Production"} <= quiet.cld_groups_of("ines@example.com")
    iconik_account = quiet.ico_user("ines@example.com")
    assert iconik_account is not None and iconik_account["type"] == "STANDARD"
    # ...and the log has the pass, under the provision's own correlation id, with its target calls
    [entry] = log(quiet, correlation=answer["correlation"], user="ines@example.com")
    assert entry["trigger"] == "on-demand" and entry["status"] == "success"
    assert entry["targets"]["cloudinary"]["calls"] == len(results["cloudinary"]["calls"])
    with admin(quiet) as client:
        trail = client.get("/admin/api/audit", params={"correlation": answer["correlation"]}).json()["entries"]
    called = [
        e for e in trail if e["kind"] == "target" and e["resource"] == {"type": "User", "id": entry["resource"]["id"]}
    ]
    assert len(called) >= sum(len(r["calls"]) for r in results.values())


def test_a_dry_run_changes_nothing_in_either_emulator(quiet: World, capsys: pytest.CaptureFixture[str]) -> None:
    joiner(quiet, "jon", department="Marketing")
    before = without_call_counts(quiet.snapshot())
    answer = provision(quiet, capsys, "jon@example.com", "--dry-run")
    assert without_call_counts(quiet.snapshot()) == before  # it looked the accounts up, and wrote nothing
    assert answer["dry_run"] is True and [s["step"] for s in answer["steps"]] == STEP_KINDS[:-1]
    actions = step(answer, "actions")["targets"]
    assert actions["cloudinary"]["action"] == "create"
    assert change(actions["iconik"]["changes"], "role")["new"] == "BROWSE_ONLY"
    assert log(quiet, correlation=answer["correlation"]) == []  # a dry run is no pass: nothing logged


def test_a_movers_log_entry_shows_the_old_and_new_role_and_groups(
    quiet: World, capsys: pytest.CaptureFixture[str]
) -> None:
    scim_id = joiner(quiet, "kai", department="Marketing")
    provision(quiet, capsys, scim_id)
    add_to_group(quiet, "Legal Reviewers", scim_id)
    moved = provision(quiet, capsys, "kai@example.com")
    [entry] = log(quiet, correlation=moved["correlation"])
    cloudinary = entry["targets"]["cloudinary"]
    assert entry["status"] == "success" and cloudinary["action"] == "update" and cloudinary["matched"] == "id-map"
    role = change(cloudinary["changes"], "role")
    assert (role["old"], role["new"]) == ("media_library_user", "media_library_admin")
    groups = change(entry["targets"]["iconik"]["changes"], "groups")
    assert groups["added"] == ["Legal Reviewers"] and groups["old"] == ["dept-Marketing"]
    assert quiet.cld_user("kai@example.com")["role"] == "media_library_admin"  # type: ignore[index]
    # the person's log: both passes, newest last; by status, only what matches
    assert [e["targets"]["cloudinary"]["action"] for e in log(quiet, user="kai@example.com")] == ["create", "update"]
    assert {e["resource"]["name"] for e in log(quiet, status="success")} == {"kai@example.com"}
    assert log(quiet, user="kai@example.com", status="failure") == []
    assert [e["resource"]["name"] for e in log(quiet, group="Legal Reviewers")] == ["kai@example.com"]


def test_a_leaver_held_by_the_brake_is_logged_as_held_and_the_csv_has_its_columns(
    quiet: World, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [joiner(quiet, name, department="Marketing") for name in ("lea", "max")]
    for scim_id in ids:
        provision(quiet, capsys, scim_id)
    leave = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}
    for scim_id in ids:
        assert quiet.scim.patch(f"/Users/{scim_id}", json=leave).status_code == 200
    first = provision(quiet, capsys, ids[0])  # the brake allows one (max_count: 1)...
    second = provision(quiet, capsys, ids[1])  # ...and holds the next
    assert first["status"] == "success" and step(first, "actions")["targets"]["cloudinary"]["action"] == "disable"
    assert second["status"] == "held"
    assert step(second, "guardrails")["targets"]["cloudinary"]["brake"] == "held"
    assert quiet.cld_user("max@example.com")["enabled"] is True  # type: ignore[index]
    [held] = log(quiet, status="held")
    assert held["resource"]["name"] == "max@example.com" and held["targets"]["iconik"]["action"] == "held"
    with admin(quiet) as client:
        exported = client.get("/admin/api/provisioning", params={"format": "csv", "user": "max@example.com"})
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(r["target"], r["status"], r["action"]) for r in rows[-2:]] == [
        ("cloudinary", "held", "held"),
        ("iconik", "held", "held"),
    ]
    capsys.readouterr()
    assert main(["provisioning", "--status", "held", "--format", "csv", "--store", quiet.bridge.settings.store]) == 0
    cli_rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["resource_name"] for r in cli_rows} == {"max@example.com"}


@pytest.fixture
def busy(bridge_store_url: str, tmp_path: Path) -> Iterator[World]:
    """Both emulators and a bridge whose worker syncs every change."""
    yield from make_world(tmp_path, bridge_store_url)


def test_an_unknown_user_is_404_and_a_group_of_more_than_50_is_400(busy: World) -> None:
    with admin(busy) as client:
        missing = client.post("/admin/api/users/nobody@example.com/provision")
        assert missing.status_code == 404 and "nobody@example.com" in missing.json()["error"]
        operations = [
            {
                "method": "POST",
                "bulkId": f"u{i}",
                "path": "/Users",
                "data": {"schemas": [USER], "userName": f"m{i}@x.com"},
            }
            for i in range(51)
        ]
        bulk = busy.scim.post("/Bulk", json={"schemas": [BULK], "Operations": operations}, timeout=60).json()
        members = [{"value": op["location"].rsplit("/", 1)[1]} for op in bulk["Operations"]]
        group = busy.scim.post("/Groups", json={"schemas": [GROUP], "displayName": "All hands", "members": members})
        refused = client.post(f"/admin/api/groups/{group.json()['id']}/provision")
        assert refused.status_code == 400 and "at most 50" in refused.json()["error"]
        dry = client.post(f"/admin/api/users/{members[0]['value']}/provision", params={"dry_run": "true"})
        assert dry.status_code == 200 and dry.json()["dry_run"] is True
        assert [s["step"] for s in dry.json()["steps"]] == STEP_KINDS[:-1]


def test_provisioning_while_the_worker_syncs_the_same_user_makes_no_duplicate_and_applies_nothing_twice(
    busy: World,
) -> None:
    scim_id = joiner(busy, "noa", groups=("Legal Reviewers",))  # the worker starts on it at once
    answers: list[httpx.Response] = []

    def provision_now() -> None:
        with admin(busy) as client:
            answers.append(client.post(f"/admin/api/users/{scim_id}/provision"))

    threads = [threading.Thread(target=provision_now) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200, 200]
    for answer in answers:
        assert [s["step"] for s in answer.json()["steps"]] == STEP_KINDS
    busy.converge(lambda w: w.cld_user("noa@example.com") is not None and w.ico_user("noa@example.com") is not None)
    time.sleep(0.5)  # let a worker pass that may still be running finish
    assert sum(1 for u in list(busy.cloudinary.users.values()) if u["email"] == "noa@example.com") == 1
    assert sum(1 for u in list(busy.iconik.users.values()) if u["email"] == "noa@example.com") == 1
    with admin(busy) as client:
        trail = client.get("/admin/api/audit", params={"user": scim_id, "limit": 1000}).json()["entries"]
    creates_a_group = {("cloudinary", "POST", "/user_groups"), ("iconik", "POST", "/groups/")}  # one per group
    writes = Counter(
        (e["target"], e["method"], e["path"]) for e in trail if e["kind"] == "target" and e["method"] != "GET"
    )
    assert all(count == 1 for key, count in writes.items() if key not in creates_a_group), writes
    for groups in (busy.cloudinary.groups.values(), busy.iconik.groups.values()):
        names = [g["name"] for g in list(groups)]
        assert len(names) == len(set(names)) and "Legal Reviewers" in names
    passes = log(busy, user=scim_id)
    assert sum(1 for p in passes if p["targets"]["cloudinary"]["action"] == "create") == 1


def test_a_guardrail_that_changes_the_role_is_a_warning_and_a_group_is_provisioned_with_its_members(
    quiet: World, capsys: pytest.CaptureFixture[str]
) -> None:
    contractor = quiet.scim.post(
        "/Users",
        json={"schemas": [USER], "userName": "ola@agency.example", "userType": "External agency", "active": True},
    ).json()["id"]
    group_id = add_to_group(quiet, "Legal Reviewers", contractor)
    add_to_group(quiet, "Legal Reviewers", joiner(quiet, "pia", department="Legal"))
    answer = provision(quiet, capsys, group_id, "--group")
    assert answer["group"]["displayName"] == "Legal Reviewers"
    assert step(answer, "actions")["targets"]["cloudinary"]["action"] == "create"
    people = {m["user"]["userName"]: m for m in answer["members"]}
    assert set(people) == {"ola@agency.example", "pia@example.com"}
    assert people["pia@example.com"]["status"] == "success"
    ola = people["ola@agency.example"]
    assert ola["status"] == "warning"  # applied, with the admin role withheld from an external user
    assert (
        "may not receive cloudinary role media_library_admin"
        in step(ola, "guardrails")["targets"]["cloudinary"]["notes"][0]
    )
    assert quiet.cld_user("ola@agency.example")["role"] == "media_library_user"  # type: ignore[index]
    assert {e["resource"]["name"] for e in log(quiet, status="warning")} == {"ola@agency.example"}
    assert [e["resource"]["type"] for e in log(quiet, group="Legal Reviewers", target="iconik")].count("Group") == 1


def test_a_user_deleted_from_the_directory_is_provisioned_by_the_deprovision_policy(
    quiet: World, capsys: pytest.CaptureFixture[str]
) -> None:
    scim_id = joiner(quiet, "quinn", department="Marketing")
    provision(quiet, capsys, scim_id)
    assert quiet.scim.delete(f"/Users/{scim_id}").status_code == 204
    answer = provision(quiet, capsys, scim_id)  # by SCIM id: its userName is gone with it
    assert step(answer, "directory")["record"] == {"id": scim_id, "deleted": True}
    assert "deprovision: disable" in step(answer, "directory")["note"]
    assert step(answer, "actions")["targets"]["cloudinary"]["action"] == "disable"
    assert quiet.cld_user("quinn@example.com")["enabled"] is False  # type: ignore[index]

"""iconik project teams follow their directory group through renames, deletes and re-creates, end to
end over real HTTP: the project holds exactly the group's members, carries its name (and so does
its collection), and closes with the group as `on_group_delete` says."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sync.conftest import World, make_world
from tests.sync.test_lifecycle import group, joiner

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SYNC = "urn:scim-bridge:schemas:extension:sync:2.0:SyncStatus"


def teams(tmp_path: Path, store_url: str, on_group_delete: str = "delete") -> Iterator[World]:
    yield from make_world(
        tmp_path,
        store_url,
        access={"iconik": {"projects": {"groups": ["project-*"], "on_group_delete": on_group_delete}}},
        groups={"include": ["*"], "exclude": ["project-*"]},
    )


@pytest.fixture
def world(bridge_store_url: str, tmp_path: Path) -> Iterator[World]:
    yield from teams(tmp_path, bridge_store_url)


def project(world: World, name: str) -> dict[str, Any] | None:
    return next((p for p in list(world.iconik.projects.values()) if p["name"] == name), None)


def team_of(world: World, name: str) -> set[str]:
    """The emails of the project's members, as iconik lists them."""
    found = project(world, name)
    if found is None:
        raise KeyError(name)
    members = world.iconik.project_members.get(found["id"], {})
    return {u["email"] for uid, u in world.iconik.users.items() if uid in members}


def collection_of(world: World, name: str) -> dict[str, Any]:
    found = project(world, name)
    if found is None:
        raise KeyError(name)
    return world.iconik.collections[found["collection_id"]]


def rename(world: World, group_id: str, name: str) -> None:
    response = world.scim.patch(
        f"/Groups/{group_id}",
        json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": name}]},
    )
    assert response.status_code in (200, 204), response.text


def iconik_state(world: World, group_id: str) -> str:
    body = world.scim.get(f"/Groups/{group_id}", params={"attributes": SYNC}).json()
    return str(next(t["state"] for t in body[SYNC]["targets"] if t["target"] == "iconik"))


def test_a_project_group_renamed_away_and_back_has_exactly_the_directorys_members(world: World) -> None:
    eve, fay = joiner(world, "eve@example.com"), joiner(world, "fay@example.com")
    team = group(world, "project-rio", [eve["id"], fay["id"]])
    world.converge(lambda w: team_of(w, "project-rio") == {"eve@example.com", "fay@example.com"})

    rename(world, team["id"], "rio-archive")  # no longer a project team: a plain mirrored group
    world.converge(
        lambda w: (
            project(w, "project-rio") is None
            and w.ico_groups_of("eve@example.com") == {"rio-archive", "dept-Marketing"}
            and w.ico_projects_of("fay@example.com") == set()
        )
    )

    rename(world, team["id"], "project-rio")  # back, with no membership change at all
    world.converge(
        lambda w: (
            team_of(w, "project-rio") == {"eve@example.com", "fay@example.com"}
            and "rio-archive" not in w.ico_groups_of("eve@example.com")
            and iconik_state(w, team["id"]) == "synced"
        )
    )
    assert collection_of(world, "project-rio")["status"] == "ACTIVE"


def test_a_project_group_renamed_within_the_globs_renames_the_project_and_its_collection(world: World) -> None:
    eve = joiner(world, "eve@example.com")
    team = group(world, "project-lima", [eve["id"]])
    world.converge(lambda w: team_of(w, "project-lima") == {"eve@example.com"})
    first = project(world, "project-lima")
    assert first is not None

    rename(world, team["id"], "project-lima-2027")
    world.converge(lambda w: collection_of(w, "project-lima-2027")["title"] == "project-lima-2027")
    assert project(world, "project-lima") is None
    assert project(world, "project-lima-2027")["id"] == first["id"]  # type: ignore[index]  # renamed, not re-made
    assert team_of(world, "project-lima-2027") == {"eve@example.com"}
    assert not any(c["title"] == "project-lima" for c in world.iconik.collections.values())


def test_a_deleted_project_group_deletes_the_project_and_its_collection(world: World) -> None:
    eve = joiner(world, "eve@example.com")
    team = group(world, "project-oslo", [eve["id"]])
    world.converge(lambda w: team_of(w, "project-oslo") == {"eve@example.com"})
    collection_id = project(world, "project-oslo")["collection_id"]  # type: ignore[index]

    assert world.scim.delete(f"/Groups/{team['id']}").status_code == 204
    world.converge(
        lambda w: project(w, "project-oslo") is None and w.iconik.collections[collection_id]["status"] == "DELETED"
    )
    assert world.ico_projects_of("eve@example.com") == set()


def test_with_on_group_delete_keep_the_project_and_its_collection_stay(bridge_store_url: str, tmp_path: Path) -> None:
    for world in teams(tmp_path, bridge_store_url, on_group_delete="keep"):
        eve = joiner(world, "eve@example.com")
        team = group(world, "project-bern", [eve["id"]])
        world.converge(lambda w: team_of(w, "project-bern") == {"eve@example.com"})
        assert world.scim.delete(f"/Groups/{team['id']}").status_code == 204
        world.converge(lambda w: w.ico_projects_of("eve@example.com") == set())  # the people leave it
        assert project(world, "project-bern") is not None
        assert collection_of(world, "project-bern")["status"] == "ACTIVE"


def test_reconcile_reports_project_members_changed_by_hand_and_apply_puts_them_back(
    world: World, bridge_store_url: str
) -> None:
    eve = joiner(world, "eve@example.com")
    joiner(world, "fay@example.com")  # in no project team
    group(world, "project-kyiv", [eve["id"]])
    world.converge(lambda w: team_of(w, "project-kyiv") == {"eve@example.com"} and w.ico_user("fay@example.com"))
    found = project(world, "project-kyiv")
    assert found is not None
    eve_id, fay_id = (world.ico_user(e)["id"] for e in ("eve@example.com", "fay@example.com"))  # type: ignore[index]
    members = world.iconik.project_members[found["id"]]
    fay_entry = {**members[eve_id], "id": fay_id}
    del members[eve_id]  # someone removed eve in iconik, and added fay
    members[fay_id] = fay_entry

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "scim_bridge", "reconcile", "--store", bridge_store_url, "--json"]
        return subprocess.run(
            [*command, "--policy", str(world.policy), *extra], capture_output=True, text=True, timeout=120
        )

    report = run()
    kinds = {(d["kind"], d["subject"]) for d in json.loads(report.stdout)["drift"] if "project" in d["kind"]}
    assert kinds == {("missing-project-member", "eve@example.com"), ("extra-project-member", "fay@example.com")}
    run("--apply")
    assert team_of(world, "project-kyiv") == {"eve@example.com"}

"""One desired-access model (sync/desired.py) behind explain, plan, reconcile and review: the
sandbox's sample directory and policy, loaded over SCIM into a live bridge and both emulators, on
each store. They must agree for every sample user; no external sample user may reach anything
outside `access.external`, by the model or in the targets; grants made by hand to one account
(an iconik user-level ACL, a Cloudinary direct folder role) are found by reconcile and removed by
its --apply; a project member added in iconik is reviewed as such, not as the team's rule."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import subprocess
import sys
from collections.abc import Iterator
from importlib import resources
from typing import Any

import httpx
import pytest
import redis
import yaml

from scim_bridge.store import open_store
from scim_bridge.sync.access import FOLDER_ROLES, folder_role_id
from scim_bridge.sync.explain import explain
from scim_bridge.sync.policy import load_policy
from tests.sync.conftest import World, make_world

pytestmark = pytest.mark.slow  # the sample directory takes ~15 s to sync per store
ADMIN = {"Authorization": "Bearer admin-token-for-tests"}
SANDBOX = resources.files("scim_bridge.sandbox")
DIRECTORY = json.loads((SANDBOX / "sample-directory.json").read_text())
SANDBOX_POLICY = yaml.safe_load((SANDBOX / "policy.yml").read_text())
REACH = ("folder", "collection", "project")


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def sandbox(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp(f"desired-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp}/bridge.db"
    else:
        url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(url).flushdb()
    sections = {k: v for k, v in SANDBOX_POLICY.items() if k != "targets"}
    for world in make_world(tmp, url, **sections):
        world.store_url = url  # type: ignore[attr-defined]
        ids = {}
        for user in DIRECTORY["users"]:
            created = world.scim.post("/Users", json=user)
            assert created.status_code == 201, created.text
            ids[user["userName"]] = created.json()["id"]
        for group in DIRECTORY["groups"]:
            body = {k: v for k, v in group.items() if k != "members_userName"}
            body["members"] = [{"value": ids[n]} for n in group["members_userName"]]
            assert world.scim.post("/Groups", json=body).status_code == 201
        try:
            world.converge(lambda w: settled(w), timeout=120)
        except AssertionError:
            raise AssertionError(
                "the sandbox did not settle; plan says:\n" + "\n".join(run_plan(world)[-40:])
            ) from None
        yield world


def settled(world: World) -> bool:
    queue = httpx.get(f"{world.bridge.root}/admin/api/queue", headers=ADMIN).json()
    return bool(queue["total"] == 0 and run_plan(world)[-1] == "plan: 0 change(s): nothing to change")


def run_plan(world: World) -> list[str]:
    result = cli(world, "plan")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()


def cli(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    store = world.store_url  # type: ignore[attr-defined]
    return subprocess.run(
        [sys.executable, "-m", "scim_bridge", *args, "--store", store, "--policy", str(world.policy)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def reconcile(world: World, apply: bool = False) -> list[dict[str, Any]]:
    url = f"{world.bridge.root}/admin/api/reconcile?apply={'true' if apply else 'false'}"
    answer = httpx.post(url, headers=ADMIN, timeout=120)
    assert answer.status_code == 200, answer.text
    drift: list[dict[str, Any]] = answer.json()["drift"]
    return drift


def review(world: World) -> dict[str, Any]:
    answer = httpx.get(f"{world.bridge.root}/admin/api/review", headers=ADMIN, timeout=120)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def explanations(world: World) -> dict[str, Any]:
    """userName → explain's JSON, through the public function, on the bridge's store."""

    async def run() -> dict[str, Any]:
        store = open_store(world.store_url)  # type: ignore[attr-defined]
        await store.open()
        try:
            policy = load_policy(world.policy)  # type: ignore[arg-type]
            found = {}
            for user in DIRECTORY["users"]:
                explained = await explain(store, policy, user["userName"])
                assert explained is not None
                found[user["userName"]] = explained.as_json()
            return found
        finally:
            await store.close()

    return asyncio.run(run())


def model_reach(explained: dict[str, Any], target: str) -> set[tuple[str, str, str]]:
    """(kind, resource, right) the model lets the person reach in `target` (nothing when disabled)."""
    entries = explained["model"][target]
    if not any(e["kind"] == "account" and e["subject"] == "enabled" for e in entries):
        return set()
    return {
        (e["kind"], e["subject"], r.rsplit("::", 1)[-1])
        for e in entries
        if e["allowed"] and e["kind"] in REACH
        for r in e["rights"]
    }


def review_reach(row: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (kind, x["resource"], right)
        for kind, items in (
            ("folder", row["folders"]),
            ("collection", row["collections"]),
            ("project", row["projects"]),
        )
        for x in items
        for right in x["rights"]
    }


def test_explain_plan_reconcile_and_review_agree_for_every_sample_user(sandbox: World) -> None:
    assert run_plan(sandbox)[-1] == "plan: 0 change(s): nothing to change"
    assert reconcile(sandbox) == []
    rows = {(u["user_name"], u["target"]): u for u in review(sandbox)["users"]}
    explained = explanations(sandbox)
    assert len(rows) == 2 * len(DIRECTORY["users"])
    reached = 0
    for user_name, answer in explained.items():
        for target in ("cloudinary", "iconik"):
            row = rows[(user_name, target)]
            assert row["differences"] == [], (user_name, target, row["differences"])
            [role] = [i["grant"] for i in answer["targets"][target] if i["grant"].startswith("role ")]
            assert role == f"role {row['desired_role']}", (user_name, target)
            if row["account_id"] is None:  # inactive from the start: never created (explain says disabled)
                assert any(i["grant"] == "account disabled" for i in answer["targets"][target]), user_name
            else:
                assert role == f"role {row['role']}", (user_name, target)
            assert model_reach(answer, target) == review_reach(row), (user_name, target)
            desired = {(e["kind"], e["subject"], e["allowed"]) for e in row["desired"]}
            assert desired == {(e["kind"], e["subject"], e["allowed"]) for e in answer["model"][target]} - {
                (e["kind"], e["subject"], e["allowed"]) for e in answer["model"][target] if e["kind"] == "account"
            }
            reached += len(review_reach(row))
    assert reached > 50  # the sample directory reaches folders, collections and projects in both targets


def _inside(path: str, globs: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(path.lower(), g.lower()) for g in globs)


def test_no_external_sample_user_reaches_anything_outside_access_external(sandbox: World) -> None:
    policy = load_policy(sandbox.policy)  # type: ignore[arg-type]
    profile = policy.access.external
    internal = {f.path for f in policy.access.cloudinary.folders if f.internal}
    internal |= {c.title for c in policy.access.iconik.collections if c.internal}
    ceiling = {folder_role_id(r) for r in FOLDER_ROLES[: FOLDER_ROLES.index(profile.max_folder_role) + 1]}
    explained = explanations(sandbox)
    external = [name for name, answer in explained.items() if answer["user"]["external"]]
    assert len(external) == 4  # the agency's four contractors
    withheld = 0
    for name in external:
        for target, entries in explained[name]["model"].items():
            for e in entries:
                if not e["allowed"]:
                    withheld += 1
                    continue
                if e["kind"] in ("folder", "agency-key"):
                    assert _inside(e["subject"], profile.folders) and e["subject"] not in internal, (name, e)
                    assert set(e["rights"]) <= ceiling, (name, e)
                elif e["kind"] in ("collection", "project"):  # a project's collection carries its name
                    assert _inside(e["subject"], profile.collections) and e["subject"] not in internal, (name, e)
                    if e["kind"] == "collection":
                        assert set(e["rights"]) <= set(profile.max_collection_permissions), (name, e)
                elif e["kind"] in ("cloudinary-collection", "moderation"):
                    raise AssertionError(f"{name} is given {e}")
                elif e["kind"] == "role":
                    allowed, _ = policy.external_roles(target)
                    assert e["subject"] in [*allowed, policy.default_role(target)], (name, e)
        # ...and in the targets, as the emulators hold it
        for path, roles in sandbox.cld_folder_roles(name).items():
            assert _inside(path, profile.folders) and path not in internal, (name, path, roles)
        for title in sandbox.ico_collection_rights(name):
            assert _inside(title, profile.collections) and title not in internal, (name, title)
        for project in sandbox.ico_projects_of(name):
            assert _inside(project, profile.collections), (name, project)
    assert withheld >= 2  # hana's project team and its project collection are withheld, with their reason


def test_reconcile_finds_and_removes_a_user_level_acl_and_a_direct_grant(sandbox: World) -> None:
    ivan = sandbox.ico_user("ivan.schmidt@brightideas.example")
    julia = sandbox.cld_user("julia.fischer@brightideas.example")
    assert ivan and julia
    brand_masters = next(c for c, v in sandbox.iconik.collections.items() if v["title"] == "Brand Masters")
    # by hand, through iconik's API: an agency user may read the internal Brand Masters
    put = httpx.put(
        f"{sandbox.iconik_url}/API/acls/v1/users/{ivan['id']}/acl/collections/{brand_masters}/",
        json={"permissions": ["read"]},
        headers={"App-ID": sandbox.iconik.app_id, "Auth-Token": sandbox.iconik.auth_token},
    )
    assert put.status_code in (200, 201), put.text
    # by hand, in Cloudinary: a folder role on the internal masters folder given to the account itself
    masters = next(f for f, v in sandbox.cloudinary.folders.items() if v["path"] == "masters")
    template = next(
        a for a in sandbox.cloudinary.role_assignments if (a.get("policy_parameters") or {}).get("folder_id") == masters
    )
    sandbox.cloudinary.role_assignments.append(
        {**template, "principal_type": "user", "principal_id": julia["id"], "role_id": "cld::role::folder::viewer"}
    )
    assert "Brand Masters" in _user_acl_titles(sandbox, ivan["id"])

    drift = reconcile(sandbox)
    direct = {(d["target"], d["subject"]): d for d in drift if d["kind"] == "direct-grant"}
    assert set(direct) == {("iconik", "Brand Masters"), ("cloudinary", "masters")}, drift
    assert "read to ivan.schmidt@brightideas.example" in direct[("iconik", "Brand Masters")]["detail"]
    assert "viewer to julia.fischer@brightideas.example" in direct[("cloudinary", "masters")]["detail"]
    assert all(d["repair"] == "remove it" for d in direct.values())
    assert "Brand Masters" in _user_acl_titles(sandbox, ivan["id"])  # a report changes nothing
    rows = {(u["user_name"], u["target"]): u for u in review(sandbox)["users"]}
    assert (
        "reaches Brand Masters (read) without a policy grant"
        in rows[("ivan.schmidt@brightideas.example", "iconik")]["differences"]
    )
    assert (
        "reaches masters (viewer) without a policy grant"
        in rows[("julia.fischer@brightideas.example", "cloudinary")]["differences"]
    )

    repaired = reconcile(sandbox, apply=True)
    assert {(d["target"], d["subject"]) for d in repaired if d["kind"] == "direct-grant"} == set(direct)
    assert _user_acl_titles(sandbox, ivan["id"]) == set()
    assert not any(
        a["principal_type"] == "user" and a["principal_id"] == julia["id"] for a in sandbox.cloudinary.role_assignments
    )
    assert reconcile(sandbox) == []  # in step again


def _user_acl_titles(world: World, user_id: str) -> set[str]:
    return {
        world.iconik.collections[key.split("/", 1)[1]]["title"]
        for key, acl in list(world.iconik.acls.items())
        if key.startswith("collections/") and user_id in acl.get("users", {})
    }


def test_review_says_a_project_member_added_by_hand_comes_from_no_rule(sandbox: World) -> None:
    emil = sandbox.ico_user("emil.kim@example.com")
    project = next(p for p, v in sandbox.iconik.projects.items() if v["name"] == "campaign-summer-2027")
    assert emil
    added = httpx.post(
        f"{sandbox.iconik_url}/API/assets/v1/projects/{project}/members/",
        json={"id": emil["id"]},
        headers={"App-ID": sandbox.iconik.app_id, "Auth-Token": sandbox.iconik.auth_token},
    )
    assert added.status_code == 201, added.text
    reviewed = review(sandbox)
    team = next(r for r in reviewed["resources"] if r["kind"] == "project" and r["name"] == "campaign-summer-2027")
    why = {x["email"]: x["rule"] for x in team["reachers"]}
    assert why["emil.kim@example.com"] == "not from any rule / added in the target"
    assert why["kara.kim@example.com"] == "access.iconik.projects (directory group 'campaign-summer-2027')"
    [row] = [u for u in reviewed["users"] if u["user_name"] == "emil.kim@example.com" and u["target"] == "iconik"]
    assert row["projects"] == [
        {
            "resource": "campaign-summer-2027",
            "rights": ["member"],
            "via": "project team",
            "rule": "not from any rule / added in the target",
        }
    ]
    assert "member of project campaign-summer-2027, not wanted" in row["differences"]
    drift = reconcile(sandbox, apply=True)  # and reconcile agrees, and takes it back
    assert any(d["kind"] == "extra-project-member" and d["subject"] == "emil.kim@example.com" for d in drift)
    assert "campaign-summer-2027" not in sandbox.ico_projects_of("emil.kim@example.com")

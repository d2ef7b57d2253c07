"""External people (agencies, contractors, anyone outside the internal email domains) reach only
what `access.external` allows, by any rule: folders, collections, workspaces, project collections
and roles, checked at load (rule and line) and at apply (what each emulator holds), over real
HTTP on both stores."""

from __future__ import annotations

import copy
import fnmatch
import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from scim_bridge.sync.access import FOLDER_ROLES
from scim_bridge.sync.policy import PolicyError, UserFacts, load_policy
from tests.sync.conftest import World, make_world
from tests.sync.test_access import ACCESS, collection_role, run_cli
from tests.sync.test_lifecycle import ENTERPRISE, group, joiner

SYNC_STATUS = "urn:scim-bridge:schemas:extension:sync:2.0:SyncStatus"
GUARDRAILS = {
    "external": [{"attribute": {"userType": "Contractor"}}, {"group": "Agency *"}],
    "internal_email_domains": ["example.com"],  # default deny: any other domain is external
}
ROLES = [
    {"when": {"group": "Global Brand"}, "cloudinary": "reports", "iconik": "STANDARD"},  # not admin roles
    {"when": {"attribute": {"title": "Editor"}}, "iconik": "STANDARD"},
]


@pytest.fixture
def world(bridge_store_url: str, tmp_path: Path) -> Iterator[World]:
    yield from make_world(
        tmp_path,
        bridge_store_url,
        before_start=collection_role,
        access=ACCESS,
        guardrails=GUARDRAILS,
        roles=ROLES,
        deprovision="strip_groups",
        groups={"include": ["*"], "exclude": ["project-*", "campaign-*"]},
    )


def sync_notes(world: World, user_id: str) -> str:
    state = world.scim.get(f"/Users/{user_id}", params={"attributes": SYNC_STATUS}).json()
    return " ".join(t.get("error") or "" for t in state[SYNC_STATUS]["targets"])


def emea(**extra: Any) -> dict[str, Any]:
    return {ENTERPRISE: {"department": "Marketing", "division": "EMEA"}, **extra}


def test_an_external_agency_user_in_emea_reaches_neither_region_emea_nor_a_project_collection(world: World) -> None:
    ava = joiner(world, "ava@example.com", **emea())
    hana = joiner(world, "hana@brightideas.example", **emea(userType="Contractor"))
    group(world, "Agency - Bright Ideas", [hana["id"]])
    group(world, "project-spring-launch", [ava["id"], hana["id"]])
    # the internal one still reads her region's workspace and is on the project team
    world.converge(
        lambda w: (
            w.ico_collection_rights("ava@example.com") == {"Region EMEA": {"read"}}
            and w.ico_projects_of("ava@example.com") == {"project-spring-launch"}
        )
    )
    world.converge(lambda w: w.ico_collection_rights("hana@brightideas.example") == {"Agency Uploads": {"write"}})
    assert world.ico_projects_of("hana@brightideas.example") == set()  # the project collection is not an agency's
    assert "region-EMEA" not in world.ico_groups_of("hana@brightideas.example")
    assert "region-EMEA" in world.ico_groups_of("ava@example.com")
    notes = sync_notes(world, hana["id"])
    assert "not added to region-EMEA: it grants workspace Region EMEA, which is not among access.external" in notes
    assert "not added to project-spring-launch: it grants project collection project-spring-launch" in notes
    # the delivery context tells of granted folders only, narrowed by access.context.folders
    # (campaigns/{division|lower}): neither holds a role on campaigns/emea, so neither is told of it
    context = world.bridge.root + "/api/v1/context/"
    world.converge(
        lambda w: w.cld_folder_roles("hana@brightideas.example") == {"agencies/bright-ideas": {"contributor"}}
    )
    assert httpx.get(context + "hana@brightideas.example", headers=world.scim.headers).json()["folders"] == []
    assert httpx.get(context + "ava@example.com", headers=world.scim.headers).json()["folders"] == []


def test_a_contractor_withheld_from_a_group_does_not_get_its_role(world: World, bridge_store_url: str) -> None:
    bo = joiner(world, "bo@example.com", department="Brand")
    cleo = joiner(world, "cleo@brightideas.example", department="Brand", userType="Contractor")
    ed = joiner(world, "ed@brightideas.example", userType="Contractor", title="Editor")  # an attribute rule
    group(world, "Global Brand", [bo["id"], cleo["id"]])  # by mistake in the directory: withheld
    world.converge(
        lambda w: (
            (w.ico_user("bo@example.com") or {}).get("type") == "STANDARD"
            and (w.cld_user("bo@example.com") or {}).get("role") == "reports"
            and w.ico_user("cleo@brightideas.example") is not None
            and w.ico_user("ed@brightideas.example") is not None
        )
    )
    assert world.ico_user("cleo@brightideas.example")["type"] == "BROWSE_ONLY"  # type: ignore[index]
    assert world.cld_user("cleo@brightideas.example")["role"] == "media_library_user"  # type: ignore[index]
    assert "Global Brand" not in world.cld_groups_of("cleo@brightideas.example")
    assert world.ico_user("ed@brightideas.example")["type"] == "BROWSE_ONLY"  # type: ignore[index]
    explained = run_cli(
        "explain", "cleo@brightideas.example", "--store", bridge_store_url, "--policy", str(world.policy)
    )
    assert explained.returncode == 0, explained.stderr
    assert "role BROWSE_ONLY" in explained.stdout and "role media_library_user" in explained.stdout
    assert "roles[0] not applied to external user cleo@brightideas.example" in explained.stdout
    assert "matches only through Global Brand, which the guardrail withholds" in explained.stdout
    assert "not added to Global Brand: it grants internal-only collection Brand Masters" in explained.stdout
    as_json = json.loads(
        run_cli("explain", ed["id"], "--json", "--store", bridge_store_url, "--policy", str(world.policy)).stdout
    )
    [role] = [i for i in as_json["targets"]["iconik"] if i["grant"].startswith("role ")]
    assert role["grant"] == "role BROWSE_ONLY"
    assert (
        "may not receive iconik role STANDARD" in role["because"]
        and "access.external.iconik_user_types" in (role["because"])
    )


def test_outside_the_internal_email_domains_a_user_without_user_type_is_external(world: World) -> None:
    free = joiner(world, "free@elsewhere.net", **emea())  # no userType, in no agency group
    ava = joiner(world, "ava@example.com", **emea())
    group(world, "Marketing EMEA", [free["id"], ava["id"]])
    world.converge(
        lambda w: (
            w.cld_folder_roles("ava@example.com") == {"campaigns/emea": {"contributor"}}
            and w.ico_collection_rights("ava@example.com") == {"Region EMEA": {"read"}}
            and w.cld_user("free@elsewhere.net") is not None
            and w.ico_user("free@elsewhere.net") is not None
        )
    )
    assert world.cld_folder_roles("free@elsewhere.net") == {}  # kept to the profile: agencies/* only
    assert world.ico_collection_rights("free@elsewhere.net") == {}
    assert "Marketing EMEA" not in world.cld_groups_of("free@elsewhere.net")
    assert "not added to Marketing EMEA" in sync_notes(world, free["id"])


def test_internal_email_domains_takes_domains_only(tmp_path: Path) -> None:
    path = tmp_path / "policy.yml"
    for wrong in ("*.example.com", "@example.com", "ava@example.com", "https://example.com"):
        path.write_text(yaml.safe_dump({"guardrails": {"internal_email_domains": ["example.com", wrong]}}))
        with pytest.raises(PolicyError, match=r"line \d+: guardrails.internal_email_domains: .*not an email domain"):
            load_policy(path)
    path.write_text(yaml.safe_dump({"guardrails": {"internal_email_domains": ["Example.COM", "eu.example.com"]}}))
    policy = load_policy(path)
    assert policy.guardrails.internal_email_domains == ["example.com", "eu.example.com"]
    assert not policy.is_external(UserFacts.of({"userName": "Ava@EXAMPLE.com"}, []))
    assert policy.is_external(UserFacts.of({"userName": "x@sub.eu.example.com"}, []))  # exact domains only


def refused(tmp_path: Path, policy: dict[str, Any]) -> str:
    path = tmp_path / "policy.yml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    with pytest.raises(PolicyError) as error:
        load_policy(path)
    message = str(error.value)
    assert "line " in message and "guardrail: " in message
    return message


def test_a_policy_granting_an_external_group_a_workspace_or_project_collection_is_refused(tmp_path: Path) -> None:
    external = {"collections": ["Agency Uploads - *"], "max_collection_permissions": ["read", "write"]}
    base: dict[str, Any] = {"guardrails": GUARDRAILS, "access": {"external": external, "iconik": {}}}
    outside = copy.deepcopy(base)
    outside["access"]["iconik"]["workspaces"] = [
        {"attribute": "division", "group": "Agency {division}", "title": "Region {division}", "permissions": ["read"]}
    ]
    message = refused(tmp_path, outside)
    assert "access.iconik.workspaces[0]: external group 'Agency {division}' would reach workspace Region *" in message
    assert "not among access.external.collections" in message
    above = copy.deepcopy(base)
    above["access"]["iconik"]["workspaces"] = [
        {
            "attribute": "userType",  # one workspace per userType: the Contractor one is for external people
            "group": "type-{userType}",
            "title": "Agency Uploads - {userType}",
            "permissions": ["read", "write", "delete"],
        }
    ]
    message = refused(tmp_path, above)
    assert "access.iconik.workspaces[0]" in message and "delete on workspace Agency Uploads - Contractor" in message
    assert "above access.external.max_collection_permissions" in message
    project = copy.deepcopy(base)
    project["access"]["iconik"]["projects"] = {"groups": ["project-*", "Agency *"]}
    message = refused(tmp_path, project)
    assert "access.iconik.projects.groups[1]: external group 'Agency *' would reach project collection Agency *" in (
        message
    )
    role = {**base, "roles": [{"when": {"email_domain": "brightideas.example"}, "iconik": "STANDARD"}]}
    message = refused(tmp_path, role)
    assert "roles[0]: gives iconik role STANDARD, which is not among access.external.iconik_user_types" in message
    # an internal department's workspace and an internal group's role still load
    fine = copy.deepcopy(base)
    fine["access"]["iconik"]["workspaces"] = [{"attribute": "division", "group": "region-{division}", "title": "R"}]
    fine["roles"] = [{"when": {"group": "Global Brand"}, "iconik": "STANDARD"}]
    (tmp_path / "fine.yml").write_text(yaml.safe_dump(fine))
    assert load_policy(tmp_path / "fine.yml").roles[0].iconik == "STANDARD"


# the sandbox: its sample directory under its own policy ---------------------------------------------


def sandbox_policy() -> dict[str, Any]:
    policy = yaml.safe_load((resources.files("scim_bridge.sandbox") / "policy.yml").read_text())
    policy.pop("targets")  # make_world points them at this test's emulators
    return dict(policy)


@pytest.fixture
def sandbox_world(bridge_store_url: str, tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path, bridge_store_url, **sandbox_policy())


def load_sample_directory(world: World) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    directory = json.loads((resources.files("scim_bridge.sandbox") / "sample-directory.json").read_text())
    ids = {}
    for user in directory["users"]:
        response = world.scim.post("/Users", json=user)
        assert response.status_code == 201, response.text
        ids[user["userName"]] = response.json()["id"]
    groups_of: dict[str, list[str]] = {}
    for entry in directory["groups"]:
        names = entry.pop("members_userName")
        group(world, entry["displayName"], [ids[n] for n in names])
        for name in names:
            groups_of.setdefault(name, []).append(entry["displayName"])
    return directory["users"], groups_of


def test_no_external_sample_user_reaches_anything_outside_the_external_profile(sandbox_world: World) -> None:
    world = sandbox_world
    users, groups_of = load_sample_directory(world)
    policy = load_policy(world.policy)  # type: ignore[arg-type]
    profile = policy.access.external
    external = [u for u in users if policy.is_external(UserFacts.of(u, groups_of.get(u["userName"], [])))]
    assert {u["userName"].split("@")[1] for u in external} == {"brightideas.example"} and len(external) == 4
    world.converge(
        lambda w: (
            w.cld_folder_roles("ava.andersen@example.com") == {"campaigns/emea": {"contributor"}}
            and w.ico_collection_rights("ava.andersen@example.com") == {"Region EMEA": {"read"}}
            and w.ico_projects_of("ava.andersen@example.com") == {"project-spring-launch"}
            and w.cld_folder_roles("hana.lopez@brightideas.example") == {"agencies/bright-ideas": {"contributor"}}
            and w.ico_collection_rights("ivan.schmidt@brightideas.example")
            == {"Agency Uploads - Bright Ideas": {"read", "write"}}
        ),
        timeout=120,
    )
    ceiling = FOLDER_ROLES.index(profile.max_folder_role)
    reached = 0
    for user in external:
        email = user["userName"]
        cld, ico = world.cld_user(email), world.ico_user(email)
        if cld is None:  # the agency user whose date has passed never gets an account
            assert ico is None and email == "kenji.martin@brightideas.example"
            continue
        assert cld["role"] == policy.targets.cloudinary.default_role, email
        assert ico is not None and ico["type"] == policy.targets.iconik.default_user_type, email
        for path, roles in world.cld_folder_roles(email).items():
            assert any(fnmatch.fnmatchcase(path, p) for p in profile.folders), (email, path)
            assert all(FOLDER_ROLES.index(r) <= ceiling for r in roles), (email, path, roles)  # type: ignore[arg-type]
        for title, permissions in world.ico_collection_rights(email).items():
            assert any(fnmatch.fnmatchcase(title, p) for p in profile.collections), (email, title)
            assert permissions <= set(profile.max_collection_permissions), (email, title, permissions)
        # a project team's collection is titled like the project: none is within the profile here
        assert world.ico_projects_of(email) == set(), email
        assert not {"region-EMEA", "Global Brand"} & (world.ico_groups_of(email) | world.cld_groups_of(email))
        reached += bool(world.cld_folder_roles(email))
    assert reached == 3  # the three with a live date still reach their agency's own folder

"""Directory groups and attributes decide what each person can reach, end to end over real HTTP:
folder roles in Cloudinary, collection ACLs and workspaces in iconik, project teams, agencies with
an expiry, and leavers losing everything at once."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from scim_bridge.sync.policy import PolicyError, load_policy
from tests.sync.conftest import World, make_world
from tests.sync.test_lifecycle import ENTERPRISE, group, joiner

AGENCY = "urn:example:params:scim:schemas:extension:agency:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

ACCESS: dict[str, Any] = {
    "cloudinary": {
        "product_environment": "production",
        "folders": [
            {
                "path": "campaigns/emea",
                "grants": [
                    {"group": "Marketing EMEA", "role": "contributor"},
                    {"group": "Global Brand", "role": "viewer"},
                ],
            },
            {
                "path": "campaigns/apac",
                "grants": [
                    {"group": "Marketing APAC", "role": "contributor"},
                    {"group": "Global Brand", "role": "viewer"},
                ],
            },
            {"path": "masters", "internal": True, "grants": [{"group": "Global Brand", "role": "manager"}]},
            {"path": "catalog", "grants": [{"group": "Product Catalog", "role": "editor"}]},
            {"path": "agencies/bright-ideas", "grants": [{"group": "Agency - Bright Ideas", "role": "contributor"}]},
        ],
        "collections": [{"id": "col-brand-kit", "grants": [{"group": "Global Brand", "role": "brand_kit_viewer"}]}],
    },
    "iconik": {
        "collections": [
            {
                "title": "Brand Masters",
                "internal": True,
                "grants": [{"group": "Global Brand", "permissions": ["read", "write", "delete"]}],
            },
            {"title": "Product Catalog", "grants": [{"group": "Product Catalog", "permissions": ["read", "write"]}]},
            {"title": "Agency Uploads", "grants": [{"group": "Agency - Bright Ideas", "permissions": ["write"]}]},
            {"title": "Workspaces"},
        ],
        "workspaces": [
            {
                "attribute": "division",
                "group": "region-{division}",
                "title": "Region {division}",
                "parent": "Workspaces",
                "permissions": ["read"],
            }
        ],
        "projects": {"groups": ["project-*", "campaign-*"], "on_group_delete": "delete"},
    },
    "external": {
        "folders": ["agencies/*"],
        "collections": ["Agency *"],
        "max_folder_role": "contributor",
        "expiry_attribute": f"{AGENCY}:accessExpires",
    },
    "reviewers": [
        {"group": "Legal Reviewers", "folders": ["campaigns/*", "masters"], "collections": ["Brand Masters"]}
    ],
    "context": {
        "folders": ["campaigns/{division|lower}"],
        "metadata": {"region": "{division}", "language": "{preferredLanguage}"},
    },
}
GUARDRAILS = {"external": [{"attribute": {"userType": "Contractor"}}, {"group": "Agency *"}]}


@pytest.fixture
def world(bridge_store_url: str, tmp_path: Path) -> Iterator[World]:
    yield from make_world(
        tmp_path,
        bridge_store_url,
        before_start=collection_role,
        access=ACCESS,
        guardrails=GUARDRAILS,
        deprovision="strip_groups",
        groups={"include": ["*"], "exclude": ["project-*", "campaign-*"]},
    )


def brand_group_id(world: World) -> str | None:
    return next((g for g, v in world.cloudinary.groups.items() if v["name"] == "Global Brand"), None)


def collection_role(cld: Any) -> None:
    """A custom content role for Cloudinary collections (the account's admin would create it)."""
    cld.custom_roles["brand_kit_viewer"] = {
        "id": "brand_kit_viewer",
        "name": "Brand kit viewer",
        "description": None,
        "management_type": "custom",
        "permission_type": "content",
        "scope_type": "prodenv",
        "system_policy_ids": ["cld::policy::content::folder::view_download"],
        "created_at": 0,
        "updated_at": 0,
    }


def move(world: World, group_id: str, op: str, user_id: str) -> None:
    response = world.scim.patch(
        f"/Groups/{group_id}",
        json={
            "schemas": [PATCH],
            "Operations": [
                {"op": op, "path": "members", "value": [{"value": user_id}]}
                if op == "add"
                else {"op": "remove", "path": f'members[value eq "{user_id}"]'}
            ],
        },
    )
    assert response.status_code in (200, 204), response.text


def test_regional_marketing_mover_loses_the_old_region_when_gaining_the_new(world: World) -> None:
    ava = joiner(world, "ava@example.com", department="Marketing")
    emea, apac = group(world, "Marketing EMEA", [ava["id"]]), group(world, "Marketing APAC", [])
    brand = group(world, "Global Brand", [])
    world.converge(lambda w: w.cld_folder_roles("ava@example.com") == {"campaigns/emea": {"contributor"}})
    move(world, emea["id"], "remove", ava["id"])
    move(world, apac["id"], "add", ava["id"])
    world.converge(lambda w: w.cld_folder_roles("ava@example.com") == {"campaigns/apac": {"contributor"}})
    # global brand keeps the masters and sees every region
    bo = joiner(world, "bo@example.com", department="Brand")
    move(world, brand["id"], "add", bo["id"])
    world.converge(
        lambda w: (
            w.cld_folder_roles("bo@example.com")
            == {"campaigns/emea": {"viewer"}, "campaigns/apac": {"viewer"}, "masters": {"manager"}}
        )
    )
    world.converge(
        lambda w: w.ico_collection_rights("bo@example.com").get("Brand Masters") == {"read", "write", "delete"}
    )
    world.converge(
        lambda w: any(
            a["role_id"] == "brand_kit_viewer"
            and a["principal_id"] == brand_group_id(w)
            and a["policy_parameters"] == {"collection_id": "col-brand-kit"}
            for a in list(w.cloudinary.role_assignments)
        )
    )
    assert "masters" not in world.cld_folder_roles("ava@example.com")


def test_product_catalog_team_manages_catalog_imagery_in_both_targets(world: World) -> None:
    cy = joiner(world, "cy@example.com", department="Product")
    group(world, "Product Catalog", [cy["id"]])
    world.converge(
        lambda w: (
            w.cld_folder_roles("cy@example.com") == {"catalog": {"editor"}}
            and w.ico_collection_rights("cy@example.com") == {"Product Catalog": {"read", "write"}}
        )
    )
    folders = {f["path"] for f in world.cloudinary.folders.values()}
    assert {"campaigns", "campaigns/emea", "masters", "catalog", "agencies/bright-ideas"} <= folders  # created


def test_workspaces_follow_the_region_attribute(world: World) -> None:
    di = joiner(world, "di@example.com", **{ENTERPRISE: {"department": "Marketing", "division": "EMEA"}})
    world.converge(lambda w: w.ico_collection_rights("di@example.com") == {"Region EMEA": {"read"}})
    workspace = next(c for c in world.iconik.collections.values() if c["title"] == "Region EMEA")
    parent = next(c for c in world.iconik.collections.values() if c["title"] == "Workspaces")
    assert workspace["parent_id"] == parent["id"]
    world.scim.patch(
        f"/Users/{di['id']}",
        json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": f"{ENTERPRISE}:division", "value": "APAC"}]},
    )
    world.converge(lambda w: w.ico_collection_rights("di@example.com") == {"Region APAC": {"read"}})


@pytest.mark.slow  # 30 s per store: waits for the expiry to pass and the periodic pass to see it
def test_agency_reaches_only_its_folders_and_loses_access_when_the_date_passes(world: World) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=4)).isoformat()
    hana = joiner(
        world,
        "hana@brightideas.example",
        department="External",
        userType="Contractor",
        schemas=["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE, AGENCY],
        **{AGENCY: {"accessExpires": soon}},
    )
    agency = group(world, "Agency - Bright Ideas", [hana["id"]])
    brand = group(world, "Global Brand", [hana["id"]])  # by mistake in the directory: withheld
    world.converge(
        lambda w: (
            w.cld_folder_roles("hana@brightideas.example") == {"agencies/bright-ideas": {"contributor"}}
            and w.ico_collection_rights("hana@brightideas.example") == {"Agency Uploads": {"write"}}
        )
    )
    assert "Global Brand" not in world.cld_groups_of("hana@brightideas.example")
    state = world.scim.get(
        f"/Users/{hana['id']}", params={"attributes": "urn:scim-bridge:schemas:extension:sync:2.0:SyncStatus"}
    ).json()
    notes = " ".join(
        t.get("error", "") for t in state["urn:scim-bridge:schemas:extension:sync:2.0:SyncStatus"]["targets"]
    )
    assert "not added to Global Brand" in notes and "internal-only folder masters" in notes
    # the date passes: access goes without any directory change. A revocation runs the targets at
    # once, so iconik's disable may land before Cloudinary has stripped the groups: wait for all of it.
    world.converge(
        lambda w: (
            not w.cld_user("hana@brightideas.example")["enabled"]  # type: ignore[index]
            and w.ico_user("hana@brightideas.example")["status"] != "ACTIVE"
            and w.cld_groups_of("hana@brightideas.example") == set()  # stripped (deprovision: strip_groups)
        ),
        timeout=30,
    )  # type: ignore[index]
    assert world.cld_folder_roles("hana@brightideas.example") == {}
    assert world.cld_groups_of("hana@brightideas.example") == set()
    assert agency and brand


def test_project_team_membership_changes_and_the_project_closes_with_the_group(world: World) -> None:
    eve = joiner(world, "eve@example.com")
    fay = joiner(world, "fay@example.com")
    team = group(world, "project-spring-launch", [eve["id"]])
    world.converge(lambda w: w.ico_projects_of("eve@example.com") == {"project-spring-launch"})
    assert "project-spring-launch" not in world.cld_groups_of("eve@example.com")  # not mirrored: a project
    move(world, team["id"], "add", fay["id"])
    move(world, team["id"], "remove", eve["id"])
    world.converge(
        lambda w: (
            w.ico_projects_of("fay@example.com") == {"project-spring-launch"}
            and w.ico_projects_of("eve@example.com") == set()
        )
    )
    assert world.scim.delete(f"/Groups/{team['id']}").status_code == 204
    world.converge(lambda w: not any(p["name"] == "project-spring-launch" for p in w.iconik.projects.values()))
    assert world.ico_projects_of("fay@example.com") == set()


def test_a_leaver_loses_every_folder_collection_and_project_at_once(world: World) -> None:
    gus = joiner(world, "gus@example.com", **{ENTERPRISE: {"department": "Product", "division": "AMER"}})
    group(world, "Product Catalog", [gus["id"]])
    group(world, "campaign-summer-2027", [gus["id"]])
    world.converge(
        lambda w: (
            w.cld_folder_roles("gus@example.com") == {"catalog": {"editor"}}
            and w.ico_collection_rights("gus@example.com")
            == {"Product Catalog": {"read", "write"}, "Region AMER": {"read"}}
            and w.ico_projects_of("gus@example.com") == {"campaign-summer-2027"}
        )
    )
    world.scim.patch(
        f"/Users/{gus['id']}",
        json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]},
    )
    world.converge(
        lambda w: (
            w.cld_user("gus@example.com")["enabled"] is False  # type: ignore[index]
            and w.ico_user("gus@example.com")["status"] == "INACTIVE"  # type: ignore[index]
            and w.cld_groups_of("gus@example.com") == set()
            and w.ico_groups_of("gus@example.com") == set()
            and w.ico_projects_of("gus@example.com") == set()
        )
    )


def test_hand_made_grants_for_other_principals_are_left_alone(world: World) -> None:
    ava = joiner(world, "hal@example.com")
    group(world, "Marketing EMEA", [ava["id"]])
    world.converge(lambda w: w.cld_folder_roles("hal@example.com") == {"campaigns/emea": {"contributor"}})
    folder = next(f for f in world.cloudinary.folders.values() if f["path"] == "campaigns/emea")
    environment = next(iter(world.cloudinary.environments))
    hand_made = {
        "principal_type": "user",
        "principal_id": world.cld_user("hal@example.com")["id"],  # type: ignore[index]
        "role_id": "cld::role::folder::viewer",
        "scope_type": "prodenv",
        "scope_id": environment,
        "policy_parameters": {"folder_id": folder["external_id"]},
        "created_at": 0,
        "updated_at": 0,
    }
    world.cloudinary.role_assignments.append(hand_made)
    group(world, "Marketing APAC", [ava["id"]])  # a new group: the grants run again
    world.converge(lambda w: "campaigns/apac" in w.cld_folder_roles("hal@example.com"))
    assert hand_made in world.cloudinary.role_assignments


def test_policies_that_break_a_guardrail_are_refused_naming_the_rule(tmp_path: Path) -> None:
    bad = {
        "guardrails": GUARDRAILS,
        "access": {
            "cloudinary": {
                "folders": [
                    {
                        "path": "masters",
                        "internal": True,
                        "grants": [
                            {"group": "Global Brand", "role": "manager"},
                            {"group": "Agency - Bright Ideas", "role": "viewer"},
                        ],
                    }
                ]
            }
        },
    }
    path = tmp_path / "policy.yml"
    path.write_text(yaml.safe_dump(bad, sort_keys=False))
    with pytest.raises(PolicyError) as refused:
        load_policy(path)
    message = str(refused.value)
    assert "access.cloudinary.folders[0].grants[1]" in message and "internal-only folder masters" in message
    assert "line " in message
    bad = {"guardrails": GUARDRAILS, "roles": [{"when": {"group": "Agency *"}, "cloudinary": "admin"}]}
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(PolicyError, match=r"roles\[0\].*admin role admin"):
        load_policy(path)
    bad = {
        "guardrails": GUARDRAILS,
        "access": {
            "external": {"max_folder_role": "contributor", "folders": ["agencies/*"]},
            "cloudinary": {"folders": [{"path": "agencies/x", "grants": [{"group": "Agency X", "role": "manager"}]}]},
        },
    }
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(PolicyError, match="above access.external.max_folder_role"):
        load_policy(path)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scim_bridge", *args], capture_output=True, text=True, timeout=60)


def test_plan_and_explain_cover_folders_collections_projects_and_guardrails(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/access.db"
    for world in make_world(
        tmp_path,
        store,
        access=ACCESS,
        guardrails=GUARDRAILS,
        deprovision="strip_groups",
        groups={"include": ["*"], "exclude": ["project-*", "campaign-*"]},
    ):
        ivy = joiner(world, "ivy@example.com", **{ENTERPRISE: {"department": "Marketing", "division": "EMEA"}})
        group(world, "Marketing EMEA", [ivy["id"]])
        group(world, "project-autumn", [ivy["id"]])
        world.converge(
            lambda w: (
                w.cld_folder_roles("ivy@example.com") == {"campaigns/emea": {"contributor"}}
                and w.ico_projects_of("ivy@example.com") == {"project-autumn"}
                and w.ico_collection_rights("ivy@example.com") == {"Region EMEA": {"read"}}
            )
        )
        world.converge(
            lambda w: (
                run_cli("plan", "--store", store, "--policy", str(tmp_path / "policy.yml"))
                .stdout.strip()
                .splitlines()[-1]
                == "plan: 0 change(s): nothing to change"
            ),
            timeout=20,
        )
        # A changed policy: EMEA marketing becomes viewer, and the catalog folder is new.
        changed = yaml.safe_load((tmp_path / "policy.yml").read_text())
        changed["access"]["cloudinary"]["folders"][0]["grants"][0]["role"] = "viewer"
        (tmp_path / "next.yml").write_text(yaml.safe_dump(changed))
        lines = run_cli("plan", "--store", store, "--policy", str(tmp_path / "next.yml")).stdout.splitlines()
        assert "cloudinary revoke         campaigns/emea  cld::role::folder::contributor from Marketing EMEA" in lines
        assert "cloudinary grant          campaigns/emea  cld::role::folder::viewer to Marketing EMEA" in lines
        explained = run_cli("explain", "ivy@example.com", "--store", store, "--policy", str(tmp_path / "policy.yml"))
        assert explained.returncode == 0, explained.stderr
        text = explained.stdout
        assert (
            "folder campaigns/emea: contributor" in text
            and "access.cloudinary.folders[0] (campaigns/emea) via group Marketing EMEA" in text
        )
        assert "collection Region EMEA: read" in text and "access.iconik.workspaces[0] (division=EMEA)" in text
        assert "project project-autumn" in text and "member of directory group 'project-autumn'" in text
        assert "group Marketing EMEA" in text and "ID map state: synced" in text
        as_json = json.loads(
            run_cli("explain", ivy["id"], "--json", "--store", store, "--policy", str(tmp_path / "policy.yml")).stdout
        )
        assert as_json["user"]["userName"] == "ivy@example.com" and set(as_json["targets"]) == {"cloudinary", "iconik"}
        missing = run_cli("explain", "nobody@example.com", "--store", store, "--policy", str(tmp_path / "policy.yml"))
        assert missing.returncode == 1 and "no user" in missing.stderr


def test_legal_gives_the_final_approval_on_regulated_content(world: World) -> None:
    xia = joiner(world, "xia@example.com", department="Legal")
    legal = group(world, "Legal Reviewers", [xia["id"]])
    world.converge(lambda w: w.cld_folder_roles("xia@example.com") == {})  # reviewers, not editors
    # Cloudinary: legal moderates only below its folders (campaigns/*, masters), one custom policy per
    # governed folder, and holds no global moderation role (plus the admin role from the roles rule)
    world.converge(lambda w: len(w.cloudinary.custom_policies) == 3)
    legal_id = next(g for g, v in world.cloudinary.groups.items() if v["name"] == "Legal Reviewers")
    ids = {f["path"]: f["external_id"] for f in world.cloudinary.folders.values()}
    statements = {p["name"]: p["policy_statement"] for p in world.cloudinary.custom_policies.values()}
    assert statements == {
        f"scim-bridge reviewers: Legal Reviewers on {path}": (
            f'permit(principal in Cloudinary::Group::"{legal_id}", action == Cloudinary::Action::"moderate", '
            f'resource is Cloudinary::Asset) when {{ resource.ancestor_ids.contains("{ids[path]}") }};'
        )
        for path in ("campaigns/apac", "campaigns/emea", "masters")
    }
    assert not [a for a in world.cloudinary.role_assignments if a["role_id"] == "scim_bridge_moderator"]
    assert world.cld_user("xia@example.com")["role"] == "media_library_admin"  # type: ignore[index]
    # workflow tools ask who must approve, per folder and per collection
    api = world.bridge.root + "/api/v1"
    headers = world.scim.headers
    routed = httpx.get(
        f"{api}/reviewers", params={"target": "cloudinary", "folder": "campaigns/emea"}, headers=headers
    ).json()["reviewers"]
    assert [m["userName"] for r in routed for m in r["members"]] == ["xia@example.com"]
    assert routed[0]["members"][0]["targetId"] == world.cld_user("xia@example.com")["id"]  # type: ignore[index]
    assert (
        httpx.get(f"{api}/reviewers", params={"target": "cloudinary", "folder": "catalog"}, headers=headers).json()[
            "reviewers"
        ]
        == []
    )
    iconik = httpx.get(
        f"{api}/reviewers", params={"target": "iconik", "collection": "Brand Masters"}, headers=headers
    ).json()
    ico_group = next(g for g in world.iconik.groups.values() if g["name"] == "Legal Reviewers")
    assert ico_group["id"] in iconik["approvalRequest"]["groups"]
    # legal leaves the group: the moderation role goes with the membership, the routing follows
    move(world, legal["id"], "remove", xia["id"])
    world.converge(
        lambda w: (
            httpx.get(f"{api}/reviewers", params={"target": "cloudinary", "folder": "masters"}, headers=headers).json()[
                "reviewers"
            ][0]["members"]
            == []
        )
    )
    world.converge(lambda w: "Legal Reviewers" not in w.cld_groups_of("xia@example.com"))


def test_people_in_each_region_get_the_localized_variants(world: World) -> None:
    ana = joiner(
        world,
        "ana@example.com",
        locale="de-DE",
        preferredLanguage="de",
        **{ENTERPRISE: {"department": "Marketing", "division": "EMEA", "organization": "Consumer"}},
    )
    group(world, "Marketing EMEA", [ana["id"]])
    world.converge(lambda w: w.cld_folder_roles("ana@example.com") == {"campaigns/emea": {"contributor"}})
    url = f"{world.bridge.root}/api/v1/context/ana@example.com"
    # the context follows the grants run that applied the folder (it never leads it)
    world.converge(lambda w: httpx.get(url, headers=w.scim.headers).json()["folders"] == ["campaigns/emea"], 10)
    context = httpx.get(url, headers=world.scim.headers).json()
    assert context["region"] == "EMEA" and context["locale"] == "de-DE" and context["language"] == "de"
    assert context["businessUnit"] == "Consumer" and context["active"] is True
    assert context["folders"] == ["campaigns/emea"]  # the very folder the policy made reachable
    assert context["metadata"] == {"region": "EMEA", "language": "de"}
    token = httpx.get(
        f"{world.bridge.root}/api/v1/context/{ana['id']}", params={"format": "jwt"}, headers=world.scim.headers
    )
    assert token.status_code == 200 and token.text.count(".") == 2


def test_the_readme_shows_the_policy_the_sandbox_uses() -> None:
    root = Path(__file__).resolve().parents[2]
    policy = (root / "scim_bridge" / "sandbox" / "policy.yml").read_text()
    assert f"```yaml\n{policy}```" in (root / "README.md").read_text()
    load_policy(root / "scim_bridge" / "sandbox" / "policy.yml")  # and it is valid, guardrails included


@pytest.mark.parametrize("model", ["roles", "auto"])
def test_a_legacy_permission_account_fails_loudly_naming_the_setting(tmp_path: Path, model: str) -> None:
    from scim_bridge.emulators.cloudinary import CloudinarySwitches

    access = {
        "cloudinary": {
            "product_environment": "production",
            "permission_model": model,
            "folders": [{"path": "campaigns/emea", "grants": [{"group": "Marketing EMEA", "role": "viewer"}]}],
        }
    }
    admin = {"Authorization": "Bearer admin-token-for-tests"}
    for world in make_world(
        tmp_path,
        f"sqlite:///{tmp_path}/bridge.db",
        access=access,
        cloudinary_switches=CloudinarySwitches(permission_model="legacy"),
    ):
        ada = joiner(world, "ada@example.com")
        group(world, "Marketing EMEA", [ada["id"]])
        letters = f"{world.bridge.root}/admin/api/dead-letters"
        world.converge(
            lambda w: any(d["resource"] == "Access/grants" for d in httpx.get(letters, headers=admin).json())
        )
        [letter] = [d for d in httpx.get(letters, headers=admin).json() if d["resource"] == "Access/grants"]
        assert "access.cloudinary.permission_model" in letter["error"] and "Role Management" in letter["error"]
        # accounts and groups still flow: only the grants wait for the setting to be fixed
        world.converge(lambda w: "Marketing EMEA" in w.cld_groups_of("ada@example.com"))


def test_the_group_index_of_the_id_map_is_built_from_an_older_map(tmp_path: Path) -> None:
    """Grant runs read only groups; a store written before that index existed still works."""
    import asyncio

    from scim_bridge.store import open_store
    from scim_bridge.sync.idmap import IdMap

    async def run() -> list[str]:
        store = open_store(f"sqlite:///{tmp_path}/old.db")
        await store.open()
        try:
            await store.kv_put("idmap:cloudinary", "Group/g1", b'{"id": "t1", "name": "Old Group"}')
            await store.kv_put("idmap:cloudinary", "User/u1", b'{"id": "t2"}')
            idmap = IdMap(store)
            await idmap.put("cloudinary", "Group", "g2", {"id": "t3", "name": "New Group"})
            return sorted(entry["name"] for _, entry in await idmap.group_entries("cloudinary"))
        finally:
            await store.close()

    assert asyncio.run(run()) == ["New Group", "Old Group"]


def test_an_agency_key_holds_only_its_folder_role_while_the_agency_has_someone_active(tmp_path: Path) -> None:
    access = {
        **ACCESS,
        "cloudinary": {
            **ACCESS["cloudinary"],
            "agency_keys": [
                {"group": "Agency - Bright Ideas", "folders": ["agencies/bright-ideas"], "role": "contributor"}
            ],
        },
    }
    for world in make_world(tmp_path, f"sqlite:///{tmp_path}/bridge.db", access=access, guardrails=GUARDRAILS):
        kim = joiner(world, "kim@brightideas.example", department="External", userType="Contractor")
        agency = group(world, "Agency - Bright Ideas", [kim["id"]])
        keys = next(iter(world.cloudinary.access_keys.values()))

        def agency_key() -> dict[str, Any] | None:
            return next((k for k in keys if k["name"] == "scim-bridge: Agency - Bright Ideas"), None)

        def key_roles() -> dict[str, set[str]]:
            key = agency_key()
            reach: dict[str, set[str]] = {}
            for a in list(world.cloudinary.role_assignments):
                folder = world.cloudinary.folders.get((a.get("policy_parameters") or {}).get("folder_id", ""))
                if key and folder and a["principal_type"] == "apiKey" and a["principal_id"] == key["api_key"]:
                    reach.setdefault(folder["path"], set()).add(a["role_id"].rsplit("::", 1)[-1])
            return reach

        world.converge(
            lambda w: (
                agency_key() is not None
                and agency_key()["enabled"]  # type: ignore[index]
                and key_roles() == {"agencies/bright-ideas": {"contributor"}}
            )
        )
        secret = agency_key()["api_secret"]  # type: ignore[index]
        move(world, agency["id"], "remove", kim["id"])  # the agency has nobody left
        world.converge(lambda w: not agency_key()["enabled"] and key_roles() == {})  # type: ignore[index]
        move(world, agency["id"], "add", kim["id"])
        world.converge(
            lambda w: (
                agency_key()["enabled"]  # type: ignore[index]
                and key_roles() == {"agencies/bright-ideas": {"contributor"}}
            )
        )
        exported = run_cli("audit", "export", "--format", "jsonl", "--store", f"sqlite:///{tmp_path}/bridge.db")
        assert exported.returncode == 0 and secret not in exported.stdout  # the bridge never keeps the secret
        assert len([k for k in keys if k["name"].startswith("scim-bridge:")]) == 1  # one key, re-enabled


def test_an_agency_key_beyond_the_external_profile_is_refused(tmp_path: Path) -> None:
    bad = {
        "guardrails": GUARDRAILS,
        "access": {
            "external": {"folders": ["agencies/*"], "max_folder_role": "contributor"},
            "cloudinary": {"agency_keys": [{"group": "Agency X", "folders": ["campaigns/emea"], "role": "viewer"}]},
        },
    }
    (tmp_path / "policy.yml").write_text(yaml.safe_dump(bad))
    with pytest.raises(PolicyError, match=r"agency_keys\[0\].*campaigns/emea, which is not among access.external"):
        load_policy(tmp_path / "policy.yml")

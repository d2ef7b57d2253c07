"""Per-attribute Cloudinary folders (issue 9 item 5), over real HTTP against the emulators, on both
stores: `campaigns/{division|lower}` is created and granted to the value's derived group the first
time someone has that value, the delivery context lists exactly the folders the person's groups
hold a role on, an external person never reaches a per-attribute folder outside `access.external`
(at load and at apply), and reconcile reports and repairs a per-attribute grant taken away by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from scim_bridge.sync.policy import PolicyError, load_policy
from tests.sync.conftest import World, make_world
from tests.sync.test_lifecycle import ENTERPRISE, group, joiner

ADMIN = {"Authorization": "Bearer admin-token-for-tests"}
ACCESS: dict[str, Any] = {
    "cloudinary": {
        "product_environment": "production",
        "folders": [
            {"path": "campaigns", "grants": [{"group": "Global Brand", "role": "viewer"}]},  # inherited below
            {"path": "campaigns/{division|lower}", "grants": [{"group": "region-{division}", "role": "contributor"}]},
            {"path": "agencies/bright-ideas", "grants": [{"group": "Agency - Bright Ideas", "role": "contributor"}]},
        ],
    },
    "external": {"folders": ["agencies/*"], "max_folder_role": "contributor"},
}
GUARDRAILS = {"external": [{"attribute": {"userType": "Contractor"}}, {"group": "Agency *"}]}


@pytest.fixture
def world(bridge_store_url: str, tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path, bridge_store_url, access=ACCESS, guardrails=GUARDRAILS)


def person(world: World, email: str, division: str, **extra: Any) -> dict[str, Any]:
    return joiner(world, email, **{ENTERPRISE: {"department": "Marketing", "division": division}}, **extra)


def admin_api(world: World) -> httpx.Client:
    """The product environment's Admin API, as an operator would call it."""
    [key] = next(iter(world.cloudinary.access_keys.values()))
    cloud = next(iter(world.cloudinary.environments.values()))["cloud_name"]
    return httpx.Client(base_url=f"{world.cloudinary_url}/v1_1/{cloud}", auth=(key["api_key"], key["api_secret"]))


def settled(world: World) -> None:
    """Every queued change processed (so no grants run is under way to undo what a test does by hand)."""
    world.converge(lambda w: httpx.get(f"{w.bridge.root}/admin/api/queue", headers=ADMIN).json()["total"] == 0)


def context(world: World, user: str) -> dict[str, Any]:
    answer = httpx.get(f"{world.bridge.root}/api/v1/context/{user}", headers=world.scim.headers)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def cli(world: World, store: str, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "scim_bridge", *args, "--store", store, "--policy", f"{world.policy}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def explain(world: World, store: str, user: str) -> dict[str, Any]:
    return json.loads("\n".join(cli(world, store, "explain", user, "--json")))  # type: ignore[no-any-return]


def test_a_new_division_gets_its_folder_created_and_granted_on_first_use(world: World, bridge_store_url: str) -> None:
    lia = person(world, "lia@example.com", "LATAM")
    world.converge(lambda w: w.cld_folder_roles("lia@example.com") == {"campaigns/latam": {"contributor"}})
    with admin_api(world) as api:  # the folder is there the way the Admin API lists folders
        listed = api.get("/folders/campaigns").json()
        [latam] = [f for f in listed["folders"] if f["path"] == "campaigns/latam"]
        shared = api.get(f"/folder_operations/invite/{latam['external_id']}").json()["shared_with"]
    region = next(g for g, v in world.cloudinary.groups.items() if v["name"] == "region-LATAM")
    direct = [s for s in shared if s["folder_id"] == latam["external_id"]]
    assert [(s["type"], s["id"], [r["id"] for r in s["roles"]]) for s in direct] == [
        ("group", region, ["cld::role::folder::contributor"])
    ]
    # a second person of the division joins the same folder: no second folder, no second grant
    person(world, "leo@example.com", "LATAM")
    world.converge(lambda w: w.cld_folder_roles("leo@example.com") == {"campaigns/latam": {"contributor"}})
    assert [f["path"] for f in world.cloudinary.folders.values()].count("campaigns/latam") == 1
    # the model holds it with its rule, so explain says why
    [line] = [i for i in explain(world, bridge_store_url, lia["id"])["targets"]["cloudinary"] if "latam" in i["grant"]]
    assert line["grant"] == "folder campaigns/latam: contributor"
    assert line["because"] == "access.cloudinary.folders[1] (division=LATAM) via group region-LATAM"
    # plan agrees with what was applied, and the review lists the folder with who reaches it by which rule
    world.converge(lambda w: cli(w, bridge_store_url, "plan")[-1] == "plan: 0 change(s): nothing to change", 20)
    review = httpx.get(f"{world.bridge.root}/admin/api/review", headers=ADMIN, timeout=60).json()
    [folder] = [r for r in review["resources"] if r["name"] == "campaigns/latam"]
    assert folder["id"] == latam["external_id"]
    assert {(r["email"], r["rule"]) for r in folder["reachers"]} == {
        (email, "access.cloudinary.folders[1] (division=LATAM)") for email in ("lia@example.com", "leo@example.com")
    }
    assert not [r for r in review["resources"] if "{" in r["name"]]  # the template is not a folder


def test_the_delivery_context_lists_exactly_the_granted_folders(world: World) -> None:
    gia = person(world, "gia@example.com", "LATAM")
    person(world, "ola@example.com", "NORDICS")
    group(world, "Global Brand", [gia["id"]])
    world.converge(
        lambda w: (
            w.cld_folder_roles("gia@example.com") == {"campaigns": {"viewer"}, "campaigns/latam": {"contributor"}}
            and w.cld_folder_roles("ola@example.com") == {"campaigns/nordics": {"contributor"}}
        )
    )
    for email in ("gia@example.com", "ola@example.com"):  # the context follows the grants run (never leads it)
        world.converge(lambda w: context(w, email)["folders"] == sorted(w.cld_folder_roles(email)), 10)
        assert context(world, email)["folders"] == sorted(world.cld_folder_roles(email))
    # a leaver reaches nothing, and is told of nothing
    patched = world.scim.put(
        f"/Users/{gia['id']}", json={**{k: v for k, v in gia.items() if k != "meta"}, "active": False}
    )
    assert patched.status_code == 200, patched.text
    world.converge(lambda w: w.cld_folder_roles("gia@example.com") == {})
    assert context(world, "gia@example.com")["folders"] == [] and context(world, "gia@example.com")["active"] is False


def test_an_external_person_never_gets_a_per_attribute_folder_outside_the_profile(
    world: World, bridge_store_url: str
) -> None:
    person(world, "ina@example.com", "LATAM")
    cid = person(world, "cid@example.com", "LATAM", userType="Contractor")
    agency = person(world, "aga@brightideas.example", "LATAM")
    group(world, "Agency - Bright Ideas", [agency["id"]])
    world.converge(
        lambda w: (
            w.cld_folder_roles("ina@example.com") == {"campaigns/latam": {"contributor"}}
            and w.cld_folder_roles("aga@brightideas.example") == {"agencies/bright-ideas": {"contributor"}}
            and w.cld_user("cid@example.com") is not None
        )
    )
    settled(world)
    for email in ("cid@example.com", "aga@brightideas.example"):
        assert "region-LATAM" not in world.cld_groups_of(email)
        assert "campaigns/latam" not in world.cld_folder_roles(email)
        assert "campaigns/latam" not in context(world, email)["folders"]
    [line] = [i for i in explain(world, bridge_store_url, cid["id"])["targets"]["cloudinary"] if "latam" in i["grant"]]
    assert line["grant"] == "withheld folder campaigns/latam: contributor"
    assert "campaigns/latam, which is not among access.external.folders" in line["because"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (  # a folder per value of the very attribute that makes people external
            {"guardrails": {"external": [{"attribute": {"division": "Partners"}}]}},
            "access.cloudinary.folders[1].grants[0]: external group 'region-{division}' would reach folder "
            "campaigns/partners, which is not among access.external.folders",
        ),
        (  # a per-attribute folder granted to an external group's template
            {"folder": {"path": "campaigns/{organization|lower}", "grants": [{"group": "Agency {organization}"}]}},
            "would reach folder campaigns/*, which is not among access.external.folders",
        ),
        (  # a fixed group on a per-attribute folder: no directory-wide list of values in the model
            {"grant": {"group": "Global Brand", "role": "viewer"}},
            "each grant of a per-attribute folder goes to the derived group of that value",
        ),
    ],
)
def test_a_per_attribute_folder_that_can_reach_an_external_person_is_refused_at_load(
    tmp_path: Path, change: dict[str, Any], words: str
) -> None:
    access = json.loads(json.dumps(ACCESS))
    policy: dict[str, Any] = {"guardrails": GUARDRAILS, "access": access}
    if "guardrails" in change:
        policy["guardrails"] = change["guardrails"]
    if "folder" in change:
        access["cloudinary"]["folders"].append(
            {**change["folder"], "grants": [{**change["folder"]["grants"][0], "role": "viewer"}]}
        )
    if "grant" in change:
        access["cloudinary"]["folders"][1]["grants"].append(change["grant"])
    (tmp_path / "policy.yml").write_text(yaml.safe_dump(policy))
    with pytest.raises(PolicyError, match="guardrail|per-attribute") as refused:
        load_policy(tmp_path / "policy.yml")
    assert words in str(refused.value)
    allowed = json.loads(json.dumps(ACCESS))  # inside the profile: an agency folder per agency loads
    allowed["cloudinary"]["folders"].append(
        {"path": "agencies/{organization|lower}", "grants": [{"group": "Agency {organization}", "role": "viewer"}]}
    )
    (tmp_path / "ok.yml").write_text(yaml.safe_dump({"guardrails": GUARDRAILS, "access": allowed}))
    load_policy(tmp_path / "ok.yml")


def test_reconcile_reports_and_repairs_a_missing_per_attribute_grant(world: World) -> None:
    person(world, "ren@example.com", "LATAM")
    world.converge(lambda w: w.cld_folder_roles("ren@example.com") == {"campaigns/latam": {"contributor"}})
    settled(world)
    latam = next(f for f in world.cloudinary.folders.values() if f["path"] == "campaigns/latam")
    region = next(g for g, v in world.cloudinary.groups.items() if v["name"] == "region-LATAM")
    with admin_api(world) as api:  # someone takes the grant away in Cloudinary
        taken = api.post(
            f"/folder_operations/invite/{latam['external_id']}",
            json={
                "principal": {"type": "group", "id": region},
                "operation": "remove",
                "roles": ["cld::role::folder::contributor"],
            },
        )
    assert taken.status_code == 200 and world.cld_folder_roles("ren@example.com") == {}
    url = f"{world.bridge.root}/admin/api/reconcile"
    drift = httpx.post(url, headers=ADMIN, timeout=60).json()["drift"]
    found = [d for d in drift if d["subject"] == "campaigns/latam"]
    assert [(d["kind"], d["detail"]) for d in found] == [
        ("missing-grant", "cld::role::folder::contributor for region-LATAM")
    ]
    assert world.cld_folder_roles("ren@example.com") == {}  # a report changes nothing
    httpx.post(f"{url}?apply=true", headers=ADMIN, timeout=60)
    assert world.cld_folder_roles("ren@example.com") == {"campaigns/latam": {"contributor"}}
    assert [d for d in httpx.post(url, headers=ADMIN, timeout=60).json()["drift"] if "latam" in d["subject"]] == []
    with admin_api(world) as api:  # the whole folder deleted in Cloudinary: reported, then made and granted again
        assert api.delete("/folders/campaigns/latam").json() == {"deleted": ["campaigns/latam"]}
    drift = httpx.post(url, headers=ADMIN, timeout=60).json()["drift"]
    assert [(d["kind"], d["subject"]) for d in drift] == [("missing-folder", "campaigns/latam")]
    httpx.post(f"{url}?apply=true", headers=ADMIN, timeout=60)
    assert world.cld_folder_roles("ren@example.com") == {"campaigns/latam": {"contributor"}}
    assert [f["path"] for f in world.cloudinary.folders.values()].count("campaigns/latam") == 1


def test_folder_scoped_reviewers_moderate_each_new_division_folder(tmp_path: Path, bridge_store_url: str) -> None:
    """Issue 9 item 9, Cloudinary half: a reviewer rule with folders becomes one custom policy per
    governed folder it matches (a per-attribute folder included, once made), not a global role."""
    access = {**ACCESS, "reviewers": [{"group": "Legal Reviewers", "folders": ["campaigns/*"]}]}
    for world in make_world(tmp_path, bridge_store_url, access=access, guardrails=GUARDRAILS):
        xia = person(world, "xia@example.com", "LATAM")
        group(world, "Legal Reviewers", [xia["id"]])

        def scoped(w: World) -> dict[str, str]:
            return {p["name"]: p["policy_statement"] for p in list(w.cloudinary.custom_policies.values())}

        world.converge(lambda w: list(scoped(w)) == ["scim-bridge reviewers: Legal Reviewers on campaigns/latam"])
        person(world, "ned@example.com", "NORDICS")  # a new division: its folder is governed at once
        world.converge(lambda w: len(scoped(w)) == 2)
        legal = next(g for g, v in world.cloudinary.groups.items() if v["name"] == "Legal Reviewers")
        nordics = next(f["external_id"] for f in world.cloudinary.folders.values() if f["path"] == "campaigns/nordics")
        assert scoped(world)["scim-bridge reviewers: Legal Reviewers on campaigns/nordics"] == (
            f'permit(principal in Cloudinary::Group::"{legal}", action == Cloudinary::Action::"moderate", '
            f'resource is Cloudinary::Asset) when {{ resource.ancestor_ids.contains("{nordics}") }};'
        )
        assert not [a for a in world.cloudinary.role_assignments if a["role_id"] == "scim_bridge_moderator"]
        [line] = [
            i for i in explain(world, bridge_store_url, xia["id"])["targets"]["cloudinary"] if "moder" in i["grant"]
        ]
        assert line["grant"] == "moderation campaigns/*: moderate"

"""The access review (`scim-bridge review`, GET /admin/api/review) against the targets' real state:
the sandbox's sample directory through the admin API and the CLI, its figures checked against the
emulators' /_emulator/state; dormant accounts, last activity, hand-made drift and the agency's
expiry with make_world."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest

from scim_bridge.audit.activity import ActivityLog, Event, Identities
from scim_bridge.store import open_store
from tests.live import free_port
from tests.scim.conftest import ENTERPRISE, USER
from tests.sync.conftest import make_world
from tests.sync.test_lifecycle import group, joiner

AGENCY = "urn:example:params:scim:schemas:extension:agency:2.0:User"
HOSTILE = '<script>alert("x")</script> & Co'


# the sandbox, over real HTTP ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("review-sandbox")
    port, access_file, store = free_port(), tmp / "access.json", f"sqlite:///{tmp}/sandbox.db"
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
            store,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert "sandbox" in process.stdout.readline()  # type: ignore[union-attr]
        access = json.loads(access_file.read_text())
        admin = httpx.Client(
            base_url=access["admin"]["base_url"],
            headers={"Authorization": f"Bearer {access['admin']['token']}"},
            timeout=60,
        )
        scim = httpx.Client(
            base_url=access["scim"]["base_url"],
            timeout=10,
            headers={"Authorization": f"Bearer {access['scim']['token']}"},
        )
        settle(admin)
        yield {"access": access, "admin": admin, "scim": scim, "store": store, "tmp": tmp}
    finally:
        process.terminate()
        process.wait(timeout=15)


def settle(admin: httpx.Client) -> None:
    """Until the queue is empty and the targets hold what the policy wants (0 rows differ)."""
    deadline = time.monotonic() + 90
    while True:
        try:
            if (
                admin.get("/queue").json()["total"] == 0
                and admin.get("/review").json()["summary"]["sections"]["users_differing"] == 0
            ):
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the sandbox did not settle"
        time.sleep(0.3)


def states(access: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        httpx.get(f"{access['cloudinary']['base_url']}/_emulator/state").json(),
        httpx.get(f"{access['iconik']['base_url']}/_emulator/state").json(),
    )


def reach_in_review(review: dict[str, Any], target: str, kind: str) -> dict[str, set[tuple[str, str]]]:
    return {
        r["name"]: {(x["email"], right) for x in r["reachers"] for right in x["rights"]}
        for r in review["resources"]
        if r["target"] == target and r["kind"] == kind
    }


def cloudinary_reach(cld: dict[str, Any]) -> dict[str, set[tuple[str, str]]]:
    """folder path → (email, role) of every enabled member of every group holding a role there."""
    users = {u["id"]: u for u in cld["users"]}
    members = {g["id"]: g["members"] for g in cld["groups"]}
    paths = {f["external_id"]: f["path"] for f in cld["folders"]}
    reach: dict[str, set[tuple[str, str]]] = {}
    for principal, folders in cld["grants"].items():
        kind, principal_id = principal.split(":", 1)
        if kind == "apiKey":
            continue  # the agency's own key reaches its folder, but it is not a person
        holders = members.get(principal_id, []) if kind == "group" else [principal_id]
        for folder_id, roles in folders.items():
            for user_id in holders:
                if users[user_id]["enabled"]:
                    reach.setdefault(paths[folder_id], set()).update(
                        (users[user_id]["email"], r.rsplit("::", 1)[-1]) for r in roles
                    )
    return reach


def iconik_reach(ico: dict[str, Any]) -> tuple[dict[str, set[tuple[str, str]]], dict[str, set[tuple[str, str]]]]:
    """(collection title → (email, permission) through group ACLs, project name → (email, "member"))
    for active accounts."""
    active = {u["id"]: u for u in ico["users"] if u["status"] == "ACTIVE"}
    titles = {c["id"]: c["title"] for c in ico["collections"]}
    collections: dict[str, set[tuple[str, str]]] = {}
    for key, acl in ico["acls"].items():
        kind, _, object_id = key.partition("/")
        if kind != "collections" or object_id not in titles:
            continue
        for group_id, entry in acl.get("groups", {}).items():
            for user in active.values():
                if group_id in user["groups"]:
                    collections.setdefault(titles[object_id], set()).update(
                        (user["email"], p) for p in entry["permissions"]
                    )
    projects = {
        p["name"]: {(active[u]["email"], "member") for u in ico["members"].get(p["id"], {}) if u in active}
        for p in ico["projects"]
    }
    return collections, projects


@pytest.mark.slow  # with the next test: the sandbox fixture takes ~16 s to sync, the two ~15 s more
def test_the_sandbox_review_matches_the_emulators_state(sandbox: dict[str, Any]) -> None:
    access, admin, scim = sandbox["access"], sandbox["admin"], sandbox["scim"]
    cld_url, ico_url = access["cloudinary"]["base_url"], access["iconik"]["base_url"]
    # By hand, straight into the targets: an account in each that no directory user accounts for,
    # and a role raised in Cloudinary. A directory user with a hostile displayName, synced normally.
    cld_api = httpx.Client(
        base_url=f"{cld_url}/v1_1/provisioning/accounts/{access['cloudinary']['account_id']}",
        auth=(access["cloudinary"]["key"], access["cloudinary"]["secret"]),
    )
    ico_api = httpx.Client(
        base_url=f"{ico_url}/API/users/v1",
        headers={"App-ID": access["iconik"]["app_id"], "Auth-Token": access["iconik"]["auth_token"]},
    )
    assert cld_api.post(
        "/users", json={"name": "Temp", "email": "temp.freelancer@elsewhere.example", "role": "media_library_user"}
    ).status_code in (200, 201)
    assert (
        ico_api.post(
            "/users/",
            json={"email": "old.intern@example.com", "first_name": "Old", "type": "STANDARD", "status": "ACTIVE"},
        ).status_code
        == 201
    )
    ava = next(u for u in states(access)[0]["users"] if u["email"] == "ava.andersen@example.com")
    assert cld_api.put(f"/users/{ava['id']}", json={"role": "admin"}).status_code == 200
    hostile = scim.post(
        "/Users",
        json={
            "schemas": [USER],
            "userName": "mallory@example.com",
            "displayName": HOSTILE,
            "emails": [{"value": "mallory@example.com", "primary": True}],
        },
    )
    assert hostile.status_code == 201, hostile.text
    deadline = time.monotonic() + 60
    while (
        not any(u["email"] == "mallory@example.com" for u in states(access)[1]["users"])
        or admin.get("/queue").json()["total"]
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)

    review = admin.get("/review", params={"dormant_days": 30}).json()
    cld, ico = states(access)
    figures = review["summary"]["targets"]
    # accounts, enabled, and how they add up: linked to a directory user + orphans + the service account
    assert figures["cloudinary"]["accounts"] == len(cld["users"]) == 36 + 1
    assert figures["iconik"]["accounts"] == len(ico["users"]) == 37 + 1
    assert figures["cloudinary"]["enabled"] == sum(u["enabled"] for u in cld["users"])
    assert figures["iconik"]["enabled"] == sum(u["status"] == "ACTIVE" for u in ico["users"])
    for name in ("cloudinary", "iconik"):
        f = figures[name]
        assert f["linked"] + f["orphans"] + f["service_accounts"] == f["accounts"]
    assert {(o["target"], o["email"]) for o in review["orphans"]} == {
        ("cloudinary", "temp.freelancer@elsewhere.example"),
        ("iconik", "old.intern@example.com"),
    }
    # who reaches what: exactly the grants' groups' enabled members, with the role, in both targets
    assert reach_in_review(review, "cloudinary", "folder") == cloudinary_reach(cld)
    collections, projects = iconik_reach(ico)
    assert {k: v for k, v in reach_in_review(review, "iconik", "collection").items() if v} == collections
    assert reach_in_review(review, "iconik", "project") == projects
    assert {p["name"] for p in ico["projects"]} == {"project-spring-launch", "campaign-summer-2027"}
    emea = next(r for r in review["resources"] if r["name"] == "campaigns/emea")
    assert {(x["via"], x["rule"]) for x in emea["reachers"]} == {
        ("Marketing EMEA", "access.cloudinary.folders[0] (campaigns/emea)"),
        ("Global Brand", "access.cloudinary.folders[0] (campaigns/emea)"),
    }
    agency_folder = next(r for r in review["resources"] if r["name"] == "agencies/bright-ideas")
    [key_grant] = [g for g in agency_folder["grants"] if g["principal"].startswith("API key")]
    assert key_grant["principal"].endswith("of Agency - Bright Ideas") and key_grant["rights"] == ["contributor"]
    assert key_grant["rule"] == "access.cloudinary.agency_keys[0]"
    # the review shows what the target holds, not what the bridge believes: the raised role differs
    ava_row = next(
        u for u in review["users"] if u["user_name"] == "ava.andersen@example.com" and u["target"] == "cloudinary"
    )
    assert ava_row["role"] == "admin" and ava_row["desired_role"] == "media_library_user"
    assert ava_row["differs"] and any("role admin" in d for d in ava_row["differences"])
    assert review["summary"]["sections"]["users_differing"] == 1
    # the agency: the expired contractor has no account anywhere; the other one's date is shown
    external = {e["user_name"]: e for e in review["external"]}
    kenji, hana = external["kenji.martin@brightideas.example"], external["hana.lopez@brightideas.example"]
    assert kenji["expired"] and kenji["accounts"] == {"cloudinary": "none", "iconik": "none"}
    assert not any(u["email"] == "kenji.martin@brightideas.example" for u in cld["users"] + ico["users"])
    assert hana["expires"].startswith("2027-06-30") and not hana["expired"]
    assert hana["accounts"] == {"cloudinary": "enabled", "iconik": "enabled"}
    # nobody has logged in to an emulator: every enabled account but the service account is dormant
    dormant = {(d["target"], d["email"]) for d in review["dormant"]}
    assert dormant == {("cloudinary", u["email"]) for u in cld["users"] if u["enabled"]} | {
        ("iconik", u["email"]) for u in ico["users"] if u["status"] == "ACTIVE" and u["id"] != ico["token_user_id"]
    }
    assert all(d["last_login"] is None for d in review["dormant"])

    # the same review as CSV (one file, a `section` column) and as a page to sign
    table = list(csv.DictReader(io.StringIO(admin.get("/review", params={"format": "csv"}).text)))
    by_section = {s: [row for row in table if row["section"] == s] for s in {row["section"] for row in table}}
    assert len(by_section["users"]) == len(review["users"]) == 38 * 2
    assert len(by_section["orphans"]) == 2 and len(by_section["external"]) == 4
    assert {r["metric"]: r["value"] for r in by_section["summary"]}["cloudinary.accounts"] == "37"
    assert any(r["displayName"] == HOSTILE for r in by_section["users"])
    section = admin.get("/review", params={"format": "csv", "section": "dormant"})
    assert section.headers["content-type"].startswith("text/csv")
    assert len(list(csv.DictReader(io.StringIO(section.text)))) == len(review["dormant"])
    page = admin.get("/review", params={"format": "html"})
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    body = page.text
    assert "<script" not in body and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in body
    assert 'id="signoff"' in body and "Reviewer name" in body and "Signature" in body and "Date" in body
    assert review["policy_digest"] in body and "http://" not in body and "https://" not in body  # no outside asset
    # refused politely
    assert admin.get("/review", params={"format": "xml"}).status_code == 400
    assert admin.get("/review", params={"dormant_days": "soon"}).status_code == 400
    assert (
        httpx.get(
            f"{access['admin']['base_url']}/review", headers={"Authorization": f"Bearer {access['scim']['token']}"}
        ).status_code
        == 403  # a SCIM token lacks the admin scope
    )


@pytest.mark.slow
def test_the_cli_reviews_the_sandbox_store_with_the_same_figures(sandbox: dict[str, Any]) -> None:
    """`scim-bridge review` on the sandbox's own store, reaching the emulators over HTTP with the
    sandbox's policy and credentials."""
    access, tmp = sandbox["access"], sandbox["tmp"]
    cld, _ = states(access)
    production = next(e for e in cld["product_environments"] if e["cloud_name"] == "production")
    (tmp / "cld.json").write_text(
        json.dumps(
            {
                "account_id": access["cloudinary"]["account_id"],
                "key": access["cloudinary"]["key"],
                "secret": access["cloudinary"]["secret"],
                "admin_key": production["access_keys"][0]["api_key"],
                "admin_secret": production["access_keys"][0]["api_secret"],
            }
        )
    )
    (tmp / "ico.json").write_text(
        json.dumps({"app_id": access["iconik"]["app_id"], "auth_token": access["iconik"]["auth_token"]})
    )
    policy = (resources.files("scim_bridge.sandbox") / "policy.yml").read_text()
    for target, creds in (("cloudinary", "cld.json"), ("iconik", "ico.json")):
        policy = policy.replace(
            f"  {target}:\n    enabled: true\n",
            f"  {target}:\n    enabled: true\n"
            f"    base_url: {access[target]['base_url']}\n"
            f"    credentials_file: {tmp / creds}\n",
            1,
        )
    (tmp / "policy.yml").write_text(policy)
    api = sandbox["admin"].get("/review").json()
    for fmt in ("json", "csv", "html"):
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "scim_bridge",
                "review",
                "--store",
                sandbox["store"],
                "--policy",
                str(tmp / "policy.yml"),
                "--format",
                fmt,
                "--output",
                str(tmp / f"review.{fmt}"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "SCIM_BRIDGE_PROGRESS": "always"},  # piped: progress only when asked for
        )
        assert run.returncode == 0, run.stderr
        assert "review: cloudinary: " in run.stderr and "accounts listed" in run.stderr  # progress
    cli = json.loads((tmp / "review.json").read_text())
    assert cli["summary"] == api["summary"]
    assert {(r["target"], r["name"]): r["reachers"] for r in cli["resources"]} == {
        (r["target"], r["name"]): r["reachers"] for r in api["resources"]
    }
    assert cli["policy_digest"].startswith("sha256:") and cli["policy_source"] == str(tmp / "policy.yml")
    rows = list(csv.DictReader(io.StringIO((tmp / "review.csv").read_text())))
    assert sum(r["section"] == "resources" and r["userName"] != "" for r in rows) == sum(
        len(r["reachers"]) for r in cli["resources"]
    )
    assert "Reviewer name" in (tmp / "review.html").read_text()


# make_world: dormant accounts, last activity, drift, the agency ------------------------------------------
ACCESS: dict[str, Any] = {
    "cloudinary": {
        "product_environment": "production",
        "folders": [
            {"path": "campaigns/emea", "grants": [{"group": "Marketing EMEA", "role": "contributor"}]},
            {"path": "agencies/bright-ideas", "grants": [{"group": "Agency - Bright Ideas", "role": "contributor"}]},
        ],
    },
    "iconik": {
        "collections": [{"title": "EMEA", "grants": [{"group": "Marketing EMEA", "permissions": ["read", "write"]}]}],
        "projects": {"groups": ["project-*"]},
    },
    "external": {"folders": ["agencies/*"], "collections": ["Agency *"], "expiry_attribute": f"{AGENCY}:accessExpires"},
}
GUARDRAILS = {"external": [{"group": "Agency *"}]}


def review_cli(tmp_path: Path, store: str, *extra: str) -> dict[str, Any]:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "scim_bridge",
            "review",
            "--store",
            store,
            "--policy",
            str(tmp_path / "policy.yml"),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)  # type: ignore[no-any-return]


async def _ingest(store_url: str, event: Event) -> None:
    store = open_store(store_url)
    await store.open()
    try:
        await ActivityLog(store, Identities(store)).ingest(event)
    finally:
        await store.close()


def test_dormant_activity_drift_and_expiry_from_the_targets(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/bridge.db"
    now = datetime.now(UTC)
    for world in make_world(tmp_path, store, access=ACCESS, guardrails=GUARDRAILS):
        ada, bob, carl = (joiner(world, f"{n}@example.com") for n in ("ada", "bob", "carl"))
        agency = joiner(
            world,
            "pia@agency.example",
            **{
                "schemas": [USER, ENTERPRISE, AGENCY],
                AGENCY: {"accessExpires": (now + timedelta(days=10)).isoformat()},
            },
        )
        group(world, "Marketing EMEA", [ada["id"], bob["id"]])
        group(world, "Agency - Bright Ideas", [agency["id"]])
        group(world, "project-autumn", [carl["id"]])
        world.converge(
            lambda w: (
                w.cld_folder_roles("ada@example.com") == {"campaigns/emea": {"contributor"}}
                and w.cld_folder_roles("pia@agency.example") == {"agencies/bright-ideas": {"contributor"}}
                and w.ico_collection_rights("bob@example.com") == {"EMEA": {"read", "write"}}
                and w.ico_projects_of("carl@example.com") == {"project-autumn"}
            )
        )
        # Logins as the targets report them: ada recently, bob long ago, carl never.
        for email, when in (
            ("ada@example.com", now - timedelta(days=3)),
            ("bob@example.com", now - timedelta(days=200)),
        ):
            world.cld_user(email)["last_login"] = when.isoformat().replace("+00:00", "Z")  # type: ignore[index]
            world.ico_user(email)["last_web_login"] = when.isoformat()  # type: ignore[index]
        asyncio.run(
            _ingest(
                store,
                Event(
                    "cloudinary",
                    "evt-1",
                    "upload",
                    "upload",
                    {"kind": "asset", "id": "a1"},
                    now - timedelta(days=1),
                    "user",
                    world.cld_user("ada@example.com")["id"],
                ),
            )
        )  # type: ignore[index]
        # Drift by hand: bob dropped from Marketing EMEA in Cloudinary, a folder role given to carl himself.
        emea = next(g for g, v in world.cloudinary.groups.items() if v["name"] == "Marketing EMEA")
        world.cloudinary.members[emea].remove(world.cld_user("bob@example.com")["id"])  # type: ignore[index]
        world.cloudinary.role_assignments.append(
            {
                **next(a for a in world.cloudinary.role_assignments if a["principal_id"] == emea),
                "principal_type": "user",
                "principal_id": world.cld_user("carl@example.com")["id"],
            }
        )  # type: ignore[index]
        review = review_cli(tmp_path, store, "--dormant-days", "90")

        dormant = {(d["target"], d["email"]): d for d in review["dormant"]}
        expected = {
            (t, e)
            for t in ("cloudinary", "iconik")
            for e in ("bob@example.com", "carl@example.com", "pia@agency.example")
        }
        assert set(dormant) == expected  # ada logged in 3 days ago; the service account is never listed
        assert dormant[("iconik", "bob@example.com")]["days_since_login"] == 200
        assert dormant[("cloudinary", "carl@example.com")]["days_since_login"] is None
        assert {
            (d["target"], d["email"]) for d in review_cli(tmp_path, store, "--dormant-days", "1")["dormant"]
        } == expected | {("cloudinary", "ada@example.com"), ("iconik", "ada@example.com")}
        rows = {(u["user_name"], u["target"]): u for u in review["users"]}
        assert rows[("ada@example.com", "cloudinary")]["last_activity"] is not None
        assert rows[("ada@example.com", "iconik")]["last_activity"] is None
        assert rows[("ada@example.com", "cloudinary")]["last_login"].startswith(
            (now - timedelta(days=3)).date().isoformat()
        )
        bob_row = rows[("bob@example.com", "cloudinary")]
        assert set(bob_row["differences"]) == {
            "not in group Marketing EMEA",
            "does not reach campaigns/emea (contributor)",
        }
        assert not rows[("bob@example.com", "iconik")]["differences"]
        carl_row = rows[("carl@example.com", "cloudinary")]
        assert carl_row["folders"] == [
            {
                "resource": "campaigns/emea",
                "rights": ["contributor"],
                "via": "direct",
                "rule": "not in the policy (granted outside the bridge)",
            }
        ]
        assert "reaches campaigns/emea (contributor) without a policy grant" in carl_row["differences"]
        assert (
            rows[("carl@example.com", "iconik")]["projects"][0]["rule"]
            == "access.iconik.projects (directory group 'project-autumn')"
        )
        emea_resource = next(r for r in review["resources"] if r["name"] == "campaigns/emea")
        assert {(x["email"], x["via"]) for x in emea_resource["reachers"]} == {
            ("ada@example.com", "Marketing EMEA"),
            ("carl@example.com", "direct"),
        }
        [pia] = review["external"]
        assert pia["user_name"] == "pia@agency.example" and pia["days_left"] in (9, 10) and not pia["expired"]
        assert pia["matched"] == ["guardrails.external[0]"]
        assert (
            rows[("pia@agency.example", "cloudinary")]["folders"][0]["rule"]
            == "access.cloudinary.folders[1] (agencies/bright-ideas)"
        )
        assert review["summary"]["sections"]["users_differing"] == 2 and review["orphans"] == []


def test_csv_cells_never_become_formulas_and_every_section_has_its_columns() -> None:
    from scim_bridge.audit.review import External, Review
    from scim_bridge.audit.review_report import COLUMNS, as_csv

    review = Review(
        "2026-01-01T00:00:00Z",
        "policy.yml",
        "sha256:00",
        90,
        {"directory": {"users": 1}, "targets": {}, "sections": {}},
        [],
        [],
        [],
        [],
        [
            External(
                "u1",
                '=HYPERLINK("http://x")',
                "@SUM(A1)",
                True,
                ["guardrails.external[0]"],
                None,
                True,
                -3,
                {"cloudinary": "none"},
            )
        ],
    )
    [row] = list(csv.DictReader(io.StringIO(as_csv(review, "external"))))
    assert row["userName"] == '\'=HYPERLINK("http://x")' and row["displayName"] == "'@SUM(A1)"
    assert row["days_left"] == "-3"  # a number stays a number
    for section, columns in COLUMNS.items():
        assert next(csv.reader(io.StringIO(as_csv(review, section)))) == columns  # even when empty

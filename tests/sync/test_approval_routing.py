"""Approval routing routes (issue 9 item 9): an asset that arrives in an iconik collection a reviewer
rule governs (directly, or below an `apply_to_contents` collection) gets one approval request naming
the rule's current reviewers, from the iconik webhook, and an audit entry with the rule, the asset
and the reviewers. A repeated delivery asks nobody again; a reviewer who left is not asked; with
nobody to ask there is an audit entry and no request. End to end over real HTTP against the
emulators, on both stores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.sync.conftest import World, make_world
from tests.sync.test_lifecycle import group, joiner

SECRET = "iconik-webhook-secret-for-tests"
ADMIN = {"Authorization": "Bearer admin-token-for-tests"}
ACCESS = {
    "iconik": {
        "collections": [
            {
                "title": "Brand Masters",
                "apply_to_contents": True,
                "grants": [{"group": "Legal Reviewers", "permissions": ["read"]}],
            },
            {"title": "Dailies", "grants": [{"group": "Legal Reviewers", "permissions": ["read"]}]},
        ]
    },
    "reviewers": [{"group": "Legal Reviewers", "collections": ["Brand Masters"]}],
}


def routed_world(tmp_path: Path, store: str) -> Iterator[World]:
    for world in make_world(tmp_path, store, access=ACCESS, iconik_credentials={"webhook_secret": SECRET}):
        with iconik_api(world) as api:
            for event_type in ("assets", "collections"):  # as an operator would subscribe the bridge
                hook = api.post(
                    "/API/notifications/v1/webhooks/",
                    json={
                        "url": f"{world.bridge.root}/webhooks/iconik",
                        "event_type": event_type,
                        "status": "ENABLED",
                        "headers": {"X-Bridge-Secret": SECRET},
                    },
                )
                assert hook.status_code == 201, hook.text
        yield world


def iconik_api(world: World) -> httpx.Client:
    headers = {"App-ID": world.iconik.app_id, "Auth-Token": world.iconik.auth_token}
    return httpx.Client(base_url=world.iconik_url, headers=headers, timeout=10)


def collection_id(world: World, title: str) -> str:
    return next(c["id"] for c in world.iconik.collections.values() if c["title"] == title)


def upload(world: World, title: str, into: str) -> str:
    """An asset made in iconik straight into a collection (as an upload into it would be)."""
    with iconik_api(world) as api:
        made = api.post(
            "/API/assets/v1/assets/?assign_to_collection=true", json={"title": title, "collection_id": into}
        )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def requests_made(world: World, asset_id: str) -> int:
    path = f"/API/assets/v1/assets/{asset_id}/approvals/request/"
    return sum(1 for c in list(world.iconik.calls) if c["method"] == "POST" and c["path"] == path)


def approval_entries(world: World) -> list[dict[str, Any]]:
    answer = httpx.get(f"{world.bridge.root}/admin/api/audit", headers=ADMIN, params={"format": "jsonl"}, timeout=60)
    assert answer.status_code == 200, answer.text
    return [e for line in answer.text.splitlines() if line and (e := json.loads(line)).get("kind") == "approval"]


def queue_empty(world: World) -> bool:
    return bool(httpx.get(f"{world.bridge.root}/admin/api/queue", headers=ADMIN).json()["total"] == 0)


def reviewers_synced(world: World, emails: list[str]) -> None:
    world.converge(
        lambda w: (
            all("Legal Reviewers" in w.ico_groups_of(e) for e in emails)
            and "Brand Masters" in w.ico_collection_rights(emails[0])
        )
    )


def test_an_asset_in_a_governed_collection_is_sent_to_its_current_reviewers_once(
    tmp_path: Path, bridge_store_url: str
) -> None:
    for world in routed_world(tmp_path, bridge_store_url):
        ada, bob = joiner(world, "ada@example.com"), joiner(world, "bob@example.com")
        carl = joiner(world, "carl@example.com")
        legal = group(world, "Legal Reviewers", [ada["id"], bob["id"], carl["id"]])
        reviewers_synced(world, ["ada@example.com", "bob@example.com", "carl@example.com"])
        # carl leaves: still a member of the directory group, but no longer active
        left = world.scim.patch(
            f"/Users/{carl['id']}",
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": False}],
            },
        )
        assert left.status_code == 200, left.text
        world.converge(lambda w: (w.ico_user("carl@example.com") or {}).get("status") != "ACTIVE")

        master = upload(world, "spring-master.mov", collection_id(world, "Brand Masters"))
        world.converge(lambda w: f"assets/{master}" in w.iconik.approvals, timeout=15)
        world.converge(lambda w: any(e["resource"]["id"] == master for e in approval_entries(w)), timeout=15)

        request = world.iconik.approvals[f"assets/{master}"]["request"]
        ids = {world.ico_user(e)["id"] for e in ("ada@example.com", "bob@example.com")}  # type: ignore[index]
        assert set(request["users"]) == ids  # the active reviewers, by their iconik accounts; not carl
        assert request["groups"] == [] and request["min_number"] == 1
        [entry] = [e for e in approval_entries(world) if e["resource"]["id"] == master]
        assert entry["state"] == "requested" and entry["rules"] == ["access.reviewers[0]"]
        assert entry["target"] == "iconik" and entry["collections"] == ["Brand Masters"]
        assert {r["userName"] for r in entry["reviewers"]} == {"ada@example.com", "bob@example.com"}
        assert {r["targetId"] for r in entry["reviewers"]} == ids
        assert legal["id"] and requests_made(world, master) == 1
        hook = next(h for h in world.iconik.webhooks.values() if h["event_type"] == "assets")
        delivered = json.loads(hook["last_payload"])  # master's: the only asset so far
        elsewhere = upload(world, "b-roll.mov", collection_id(world, "Dailies"))  # no reviewer rule governs it

        # the same delivery again (iconik retries anything but 200): nobody is asked twice
        assert delivered["object_id"] == master
        again = httpx.post(f"{world.bridge.root}/webhooks/iconik", json=delivered, headers={"X-Bridge-Secret": SECRET})
        assert again.status_code == 200, again.text
        world.converge(queue_empty, timeout=15)
        assert requests_made(world, master) == 1
        assert len([e for e in approval_entries(world) if e["resource"]["id"] == master]) == 1

        # content no rule governs: no request, no entry
        assert f"assets/{elsewhere}" not in world.iconik.approvals
        assert not [e for e in approval_entries(world) if e["resource"]["id"] == elsewhere]


def test_an_asset_added_below_an_apply_to_contents_collection_is_routed_too(
    tmp_path: Path, bridge_store_url: str
) -> None:
    for world in routed_world(tmp_path, bridge_store_url):
        ada = joiner(world, "ada@example.com")
        group(world, "Legal Reviewers", [ada["id"]])
        reviewers_synced(world, ["ada@example.com"])
        with iconik_api(world) as api:
            sub = api.post(
                "/API/assets/v1/collections/",
                json={"title": "Spring 2027", "parent_id": collection_id(world, "Brand Masters")},
            ).json()["id"]
            loose = api.post("/API/assets/v1/assets/", json={"title": "teaser.mov"}).json()["id"]  # in no collection
            added = api.post(
                f"/API/assets/v1/collections/{sub}/contents/", json={"object_id": loose, "object_type": "assets"}
            )
        assert added.status_code == 201, added.text
        world.converge(lambda w: f"assets/{loose}" in w.iconik.approvals, timeout=15)
        world.converge(lambda w: any(e["resource"]["id"] == loose for e in approval_entries(w)), timeout=15)
        assert world.iconik.approvals[f"assets/{loose}"]["request"]["users"] == [
            world.ico_user("ada@example.com")["id"]
        ]  # type: ignore[index]
        [entry] = [e for e in approval_entries(world) if e["resource"]["id"] == loose]
        assert entry["collections"] == ["Brand Masters"] and entry["state"] == "requested"


def test_with_no_reviewers_left_the_audit_says_so_and_nothing_is_requested(
    tmp_path: Path, bridge_store_url: str
) -> None:
    for world in routed_world(tmp_path, bridge_store_url):
        ada = joiner(world, "ada@example.com", active=False)  # the only reviewer has left
        group(world, "Legal Reviewers", [ada["id"]])
        world.converge(lambda w: "Brand Masters" in {c["title"] for c in w.iconik.collections.values()})
        master = upload(world, "summer-master.mov", collection_id(world, "Brand Masters"))
        world.converge(lambda w: any(e["resource"]["id"] == master for e in approval_entries(w)), timeout=15)
        [entry] = [e for e in approval_entries(world) if e["resource"]["id"] == master]
        assert entry["state"] == "no-reviewers" and entry["reviewers"] == []
        assert entry["rules"] == ["access.reviewers[0]"] and "no reviewers" in entry["detail"]
        world.converge(queue_empty, timeout=15)
        assert f"assets/{master}" not in world.iconik.approvals and requests_made(world, master) == 0


def test_an_asset_no_webhook_announced_is_routed_by_the_sweep_after_a_grants_run(
    tmp_path: Path, bridge_store_url: str
) -> None:
    periodic = {**ACCESS, "iconik": {**ACCESS["iconik"], "regrant_seconds": 1}}  # a grants run every second
    for world in make_world(tmp_path, bridge_store_url, access=periodic):  # no webhook subscribed
        ada = joiner(world, "ada@example.com")
        group(world, "Legal Reviewers", [ada["id"]])
        reviewers_synced(world, ["ada@example.com"])
        master = upload(world, "autumn-master.mov", collection_id(world, "Brand Masters"))
        world.converge(lambda w: f"assets/{master}" in w.iconik.approvals, timeout=15)
        assert world.iconik.approvals[f"assets/{master}"]["request"]["users"] == [
            world.ico_user("ada@example.com")["id"]
        ]  # type: ignore[index]
        world.converge(lambda w: len([e for e in approval_entries(w) if e["resource"]["id"] == master]) == 1)
        # later sweeps find it routed: asked once
        sweeps = sum(1 for c in list(world.iconik.calls) if c["path"] == "/API/assets/v1/collections/")
        world.converge(
            lambda w: sum(1 for c in list(w.iconik.calls) if c["path"] == "/API/assets/v1/collections/") > sweeps + 2
        )
        assert requests_made(world, master) == 1

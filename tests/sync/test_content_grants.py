"""`apply_to_contents` is continuous: a sub-collection someone makes in iconik under a governed
collection gets the collection's ACL without any directory change, at once through the iconik
webhook, within `access.iconik.regrant_seconds` without it; `reconcile` reports a sub-collection
missing it and `--apply` repairs it. End to end over real HTTP against the emulators."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.sync.conftest import World, make_world
from tests.sync.test_lifecycle import group, joiner

SECRET = "iconik-webhook-secret-for-tests"
BOUND_SECONDS = 15.0  # what the test allows: the webhook path takes well under a second


def access(regrant_seconds: int) -> dict[str, Any]:
    return {
        "iconik": {
            "collections": [
                {
                    "title": "Post Production",
                    "apply_to_contents": True,
                    "grants": [{"group": "Post Production", "permissions": ["read", "write", "delete"]}],
                }
            ],
            "regrant_seconds": regrant_seconds,
        }
    }


def worlds(tmp_path: Path, store: str, regrant_seconds: int, webhook: bool) -> Iterator[World]:
    yield from make_world(
        tmp_path,
        store,
        access=access(regrant_seconds),
        iconik_credentials={"webhook_secret": SECRET} if webhook else None,
    )


def iconik_api(world: World) -> httpx.Client:
    """A person's own iconik session (the emulator's token)."""
    headers = {"App-ID": world.iconik.app_id, "Auth-Token": world.iconik.auth_token}
    return httpx.Client(base_url=world.iconik_url, headers=headers, timeout=10)


def governed(world: World) -> tuple[str, str]:
    """The Post Production collection's id and the id of the iconik group granted on it, once granted."""
    ada = joiner(world, "ada@example.com")
    group(world, "Post Production", [ada["id"]])
    world.converge(
        lambda w: w.ico_collection_rights("ada@example.com") == {"Post Production": {"read", "write", "delete"}}
    )
    collection = next(c["id"] for c in world.iconik.collections.values() if c["title"] == "Post Production")
    group_id = next(g for g, v in world.iconik.groups.items() if v["name"] == "Post Production")
    return collection, group_id


def new_sub_collection(world: World, parent: str, title: str) -> str:
    with iconik_api(world) as api:
        made = api.post("/API/assets/v1/collections/", json={"title": title, "parent_id": parent})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def rights_on(world: World, collection_id: str, group_id: str) -> set[str]:
    entry = world.iconik.acls.get(f"collections/{collection_id}", {}).get("groups", {}).get(group_id)
    return set(entry["permissions"]) if entry else set()


def test_a_sub_collection_made_in_iconik_gets_the_acl_at_once_through_the_webhook(
    tmp_path: Path, bridge_store_url: str
) -> None:
    for world in worlds(tmp_path, bridge_store_url, regrant_seconds=0, webhook=True):  # no periodic pass
        with iconik_api(world) as api:
            hook = api.post(
                "/API/notifications/v1/webhooks/",
                json={
                    "url": f"{world.bridge.root}/webhooks/iconik",
                    "event_type": "collections",
                    "status": "ENABLED",
                    "headers": {"X-Bridge-Secret": SECRET},
                },
            )
        assert hook.status_code == 201, hook.text
        parent, group_id = governed(world)
        dailies = new_sub_collection(world, parent, "Dailies")
        world.converge(lambda w: rights_on(w, dailies, group_id) == {"read", "write", "delete"}, BOUND_SECONDS)
        deeper = new_sub_collection(world, dailies, "Day 2")  # any depth below the governed collection
        world.converge(lambda w: rights_on(w, deeper, group_id) == {"read", "write", "delete"}, BOUND_SECONDS)


def test_without_webhooks_the_periodic_grants_pass_covers_new_content(tmp_path: Path, bridge_store_url: str) -> None:
    for world in worlds(tmp_path, bridge_store_url, regrant_seconds=1, webhook=False):
        parent, group_id = governed(world)
        dailies = new_sub_collection(world, parent, "Dailies")
        world.converge(lambda w: rights_on(w, dailies, group_id) == {"read", "write", "delete"}, BOUND_SECONDS)


def test_reconcile_reports_a_sub_collection_missing_the_content_acl_and_apply_repairs_it(
    tmp_path: Path, bridge_store_url: str
) -> None:
    for world in worlds(tmp_path, bridge_store_url, regrant_seconds=0, webhook=False):
        parent, group_id = governed(world)
        dailies = new_sub_collection(world, parent, "Dailies")

        def run(*extra: str) -> subprocess.CompletedProcess[str]:
            command = [sys.executable, "-m", "scim_bridge", "reconcile", "--store", bridge_store_url]
            return subprocess.run(
                [*command, "--policy", str(tmp_path / "policy.yml"), "--json", *extra],
                capture_output=True,
                text=True,
                timeout=120,
            )

        report = run()
        assert report.returncode == 1, report.stderr
        drift = [d for d in json.loads(report.stdout)["drift"] if d["kind"] == "missing-content-grant"]
        assert len(drift) == 1 and drift[0]["subject"] == "Post Production" and dailies in drift[0]["detail"]
        assert rights_on(world, dailies, group_id) == set()  # only reported

        repaired = run("--apply")
        assert repaired.returncode in (0, 1), repaired.stderr
        assert rights_on(world, dailies, group_id) == {"read", "write", "delete"}
        again = run()
        assert not [d for d in json.loads(again.stdout)["drift"] if d["kind"] == "missing-content-grant"]

"""The read-only sync-status extension on SCIM resources: where a user or group stands in each
target, returned only when asked for, never writable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.sync.conftest import World, make_world
from tests.sync.test_lifecycle import group as make_group
from tests.sync.test_lifecycle import joiner

SYNC = "urn:scim-bridge:schemas:extension:sync:2.0:SyncStatus"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:  # the store does not matter here: SQLite only
    yield from make_world(tmp_path, f"sqlite:///{tmp_path}/bridge.db")


def status(world: World, path: str) -> dict[str, dict[str, Any]]:
    response = world.scim.get(path, params={"attributes": SYNC})
    assert response.status_code == 200, response.text
    body = response.json()
    assert SYNC in body["schemas"]
    return {entry["target"]: entry for entry in body[SYNC]["targets"]}


def test_user_status_per_target_only_when_asked_and_pending_after_a_change(world: World) -> None:
    ada = joiner(world, "ada@example.com")
    make_group(world, "Video Team", [ada["id"]])
    world.converge(
        lambda w: (
            status(w, f"/Users/{ada['id']}")["iconik"]["state"] == "synced"
            and status(w, f"/Users/{ada['id']}")["cloudinary"]["state"] == "synced"
        )
    )
    targets = status(world, f"/Users/{ada['id']}")
    assert targets["cloudinary"]["targetId"] == world.cld_user("ada@example.com")["id"]  # type: ignore[index]
    assert targets["iconik"]["targetId"] == world.ico_user("ada@example.com")["id"]  # type: ignore[index]
    assert targets["cloudinary"]["enabled"] is True and "Video Team" in targets["cloudinary"]["groups"]
    assert targets["cloudinary"]["lastSync"].endswith("Z")

    plain = world.scim.get(f"/Users/{ada['id']}").json()
    assert SYNC not in plain and SYNC not in plain["schemas"]  # returned "request" only

    # Cloudinary refuses everything: the change stays pending or failed there, never "synced".
    httpx.put(f"{world.cloudinary_url}/_emulator/faults", json={"error_rate": 1.0, "error_status": 503})
    world.scim.patch(
        f"/Users/{ada['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "displayName", "value": "Ada L."}],
        },
    )
    assert status(world, f"/Users/{ada['id']}")["cloudinary"]["state"] in ("pending", "failed")
    world.converge(lambda w: status(w, f"/Users/{ada['id']}")["cloudinary"]["state"] == "failed")
    assert "503" in status(world, f"/Users/{ada['id']}")["cloudinary"]["error"]
    httpx.put(f"{world.cloudinary_url}/_emulator/faults", json={"error_rate": 0.0})
    world.converge(lambda w: status(w, f"/Users/{ada['id']}")["cloudinary"]["state"] == "synced")


def test_status_in_lists_and_for_groups(world: World) -> None:
    bea = joiner(world, "bea@example.com")
    group = make_group(world, "Brand", [bea["id"]])
    world.converge(lambda w: status(w, f"/Groups/{group['id']}")["iconik"]["state"] == "synced")
    assert status(world, f"/Groups/{group['id']}")["iconik"]["targetId"] in world.iconik.groups
    listed = world.scim.get("/Users", params={"attributes": f"userName,{SYNC}:targets"}).json()["Resources"]
    assert listed and all({t["target"] for t in user[SYNC]["targets"]} == {"cloudinary", "iconik"} for user in listed)


def test_the_extension_cannot_be_written(world: World) -> None:
    ada = joiner(world, "cy@example.com")
    forged = {**world.scim.get(f"/Users/{ada['id']}").json(), SYNC: {"targets": [{"target": "x", "state": "synced"}]}}
    forged["schemas"] = [*forged["schemas"], SYNC]
    replaced = world.scim.put(f"/Users/{ada['id']}", json=forged)
    assert replaced.status_code == 200 and SYNC not in replaced.json()  # read-only values are ignored
    patched = world.scim.patch(
        f"/Users/{ada['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": f"{SYNC}:targets", "value": []}],
        },
    )
    assert patched.status_code == 400 and patched.json()["scimType"] == "mutability"


def test_discovery_describes_the_extension_once(world: World) -> None:
    schemas = [s["id"] for s in world.scim.get("/Schemas").json()["Resources"]]
    assert schemas.count(SYNC) == 1
    document = world.scim.get(f"/Schemas/{SYNC}").json()
    [targets] = document["attributes"]
    assert targets["mutability"] == "readOnly" and targets["returned"] == "request"
    for name in ("User", "Group"):
        extensions = world.scim.get(f"/ResourceTypes/{name}").json()["schemaExtensions"]
        assert {"schema": SYNC, "required": False} in extensions

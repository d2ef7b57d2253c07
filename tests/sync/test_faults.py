"""Nothing lost under faults: 20% 5xx, dropped connections, added latency and a 429 storm on both
emulators during a 2,000-user load; then the targets hold exactly the desired state."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
import redis

from tests.scim.conftest import ENTERPRISE, GROUP, USER
from tests.sync.conftest import World, make_world

USERS = int(os.environ.get("SCIM_BRIDGE_FAULT_USERS", "2000"))
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
DEPARTMENTS = ["Marketing", "Product", "Legal", "Brand"]
ADMIN = "admin-token-for-tests"


def faults(world: World, **settings: object) -> None:
    for url in (world.cloudinary_url, world.iconik_url):
        assert httpx.put(f"{url}/_emulator/faults", json=settings).status_code == 200


@pytest.mark.slow  # 50-70 s per store
@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_load_under_faults_converges_exactly(store: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if store == "sqlite":
        url = f"sqlite:///{tmp_path}/faults.db"
    else:
        url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(url).flushdb()
    for world in make_world(tmp_path, url, target_rate=2000):
        faults(world, error_rate=0.2, error_status=503, latency_ms=1, drop_rate=0.02, seed=11)
        ids: list[str] = []
        for start in range(0, USERS, 500):  # the directory arrives in Bulk requests, as a first OTDS push would
            operations = [
                {
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": f"u{i}",
                    "data": {
                        "schemas": [USER, ENTERPRISE],
                        "userName": f"load{i}@example.com",
                        "active": True,
                        "name": {"givenName": f"Given{i}", "familyName": "Load"},
                        "emails": [{"value": f"load{i}@example.com", "type": "work", "primary": True}],
                        ENTERPRISE: {"department": DEPARTMENTS[i % len(DEPARTMENTS)]},
                    },
                }
                for i in range(start, min(start + 500, USERS))
            ]
            response = world.scim.post("/Bulk", json={"schemas": [BULK], "Operations": operations}, timeout=120)
            assert response.status_code == 200
            ids += [op["location"].rsplit("/", 1)[1] for op in response.json()["Operations"] if op["status"] == "201"]
            if start == 500:
                faults(world, storm_seconds=2)  # a 429 storm in the middle of the load
        assert len(ids) == USERS
        teams = {}
        for team in range(10):
            members = ids[team::10][:50]
            teams[f"Team {team}"] = members
            assert (
                world.scim.post(
                    "/Groups",
                    json={
                        "schemas": [GROUP],
                        "displayName": f"Team {team}",
                        "members": [{"value": m} for m in members],
                    },
                ).status_code
                == 201
            )
        started = time.monotonic()
        world.converge(
            lambda w: len(w.cloudinary.users) == USERS and len(w.iconik.users) == USERS + 1,
            timeout=float(os.environ.get("SCIM_BRIDGE_FAULT_TIMEOUT", "600")),
        )
        loaded = time.monotonic() - started
        leavers = ids[:25]  # leavers once they have accounts (an inactive joiner never gets one)
        for user_id in leavers:
            world.scim.patch(
                f"/Users/{user_id}",
                json={
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "active", "value": False}],
                },
            )

        index = {user_id: i for i, user_id in enumerate(ids)}
        why = [""]

        def fail(reason: str) -> bool:
            why[0] = reason
            return False

        def exactly_as_desired(w: World) -> bool:
            cld_users = list(w.cloudinary.users.values())
            ico_users = [u for u in w.iconik.users.values() if u["id"] != w.iconik.token_user_id]
            if len(cld_users) != USERS or len(ico_users) != USERS:
                return fail(f"accounts: cloudinary {len(cld_users)}, iconik {len(ico_users)}")
            if len({u["email"] for u in cld_users}) != USERS or len({u["email"] for u in ico_users}) != USERS:
                return fail("a duplicate account")
            disabled = {f"load{index[u]}@example.com" for u in leavers}
            if {u["email"] for u in cld_users if not u["enabled"]} != disabled:
                return fail("cloudinary disabled set")
            if {u["email"] for u in ico_users if u["status"] != "ACTIVE"} != disabled:
                return fail("iconik disabled set")
            cld_groups = {
                g["name"]: {w.cloudinary.users[m]["email"] for m in w.cloudinary.members[g["id"]]}
                for g in list(w.cloudinary.groups.values())
            }
            for name, members in teams.items():
                if cld_groups.get(name) != {f"load{index[m]}@example.com" for m in members}:
                    return fail(f"cloudinary {name}")
            ico_members: dict[str, set[str]] = {}
            for user in ico_users:
                for group_id in user["groups"]:
                    ico_members.setdefault(w.iconik.groups[group_id]["name"], set()).add(user["email"])
            for name, members in teams.items():
                if ico_members.get(name) != {f"load{index[m]}@example.com" for m in members}:
                    return fail(f"iconik {name}")
            for position, department in enumerate(DEPARTMENTS):
                expected = {f"load{i}@example.com" for i in range(position, USERS, len(DEPARTMENTS))}
                if (
                    cld_groups.get(f"dept-{department}") != expected
                    or ico_members.get(f"dept-{department}") != expected
                ):
                    return fail(f"dept-{department}")
            return True

        try:
            world.converge(exactly_as_desired, timeout=float(os.environ.get("SCIM_BRIDGE_FAULT_TIMEOUT", "600")))
        except AssertionError:
            admin = httpx.get(
                f"{world.bridge.root}/admin/api/dead-letters", headers={"Authorization": f"Bearer {ADMIN}"}
            ).text[:2000]
            raise AssertionError(f"not converged: {why[0]}; dead letters: {admin}") from None
        print(
            f"{store}: {USERS} users provisioned under faults in {loaded:.1f} s, exact state after "
            f"{time.monotonic() - started:.1f} s"
        )

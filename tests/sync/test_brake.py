"""The mass-deprovision brake, over real HTTP against both emulators, on both stores: one leaver
is revoked at once; past the threshold the rest are held until a person approves or rejects."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import redis
import yaml
from hypothesis import strategies as st

from scim_bridge.emulators import cloudinary, iconik
from scim_bridge.store import open_store
from scim_bridge.sync.policy import PolicyError, load_policy
from tests.emulators.live import LiveApp
from tests.live import LiveBridge, free_port
from tests.sync.conftest import World, make_world
from tests.sync.test_crash import start_bridge

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ADMIN = {"Authorization": "Bearer admin-token-for-tests"}


def push_users(world: World, count: int, prefix: str) -> list[str]:
    """Create `count` active users through SCIM Bulk (as a first OTDS push would); their SCIM ids."""
    ids: list[str] = []
    for start in range(0, count, 1000):
        operations = [
            {
                "method": "POST",
                "bulkId": f"u{i}",
                "path": "/Users",
                "data": {"schemas": [USER], "userName": f"{prefix}{i}@example.com", "active": True},
            }
            for i in range(start, min(count, start + 1000))
        ]
        answer = world.scim.post("/Bulk", json={"schemas": [BULK], "Operations": operations}, timeout=120)
        assert answer.status_code == 200, answer.text
        ids += [op["location"].rsplit("/", 1)[1] for op in answer.json()["Operations"]]
    return ids


def deactivate(world: World, ids: list[str]) -> None:
    for start in range(0, len(ids), 1000):
        operations = [
            {
                "method": "PATCH",
                "path": f"/Users/{scim_id}",
                "data": {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]},
            }
            for scim_id in ids[start : start + 1000]
        ]
        answer = world.scim.post("/Bulk", json={"schemas": [BULK], "Operations": operations}, timeout=120)
        assert answer.status_code == 200 and all(op["status"] == "200" for op in answer.json()["Operations"])


def disabled(world: World, prefix: str) -> tuple[int, int]:
    cld = sum(1 for u in list(world.cloudinary.users.values()) if u["email"].startswith(prefix) and not u["enabled"])
    ico = sum(1 for u in list(world.iconik.users.values()) if u["email"].startswith(prefix) and u["status"] != "ACTIVE")
    return cld, ico


def provisioned(world: World, prefix: str) -> tuple[int, int]:
    cld = sum(1 for u in list(world.cloudinary.users.values()) if u["email"].startswith(prefix))
    ico = sum(1 for u in list(world.iconik.users.values()) if u["email"].startswith(prefix))
    return cld, ico


def held(world: World) -> dict[str, Any]:
    answer = httpx.get(f"{world.bridge.root}/admin/api/held", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def settled(world: World) -> None:
    """Wait for the queue to empty (every change processed, or held)."""
    world.converge(lambda w: httpx.get(f"{w.bridge.root}/admin/api/queue", headers=ADMIN).json()["total"] == 0)


@contextlib.contextmanager
def brake_world(tmp_path: Path, store_url: str, **deprovision: Any) -> Iterator[World]:
    yield from make_world(tmp_path, store_url, target_rate=400, safety={"deprovision": deprovision})


def brake_entries(world: World) -> list[dict[str, Any]]:
    """Every brake entry of the audit trail (the JSON lines export, which is not paged)."""
    answer = httpx.get(f"{world.bridge.root}/admin/api/audit", headers=ADMIN, params={"format": "jsonl"}, timeout=60)
    assert answer.status_code == 200, answer.text
    entries = [json.loads(line) for line in answer.text.splitlines() if line]
    return [e for e in entries if e.get("kind") == "brake"]


@pytest.mark.slow
def test_a_thousand_leavers_at_once_revoke_only_the_threshold_and_approval_revokes_the_rest(
    bridge_store_url: str, tmp_path: Path
) -> None:
    with brake_world(tmp_path, bridge_store_url) as world:  # the defaults: 50 in 10 min, 5 %
        ids = push_users(world, 1000, "mass")
        world.converge(lambda w: provisioned(w, "mass") == (1000, 1000), timeout=120)
        deactivate(world, ids)
        settled(world)
        time.sleep(0.5)  # nothing more goes out: held stays held
        assert disabled(world, "mass") == (50, 50)  # min(50, 5 % of 1,000)
        state = held(world)
        for target in ("cloudinary", "iconik"):
            assert state["brake"]["targets"][target]["engaged"] is not None
            assert state["brake"]["targets"][target]["held"] == 950
        assert {h["kinds"][0] for h in state["held"]} == {"disable"}
        # Each target's brake counts on its own, so the 50 revoked need not be the same people in
        # both: ask about someone held in both.
        held_in: dict[str, set[str]] = {}
        for h in state["held"]:
            held_in.setdefault(h["resource"]["id"], set()).add(h["target"])
        both = next(rid for rid, targets in held_in.items() if targets == {"cloudinary", "iconik"})
        status = world.scim.get(
            f"/Users/{both}",
            params={"attributes": "urn:scim-bridge:schemas:extension:sync:2.0:SyncStatus"},
        ).json()
        states = {
            t["target"]: t["state"] for t in status["urn:scim-bridge:schemas:extension:sync:2.0:SyncStatus"]["targets"]
        }
        assert states == {"cloudinary": "held", "iconik": "held"}

        approved = httpx.post(
            f"{world.bridge.root}/admin/api/held/approve", headers=ADMIN, json={"all": True}, timeout=60
        )
        assert approved.status_code == 200 and approved.json() == {"approved": 1900}  # in both targets
        world.converge(lambda w: disabled(w, "mass") == (1000, 1000), timeout=120)
        after = held(world)
        assert after["held"] == [] and all(t["engaged"] is None for t in after["brake"]["targets"].values())
        again = httpx.post(f"{world.bridge.root}/admin/api/held/approve", headers=ADMIN, json={"all": True})
        assert again.status_code == 409  # nothing is held any more: a clear error, nothing applied twice
        decisions = [e for e in brake_entries(world) if e["action"] == "approved"]
        assert len(decisions) == 1900 and all(e["by"].startswith("admin") for e in decisions)


def test_below_the_threshold_a_leaver_is_revoked_at_once_and_nothing_is_held(
    bridge_store_url: str, tmp_path: Path
) -> None:
    with brake_world(tmp_path, bridge_store_url, max_count=5) as world:
        ids = push_users(world, 8, "few")
        world.converge(lambda w: provisioned(w, "few") == (8, 8))
        deactivate(world, ids[:5])
        world.converge(lambda w: disabled(w, "few") == (5, 5))
        settled(world)
        assert held(world)["held"] == []


def test_rejected_changes_keep_access_and_a_later_directory_change_is_judged_anew(
    bridge_store_url: str, tmp_path: Path
) -> None:
    with brake_world(tmp_path, bridge_store_url, max_count=3) as world:
        ids = push_users(world, 10, "rej")
        world.converge(lambda w: provisioned(w, "rej") == (10, 10))
        deactivate(world, ids)
        settled(world)
        assert disabled(world, "rej") == (3, 3)
        state = held(world)
        assert len(state["held"]) == 14  # 7 people in each target
        rejected = httpx.post(f"{world.bridge.root}/admin/api/held/reject", headers=ADMIN, json={"all": True})
        assert rejected.status_code == 200 and rejected.json() == {"rejected": 14}
        # A sync for another reason (the policy's reconcile, a group change) keeps the access.
        group = world.scim.post(
            "/Groups", json={"schemas": [GROUP], "displayName": "Rej Team", "members": [{"value": ids[9]}]}
        )
        assert group.status_code == 201
        settled(world)
        time.sleep(0.3)
        assert disabled(world, "rej") == (3, 3) and held(world)["held"] == []
        late = httpx.post(
            f"{world.bridge.root}/admin/api/held/approve", headers=ADMIN, json={"ids": [f"User/{ids[9]}"]}
        )
        assert late.status_code == 409 and "rejected" in late.json()["error"]
        # The person is reactivated, then deactivated again: a new change, judged by the brake anew.
        for active in (True, False):
            world.scim.patch(
                f"/Users/{ids[9]}",
                json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": active}]},
            )
            settled(world)
        assert any(h["resource"]["id"] == ids[9] for h in held(world)["held"])  # 3 admitted in the window


def test_an_emptied_group_engages_the_brake_before_any_member_loses_it(bridge_store_url: str, tmp_path: Path) -> None:
    with brake_world(tmp_path, bridge_store_url, max_count=5) as world:
        ids = push_users(world, 12, "team")
        group = world.scim.post(
            "/Groups",
            json={"schemas": [GROUP], "displayName": "Big Team", "members": [{"value": i} for i in ids]},
        ).json()
        world.converge(
            lambda w: all(
                w.cld_groups_of(f"team{i}@example.com") == w.ico_groups_of(f"team{i}@example.com") == {"Big Team"}
                for i in range(12)
            )
        )
        settled(world)  # the group's own sync has recorded its members too
        emptied = world.scim.patch(
            f"/Groups/{group['id']}", json={"schemas": [PATCH], "Operations": [{"op": "remove", "path": "members"}]}
        )
        assert emptied.status_code in (200, 204)
        settled(world)
        time.sleep(0.3)
        assert all(world.cld_groups_of(f"team{i}@example.com") == {"Big Team"} for i in range(12))
        assert all(world.ico_groups_of(f"team{i}@example.com") == {"Big Team"} for i in range(12))
        state = held(world)
        assert "would remove 12 people at once" in state["brake"]["targets"]["cloudinary"]["engaged"]["reason"]
        assert {h["kinds"][0] for h in state["held"]} == {"remove-membership"} and len(state["held"]) == 24


def test_decisions_that_cannot_apply_are_clear_errors(bridge_store_url: str, tmp_path: Path) -> None:
    with brake_world(tmp_path, bridge_store_url, max_count=1) as world:
        ids = push_users(world, 3, "bad")
        world.converge(lambda w: provisioned(w, "bad") == (3, 3))
        deactivate(world, ids)
        settled(world)
        url = f"{world.bridge.root}/admin/api/held"
        assert httpx.post(f"{url}/approve", headers=ADMIN, content=b"{not json").status_code == 400
        assert httpx.post(f"{url}/approve", headers=ADMIN, json={}).status_code == 400  # says what to send
        assert httpx.post(f"{url}/approve", headers=ADMIN, json={"all": True, "target": "nope"}).status_code == 409
        unknown = httpx.post(f"{url}/approve", headers=ADMIN, json={"ids": ["User/no-such-user"]})
        assert unknown.status_code == 409 and "no held change" in unknown.json()["error"]
        heldkey = f"User/{held(world)['held'][0]['resource']['id']}"
        first = httpx.post(f"{url}/approve", headers=ADMIN, json={"ids": [heldkey], "target": "cloudinary"})
        assert first.json() == {"approved": 1}
        twice = httpx.post(f"{url}/approve", headers=ADMIN, json={"ids": [heldkey], "target": "cloudinary"})
        assert twice.status_code == 409
        assert httpx.get(url).status_code == 401  # admin credentials required


@pytest.mark.parametrize(
    "deprovision, message",
    [
        ({"max_count": 0}, "0 would hold every leaver"),
        ({"max_share": 150}, "not a percentage"),
        ({"max_share": 0}, "not a percentage"),
        ({"window_seconds": -1}, "window_seconds"),
    ],
)
def test_a_threshold_of_zero_or_above_100_percent_is_refused_at_load(
    tmp_path: Path, deprovision: dict[str, Any], message: str
) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(yaml.safe_dump({"safety": {"deprovision": deprovision}}))
    with pytest.raises(PolicyError, match=message):
        load_policy(policy)


def test_two_replicas_on_one_redis_apply_an_approval_once(redis_url: str, tmp_path: Path) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    with brake_world(tmp_path, redis_url, max_count=2) as world:
        ids = push_users(world, 12, "rep")
        world.converge(lambda w: provisioned(w, "rep") == (12, 12))
        deactivate(world, ids)
        settled(world)
        assert len(held(world)["held"]) == 20
        with LiveBridge(redis_url, policy=tmp_path / "policy.yml", admin_tokens=["admin-token-for-tests"]) as other:
            answers: list[httpx.Response] = []

            def approve(root: str) -> None:
                answers.append(httpx.post(f"{root}/admin/api/held/approve", headers=ADMIN, json={"all": True}))

            threads = [threading.Thread(target=approve, args=(r,)) for r in (world.bridge.root, other.root) * 2]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sum(a.json().get("approved", 0) for a in answers if a.status_code == 200) == 20  # held changes
            world.converge(lambda w: disabled(w, "rep") == (12, 12))
        approvals = [(e["target"], e["resource"]["id"]) for e in brake_entries(world) if e["action"] == "approved"]
        assert len(approvals) == len(set(approvals)) == 20  # each held change decided once


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_held_changes_survive_kill_9_and_an_approval_from_the_cli_goes_out_on_the_revocation_lane(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    cld_state, ico_state = cloudinary.CloudinaryState(), iconik.IconikState()
    with LiveApp(cloudinary.build(cld_state)) as cld, LiveApp(iconik.build(ico_state)) as ico:
        (tmp_path / "cld.json").write_text(
            json.dumps({"account_id": cld_state.account_id, "key": cld_state.key, "secret": cld_state.secret})
        )
        (tmp_path / "ico.json").write_text(json.dumps({"app_id": ico_state.app_id, "auth_token": ico_state.auth_token}))
        policy = tmp_path / "policy.yml"
        targets = {
            "cloudinary": {"enabled": True, "base_url": cld.url, "credentials_file": str(tmp_path / "cld.json")},
            "iconik": {"enabled": True, "base_url": ico.url, "credentials_file": str(tmp_path / "ico.json")},
        }
        for target in targets.values():
            target["rate"] = 500
        policy.write_text(yaml.safe_dump({"targets": targets, "safety": {"deprovision": {"max_count": 2}}}))
        if backend == "sqlite":
            store = f"sqlite:///{tmp_path}/brake.db"
        else:
            store = request.getfixturevalue("redis_url")
            redis.Redis.from_url(store).flushdb()
        port = free_port()
        bridge = start_bridge(store, policy, port)
        auth = {"Authorization": "Bearer crash-test-token"}
        base = f"http://127.0.0.1:{port}/scim/v2"
        try:
            ids = []
            for i in range(6):
                body = {"schemas": [USER], "userName": f"kill{i}@example.com", "active": True}
                ids.append(httpx.post(f"{base}/Users", json=body, headers=auth).json()["id"])
            deadline = time.monotonic() + 60
            while sum(1 for u in list(cld_state.users.values()) if u["enabled"]) < 6 or len(ico_state.users) < 7:
                assert time.monotonic() < deadline, "the joiners did not arrive"
                time.sleep(0.05)
            for scim_id in ids:
                off = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]}
                assert httpx.patch(f"{base}/Users/{scim_id}", json=off, headers=auth).status_code == 200

            async def lanes() -> dict[str, int]:
                opened = open_store(store)
                await opened.open()
                try:
                    return (await opened.queue_depth()).lanes
                finally:
                    await opened.close()

            cli = [sys.executable, "-m", "scim_bridge", "held"]
            env = {**os.environ, "SCIM_BRIDGE_POLICY": str(policy), "SCIM_BRIDGE_STORE": store}
            deadline = time.monotonic() + 60
            while True:
                listed = subprocess.run([*cli, "list", "--json"], env=env, capture_output=True, text=True)
                # all 8 held and no leaver's entry still in flight (one leased at the kill stays
                # queued, rightly, and would be counted with the approved ones below)
                if (
                    listed.returncode == 0
                    and len(json.loads(listed.stdout)["held"]) == 8
                    and not asyncio.run(lanes()).get("revocation")
                ):
                    break
                assert time.monotonic() < deadline, listed.stdout + listed.stderr
                time.sleep(0.1)
            bridge.send_signal(signal.SIGKILL)
            bridge.wait()
            assert sum(1 for u in cld_state.users.values() if not u["enabled"]) == 2

            approved = subprocess.run([*cli, "approve", "--all", "--by", "ops-lead"], env=env, capture_output=True)
            assert approved.returncode == 0, approved.stderr
            assert b"approved 8 held change(s)" in approved.stdout  # 4 people, in both targets

            assert asyncio.run(lanes()).get("revocation") == 4
            again = subprocess.run([*cli, "approve", "--all"], env=env, capture_output=True, text=True)
            assert again.returncode == 1 and "nothing is held" in again.stderr

            bridge = start_bridge(store, policy, port)
            deadline = time.monotonic() + 60
            while (
                sum(1 for u in list(cld_state.users.values()) if not u["enabled"]) < 6
                or sum(1 for u in list(ico_state.users.values()) if u["status"] != "ACTIVE") < 6
            ):
                assert time.monotonic() < deadline, "the approved leavers were not revoked after the restart"
                time.sleep(0.05)
        finally:
            bridge.send_signal(signal.SIGKILL)
            bridge.wait()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
DECISION_BODIES = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {},
        optional={"all": JSON | st.booleans(), "ids": JSON | st.lists(st.text(max_size=40)), "target": JSON},
    ),
)


def test_generated_decision_bodies_get_a_clear_answer_and_never_a_5xx(bridge_store_url: str, tmp_path: Path) -> None:
    with brake_world(tmp_path, bridge_store_url, max_count=1) as world:
        ids = push_users(world, 3, "fz")
        world.converge(lambda w: provisioned(w, "fz") == (3, 3))
        deactivate(world, ids[:1] + ids[2:])  # one revoked, one held per target
        settled(world)
        url = f"{world.bridge.root}/admin/api/held"

        @hypothesis.settings(max_examples=150, deadline=None, database=None)
        @hypothesis.given(
            action=st.sampled_from(["approve", "reject", "release"]), body=DECISION_BODIES, raw=st.booleans()
        )
        def decide(action: str, body: Any, raw: bool) -> None:
            content = json.dumps(body).encode() if not raw else json.dumps(body).encode()[:-1]
            answer = httpx.post(f"{url}/{action}", headers=ADMIN, content=content, timeout=30)
            assert answer.status_code in (200, 400, 409), (action, body, answer.status_code, answer.text)
            assert "error" in answer.json() or answer.status_code == 200

        decide()
        assert httpx.get(url, headers=ADMIN).status_code == 200

"""What /metrics shows of the sync, over real HTTP against both emulators, on both stores: target
calls and the sync lag after a joiner and a leaver, the held gauge when the brake holds changes,
the dead-letter gauge, and the target state when a target is quarantined.

Counters are per process (the tests share one), so they are compared with a scrape taken before
the action; the store-read gauges are absolute.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from tests.metrics_scrape import Samples, scrape, value
from tests.sync.conftest import World
from tests.sync.test_brake import brake_world, deactivate, provisioned, push_users, settled
from tests.sync.test_lifecycle import joiner

ADMIN = "admin-token-for-tests"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def metrics(world: World) -> Samples:
    return scrape(world.bridge.root, ADMIN)[0]


def eventually(world: World, check: Callable[[Samples], bool]) -> Samples:
    """The first scrape on which `check` holds (store-read gauges are cached for two seconds)."""
    found: list[Samples] = []

    def holds(w: World) -> bool:
        samples = metrics(w)
        if check(samples):
            found.append(samples)
            return True
        return False

    world.converge(holds, timeout=30)
    return found[-1]


def test_a_sync_moves_the_target_calls_and_the_lag_revocations_apart(world: World) -> None:
    before = metrics(world)

    def moved(samples: Samples, name: str, **labels: str) -> float:
        return value(samples, name, **labels) - value(before, name, **labels)

    ada = joiner(world, "ada@example.com")
    after = eventually(
        world,
        lambda s: all(
            moved(s, "scim_bridge_sync_lag_seconds_count", target=t, lane="standard") >= 1
            for t in ("cloudinary", "iconik")
        ),
    )
    assert world.cld_user("ada@example.com") is not None and world.ico_user("ada@example.com") is not None
    for target in ("cloudinary", "iconik"):
        assert moved(after, "scim_bridge_target_requests_total", target=target) >= 1
        assert moved(after, "scim_bridge_target_request_duration_seconds_count", target=target) >= 1
        # a quiet bridge on loopback applies a joiner well within the alert's five minutes
        assert moved(after, "scim_bridge_sync_lag_seconds_bucket", target=target, lane="standard", le="300.0") >= 1
    assert moved(after, "scim_bridge_target_requests_total", target="cloudinary", method="POST", status="200") >= 1
    assert moved(after, "scim_bridge_sync_lag_seconds_count", lane="revocation") == 0

    leaver = world.scim.patch(
        f"/Users/{ada['id']}",
        json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": False}]},
    )
    assert leaver.status_code == 200
    eventually(
        world,
        lambda s: all(
            moved(s, "scim_bridge_sync_lag_seconds_count", target=t, lane="revocation") >= 1
            for t in ("cloudinary", "iconik")
        ),
    )
    assert not world.cld_user("ada@example.com")["enabled"]  # type: ignore[index]


def test_held_changes_move_the_held_gauge_and_the_brake_shows_engaged(bridge_store_url: str, tmp_path: Path) -> None:
    with brake_world(tmp_path, bridge_store_url, max_count=1) as world:
        ids = push_users(world, 3, "held")
        world.converge(lambda w: provisioned(w, "held") == (3, 3))
        samples = metrics(world)
        assert value(samples, "scim_bridge_held_changes", target="cloudinary") == 0
        assert value(samples, "scim_bridge_brake_engaged", target="cloudinary") == 0
        deactivate(world, ids)
        settled(world)
        samples = eventually(
            world,
            lambda s: all(value(s, "scim_bridge_held_changes", target=t) == 2 for t in ("cloudinary", "iconik")),
        )
        assert value(samples, "scim_bridge_brake_engaged", target="cloudinary") == 1
        assert value(samples, "scim_bridge_brake_engaged", target="iconik") == 1


def test_a_dead_letter_moves_its_gauge_and_replay_clears_it(world: World) -> None:
    httpx.put(f"{world.cloudinary_url}/_emulator/faults", json={"error_rate": 1.0, "error_status": 400})
    before = metrics(world)
    joiner(world, "bea@example.com")
    samples = eventually(world, lambda s: value(s, "scim_bridge_dead_letters") == 1)
    lettered = value(samples, "scim_bridge_sync_dead_lettered_total", lane="standard")
    assert lettered - value(before, "scim_bridge_sync_dead_lettered_total", lane="standard") == 1
    assert (
        value(samples, "scim_bridge_target_requests_total", target="cloudinary", status="400")
        - value(before, "scim_bridge_target_requests_total", target="cloudinary", status="400")
        >= 1
    )
    httpx.put(f"{world.cloudinary_url}/_emulator/faults", json={"error_rate": 0.0})
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert httpx.post(f"{world.bridge.root}/admin/api/replay", headers=admin).json() == {"requeued": 1}
    eventually(world, lambda s: value(s, "scim_bridge_dead_letters") == 0)


def states(samples: Samples, target: str) -> dict[str, float]:
    names = ("ok", "degraded", "quarantined")
    return {name: value(samples, "scim_bridge_target_state", target=target, state=name) for name in names}


def test_a_quarantined_target_shows_in_its_state_gauge_and_parks_changes(world: World) -> None:
    samples = metrics(world)
    assert states(samples, "iconik") == states(samples, "cloudinary") == {"ok": 1, "degraded": 0, "quarantined": 0}
    httpx.put(f"{world.iconik_url}/_emulator/faults", json={"credentials_revoked": True})
    joiner(world, "cyd@example.com")
    samples = eventually(world, lambda s: states(s, "iconik")["quarantined"] == 1)
    assert states(samples, "iconik") == {"ok": 0, "degraded": 0, "quarantined": 1}
    assert states(samples, "cloudinary")["ok"] == 1  # the other target keeps flowing
    eventually(world, lambda s: value(s, "scim_bridge_parked_changes", target="iconik") >= 1)
    assert value(metrics(world), "scim_bridge_target_requests_total", target="iconik", status="401") >= 1

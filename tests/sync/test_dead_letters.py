"""A permanent target error parks the change as a dead letter, visible to operators; replay
requeues it once the cause is fixed, and it then converges."""

from __future__ import annotations

import httpx

from tests.sync.conftest import World
from tests.sync.test_lifecycle import joiner

ADMIN = {"Authorization": "Bearer admin-token-for-tests"}


def test_permanent_error_becomes_a_dead_letter_and_replay_recovers_it(world: World) -> None:
    httpx.put(f"{world.cloudinary_url}/_emulator/faults", json={"error_rate": 1.0, "error_status": 400})
    ada = joiner(world, "ada@example.com")
    admin = f"{world.bridge.root}/admin/api"
    world.converge(lambda w: len(httpx.get(f"{admin}/dead-letters", headers=ADMIN).json()) == 1)
    [letter] = httpx.get(f"{admin}/dead-letters", headers=ADMIN).json()
    assert letter["resource"] == f"User/{ada['id']}" and "400" in letter["error"]
    state = httpx.get(f"{admin}/users/{ada['id']}", headers=ADMIN).json()["targets"]["cloudinary"]
    assert state["state"] == "failed" and "400" in state["error"]
    httpx.put(f"{world.cloudinary_url}/_emulator/faults", json={"error_rate": 0.0})
    assert httpx.post(f"{admin}/replay", headers=ADMIN).json() == {"requeued": 1}
    world.converge(lambda w: w.cld_user("ada@example.com") is not None and w.ico_user("ada@example.com") is not None)
    assert httpx.get(f"{admin}/dead-letters", headers=ADMIN).json() == []


def test_one_failing_target_does_not_hold_up_the_other(world: World) -> None:
    httpx.put(f"{world.cloudinary_url}/_emulator/faults", json={"error_rate": 1.0, "error_status": 400})
    joiner(world, "bea@example.com")
    world.converge(lambda w: w.ico_user("bea@example.com") is not None)
    assert world.cld_user("bea@example.com") is None

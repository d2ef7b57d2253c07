"""Target quarantine over real HTTP, on both stores: a target whose credentials are revoked (the
emulators' `credentials_revoked` switch) or that fails most of its calls gets nothing but a probe,
an operator is told, the other target keeps flowing, and once it answers again every change made
meanwhile arrives, revocations first, with no duplicate account and no dead letter."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from scim_bridge.sync.policy import PolicyError, load_policy
from tests.emulators.live import LiveApp
from tests.live import LiveBridge
from tests.sync.conftest import World, make_world
from tests.sync.receivers import SECRET, Receiver

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ADMIN = {"Authorization": "Bearer admin-token-for-tests"}
QUICK = {"probe_backoff_seconds": [1, 1, 2]}  # minutes to hours in production; seconds here
BOUND = 5.0  # seconds from the first change after the revocation to "quarantined" (README)


@contextlib.contextmanager
def quarantine_world(tmp_path: Path, store_url: str, hook_url: str, **quarantine: Any) -> Iterator[World]:
    (tmp_path / "notify-secret").write_text(SECRET)
    yield from make_world(
        tmp_path,
        store_url,
        target_rate=400,
        safety={"quarantine": {**QUICK, **quarantine}},
        notify={"webhook": {"url": f"{hook_url}/hook", "secret_file": str(tmp_path / "notify-secret")}},
    )


def faults(url: str, **settings: object) -> None:
    assert httpx.put(f"{url}/_emulator/faults", json=settings).status_code == 200


def health(world: World) -> dict[str, Any]:
    answer = httpx.get(f"{world.bridge.root}/admin/api/targets", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return answer.json()["targets"]  # type: ignore[no-any-return]


def admin(world: World, path: str) -> Any:
    return httpx.get(f"{world.bridge.root}/admin/api/{path}", headers=ADMIN, timeout=30).json()


def user(world: World, login: str, **extra: Any) -> str:
    body = {"schemas": [USER], "userName": f"{login}@example.com", "active": True, **extra}
    answer = world.scim.post("/Users", json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def patch(world: World, path: str, *operations: dict[str, Any]) -> None:
    answer = world.scim.patch(path, json={"schemas": [PATCH], "Operations": list(operations)})
    assert answer.status_code in (200, 204), answer.text


def wait_for(condition: Any, timeout: float = 30.0, what: str = "") -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)
    return time.monotonic() - started


def quarantine_entries(world: World) -> list[dict[str, Any]]:
    answer = httpx.get(f"{world.bridge.root}/admin/api/audit", headers=ADMIN, params={"format": "jsonl"}, timeout=60)
    return [e for e in map(json.loads, answer.text.splitlines()) if e.get("kind") == "quarantine"]


def test_revoked_credentials_quarantine_the_target_until_they_work_again_and_every_change_arrives_once(
    bridge_store_url: str, tmp_path: Path
) -> None:
    receiver = Receiver()
    with LiveApp(receiver.app()) as hook, quarantine_world(tmp_path, bridge_store_url, hook.url) as world:
        ada, bob = user(world, "ada"), user(world, "bob", name={"givenName": "Bob", "familyName": "Baker"})
        cyd = user(world, "cyd")
        team = world.scim.post(
            "/Groups", json={"schemas": [GROUP], "displayName": "Team", "members": [{"value": ada}, {"value": bob}]}
        ).json()["id"]
        world.converge(lambda w: w.ico_groups_of("bob@example.com") == {"Team"} and w.ico_user("cyd@example.com"))
        world.converge(lambda w: w.cld_groups_of("bob@example.com") == {"Team"})
        wait_for(lambda: admin(world, "queue")["total"] == 0, what="the first sync")
        assert {t: s["state"] for t, s in health(world).items()} == {"cloudinary": "ok", "iconik": "ok"}

        faults(world.iconik_url, credentials_revoked=True)  # iconik's token is revoked
        started = time.monotonic()
        dan = user(world, "dan")  # a joiner, a leaver, a member added, a name changed: all during it
        patch(world, f"/Users/{ada}", {"op": "replace", "path": "active", "value": False})
        patch(world, f"/Groups/{team}", {"op": "add", "path": "members", "value": [{"value": cyd}]})
        patch(
            world,
            f"/Users/{bob}",
            {"op": "replace", "path": "name.givenName", "value": "Robert"},
            {"op": "replace", "path": "displayName", "value": "Robert Baker"},
        )
        wait_for(lambda: health(world)["iconik"]["state"] == "quarantined", BOUND, "the quarantine")
        assert time.monotonic() - started < BOUND
        state = health(world)["iconik"]
        assert state["trigger"] == "credentials" and "401" in state["reason"] and state["next_probe"]
        wait_for(lambda: receiver.events("quarantine.entered"), 10, "the notification")
        [entered] = receiver.events("quarantine.entered")  # signature checked by the receiver helper
        assert entered["target"] == "iconik" and entered["details"]["trigger"] == "credentials"

        # Cloudinary keeps flowing meanwhile.
        world.converge(
            lambda w: (
                w.cld_user("dan@example.com")
                and not w.cld_user("ada@example.com")["enabled"]
                and w.cld_groups_of("cyd@example.com") == {"Team"}
                and w.cld_user("bob@example.com")["name"].startswith("Robert")
            )
        )
        assert health(world)["cloudinary"]["state"] == "ok"

        # iconik gets only the probe: one GET of one user per back-off step.
        wait_for(lambda: admin(world, "queue")["total"] == 0, what="the queue to hold nothing but parked changes")
        before = len(world.iconik.calls)
        time.sleep(4)
        during = world.iconik.calls[before:]
        assert 1 <= len(during) <= 4, during  # back-off 1, 1, 2 s: at most a probe a second
        assert all(c["method"] == "GET" and c["path"] == "/API/users/v1/users/" for c in during)
        assert health(world)["iconik"]["parked"] >= 4 and health(world)["iconik"]["probes"] >= 1
        assert admin(world, "queue")["dead_letters"] == 0  # nothing spent its retries

        faults(world.iconik_url, credentials_revoked=False)  # the token works again
        resumed_at = len(world.iconik.calls)
        wait_for(lambda: health(world)["iconik"]["state"] != "quarantined", 10, "the end of the quarantine")
        world.converge(
            lambda w: (
                w.ico_user("dan@example.com")
                and w.ico_user("ada@example.com")["status"] == "INACTIVE"
                and w.ico_groups_of("cyd@example.com") == {"Team"}
                and w.ico_user("bob@example.com")["first_name"] == "Robert"
            )
        )
        wait_for(lambda: receiver.events("quarantine.left"), 10, "the notification that it is over")
        ico_emails = [u["email"] for u in world.iconik.users.values()]
        assert len(ico_emails) == len(set(ico_emails)) == 5  # four people and the service account
        assert len(world.cloudinary.users) == 4
        # The parked leaver went first: the first change sent after the probe is ada's deactivation.
        ada_id = world.ico_user("ada@example.com")["id"]
        changes = [c for c in world.iconik.calls[resumed_at:] if c["method"] != "GET"]
        assert changes[0] == {"method": "PATCH", "path": f"/API/users/v1/users/{ada_id}/"}, changes[:3]
        assert health(world)["iconik"]["parked"] == 0 and admin(world, "queue")["dead_letters"] == 0
        actions = [(e["action"], e["target"]) for e in quarantine_entries(world)]
        assert actions == [("entered", "iconik"), ("left", "iconik")]
        assert dan


def test_a_target_failing_most_of_its_calls_is_quarantined_and_nothing_becomes_a_dead_letter(
    bridge_store_url: str, tmp_path: Path
) -> None:
    receiver = Receiver()
    with (
        LiveApp(receiver.app()) as hook,
        quarantine_world(tmp_path, bridge_store_url, hook.url, probe_backoff_seconds=[600]) as world,
    ):
        faults(world.iconik_url, error_rate=1.0, error_status=503)
        names = [f"fail{i}" for i in range(10)]
        for name in names:
            user(world, name)
        wait_for(lambda: health(world)["iconik"]["state"] == "quarantined", 20, "the quarantine")
        state = health(world)["iconik"]
        assert state["trigger"] == "failures" and "calls failed" in state["reason"]
        world.converge(lambda w: all(w.cld_user(f"{n}@example.com") for n in names))
        wait_for(lambda: admin(world, "queue")["total"] == 0, what="every entry parked or done")
        assert admin(world, "queue")["dead_letters"] == 0
        probe = f"{world.bridge.root}/admin/api/targets/iconik/probe"
        assert httpx.post(probe.replace("iconik", "cloudinary"), headers=ADMIN).status_code == 409  # not quarantined
        faults(world.iconik_url, error_rate=0.0)
        assert httpx.post(probe, headers=ADMIN).status_code == 202  # fixed: no need to wait for the schedule
        world.converge(lambda w: all(w.ico_user(f"{n}@example.com") for n in names), timeout=10)
        emails = [u["email"] for u in world.iconik.users.values()]
        assert len(emails) == len(set(emails)) == 11
        wait_for(lambda: receiver.events("quarantine.left"), 10, "the notification that it is over")
        assert health(world)["iconik"]["state"] in ("ok", "degraded")


def test_a_target_refusing_every_object_with_a_4xx_is_not_quarantined(tmp_path: Path) -> None:
    receiver = Receiver()
    with (
        LiveApp(receiver.app()) as hook,
        quarantine_world(tmp_path, f"sqlite:///{tmp_path}/q.db", hook.url) as world,
    ):
        faults(world.cloudinary_url, error_rate=1.0, error_status=409)  # every object refused: not an outage
        for i in range(12):
            user(world, f"refused{i}")
        wait_for(lambda: admin(world, "queue")["dead_letters"] == 12, 30, "the refusals to be dead letters")
        assert health(world)["cloudinary"]["state"] != "quarantined" and not receiver.events()


@pytest.mark.parametrize(
    "quarantine, message",
    [
        ({"failure_percent": 150}, "line 3: safety.quarantine.failure_percent: Value error, 150 is not a percentage"),
        ({"failure_percent": 0}, "safety.quarantine.failure_percent: Value error, 0 is not a percentage"),
        ({"min_calls": 1}, "line 3: safety.quarantine.min_calls: Value error, 1 is below 5"),
        ({"window_seconds": -5}, "safety.quarantine.window_seconds: Value error, -5 is not a positive"),
        ({"probe_backoff_seconds": []}, "safety.quarantine.probe_backoff_seconds: Value error, give one or more"),
        ({"probe_backoff_seconds": [60, 0]}, "safety.quarantine.probe_backoff_seconds"),
    ],
)
def test_quarantine_thresholds_out_of_range_are_refused_at_load_naming_the_field_and_line(
    tmp_path: Path, quarantine: dict[str, Any], message: str
) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(yaml.safe_dump({"safety": {"quarantine": quarantine}}))
    with pytest.raises(PolicyError, match=message.replace("(", r"\(")):
        load_policy(policy)


def test_a_quarantine_is_shared_by_replicas_and_outlives_the_replica_that_began_it(
    redis_url: str, tmp_path: Path
) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    receiver = Receiver()
    with LiveApp(receiver.app()) as hook, quarantine_world(tmp_path, redis_url, hook.url) as world:
        user(world, "eve")
        world.converge(lambda w: w.ico_user("eve@example.com") and w.cld_user("eve@example.com"))
        faults(world.iconik_url, credentials_revoked=True)
        user(world, "fay")
        wait_for(lambda: health(world)["iconik"]["state"] == "quarantined", BOUND, "the quarantine")
        with (
            LiveBridge(redis_url, policy=tmp_path / "policy.yml", admin_tokens=["admin-token-for-tests"]) as other,
            other.client() as scim,
        ):
            world.bridge.__exit__(None, None, None)  # the replica that began it goes away
            seen = httpx.get(f"{other.root}/admin/api/targets", headers=ADMIN).json()["targets"]["iconik"]
            assert seen["state"] == "quarantined" and seen["trigger"] == "credentials"
            assert scim.post("/Users", json={"schemas": [USER], "userName": "gus@example.com"}).status_code == 201
            wait_for(lambda: any(u["email"] == "gus@example.com" for u in list(world.cloudinary.users.values())))
            before = len(world.iconik.calls)
            time.sleep(3)
            assert all(c["path"] == "/API/users/v1/users/" for c in world.iconik.calls[before:])  # probes only
            faults(world.iconik_url, credentials_revoked=False)
            world.converge(lambda w: w.ico_user("fay@example.com") and w.ico_user("gus@example.com"))
            emails = [u["email"] for u in world.iconik.users.values()]
            assert len(emails) == len(set(emails)) == 4
            wait_for(lambda: receiver.events("quarantine.left"), 10, "the notification that it is over")
            assert len(receiver.events("quarantine.entered")) == 1  # told once, whichever replica saw it


def test_grants_wait_for_a_quarantined_target_while_the_other_target_gets_them(tmp_path: Path) -> None:
    access = {
        "cloudinary": {
            "product_environment": "production",
            "folders": [{"path": "catalog", "grants": [{"group": "Product Catalog", "role": "editor"}]}],
        },
        "iconik": {
            "collections": [{"title": "Catalog", "grants": [{"group": "Product Catalog", "permissions": ["read"]}]}]
        },
    }
    receiver = Receiver()
    with LiveApp(receiver.app()) as hook:
        (tmp_path / "notify-secret").write_text(SECRET)
        for world in make_world(
            tmp_path,
            f"sqlite:///{tmp_path}/grants.db",
            target_rate=400,
            access=access,
            safety={"quarantine": QUICK},
            notify={"webhook": {"url": f"{hook.url}/hook", "secret_file": str(tmp_path / "notify-secret")}},
        ):
            wait_for(lambda: admin(world, "queue")["total"] == 0, what="the grants run at start")
            faults(world.iconik_url, credentials_revoked=True)
            user(world, "trip")  # its account is the first core call: it quarantines iconik
            wait_for(lambda: health(world)["iconik"]["state"] == "quarantined", BOUND, "the quarantine")
            cy = user(world, "cy")
            world.scim.post(
                "/Groups", json={"schemas": [GROUP], "displayName": "Product Catalog", "members": [{"value": cy}]}
            )
            world.converge(lambda w: w.cld_folder_roles("cy@example.com") == {"catalog": {"editor"}})
            wait_for(lambda: admin(world, "queue")["total"] == 0, what="everything parked or done")
            assert admin(world, "queue")["dead_letters"] == 0 and health(world)["iconik"]["parked"] >= 3
            faults(world.iconik_url, credentials_revoked=False)
            world.converge(lambda w: w.ico_collection_rights("cy@example.com") == {"Catalog": {"read"}})
            assert admin(world, "queue")["dead_letters"] == 0

"""The Cloudinary emulator over real HTTP: vendor response schemas, live quirks, limits, faults."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from scim_bridge.emulators import cloudinary
from scim_bridge.emulators.faults import Faults
from tests.emulators.live import LiveApp
from tests.emulators.spec import assert_matches

SPEC = "cloudinary/provisioning.yml"
P = "/v1_1/provisioning/accounts/{account_id}"


@pytest.fixture
def emulator() -> Iterator[tuple[httpx.Client, cloudinary.CloudinaryState, LiveApp]]:
    state = cloudinary.CloudinaryState()
    with LiveApp(cloudinary.build(state)) as live:
        with httpx.Client(
            base_url=f"{live.url}/v1_1/provisioning/accounts/{state.account_id}",
            auth=(state.key, state.secret),
            timeout=10,
        ) as client:
            yield client, state, live


def test_user_lifecycle_matches_the_vendor_schemas(emulator: tuple) -> None:
    client, state, _ = emulator
    created = client.post("/users", json={"name": "Jane", "email": "jane@example.com", "role": "media_library_user"})
    assert created.status_code == 200  # Cloudinary answers 200 to creates
    assert_matches(SPEC, f"{P}/users", "post", 200, created.json())
    user = created.json()
    assert user["pending"] is True and user["enabled"] is True and len(user["id"]) == 30
    listed = client.get("/users", params={"emails": "jane@example.com"})
    assert_matches(SPEC, f"{P}/users", "get", 200, listed.json())
    assert [u["id"] for u in listed.json()["users"]] == [user["id"]]
    disabled = client.put(f"/users/{user['id']}", json={"enabled": False})
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    assert_matches(SPEC, f"{P}/users/{{user_id}}", "put", 200, disabled.json())
    assert client.post("/users", json={"name": "Jane", "email": "JANE@example.com"}).status_code == 409
    deleted = client.delete(f"/users/{user['id']}")
    assert deleted.json() == {"message": "ok"}
    missing = client.get(f"/users/{user['id']}")
    assert missing.status_code == 404 and missing.json() == {"error": {"message": "not found"}}


def test_array_parameters_in_all_three_encodings(emulator: tuple) -> None:
    client, _, _ = emulator
    ids = [client.post("/users", json={"name": f"u{i}", "email": f"u{i}@example.com"}).json()["id"] for i in range(3)]
    for query in (f"ids={ids[0]},{ids[1]}", f"ids[]={ids[0]}&ids[]={ids[1]}", f"ids={ids[0]}&ids={ids[1]}"):
        assert {u["id"] for u in client.get(f"/users?{query}").json()["users"]} == set(ids[:2]), query


def test_groups_and_membership_with_live_bodies(emulator: tuple) -> None:
    client, _, _ = emulator
    user = client.post(
        "/users",
        json={"name": "Ann", "email": "ann@example.com"},
    ).json()
    group = client.post("/user_groups", json={"name": "Designers"})
    assert group.status_code == 200
    assert_matches(SPEC, f"{P}/user_groups", "post", 200, group.json())
    gid = group.json()["id"]
    added = client.post(f"/user_groups/{gid}/users/{user['id']}")
    assert added.json() == {"users": [{"id": user["id"], "name": "Ann", "email": "ann@example.com"}]}
    again = client.post(f"/user_groups/{gid}/users/{user['id']}")
    assert len(again.json()["users"]) == 1
    assert client.get(f"/users/{user['id']}/groups").json() == {"groups": [{"id": gid, "name": "Designers"}]}
    listed = client.get("/user_groups", params={"extended_details": "true"})
    assert_matches(SPEC, f"{P}/user_groups", "get", 200, listed.json())
    removed = client.delete(f"/user_groups/{gid}/users/{user['id']}")
    assert_matches(SPEC, f"{P}/user_groups/{{group_id}}/users/{{user_id}}", "delete", 200, removed.json())
    assert removed.json() == {"users": []}
    assert client.post("/user_groups", json={"name": "designers"}).status_code == 409
    assert client.delete(f"/user_groups/{gid}").json() == {"ok": True}  # live body, not the spec's


def test_form_bodies_and_string_booleans(emulator: tuple) -> None:
    client, _, _ = emulator
    user = client.post("/users", data={"name": "Form", "email": "form@example.com", "enabled": "false"}).json()
    assert user["enabled"] is False


def test_bad_credentials_and_bad_input(emulator: tuple) -> None:
    client, state, live = emulator
    wrong = httpx.get(f"{live.url}/v1_1/provisioning/accounts/{state.account_id}/users", auth=(state.key, "nope"))
    assert wrong.status_code == 401 and wrong.json() == {"error": {"message": "Invalid credentials"}}
    other_account = httpx.get(f"{live.url}/v1_1/provisioning/accounts/other/users", auth=(state.key, state.secret))
    assert other_account.status_code == 401
    assert client.post("/users", json={"email": "x@example.com"}).status_code == 400
    assert client.post("/users", json={"name": "x", "email": "y@example.com", "role": "king"}).status_code == 400
    assert client.post("/users", content=b"{nope", headers={"content-type": "application/json"}).status_code == 400


def test_hourly_quota_headers_and_throttling() -> None:
    state = cloudinary.CloudinaryState()
    with LiveApp(cloudinary.build(state, cloudinary.CloudinarySwitches(hourly_limit=3, throttle_status=420))) as live:
        with httpx.Client(
            base_url=f"{live.url}/v1_1/provisioning/accounts/{state.account_id}", auth=(state.key, state.secret)
        ) as client:
            first = client.get("/users")
            assert first.headers["x-featureratelimit-limit"] == "3"
            assert first.headers["x-featureratelimit-remaining"] == "2"
            assert first.headers["x-featureratelimit-reset"].endswith("GMT")
            client.get("/users"), client.get("/users")
            throttled = client.get("/users")
            assert throttled.status_code == 420 and throttled.json()["error"]["message"] == "Rate limit exceeded"


def test_faults_change_at_run_time() -> None:
    state, faults = cloudinary.CloudinaryState(), Faults(seed=7)
    with LiveApp(cloudinary.build(state, faults=faults)) as live:
        with httpx.Client(
            base_url=f"{live.url}/v1_1/provisioning/accounts/{state.account_id}", auth=(state.key, state.secret)
        ) as client:
            assert httpx.put(f"{live.url}/_emulator/faults", json={"storm_seconds": 30}).status_code == 200
            storm = client.get("/users")
            assert storm.status_code == 429 and int(storm.headers["x-featureratelimit-reset"][5:7]) >= 0
            httpx.put(f"{live.url}/_emulator/faults", json={"storm_seconds": 0, "error_rate": 1.0, "error_status": 503})
            assert client.get("/users").status_code == 503
            httpx.put(f"{live.url}/_emulator/faults", json={"error_rate": 0.0, "drop_rate": 1.0})
            with pytest.raises(httpx.RemoteProtocolError):
                client.post("/users", json={"name": "Dropped", "email": "dropped@example.com"})
            httpx.put(f"{live.url}/_emulator/faults", json={"drop_rate": 0.0})
            # The dropped call was applied before the connection was cut, as on a real network.
            assert [u["email"] for u in client.get("/users").json()["users"]] == ["dropped@example.com"]
            assert httpx.put(f"{live.url}/_emulator/faults", json={"nonsense": 1}).status_code == 400


def test_product_environments_and_access_keys(emulator: tuple) -> None:
    client, _, _ = emulator
    listed = client.get("/sub_accounts")
    assert_matches(SPEC, f"{P}/sub_accounts", "get", 200, listed.json())
    created = client.post("/sub_accounts", json={"name": "Agency Uploads", "custom_attributes": {"region": "EMEA"}})
    assert_matches(SPEC, f"{P}/sub_accounts", "post", 200, created.json())
    environment = created.json()
    key = client.post(f"/sub_accounts/{environment['id']}/access_keys", json={"name": "agency_x"})
    assert_matches(SPEC, f"{P}/sub_accounts/{{sub_account_id}}/access_keys", "post", 200, key.json())
    assert key.json()["api_secret"] and key.json()["enabled"] is True
    keys = client.get(f"/sub_accounts/{environment['id']}/access_keys").json()
    assert_matches(SPEC, f"{P}/sub_accounts/{{sub_account_id}}/access_keys", "get", 200, keys)
    assert keys["total"] == 2  # the default key and the agency's
    disabled = client.put(
        f"/sub_accounts/{environment['id']}/access_keys/{key.json()['api_key']}", json={"enabled": False}
    )
    assert disabled.json()["enabled"] is False
    scoped = client.post(
        "/users", json={"name": "Agent", "email": "agent@agency.example", "sub_account_ids": [environment["id"]]}
    ).json()
    assert scoped["all_sub_accounts"] is False
    assert [u["id"] for u in client.get("/users", params={"sub_account_id": environment["id"]}).json()["users"]] == [
        scoped["id"]
    ]
    unknown = client.get("/users", params={"sub_account_id": "nope"})
    assert unknown.status_code == 404 and unknown.json() == {
        "error": {"message": "Cannot find sub account with id nope"}
    }
    assert client.delete(f"/sub_accounts/{environment['id']}/access_keys", params={"name": "agency_x"}).json() == {
        "message": "ok"
    }
    assert client.delete(f"/sub_accounts/{environment['id']}").json() == {"message": "ok"}

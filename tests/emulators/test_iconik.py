"""The iconik emulator over real HTTP: vendor response schemas, status codes, paging, limits."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from scim_bridge.emulators import iconik
from tests.emulators.live import LiveApp
from tests.emulators.spec import assert_matches

SPEC = "iconik/users.json"


@pytest.fixture
def emulator() -> Iterator[tuple[httpx.Client, iconik.IconikState, LiveApp]]:
    state = iconik.IconikState()
    with LiveApp(iconik.build(state)) as live:
        with httpx.Client(
            base_url=f"{live.url}/API/users/v1",
            headers={"App-ID": state.app_id, "Auth-Token": state.auth_token},
            timeout=10,
        ) as client:
            yield client, state, live


def test_user_and_group_lifecycle_with_documented_status_codes(emulator: tuple) -> None:
    client, _, _ = emulator
    created = client.post(
        "/users/", json={"email": "jane@example.com", "first_name": "Jane", "last_name": "Doe", "type": "STANDARD"}
    )
    assert created.status_code == 201
    assert_matches(SPEC, "/v1/users/", "post", 201, created.json())
    user = created.json()
    group = client.post(
        "/groups/", json={"name": "Post-Production", "external_id": "otds-1", "roles": ["can_read_assets"]}
    )
    assert group.status_code == 201
    assert_matches(SPEC, "/v1/groups/", "post", 201, group.json())
    gid = group.json()["id"]
    added = client.post(f"/groups/{gid}/users/{user['id']}/")
    assert added.status_code == 201 and added.json()["groups"] == [gid]
    assert_matches(SPEC, "/v1/groups/{group_id}/users/{user_id}/", "post", 201, added.json())
    removed = client.delete(f"/groups/{gid}/users/{user['id']}/")
    assert removed.status_code == 200 and removed.json()["groups"] == []
    disabled = client.patch(f"/users/{user['id']}/", json={"status": "INACTIVE"})
    assert disabled.status_code == 200 and disabled.json()["status"] == "INACTIVE"
    assert_matches(SPEC, "/v1/users/{user_id}/", "patch", 200, disabled.json())
    assert client.delete(f"/groups/{gid}/").status_code == 204
    assert client.delete(f"/users/{user['id']}/").status_code == 204
    missing = client.get(f"/users/{user['id']}/")
    assert missing.status_code == 404 and missing.json() == {"errors": ["User does not exist"]}


def test_pagination_envelope_and_filters(emulator: tuple) -> None:
    client, _, _ = emulator
    for i in range(12):
        client.post("/users/", json={"email": f"u{i}@example.com", "first_name": f"U{i}", "type": "BROWSE_ONLY"})
    first = client.get("/users/", params={"per_page": 5})
    assert_matches(SPEC, "/v1/users/", "get", 200, first.json())
    body = first.json()
    assert (body["page"], body["pages"], body["per_page"], body["total"]) == (1, 3, 5, 13)  # 12 + the token's user
    assert body["next_url"].startswith("/API/users/v1/users/?") and "prev_url" not in body
    seen, url = [], "/API/users/v1/users/?per_page=5"
    while url:
        page = client.get(client.base_url.copy_with(raw_path=url.encode())).json()
        seen += [u["id"] for u in page["objects"]]
        url = page.get("next_url")
    assert len(set(seen)) == 13
    assert client.get("/users/", params={"page": 9}).status_code == 404
    assert client.get("/users/", params={"per_page": 500}).status_code == 400
    found = client.get("/users/", params={"email": "U3@example.com"}).json()
    assert [u["email"] for u in found["objects"]] == ["u3@example.com"]


def test_validation_errors_in_both_shapes(emulator: tuple) -> None:
    client, _, _ = emulator
    missing = client.post("/users/", json={"email": "x@example.com"})
    assert missing.status_code == 400 and set(missing.json()["errors"]) == {"first_name", "type"}
    bad_type = client.post("/users/", json={"email": "x@example.com", "first_name": "X", "type": "ADMIN"})
    assert bad_type.status_code == 400 and "type" in bad_type.json()["errors"]
    assert client.post("/groups/", json={}).status_code == 400
    assert client.get("/groups/nope/").json() == {"errors": ["Group does not exist"]}


def test_tokens_and_their_user(emulator: tuple) -> None:
    client, state, live = emulator
    assert httpx.get(f"{live.url}/API/users/v1/users/").status_code == 401
    wrong = httpx.get(f"{live.url}/API/users/v1/users/", headers={"App-ID": state.app_id, "Auth-Token": "x"})
    assert wrong.status_code == 401 and wrong.json() == {"errors": ["Token is invalid"]}
    # Deactivating the user the token runs as locks the token out (research/iconik.md §1.1).
    client.patch(f"/users/{state.token_user_id}/", json={"status": "INACTIVE"})
    assert client.get("/users/").status_code == 401


def test_token_bucket_answers_429_with_remaining_header() -> None:
    state = iconik.IconikState()
    with LiveApp(iconik.build(state, iconik.IconikSwitches(rate_per_second=1, burst=3))) as live:
        headers = {"App-ID": state.app_id, "Auth-Token": state.auth_token}
        answers = [httpx.get(f"{live.url}/API/users/v1/users/", headers=headers) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
        assert answers[3].json() == {"errors": ["Too many requests"]} and int(answers[3].headers["retry-after"]) >= 1


def test_emulate_command_serves_an_emulator_alone() -> None:
    import os
    import re
    import subprocess
    import sys
    import time

    from tests.live import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "scim_bridge", "emulate", "iconik", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        banner = process.stdout.readline() + process.stdout.readline()  # type: ignore[union-attr]
        app_id, token = re.search(r"App-ID: (\S+)  Auth-Token: (\S+)", banner).groups()  # type: ignore[union-attr]
        for _ in range(100):
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/API/users/v1/users/", headers={"App-ID": app_id, "Auth-Token": token}
                )
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert response.status_code == 200 and response.json()["total"] == 1
    finally:
        process.terminate()
        process.wait(timeout=10)

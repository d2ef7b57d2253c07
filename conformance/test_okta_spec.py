"""Okta's "SCIM 2.0 SPEC Test" (R1–R12 of research/scim-clients.md §3.4), as a pytest module.

Written from the description of Okta's Runscope export, not from anyone's port. It talks HTTP
to a live server: SCIM_CONFORMANCE_URL (the SCIM base URL) with SCIM_CONFORMANCE_TOKEN (a bearer
token), as conformance/run sets them; without them, it starts a bridge of its own on a free
port with an empty SQLite store, as conformance/run does.

Stricter than Okta in one place: R9 requires the upper-cased userName filter to FIND the user,
since userName is caseExact=false (RFC 7643 §4.1.1, §2.4 Table; RFC 7644 §3.4.2.2).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"

GROUPS_DEADLINE_SECONDS = 0.6  # Okta's bound for R10


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(SCIM base URL, bearer token): the one given in the environment, or a bridge of our own."""
    url, token = os.environ.get("SCIM_CONFORMANCE_URL"), os.environ.get("SCIM_CONFORMANCE_TOKEN")
    if url and token:
        yield url.rstrip("/"), token
        return
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    from conformance_bridge import BridgeProcess

    with BridgeProcess(tmp_path_factory.mktemp("okta-spec")) as bridge:
        yield bridge.base_url, bridge.token


@pytest.fixture(scope="module")
def okta(server: tuple[str, str]) -> Iterator[httpx.Client]:
    """A client sending what Okta's test sends: bearer token, Okta's User-Agent, SCIM Accept."""
    url, token = server
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/scim+json",
        "User-Agent": "Okta SCIM Client 1.0.0",
    }
    with httpx.Client(base_url=url + "/", headers=headers, timeout=10) as client:
        yield client


def shown(response: httpx.Response) -> str:
    """The exchange, for assertion messages."""
    request = response.request
    sent = request.content.decode("utf-8", "replace")
    return (
        f"\n  {request.method} {request.url}"
        + (f"\n  request body: {sent[:800]}" if sent else "")
        + f"\n  -> {response.status_code} {response.headers.get('content-type', '')}"
        f"\n  response body: {response.text[:800]}"
    )


def json_of(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        pytest.fail("the response is not JSON" + shown(response))
    assert isinstance(body, dict), "the response is not a JSON object" + shown(response)
    return body


def a_user(user_name: str, given: str, family: str) -> dict[str, Any]:
    """The body Okta's test POSTs: userName, name, a primary work email, displayName, active."""
    return {
        "schemas": [USER],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "displayName": f"{given} {family}",
        "active": True,
    }


def _delete(okta: httpx.Client, path: str) -> None:
    try:
        okta.delete(path)
    except httpx.HTTPError:
        pass


@pytest.fixture(scope="module")
def seeded_user(okta: httpx.Client) -> Iterator[dict[str, Any]]:
    """R1 reads the first user of the tenant and expects given and family names: make sure one exists."""
    response = okta.post("Users", json=a_user(f"okta-seed-{uuid.uuid4().hex[:10]}@example.com", "Seed", "Person"))
    assert response.status_code == 201, "could not create the seed user" + shown(response)
    user = json_of(response)
    yield user
    _delete(okta, f"Users/{user['id']}")


@pytest.fixture(scope="module")
def new_user(okta: httpx.Client) -> Iterator[dict[str, Any]]:
    """R6 creates this user, R7 reads it, R8 creates it again, R9 finds it by upper-cased userName."""
    state: dict[str, Any] = {"body": a_user(f"okta-spec-{uuid.uuid4().hex[:10]}@example.com", "Test", "User")}
    yield state
    if state.get("id"):
        _delete(okta, f"Users/{state['id']}")


def assert_populated_user(user: dict[str, Any], response: httpx.Response) -> None:
    """The non-empty fields Okta's test reads from a user: id, names, userName, active, emails[0].value."""
    name = user.get("name") or {}
    emails = user.get("emails") or [{}]
    for label, value in [
        ("id", user.get("id")),
        ("userName", user.get("userName")),
        ("name.familyName", name.get("familyName")),
        ("name.givenName", name.get("givenName")),
        ("emails[0].value", emails[0].get("value")),
    ]:
        assert value, f"{label} is missing or empty" + shown(response)
    assert isinstance(user.get("active"), bool), "active is missing or not a boolean" + shown(response)


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, f"expected {status}" + shown(response)
    body = json_of(response)
    assert ERROR in (body.get("schemas") or []), "the Error schema is missing" + shown(response)
    assert body.get("detail"), "detail is missing or empty" + shown(response)
    return body


def test_r01_first_user_of_a_page_of_one(okta: httpx.Client, seeded_user: dict[str, Any]) -> None:
    response = okta.get("Users", params={"count": 1, "startIndex": 1})
    assert response.status_code == 200, shown(response)
    body = json_of(response)
    assert LIST_RESPONSE in (body.get("schemas") or []), "not a ListResponse" + shown(response)
    for key in ("itemsPerPage", "startIndex", "totalResults"):
        assert type(body.get(key)) is int, f"{key} is not a number" + shown(response)
    assert body.get("Resources"), "Resources is empty although a user exists" + shown(response)
    assert_populated_user(body["Resources"][0], response)


def test_r02_get_that_user_by_id(okta: httpx.Client, seeded_user: dict[str, Any]) -> None:
    listed = okta.get("Users", params={"count": 1, "startIndex": 1})
    first = json_of(listed)["Resources"][0]
    response = okta.get(f"Users/{first['id']}")
    assert response.status_code == 200, shown(response)
    user = json_of(response)
    assert_populated_user(user, response)
    assert user["id"] == first["id"], shown(response)


def test_r03_filter_on_an_invalid_user_name_finds_nothing(okta: httpx.Client) -> None:
    response = okta.get("Users", params={"filter": 'userName eq "not-a-valid-email-@@@"'})
    assert response.status_code == 200, shown(response)
    body = json_of(response)
    assert LIST_RESPONSE in (body.get("schemas") or []), "not a ListResponse" + shown(response)
    assert body.get("totalResults") == 0, shown(response)


def test_r04_unknown_id_is_404_with_the_error_schema(okta: httpx.Client) -> None:
    assert_error(okta.get(f"Users/{uuid.uuid4()}"), 404)


def test_r05_random_user_name_does_not_exist(okta: httpx.Client) -> None:
    response = okta.get("Users", params={"filter": f'userName eq "{uuid.uuid4().hex}@example.com"'})
    assert response.status_code == 200, shown(response)
    assert json_of(response).get("totalResults") == 0, shown(response)


def test_r06_create_a_user_sent_as_application_json(okta: httpx.Client, new_user: dict[str, Any]) -> None:
    sent = new_user["body"]
    response = okta.post("Users", json=sent, headers={"Content-Type": "application/json"})
    assert response.status_code == 201, shown(response)
    user = json_of(response)
    if user.get("id"):
        new_user["id"] = user["id"]
    assert user.get("active") is True, shown(response)
    assert user.get("id"), "id is missing" + shown(response)
    assert USER in (user.get("schemas") or []), "the core User schema is missing" + shown(response)
    assert user.get("userName") == sent["userName"], shown(response)
    assert (user.get("name") or {}).get("familyName") == sent["name"]["familyName"], shown(response)
    assert (user.get("name") or {}).get("givenName") == sent["name"]["givenName"], shown(response)


def test_r07_get_the_created_user(okta: httpx.Client, new_user: dict[str, Any]) -> None:
    assert new_user.get("id"), "R6 did not create the user"
    sent = new_user["body"]
    response = okta.get(f"Users/{new_user['id']}")
    assert response.status_code == 200, shown(response)
    user = json_of(response)
    assert user.get("userName") == sent["userName"], shown(response)
    assert (user.get("name") or {}).get("familyName") == sent["name"]["familyName"], shown(response)
    assert (user.get("name") or {}).get("givenName") == sent["name"]["givenName"], shown(response)


def test_r08_creating_the_same_user_again_is_409(okta: httpx.Client, new_user: dict[str, Any]) -> None:
    assert new_user.get("id"), "R6 did not create the user"
    response = okta.post("Users", json=new_user["body"], headers={"Content-Type": "application/json"})
    if response.status_code == 201:
        _delete(okta, f"Users/{response.json()['id']}")
    assert response.status_code == 409, shown(response)


def test_r09_upper_cased_user_name_filter_finds_the_user(okta: httpx.Client, new_user: dict[str, Any]) -> None:
    assert new_user.get("id"), "R6 did not create the user"
    upper = new_user["body"]["userName"].upper()
    response = okta.get("Users", params={"filter": f'userName eq "{upper}"'})
    assert response.status_code == 200, shown(response)
    found = [user.get("id") for user in json_of(response).get("Resources") or []]
    assert found == [new_user["id"]], "userName is caseExact=false (RFC 7643 §4.1.1)" + shown(response)


def test_r10_groups_answer_within_600_ms(okta: httpx.Client) -> None:
    created = okta.post("Groups", json={"schemas": [GROUP], "displayName": f"okta-spec-{uuid.uuid4().hex[:10]}"})
    try:
        started = time.perf_counter()
        response = okta.get("Groups")
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, shown(response)
        assert elapsed < GROUPS_DEADLINE_SECONDS, f"GET /Groups took {elapsed * 1000:.0f} ms" + shown(response)
        body = json_of(response)
        if (body.get("totalResults") or 0) >= 1:
            assert isinstance(body.get("Resources"), list), shown(response)
    finally:
        if created.status_code == 201:
            _delete(okta, f"Groups/{created.json()['id']}")


def test_r11_a_bad_credential_is_401_with_the_error_schema(okta: httpx.Client) -> None:
    body = assert_error(okta.get("Users", headers={"Authorization": "non-token"}), 401)
    assert body.get("status") == "401", 'status must be the string "401" (RFC 7644 §3.12)'


def test_r12_a_fixed_unknown_id_is_404_with_the_error_schema(okta: httpx.Client) -> None:
    body = assert_error(okta.get("Users/00919288221112222"), 404)
    assert body.get("status") == "404", 'status must be the string "404" (RFC 7644 §3.12)'

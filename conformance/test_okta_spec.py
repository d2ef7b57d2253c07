"""Okta's "SCIM 2.0 SPEC Test" (R1–R12, research/scim-clients.md §3.4), ported to pytest.

Runs against SCIM_CONFORMANCE_URL with SCIM_CONFORMANCE_TOKEN (conformance/run sets them), or
against a bridge of its own when they are not set. R9 is stricter than Okta's export: the
upper-cased userName must FIND the user, since RFC 7643 §4.1.1 makes userName caseExact=false.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    url, token = os.environ.get("SCIM_CONFORMANCE_URL"), os.environ.get("SCIM_CONFORMANCE_TOKEN")
    if url and token:
        yield url, token
        return
    from tests.live import TOKEN, LiveBridge

    with LiveBridge(f"sqlite:///{tmp_path_factory.mktemp('okta')}/okta.db") as bridge:
        yield bridge.base, TOKEN


@pytest.fixture(scope="module")
def okta(base_url: tuple[str, str]) -> Iterator[httpx.Client]:
    url, token = base_url
    with httpx.Client(base_url=url, timeout=10, headers={
            "Authorization": f"Bearer {token}", "User-Agent": "Okta SCIM Client 1.0.0",
            "Accept": "application/scim+json"}) as client:
        yield client


@pytest.fixture(scope="module")
def seeded(okta: httpx.Client) -> dict:
    """R1 needs a user with given and family names in the tenant."""
    response = okta.post("/Users", json={"schemas": [USER], "userName": f"seed-{uuid.uuid4().hex[:8]}@okta.local",
                                         "name": {"givenName": "Seed", "familyName": "User"},
                                         "emails": [{"primary": True, "value": "seed@okta.local", "type": "work"}],
                                         "active": True})
    assert response.status_code == 201
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def created(okta: httpx.Client) -> dict:
    name = f"okta-spec-{uuid.uuid4().hex[:8]}@okta.local"
    body = {"schemas": [USER], "userName": name, "name": {"givenName": "Test", "familyName": "User"},
            "emails": [{"primary": True, "value": name, "type": "work"}], "displayName": "Test User", "active": True}
    return {"body": body}


def _populated(user: dict) -> None:
    assert user["id"] and user["userName"] and user["name"]["familyName"] and user["name"]["givenName"]
    assert isinstance(user["active"], bool) and user["emails"][0]["value"]


def test_r01_list_one_user(okta: httpx.Client, seeded: dict) -> None:
    response = okta.get("/Users", params={"count": 1, "startIndex": 1})
    assert response.status_code == 200
    body = response.json()
    assert LIST in body["schemas"]
    assert all(isinstance(body[k], int) for k in ("itemsPerPage", "startIndex", "totalResults"))
    _populated(body["Resources"][0])


def test_r02_get_that_user(okta: httpx.Client, seeded: dict) -> None:
    first = okta.get("/Users", params={"count": 1, "startIndex": 1}).json()["Resources"][0]
    response = okta.get(f"/Users/{first['id']}")
    assert response.status_code == 200
    _populated(response.json())
    assert response.json()["id"] == first["id"]


def test_r03_filter_on_an_invalid_user_name_finds_nothing(okta: httpx.Client) -> None:
    response = okta.get("/Users", params={"filter": 'userName eq "invalid-user-name-@@@"'})
    assert response.status_code == 200
    assert LIST in response.json()["schemas"] and response.json()["totalResults"] == 0


def test_r04_unknown_id_is_404(okta: httpx.Client) -> None:
    response = okta.get(f"/Users/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["detail"] and ERROR in response.json()["schemas"]


def test_r05_random_user_does_not_exist(okta: httpx.Client) -> None:
    response = okta.get("/Users", params={"filter": f'userName eq "{uuid.uuid4().hex}@okta.local"'})
    assert response.status_code == 200 and response.json()["totalResults"] == 0


def test_r06_create_with_application_json(okta: httpx.Client, created: dict) -> None:
    response = okta.post("/Users", json=created["body"], headers={"Content-Type": "application/json"})
    assert response.status_code == 201
    user = response.json()
    assert user["active"] is True and user["id"] and USER in user["schemas"]
    assert user["userName"] == created["body"]["userName"] and user["name"] == created["body"]["name"]
    created["id"] = user["id"]


def test_r07_get_the_created_user(okta: httpx.Client, created: dict) -> None:
    response = okta.get(f"/Users/{created['id']}")
    assert response.status_code == 200
    assert response.json()["userName"] == created["body"]["userName"]
    assert response.json()["name"] == created["body"]["name"]


def test_r08_duplicate_create_is_409(okta: httpx.Client, created: dict) -> None:
    response = okta.post("/Users", json=created["body"], headers={"Content-Type": "application/json"})
    assert response.status_code == 409


def test_r09_user_name_is_case_insensitive(okta: httpx.Client, created: dict) -> None:
    response = okta.get("/Users", params={"filter": f'userName eq "{created["body"]["userName"].upper()}"'})
    assert response.status_code == 200
    assert [r["id"] for r in response.json()["Resources"]] == [created["id"]]


def test_r10_groups_answer_quickly(okta: httpx.Client) -> None:
    okta.post("/Groups", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                               "displayName": f"okta-spec-{uuid.uuid4().hex[:8]}", "members": []})
    started = time.monotonic()
    response = okta.get("/Groups")
    elapsed = time.monotonic() - started
    assert response.status_code == 200 and elapsed < 0.6  # Okta's own bound for this check
    body = response.json()
    if body["totalResults"] >= 1:
        assert isinstance(body["Resources"], list)


def test_r11_bad_token_is_401(okta: httpx.Client) -> None:
    response = okta.get("/Users", headers={"Authorization": "non-token"})
    assert response.status_code == 401
    body = response.json()
    assert body["detail"] and body["status"] == "401" and ERROR in body["schemas"]


def test_r12_fixed_unknown_id_is_404(okta: httpx.Client) -> None:
    response = okta.get("/Users/00919288221112222")
    assert response.status_code == 404
    body = response.json()
    assert body["detail"] and body["status"] == "404" and ERROR in body["schemas"]

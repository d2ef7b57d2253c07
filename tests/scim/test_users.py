"""Users: create, read, replace, delete (checklist items 16–43, 57)."""

from __future__ import annotations

import httpx

from tests.scim.conftest import ENTERPRISE, USER, new_user, unique


def test_create_returns_the_full_resource_with_location(scim: httpx.Client) -> None:
    response = scim.post(
        "/Users",
        json={
            "schemas": [USER, ENTERPRISE],
            "userName": unique(),
            "externalId": "0a21f0f2",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "active": True,
            "emails": [{"primary": True, "type": "work", "value": "bjensen@example.com"}],
            ENTERPRISE: {"department": "Marketing", "division": "EMEA"},
        },
    )
    assert response.status_code == 201
    user = response.json()
    assert user["id"] and user["meta"]["resourceType"] == "User"
    assert (
        response.headers["location"]
        == user["meta"]["location"]
        == f"{str(scim.base_url).rstrip('/')}/Users/{user['id']}"
    )
    assert response.headers["etag"] == user["meta"]["version"]
    assert user[ENTERPRISE] == {"department": "Marketing", "division": "EMEA"}
    assert scim.get(f"/Users/{user['id']}").json() == user


def test_client_quirks_on_create_are_tolerated(scim: httpx.Client) -> None:
    # Entra, Okta and OneLogin shapes from scim-clients.md §2.3, §3.2, §4.1 in one body.
    name = unique()
    response = scim.post(
        "/Users",
        json={
            "schemas": [
                "urn:scim:schemas:core:1.0",
                USER,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0User",
                "urn:example:custom:2.0:User",
            ],
            "id": None,
            "meta": {"resourceType": "User"},
            "groups": [],
            "roles": [],
            "password": "hunter2",
            "userName": name,
            "active": "True",
            "title": None,
            "nickName": "",
            "addresses": None,
            "department": "Sales",
            "manager": [{"$ref": "../Users/m1", "value": "m1"}],
            "someUnknownAttribute": 1,
            "urn:example:custom:2.0:User": {"costCode": "X1"},
        },
    )
    assert response.status_code == 201, response.text
    user = response.json()
    assert user["active"] is True and "password" not in user and "title" not in user and "nickName" not in user
    assert user[ENTERPRISE]["department"] == "Sales"
    assert user[ENTERPRISE]["manager"]["value"] == "m1"
    assert user["urn:example:custom:2.0:User"] == {"costCode": "X1"}  # unknown extension kept
    assert "someUnknownAttribute" not in user
    assert "hunter2" not in scim.get(f"/Users/{user['id']}").text


def test_manager_accepted_in_every_shape_clients_send(scim: httpx.Client) -> None:
    for manager in ("m2", {"value": "m2"}, {"managerId": "m2", "displayName": "Boss"}, [{"value": "m2", "$ref": None}]):
        user = new_user(scim, **{ENTERPRISE: {"manager": manager}}, schemas=[USER, ENTERPRISE])
        assert user[ENTERPRISE]["manager"]["value"] == "m2"


def test_absent_active_defaults_to_true_and_string_false_deactivates(scim: httpx.Client) -> None:
    created = scim.post("/Users", json={"schemas": [USER], "userName": unique()}).json()
    assert created["active"] is True
    off = scim.post("/Users", json={"schemas": [USER], "userName": unique(), "active": "FALSE"}).json()
    assert off["active"] is False


def test_duplicate_user_name_is_409_uniqueness_case_insensitively(scim: httpx.Client) -> None:
    user = new_user(scim)
    response = scim.post("/Users", json={"schemas": [USER], "userName": user["userName"].upper()})
    assert response.status_code == 409
    assert response.json() == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "409",
        "scimType": "uniqueness",
        "detail": response.json()["detail"],
    }


def test_put_replaces_keeps_active_when_omitted_and_never_creates(scim: httpx.Client) -> None:
    user = new_user(scim)
    body = {**user, "displayName": "Ada L.", "name": {"givenName": "Ada", "familyName": "King"}}
    replaced = scim.put(f"/Users/{user['id']}", json=body)
    assert replaced.status_code == 200
    assert (
        replaced.json()["name"]["familyName"] == "King"
        and replaced.json()["meta"]["version"] != user["meta"]["version"]
    )
    assert replaced.json()["meta"]["created"] == user["meta"]["created"]
    deactivated = scim.put(f"/Users/{user['id']}", json={**body, "active": False}).json()
    assert deactivated["active"] is False
    without_active = {k: v for k, v in body.items() if k != "active"}
    assert scim.put(f"/Users/{user['id']}", json=without_active).json()["active"] is False  # kept, not flipped
    assert scim.put(f"/Users/{user['id']}", json={**body, "active": True}).json()["active"] is True
    assert scim.put("/Users/does-not-exist", json=body).status_code == 404


def test_put_cannot_take_another_users_name(scim: httpx.Client) -> None:
    first, second = new_user(scim), new_user(scim)
    response = scim.put(f"/Users/{second['id']}", json={**second, "userName": first["userName"]})
    assert response.status_code == 409 and response.json()["scimType"] == "uniqueness"
    assert scim.get(f"/Users/{second['id']}").json()["userName"] == second["userName"]


def test_deactivated_users_stay_visible(scim: httpx.Client) -> None:
    user = new_user(scim, active=False)
    assert scim.get(f"/Users/{user['id']}").json()["active"] is False
    found = scim.get("/Users", params={"filter": f'userName eq "{user["userName"]}"'}).json()
    assert found["totalResults"] == 1 and found["Resources"][0]["active"] is False


def test_delete_is_204_then_404(scim: httpx.Client) -> None:
    user = new_user(scim)
    response = scim.delete(f"/Users/{user['id']}")
    assert response.status_code == 204 and response.content == b""
    assert scim.delete(f"/Users/{user['id']}").status_code == 404
    assert scim.get(f"/Users/{user['id']}").status_code == 404
    again = scim.post("/Users", json={"schemas": [USER], "userName": user["userName"]})
    assert again.status_code == 201  # the name is free again


def test_values_are_stored_as_sent(scim: httpx.Client) -> None:
    user = new_user(scim, phoneNumbers=[{"value": "+1 (555) 555-0100 ", "type": "work"}], displayName="  MiXeD  ")
    stored = scim.get(f"/Users/{user['id']}").json()
    assert stored["phoneNumbers"][0]["value"] == "+1 (555) 555-0100 " and stored["displayName"] == "  MiXeD  "


def test_client_sent_id_and_meta_are_ignored(scim: httpx.Client) -> None:
    response = scim.post(
        "/Users",
        json={
            "schemas": [USER],
            "userName": unique(),
            "id": "client-chosen",
            "meta": {"created": "1999-01-01T00:00:00Z", "version": 'W/"99"'},
        },
    )
    user = response.json()
    assert user["id"] != "client-chosen" and user["meta"]["created"] != "1999-01-01T00:00:00Z"
    assert user["meta"]["version"] == 'W/"1"'


def test_entra_garbage_casing_is_read(scim: httpx.Client) -> None:
    # Entra's validator sends attribute names in any case (scim2-server's test_ms_entra "garbage").
    name = unique()
    response = scim.post(
        "/Users",
        json={
            "schemas": [USER],
            "UserName": name,
            "Active": True,
            "Emails": [{"Primary": True, "Type": "work", "Value": "g@example.com"}],
            "Name": {"GivenName": "G", "FamilyName": "H"},
        },
    )
    assert response.status_code == 201, response.text
    user = response.json()
    assert user["userName"] == name and user["emails"] == [{"value": "g@example.com", "type": "work", "primary": True}]
    assert user["name"] == {"givenName": "G", "familyName": "H"}


def test_case_exact_attributes_match_exactly(scim: httpx.Client) -> None:
    user = new_user(scim, externalId="CaseExactID-" + unique())
    found = scim.get("/Users", params={"filter": f'externalId eq "{user["externalId"]}"'}).json()
    assert found["totalResults"] == 1
    # externalId is caseExact (RFC 7643 §3.1); userName is not (§4.1.1).
    assert (
        scim.get("/Users", params={"filter": f'externalId eq "{user["externalId"].lower()}"'}).json()["totalResults"]
        == 0
    )
    assert (
        scim.get("/Users", params={"filter": f'userName eq "{user["userName"].upper()}"'}).json()["totalResults"] == 1
    )


def test_emails_are_stored_as_sent_even_on_special_use_domains(scim: httpx.Client) -> None:
    # Okta's spec test uses @okta.local; pydantic's EmailStr would refuse it and lower-case domains.
    user = new_user(scim, emails=[{"value": "Test.User@OKTA.local", "type": "work", "primary": True}])
    assert scim.get(f"/Users/{user['id']}").json()["emails"][0]["value"] == "Test.User@OKTA.local"

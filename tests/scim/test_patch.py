"""PATCH on Users (checklist items 44–56), with the shapes Entra and Okta really send."""

from __future__ import annotations

import httpx
import pytest

from tests.scim.conftest import ENTERPRISE, PATCH, USER, new_user, patch_ops


@pytest.mark.parametrize("op", ["replace", "Replace", "REPLACE"])
@pytest.mark.parametrize("value", [False, "False", "false"])
def test_deactivate_with_any_op_case_and_boolean_spelling(scim: httpx.Client, op: str, value: object) -> None:
    user = new_user(scim)
    response = scim.patch(f"/Users/{user['id']}", json=patch_ops({"op": op, "path": "active", "value": value}))
    assert response.status_code == 200 and response.json()["active"] is False


def test_pathless_replace_with_object_value_deactivates_okta_style(scim: httpx.Client) -> None:
    user = new_user(scim)
    response = scim.patch(
        f"/Users/{user['id']}", json={"schemas": [PATCH], "operations": [{"op": "replace", "value": {"active": False}}]}
    )
    assert response.status_code == 200 and response.json()["active"] is False


def test_pathless_replace_with_dotted_and_urn_keys(scim: httpx.Client) -> None:
    user = new_user(scim)
    response = scim.patch(
        f"/Users/{user['id']}",
        json=patch_ops(
            {
                "op": "replace",
                "value": {
                    "displayName": "Bjfe",
                    "name.givenName": "Kkom",
                    "name.familyName": "Unua",
                    f"{ENTERPRISE}:employeeNumber": "Aklq",
                },
            }
        ),
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["displayName"] == "Bjfe" and patched["name"] == {"givenName": "Kkom", "familyName": "Unua"}
    assert patched[ENTERPRISE]["employeeNumber"] == "Aklq"


def test_filtered_paths_create_missing_entries_and_update_existing(scim: httpx.Client) -> None:
    user = new_user(scim)
    response = scim.patch(
        f"/Users/{user['id']}",
        json=patch_ops(
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "new@example.com"},
            {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+44 1"},
            {"op": "Add", "path": 'addresses[type eq "work"].postalCode', "value": "SW1"},
        ),
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert [e["value"] for e in patched["emails"] if e["type"] == "work"] == ["new@example.com"]
    assert patched["phoneNumbers"] == [{"value": "+44 1", "type": "mobile"}]
    assert patched["addresses"][0]["postalCode"] == "SW1"
    found = scim.get("/Users", params={"filter": 'emails.value eq "NEW@example.com"'}).json()
    assert [r["id"] for r in found["Resources"]] == [user["id"]]  # the index followed the change


def test_enterprise_paths_and_manager_forms(scim: httpx.Client) -> None:
    user = new_user(scim)
    response = scim.patch(
        f"/Users/{user['id']}",
        json=patch_ops(
            {"op": "Add", "path": f"{ENTERPRISE}:department", "value": "Legal"},
            {"op": "Add", "path": "manager", "value": [{"$ref": "http://x/Users/m9", "value": "m9"}]},
        ),
    )
    assert response.status_code == 200, response.text
    assert response.json()[ENTERPRISE]["department"] == "Legal"
    assert response.json()[ENTERPRISE]["manager"]["value"] == "m9"
    removed = scim.patch(f"/Users/{user['id']}", json=patch_ops({"op": "remove", "path": f"{ENTERPRISE}:department"}))
    assert "department" not in removed.json().get(ENTERPRISE, {})


def test_remove_clears_but_required_attributes_cannot_go(scim: httpx.Client) -> None:
    user = new_user(scim, title="Engineer")
    cleared = scim.patch(f"/Users/{user['id']}", json=patch_ops({"op": "Remove", "path": "title"}))
    assert cleared.status_code == 200 and "title" not in cleared.json()
    response = scim.patch(f"/Users/{user['id']}", json=patch_ops({"op": "remove", "path": "userName"}))
    assert response.status_code == 400 and response.json()["scimType"] in ("mutability", "invalidValue")


def test_failing_operation_leaves_no_partial_change(scim: httpx.Client) -> None:
    user = new_user(scim)
    response = scim.patch(
        f"/Users/{user['id']}",
        json=patch_ops(
            {"op": "replace", "path": "displayName", "value": "Changed"},
            {"op": "replace", "path": 'emails[type eq "work"', "value": "broken path"},
        ),
    )
    assert response.status_code == 400 and response.json()["scimType"] in ("invalidPath", "invalidFilter")
    assert "displayName" not in scim.get(f"/Users/{user['id']}").json()


@pytest.mark.parametrize(
    "operations, scim_type",
    [
        ([{"op": "jump", "path": "title", "value": "x"}], "invalidValue"),
        ([], "invalidValue"),
        ([{"op": "replace", "path": "nosuchattribute", "value": "x"}], "invalidPath"),
    ],
)
def test_malformed_patch_is_a_clean_400(scim: httpx.Client, operations: list, scim_type: str | None) -> None:
    user = new_user(scim)
    response = scim.patch(f"/Users/{user['id']}", json={"schemas": [PATCH], "Operations": operations})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["status"] == "400" and body["detail"]
    if scim_type:
        assert body["scimType"] == scim_type


def test_patch_without_patch_schema_is_rejected(scim: httpx.Client) -> None:
    user = new_user(scim)
    response = scim.patch(
        f"/Users/{user['id']}",
        json={"schemas": [USER], "Operations": [{"op": "replace", "path": "title", "value": "x"}]},
    )
    assert response.status_code == 400

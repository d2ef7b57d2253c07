"""PATCH into any extension, declared or kept verbatim, in every shape (issue 10 §5; RFC 7644
§3.5.2, RFC 7643 §2.1 case-insensitive names), and `attributes=` naming the URN or `URN:attr`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.scim.conftest import ENTERPRISE, USER, new_user, patch_ops

AGENCY = "urn:example:params:scim:schemas:extension:agency:2.0:User"


def _contractor(scim: httpx.Client) -> dict[str, Any]:
    return new_user(scim, schemas=[USER, AGENCY], **{AGENCY: {"accessExpires": "2027-06-30", "agency": "Bright"}})


def _shapes(urn: str, attribute: str, value: str) -> list[dict[str, Any]]:
    """The four PATCH shapes clients send for one extension attribute, in mixed case."""
    return [
        {"op": "replace", "path": f"{urn}:{attribute}", "value": value},
        {"op": "Replace", "path": urn.upper(), "value": {attribute.upper(): value}},
        {"op": "replace", "value": {urn: {attribute: value}}},
        {"op": "add", "value": {f"{urn.lower()}:{attribute.lower()}": value}},
    ]


@pytest.mark.parametrize("shape", range(4))
def test_a_verbatim_extension_attribute_is_replaced_in_every_patch_shape(scim: httpx.Client, shape: int) -> None:
    user = _contractor(scim)
    operation = _shapes(AGENCY, "accessExpires", "2026-12-31")[shape]
    response = scim.patch(f"/Users/{user['id']}", json=patch_ops(operation))
    assert response.status_code == 200, response.text
    assert response.json()[AGENCY] == {"accessExpires": "2026-12-31", "agency": "Bright"}
    assert response.headers["etag"] == 'W/"2"'  # a real change, not an "unchanged"
    stored = scim.get(f"/Users/{user['id']}").json()
    assert stored[AGENCY] == {"accessExpires": "2026-12-31", "agency": "Bright"}  # the stored spelling kept
    assert AGENCY in stored["schemas"]


def test_a_verbatim_extension_is_added_to_a_user_without_it_and_removed_again(scim: httpx.Client) -> None:
    user = new_user(scim)
    added = scim.patch(
        f"/Users/{user['id']}", json=patch_ops({"op": "add", "path": f"{AGENCY}:accessExpires", "value": "2026-01-31"})
    )
    assert added.status_code == 200, added.text
    assert added.json()[AGENCY] == {"accessExpires": "2026-01-31"} and AGENCY in added.json()["schemas"]
    removed = scim.patch(
        f"/Users/{user['id']}", json=patch_ops({"op": "Remove", "path": f"{AGENCY.upper()}:ACCESSEXPIRES"})
    )
    assert removed.status_code == 200
    stored = scim.get(f"/Users/{user['id']}").json()
    assert AGENCY not in stored and AGENCY not in stored["schemas"]  # an empty block goes with its URN


def test_a_whole_verbatim_extension_is_removed_by_its_urn(scim: httpx.Client) -> None:
    user = _contractor(scim)
    response = scim.patch(f"/Users/{user['id']}", json=patch_ops({"op": "remove", "path": AGENCY}))
    assert response.status_code == 200
    assert AGENCY not in scim.get(f"/Users/{user['id']}").json()


def test_an_attribute_and_a_verbatim_extension_change_together_or_not_at_all(scim: httpx.Client) -> None:
    user = _contractor(scim)
    both = scim.patch(
        f"/Users/{user['id']}",
        json=patch_ops({"op": "replace", "value": {"title": "Contractor", f"{AGENCY}:accessExpires": "2026-03-01"}}),
    )
    assert both.status_code == 200
    assert both.json()["title"] == "Contractor" and both.json()[AGENCY]["accessExpires"] == "2026-03-01"
    refused = scim.patch(
        f"/Users/{user['id']}",
        json=patch_ops(
            {"op": "replace", "path": f"{AGENCY}:accessExpires", "value": "2030-01-01"},
            {"op": "remove", "path": "userName"},
        ),
    )
    assert refused.status_code == 400
    assert scim.get(f"/Users/{user['id']}").json()[AGENCY]["accessExpires"] == "2026-03-01"


def test_a_value_filter_inside_a_verbatim_extension_is_refused_not_ignored(scim: httpx.Client) -> None:
    user = _contractor(scim)
    response = scim.patch(
        f"/Users/{user['id']}",
        json=patch_ops({"op": "replace", "path": f'{AGENCY}:badges[value eq "x"].level', "value": "2"}),
    )
    assert response.status_code == 400 and response.json()["scimType"] == "invalidPath"


def test_multi_valued_verbatim_attributes_append_and_remove_by_value(scim: httpx.Client) -> None:
    user = new_user(scim, schemas=[USER, AGENCY], **{AGENCY: {"sites": ["lon"]}})
    scim.patch(f"/Users/{user['id']}", json=patch_ops({"op": "add", "path": f"{AGENCY}:sites", "value": ["par"]}))
    assert scim.get(f"/Users/{user['id']}").json()[AGENCY]["sites"] == ["lon", "par"]
    scim.patch(f"/Users/{user['id']}", json=patch_ops({"op": "remove", "path": f"{AGENCY}:sites", "value": ["lon"]}))
    assert scim.get(f"/Users/{user['id']}").json()[AGENCY]["sites"] == ["par"]


@pytest.mark.parametrize("shape", range(4))
def test_an_enterprise_attribute_is_replaced_in_every_patch_shape(scim: httpx.Client, shape: int) -> None:
    user = new_user(scim, **{ENTERPRISE: {"department": "Sales", "costCenter": "42"}})
    response = scim.patch(f"/Users/{user['id']}", json=patch_ops(_shapes(ENTERPRISE, "department", "Legal")[shape]))
    assert response.status_code == 200, response.text
    assert scim.get(f"/Users/{user['id']}").json()[ENTERPRISE] == {"department": "Legal", "costCenter": "42"}


@pytest.mark.parametrize("spelling", [AGENCY, AGENCY.upper(), f"{AGENCY}:accessExpires", f"{AGENCY}:ACCESSEXPIRES"])
def test_attributes_naming_a_verbatim_extension_or_its_attribute_return_it(scim: httpx.Client, spelling: str) -> None:
    user = _contractor(scim)
    one = scim.get(f"/Users/{user['id']}", params={"attributes": spelling}).json()
    assert one[AGENCY]["accessExpires"] == "2027-06-30" and "userName" not in one
    if spelling.lower().endswith("accessexpires"):
        assert one[AGENCY] == {"accessExpires": "2027-06-30"}
    listed = scim.get("/Users", params={"attributes": spelling, "filter": f'userName eq "{user["userName"]}"'}).json()
    assert listed["Resources"][0][AGENCY]["accessExpires"] == "2027-06-30"


def test_excluded_attributes_naming_a_verbatim_attribute_leave_the_rest(scim: httpx.Client) -> None:
    user = _contractor(scim)
    without = scim.get(f"/Users/{user['id']}", params={"excludedAttributes": f"{AGENCY}:accessExpires"}).json()
    assert without[AGENCY] == {"agency": "Bright"} and without["userName"] == user["userName"]
    gone = scim.get(f"/Users/{user['id']}", params={"excludedAttributes": AGENCY}).json()
    assert AGENCY not in gone


@pytest.mark.parametrize("urn", [AGENCY, ENTERPRISE])
def test_a_pathless_replace_with_null_clears_an_extension_attribute(scim: httpx.Client, urn: str) -> None:
    user = new_user(scim, schemas=[USER, urn], **{urn: {"costCenter": "42", "department": "Sales"}})
    for value in ({f"{urn}:department": None}, {urn: {"department": None}}):
        scim.patch(f"/Users/{user['id']}", json=patch_ops({"op": "replace", "path": f"{urn}:department", "value": "x"}))
        response = scim.patch(f"/Users/{user['id']}", json=patch_ops({"op": "replace", "value": value}))
        assert response.status_code == 200, response.text
        assert scim.get(f"/Users/{user['id']}").json()[urn] == {"costCenter": "42"}

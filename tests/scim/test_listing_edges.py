"""Listing inputs that once answered 500 (issue 10): each now gets a SCIM answer, on both stores.

RFC 7644 §3.4.2 (query parameters), §3.4.3 (SearchRequest), §3.12 (error types); RFC 7232 §3
(validators). Each test sends what the fuzzer or the probe sent, over real HTTP.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.scim.conftest import new_group, new_user

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


def scim_error(response: httpx.Response, status: int, scim_type: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["schemas"] == [ERROR] and body["status"] == str(status)
    if scim_type:
        assert body.get("scimType") == scim_type, body
    return body


def search(scim: httpx.Client, path: str, **fields: Any) -> httpx.Response:
    return scim.post(path, json={"schemas": [SEARCH], **fields})


def test_a_start_index_beyond_64_bits_is_an_invalid_value_not_a_crash(scim: httpx.Client) -> None:
    for params in ({"startIndex": str(2**70)}, {"startIndex": str(2**63)}, {"startIndex": "9" * 5000}):
        for filtered in ({}, {"filter": "userName pr"}):
            scim_error(scim.get("/Users", params={**params, **filtered}), 400, "invalidValue")
    scim_error(search(scim, "/Users/.search", startIndex=2**63), 400, "invalidValue")


def test_a_start_index_below_one_is_taken_as_one(scim: httpx.Client) -> None:
    new_user(scim)
    for value in ("0", "-5", str(-(2**70))):
        response = scim.get("/Users", params={"startIndex": value, "count": "1"})
        assert response.status_code == 200, response.text
        assert response.json()["startIndex"] == 1 and response.json()["itemsPerPage"] == 1


def test_a_huge_count_is_clamped_to_the_maximum_page(scim: httpx.Client) -> None:
    response = scim.get("/Users", params={"count": str(2**70)})
    assert response.status_code == 200, response.text


def test_a_start_index_in_unicode_digits_is_refused(scim: httpx.Client) -> None:
    scim_error(scim.get("/Users", params={"startIndex": "²"}), 400, "invalidValue")


@pytest.mark.parametrize("path", ["/Users/.search", "/Groups/.search", "/.search"])
@pytest.mark.parametrize(
    "fields",
    [
        {"cursor": 5},
        {"cursor": ["a"]},
        {"count": 1e300},
        {"count": 1.5},
        {"count": True},
        {"startIndex": [1]},
        {"startIndex": "x"},
        {"filter": 5},
        {"filter": {"a": 1}},
        {"sortBy": ["userName"]},
        {"sortOrder": 3},
        {"attributes": 7},
        {"excludedAttributes": [1, 2]},
    ],
)
def test_a_search_request_member_of_the_wrong_json_type_is_invalid_syntax(
    scim: httpx.Client, path: str, fields: dict[str, Any]
) -> None:
    scim_error(search(scim, path, **fields), 400, "invalidSyntax")


def test_a_search_request_may_list_attributes_and_write_integers_as_json_numbers(scim: httpx.Client) -> None:
    user = new_user(scim)
    response = search(
        scim, "/Users/.search", filter=f'userName eq "{user["userName"]}"', attributes=["userName"], count=10.0
    )
    assert response.status_code == 200, response.text
    assert response.json()["Resources"] == [
        {"schemas": user["schemas"], "id": user["id"], "userName": user["userName"]}
    ]


@pytest.mark.parametrize("tag", ["²", 'W/"²"', '"١"', "ÿ"])
def test_a_non_ascii_etag_is_a_validator_that_matches_nothing(scim: httpx.Client, tag: str) -> None:
    """RFC 7232 §3.1/§3.2: a tag that matches no version fails If-Match (412) and passes
    If-None-Match (the resource is returned)."""
    user = new_user(scim)
    raw = tag.encode("latin-1", errors="ignore") or tag.encode()
    got = scim.get(f"/Users/{user['id']}", headers={b"If-None-Match": raw})
    assert got.status_code == 200, got.text
    body = {"schemas": user["schemas"], "userName": user["userName"]}
    scim_error(scim.put(f"/Users/{user['id']}", headers={b"If-Match": raw}, json=body), 412)
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": []}
    assert scim.patch(f"/Users/{user['id']}", headers={b"If-Match": raw}, json=patch).status_code in (400, 412)
    scim_error(scim.delete(f"/Users/{user['id']}", headers={b"If-Match": raw}), 412)
    assert scim.get(f"/Users/{user['id']}").json()["meta"]["version"] == user["meta"]["version"]


@pytest.mark.parametrize("sort_by", ["name", "meta", "urn:ietf:params:scim:schemas:core:2.0:User:name"])
def test_sorting_by_a_complex_attribute_without_a_value_is_an_invalid_value(scim: httpx.Client, sort_by: str) -> None:
    new_user(scim)
    new_user(scim)
    body = scim_error(scim.get("/Users", params={"sortBy": sort_by}), 400, "invalidValue")
    assert "sub-attribute" in body["detail"]


def test_sorting_by_a_multi_valued_attribute_uses_the_primary_value(scim: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:8]
    b = new_user(
        scim, userName=f"b-{tag}", emails=[{"value": f"z-{tag}@x.org"}, {"value": f"a-{tag}@x.org", "primary": True}]
    )
    a = new_user(scim, userName=f"a-{tag}", emails=[{"value": f"m-{tag}@x.org", "primary": True}])
    response = scim.get("/Users", params={"filter": f'userName ew "{tag}"', "sortBy": "emails"})
    assert [r["id"] for r in response.json()["Resources"]] == [b["id"], a["id"]]
    scim_error(scim.get("/Groups", params={"sortBy": "members.nope"}), 400, "invalidFilter")
    scim_error(scim.get("/Users", params={"sortBy": "a[b]"}), 400, "invalidValue")


@pytest.mark.parametrize(
    "moment", ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00", "0001-01-01", "0001-01-01T00:00:00+01:00"]
)
@pytest.mark.parametrize("endpoint", ["/Users", "/Groups"])
def test_a_year_one_date_in_a_filter_compares_as_a_date(scim: httpx.Client, endpoint: str, moment: str) -> None:
    new_user(scim) if endpoint == "/Users" else new_group(scim)
    after = scim.get(endpoint, params={"filter": f'meta.lastModified gt "{moment}"', "count": "0"})
    before = scim.get(endpoint, params={"filter": f'meta.lastModified lt "{moment}"', "count": "0"})
    assert after.status_code == before.status_code == 200, (after.text, before.text)
    assert after.json()["totalResults"] >= 1 and before.json()["totalResults"] == 0


@pytest.mark.parametrize(
    "expression",
    [
        'userName eq "\\ud800"',
        'displayName eq "\\udfff\\ud800"',
        'emails.value eq "a\\ud800"',
        'externalId eq "\\ud800"',
        'title co "\\udc00"',
        'emails[value eq "\\ud800"]',
    ],
)
def test_a_lone_surrogate_in_a_filter_is_an_invalid_filter(scim: httpx.Client, expression: str) -> None:
    scim_error(scim.get("/Users", params={"filter": expression}), 400, "invalidFilter")
    raw = b'{"schemas":["%s"],"filter":"%s"}' % (
        SEARCH.encode(),
        expression.replace("\\", "\\\\").replace('"', '\\"').encode(),
    )
    scim_error(
        scim.post("/.search", content=raw, headers={"Content-Type": "application/scim+json"}), 400, "invalidFilter"
    )


def test_an_escaped_surrogate_pair_in_a_filter_is_the_character_it_encodes(scim: httpx.Client) -> None:
    user = new_user(scim, userName=f"\U0001f600-{uuid.uuid4().hex[:8]}")
    expression = 'userName eq "\\ud83d\\ude00-' + user["userName"].split("-", 1)[1] + '"'
    response = scim.get("/Users", params={"filter": expression})
    assert [r["id"] for r in response.json()["Resources"]] == [user["id"]], response.text

"""Filters, sorting, paging and projection (checklist items 16–30, RFC 7644 §3.4.2)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.scim.conftest import ENTERPRISE, USER, new_group, new_user


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["Resources"]]


def test_eq_filters_clients_use_for_matching(scim: httpx.Client) -> None:
    user = new_user(scim, externalId=f"ext{uuid.uuid4().hex[:6]}")
    name, ext, mail = user["userName"], user["externalId"], user["emails"][0]["value"]
    for expression in (
        f'userName eq "{name}"',
        f'userName EQ "{name.upper()}"',
        f'username eq "{name}"',
        f"externalId eq {ext}",
        f'emails[type eq "work"].value eq "{mail}"',
        f'emails.value eq "{mail}"',
        f'id eq "{user["id"]}" and manager eq "x" or id eq "{user["id"]}"',
    ):
        assert ids(scim.get("/Users", params={"filter": expression})) == [user["id"]], expression
    raw = scim.get(f"/Users?filter=userName+eq+%22{name}%22")
    assert ids(raw) == [user["id"]]


def test_no_match_is_an_empty_list_response(scim: httpx.Client) -> None:
    response = scim.get("/Users", params={"filter": f'userName eq "{uuid.uuid4()}"'})
    assert response.json() == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }


def test_every_operator_and_logic(scim: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:8]
    a = new_user(
        scim,
        userName=f"alpha-{tag}",
        title="Editor",
        nickName="al",
        **{ENTERPRISE: {"department": "Post"}},
        schemas=[USER, ENTERPRISE],
    )
    b = new_user(scim, userName=f"beta-{tag}", title="Producer", active=False)
    scope = f'userName ew "{tag}"'
    cases = {
        f'{scope} and title co "dit"': [a],
        f'{scope} and title sw "pro"': [b],
        f'{scope} and title ne "Editor"': [b],
        f"{scope} and nickName pr": [a],
        f"{scope} and not (nickName pr)": [b],
        f"{scope} and active eq false": [b],
        f'{scope} and (title eq "Editor" or title eq "Producer")': [a, b],
        f'{scope} and userName gt "b"': [b],
        f'{scope} and userName le "alpha-{tag}"': [a],
        f'{scope} and {ENTERPRISE}:department eq "post"': [a],
        f'{scope} and meta.created ge "2000-01-01T00:00:00Z"': [a, b],
        f'{scope} and meta.lastModified lt "2000-01-01T00:00:00Z"': [],
    }
    for expression, expected in cases.items():
        assert ids(scim.get("/Users", params={"filter": expression})) == [u["id"] for u in expected], expression


def test_members_filter_on_groups(scim: httpx.Client) -> None:
    user = new_user(scim)
    group = new_group(scim, [user["id"]])
    assert ids(scim.get("/Groups", params={"filter": f'members[value eq "{user["id"]}"]'})) == [group["id"]]
    assert ids(scim.get("/Groups", params={"filter": f'members eq "{user["id"]}"'})) == [group["id"]]


@pytest.mark.parametrize(
    "expression",
    ["userName eq", 'userName xx "a"', '(userName eq "a"', 'nosuch eq "a"', "active gt true", 'userName eq "a" and'],
)
def test_invalid_filters_are_400_invalid_filter(scim: httpx.Client, expression: str) -> None:
    response = scim.get("/Users", params={"filter": expression})
    assert response.status_code == 400 and response.json()["scimType"] == "invalidFilter", expression


def test_oversized_filters_are_refused_quickly(scim: httpx.Client) -> None:
    deep = "(" * 200 + 'userName eq "a"' + ")" * 200
    response = scim.get("/Users", params={"filter": deep})
    assert response.status_code == 400 and "limit" in response.json()["detail"]
    long = " or ".join(f'userName eq "{i}"' for i in range(400))
    response = scim.get("/Users", params={"filter": long})
    assert response.status_code == 400 and "limit" in response.json()["detail"]


def test_index_paging_is_one_based_stable_and_typed(scim: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:8]
    created = [new_user(scim, userName=f"page{i}-{tag}")["id"] for i in range(5)]
    query = {"filter": f'userName ew "{tag}"'}
    first = scim.get("/Users", params={**query, "startIndex": 1, "count": 2}).json()
    assert (first["totalResults"], first["startIndex"], first["itemsPerPage"]) == (5, 1, 2)
    pages = [ids(scim.get("/Users", params={**query, "startIndex": s, "count": 2})) for s in (1, 3, 5)]
    assert sum(pages, []) == created
    zero = scim.get("/Users", params={**query, "count": 0}).json()
    assert zero["totalResults"] == 5 and zero["Resources"] == []
    clamped = scim.get("/Users", params={"count": 100000}).json()
    assert clamped["itemsPerPage"] <= 1000
    unfiltered = scim.get("/Users", params={"startIndex": 1, "count": 1}).json()
    assert unfiltered["itemsPerPage"] == 1 and unfiltered["totalResults"] >= 5


def test_cursor_paging_walks_every_match_once(scim: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:8]
    created = [new_user(scim, userName=f"cur{i}-{tag}")["id"] for i in range(5)]
    seen: list[str] = []
    params = {"filter": f'userName ew "{tag}"', "count": 2, "cursor": ""}
    while True:
        page = scim.get("/Users", params=params).json()
        seen += [r["id"] for r in page["Resources"]]
        if "nextCursor" not in page:
            break
        params["cursor"] = page["nextCursor"]
    assert seen == created
    forged = scim.get("/Users", params={"count": 2, "cursor": "bm9wZQ"})
    assert forged.status_code == 400 and forged.json()["scimType"] == "invalidCursor"


def test_sorting(scim: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:8]
    b = new_user(scim, userName=f"b-{tag}", name={"givenName": "Zed", "familyName": "A"})
    a = new_user(scim, userName=f"A-{tag}")
    c = new_user(scim, userName=f"c-{tag}", name={"givenName": "Amy", "familyName": "C"})
    query = {"filter": f'userName ew "{tag}"', "sortBy": "userName"}
    assert ids(scim.get("/Users", params=query)) == [a["id"], b["id"], c["id"]]
    assert ids(scim.get("/Users", params={**query, "sortOrder": "descending"})) == [c["id"], b["id"], a["id"]]
    by_given = ids(scim.get("/Users", params={**query, "sortBy": "name.givenName"}))
    assert by_given == [a["id"], c["id"], b["id"]]  # Ada, Amy, Zed


def test_attributes_and_excluded_attributes(scim: httpx.Client) -> None:
    user = new_user(scim, **{ENTERPRISE: {"department": "Legal"}}, schemas=[USER, ENTERPRISE])
    only_id = scim.get(f"/Users/{user['id']}", params={"attributes": "id"}).json()
    assert set(only_id) == {"schemas", "id"}
    some = scim.get(
        f"/Users/{user['id']}", params={"attributes": f"userName,name.givenName,{ENTERPRISE}:department"}
    ).json()
    assert some["name"] == {"givenName": "Ada"} and some[ENTERPRISE] == {"department": "Legal"} and "emails" not in some
    without = scim.get(f"/Users/{user['id']}", params={"excludedAttributes": "emails,meta"}).json()
    assert "emails" not in without and "meta" not in without and without["userName"] == user["userName"]


def test_search_endpoints(scim: httpx.Client) -> None:
    user = new_user(scim)
    group = new_group(scim, displayName=user["userName"] + "-group")
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": f'userName eq "{user["userName"]}"',
        "attributes": ["userName"],
    }
    found = scim.post("/Users/.search", json=body).json()
    assert found["totalResults"] == 1 and set(found["Resources"][0]) == {"schemas", "id", "userName"}
    root = scim.post(
        "/.search",
        json={
            **body,
            "filter": f'displayName eq "{group["displayName"]}" or userName eq "{user["userName"]}"',
            "attributes": None,
        },
    )
    assert sorted(r["id"] for r in root.json()["Resources"]) == sorted([user["id"], group["id"]])

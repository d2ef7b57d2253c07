"""What a write answers is what it applied (issue 10 §4): no 500 or dropped connection after a
commit, Bulk answers per operation (RFC 7644 §3.7.3), readOnly attributes are `mutability`."""

from __future__ import annotations

from urllib.parse import unquote

import httpx
import pytest

from tests.scim.conftest import GROUP, USER, new_group, new_user, patch_ops, unique

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


def _members(scim: httpx.Client, group_id: str) -> set[str]:
    return {m["value"] for m in scim.get(f"/Groups/{group_id}").json().get("members", [])}


@pytest.mark.parametrize("strange", ["evil\r\nX-Injected: 1", "ünïcødé-€", "tab\there", "x" * 5000])
def test_a_member_value_no_header_can_carry_is_reported_safely_with_the_applied_change(
    scim: httpx.Client, strange: str
) -> None:
    user = new_user(scim)
    group = new_group(scim)
    response = scim.patch(
        f"/Groups/{group['id']}",
        json=patch_ops({"op": "add", "path": "members", "value": [{"value": user["id"]}, {"value": strange}]}),
    )
    assert response.status_code == 200, response.text
    assert "x-injected" not in response.headers
    assert response.headers["x-scim-bridge-skipped-count"] == "1"
    reported = response.headers["x-scim-bridge-skipped-members"]
    assert reported.isascii() and len(reported) <= 2048
    if len(strange) < 100:
        assert [unquote(part) for part in reported.split(",")] == [strange]
    assert {m["value"] for m in response.json()["members"]} == {user["id"]} == _members(scim, group["id"])


def test_a_group_created_with_a_strange_member_value_answers_201_with_what_was_stored(scim: httpx.Client) -> None:
    user = new_user(scim)
    name = unique("group")
    response = scim.post(
        "/Groups",
        json={"schemas": [GROUP], "displayName": name, "members": [{"value": user["id"]}, {"value": "a\nb€"}]},
    )
    assert response.status_code == 201, response.text
    assert unquote(response.headers["x-scim-bridge-skipped-members"]) == "a\nb€"
    assert _members(scim, response.json()["id"]) == {user["id"]}


def test_a_bad_bulk_operation_after_applied_ones_is_answered_alone(scim: httpx.Client) -> None:
    user = new_user(scim)
    name = unique()
    body = {
        "schemas": [BULK],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"schemas": [USER], "userName": name}},
            {
                "method": "PATCH",
                "path": f"/Users/{user['id']}",
                "data": patch_ops({"op": "replace", "path": "title", "value": "Applied"}),
            },
            {
                "method": "PATCH",
                "path": f"/Users/{user['id']}",
                "version": 2,
                "data": patch_ops({"op": "replace", "path": "title", "value": "Number"}),
            },
            {
                "method": "PUT",
                "path": f"/Users/{user['id']}",
                "version": {"etag": 'W/"2"'},
                "data": {"schemas": [USER], "userName": user["userName"]},
            },
            {"method": 7, "path": "/Users"},
            {"method": "PATCH", "path": ["/Users"], "data": {}},
            {"method": "POST", "path": "/Users", "bulkId": {"no": 1}, "data": {"schemas": [USER], "userName": "n"}},
            "not an object",
            {"method": "PATCH", "path": f"/Users/{user['id']}", "data": "not a patch"},
            {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"schemas": [USER], "userName": unique()}},
        ],
    }
    response = scim.post("/Bulk", json=body)
    assert response.status_code == 200, response.text
    statuses = [op["status"] for op in response.json()["Operations"]]
    assert statuses == ["201", "200", "400", "400", "400", "400", "400", "400", "400", "201"]
    for op in response.json()["Operations"][2:9]:
        assert op["response"]["status"] == "400" and op["response"]["detail"]
    assert scim.get(f"/Users/{user['id']}").json()["title"] == "Applied"
    listed = scim.get("/Users", params={"filter": f'userName eq "{name}"'}).json()
    assert listed["totalResults"] == 1


def test_bulk_fail_on_errors_still_stops_at_the_bad_operations(scim: httpx.Client) -> None:
    user = new_user(scim)
    body = {
        "schemas": [BULK],
        "failOnErrors": 2,
        "Operations": [
            {"method": "PATCH", "path": f"/Users/{user['id']}", "version": 5, "data": patch_ops()},
            {"method": "DELETE", "path": "/Users/missing"},
            {"method": "DELETE", "path": f"/Users/{user['id']}"},
        ],
    }
    operations = scim.post("/Bulk", json=body).json()["Operations"]
    assert [op["status"] for op in operations] == ["400", "404"]
    assert scim.get(f"/Users/{user['id']}").status_code == 200  # the third never ran


def test_an_operation_that_depends_on_a_failed_post_is_409_and_names_it(scim: httpx.Client) -> None:
    taken = new_user(scim)["userName"]
    body = {
        "schemas": [BULK],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "dup", "data": {"schemas": [USER], "userName": taken}},
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "g",
                "data": {"schemas": [GROUP], "displayName": unique("g"), "members": [{"value": "bulkId:dup"}]},
            },
        ],
    }
    operations = scim.post("/Bulk", json=body).json()["Operations"]
    assert [op["status"] for op in operations] == ["409", "409"]
    assert operations[0]["response"]["scimType"] == "uniqueness"
    assert "dup" in operations[1]["response"]["detail"]


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": "id", "value": "another-id"},
        {"op": "Replace", "path": "ID", "value": "another-id"},
        {"op": "remove", "path": "id"},
        {"op": "replace", "path": f"{USER}:id", "value": "another-id"},
        {"op": "replace", "path": "meta", "value": {"created": "2000-01-01T00:00:00Z"}},
        {"op": "replace", "path": "meta.version", "value": 'W/"99"'},
        {"op": "add", "path": "meta.lastModified", "value": "2000-01-01T00:00:00Z"},
        {"op": "add", "path": "groups", "value": [{"value": "g"}]},
        {"op": "replace", "value": {"id": "another-id", "title": "x"}},
    ],
)
def test_patching_a_read_only_attribute_is_400_mutability_and_changes_nothing(
    scim: httpx.Client, operation: dict[str, object]
) -> None:
    # Chosen over RFC 7644 §3.5.2's option to ignore: a client that tries to move an id should
    # hear that it did not move. Echoes that change nothing (Okta's own id, meta) stay accepted.
    user = new_user(scim)
    response = scim.patch(f"/Users/{user['id']}", json=patch_ops(operation))
    assert response.status_code == 400, response.text
    assert response.json()["scimType"] == "mutability"
    after = scim.get(f"/Users/{user['id']}")
    assert after.json()["id"] == user["id"] and after.headers["etag"] == 'W/"1"'


def test_echoes_of_its_own_id_and_meta_in_a_pathless_patch_are_accepted(scim: httpx.Client) -> None:
    user = new_user(scim)
    response = scim.patch(
        f"/Users/{user['id']}",
        json=patch_ops({"op": "replace", "value": {"id": user["id"], "meta": user["meta"], "title": "Echo"}}),
    )
    assert response.status_code == 200 and response.json()["title"] == "Echo"
    assert response.json()["meta"]["created"] == user["meta"]["created"]


@pytest.mark.parametrize("tag", [b'W/"\xb2"', b'"\xb9\xb2"', 'W/"١"'.encode()])
def test_an_etag_of_non_ascii_digits_is_a_mismatch_not_a_500(scim: httpx.Client, tag: bytes) -> None:
    # str.isdigit() accepts "²" (a Latin-1 header byte) and Arabic-Indic digits; int() does not.
    user = new_user(scim)
    body = patch_ops({"op": "replace", "path": "title", "value": "x"})
    assert scim.patch(f"/Users/{user['id']}", json=body, headers={"If-Match": tag}).status_code == 412
    assert scim.delete(f"/Users/{user['id']}", headers={"If-Match": tag}).status_code == 412
    assert scim.get(f"/Users/{user['id']}", headers={"If-None-Match": tag}).status_code == 200
    bulk = {
        "schemas": [BULK],
        "Operations": [
            {"method": "PATCH", "path": f"/Users/{user['id']}", "version": tag.decode("latin-1"), "data": body}
        ],
    }
    assert [op["status"] for op in scim.post("/Bulk", json=bulk).json()["Operations"]] == ["412"]
    assert "title" not in scim.get(f"/Users/{user['id']}").json()

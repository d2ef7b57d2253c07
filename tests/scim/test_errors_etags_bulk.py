"""Bad input, ETags and Bulk: every failure a SCIM error with status and scimType, never a 500."""

from __future__ import annotations

import httpx
import pytest

from tests.live import LiveBridge
from tests.scim.conftest import GROUP, USER, new_user, patch_ops, unique

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


def error(response: httpx.Response, status: int, scim_type: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/scim+json")
    body = response.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == str(status) and body["detail"] and "Traceback" not in response.text
    if scim_type:
        assert body["scimType"] == scim_type
    return body


@pytest.mark.parametrize(
    "body, scim_type",
    [
        (b"{not json", "invalidSyntax"),
        (b"[1, 2]", "invalidSyntax"),
        (b'{"userName": "no-schemas"}', "invalidValue"),
        (b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "userName": "x"}', "invalidValue"),
        (b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}', "invalidValue"),
        (
            b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x", "emails": "nope"}',
            "invalidValue",
        ),
        (
            b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x", "active": "perhaps"}',
            "invalidValue",
        ),
        (b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": 42}', "invalidValue"),
    ],
)
def test_bad_bodies(scim: httpx.Client, body: bytes, scim_type: str) -> None:
    response = scim.post("/Users", content=body, headers={"Content-Type": "application/scim+json"})
    error(response, 400, scim_type)


def test_body_over_the_limit_is_413_before_it_is_read(scim: httpx.Client) -> None:
    huge = (
        b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    )
    error(scim.post("/Users", content=huge, headers={"Content-Type": "application/json"}), 413)

    def chunks():  # no Content-Length: the cap applies while streaming
        for _ in range(6):
            yield b" " * (1024 * 1024)

    error(scim.post("/Users", content=chunks(), headers={"Content-Type": "application/json"}), 413)


def test_unknown_ids_and_endpoints(scim: httpx.Client) -> None:
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        body = {"schemas": [USER], "userName": "x"} if method == "PUT" else patch_ops({"op": "remove", "path": "title"})
        error(scim.request(method, "/Users/00919288221112222", json=body if method in ("PUT", "PATCH") else None), 404)
    error(scim.get("/Widgets"), 404)


def test_etags(scim: httpx.Client) -> None:
    user = new_user(scim)
    tag = user["meta"]["version"]
    assert scim.get(f"/Users/{user['id']}", headers={"If-None-Match": tag}).status_code == 304
    changed = scim.patch(
        f"/Users/{user['id']}",
        headers={"If-Match": tag},
        json=patch_ops({"op": "replace", "path": "title", "value": "Boss"}),
    )
    assert changed.status_code == 200 and changed.headers["etag"] != tag
    error(
        scim.patch(
            f"/Users/{user['id']}",
            headers={"If-Match": tag},
            json=patch_ops({"op": "replace", "path": "title", "value": "Nope"}),
        ),
        412,
    )
    error(scim.delete(f"/Users/{user['id']}", headers={"If-Match": tag}), 412)
    assert scim.get(f"/Users/{user['id']}").json()["title"] == "Boss"
    noop = scim.patch(f"/Users/{user['id']}", json=patch_ops({"op": "replace", "path": "title", "value": "Boss"}))
    assert noop.headers["etag"] == changed.headers["etag"]  # a change to nothing keeps the version
    assert scim.delete(f"/Users/{user['id']}", headers={"If-Match": "*"}).status_code == 204


def test_bulk_with_references_and_fail_on_errors(scim: httpx.Client) -> None:
    name = unique()
    body = {
        "schemas": [BULK],
        "Operations": [
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "g1",
                "data": {"schemas": [GROUP], "displayName": unique("bulk"), "members": [{"value": "bulkId:u1"}]},
            },
            {"method": "POST", "path": "/Users", "bulkId": "u1", "data": {"schemas": [USER], "userName": name}},
            {"method": "POST", "path": "/Users", "bulkId": "dup", "data": {"schemas": [USER], "userName": name}},
            {
                "method": "PATCH",
                "path": "/Users/bulkId:u1",
                "data": patch_ops({"op": "replace", "path": "title", "value": "T"}),
            },
        ],
    }
    response = scim.post("/Bulk", json=body)
    assert response.status_code == 200, response.text
    results = {op.get("bulkId", op["method"]): op for op in response.json()["Operations"]}
    assert results["u1"]["status"] == "201" and results["g1"]["status"] == "201"
    assert results["dup"]["status"] == "409" and results["dup"]["response"]["scimType"] == "uniqueness"
    assert results["PATCH"]["status"] == "200"
    group = scim.get(results["g1"]["location"].split("/scim/v2")[1]).json()
    user_id = results["u1"]["location"].rsplit("/", 1)[1]
    assert group["members"][0]["value"] == user_id

    stop = {
        "schemas": [BULK],
        "failOnErrors": 1,
        "Operations": [
            {"method": "DELETE", "path": "/Users/missing"},
            {"method": "POST", "path": "/Users", "bulkId": "never", "data": {"schemas": [USER], "userName": unique()}},
        ],
    }
    stopped = scim.post("/Bulk", json=stop).json()["Operations"]
    assert len(stopped) == 1 and stopped[0]["status"] == "404"

    cycle = {
        "schemas": [BULK],
        "Operations": [
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "a",
                "data": {"schemas": [GROUP], "displayName": unique("a"), "members": [{"value": "bulkId:b"}]},
            },
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "b",
                "data": {"schemas": [GROUP], "displayName": unique("b"), "members": [{"value": "bulkId:a"}]},
            },
        ],
    }
    assert {op["status"] for op in scim.post("/Bulk", json=cycle).json()["Operations"]} == {"409"}


def test_bulk_over_the_announced_limits(scim: httpx.Client) -> None:
    operations = [{"method": "DELETE", "path": f"/Users/x{i}"} for i in range(1001)]
    error(scim.post("/Bulk", json={"schemas": [BULK], "Operations": operations}), 413)


def test_store_down_is_503_with_retry_after(tmp_path: object) -> None:
    # A Redis store whose server is gone: every SCIM call answers 503, never 500.
    from tests.live import free_port

    with LiveBridge(f"redis://127.0.0.1:{free_port()}/0") as bridge, bridge.client() as client:
        response = client.get("/Users")
        body = error(response, 503)
        assert response.headers["retry-after"] and "store" in body["detail"]
        error(client.post("/Users", json={"schemas": [USER], "userName": "x"}), 503)
        assert httpx.get(f"{bridge.root}/health").status_code == 503

"""Discovery and transport (scim-clients.md §6 items 1–8)."""

from __future__ import annotations

import httpx

from tests.live import LiveBridge
from tests.scim.conftest import ENTERPRISE, USER, new_user

LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def _no_nulls(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, dict):
        return all(_no_nulls(v) for v in value.values())
    if isinstance(value, list):
        return all(_no_nulls(v) for v in value)
    return True


def test_service_provider_config_tells_what_is_supported(scim: httpx.Client) -> None:
    response = scim.get("/ServiceProviderConfig")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/scim+json")
    config = response.json()
    assert config["patch"]["supported"] is True
    assert config["filter"]["supported"] is True and config["filter"]["maxResults"] >= 100
    assert config["bulk"]["supported"] is True and config["bulk"]["maxOperations"] > 0
    assert config["etag"]["supported"] is True and config["sort"]["supported"] is True
    assert config["changePassword"]["supported"] is False
    assert config["authenticationSchemes"]


def test_resource_types_and_schemas_are_list_responses(scim: httpx.Client) -> None:
    types = scim.get("/ResourceTypes").json()
    assert types["schemas"] == [LIST] and types["totalResults"] == 2
    user_type = next(t for t in types["Resources"] if t["id"] == "User")
    assert user_type["schemaExtensions"] == [{"schema": ENTERPRISE, "required": False}]
    schemas = scim.get("/Schemas").json()
    assert schemas["schemas"] == [LIST]
    ids = {s["id"] for s in schemas["Resources"]}
    assert {USER, ENTERPRISE, "urn:ietf:params:scim:schemas:core:2.0:Group"} <= ids
    assert _no_nulls(schemas)
    user_name = next(a for a in scim.get(f"/Schemas/{USER}").json()["attributes"] if a["name"] == "userName")
    assert (
        user_name["caseExact"] is False
        and user_name["uniqueness"] == "server"
        and user_name["mutability"] == "readWrite"
    )
    assert scim.get("/Schemas/urn:nope").status_code == 404


def test_json_and_scim_json_bodies_and_odd_urls_are_accepted(bridge: LiveBridge, scim: httpx.Client) -> None:
    for content_type in ("application/json", "application/scim+json", "application/scim+json; charset=utf-8"):
        body = {
            "schemas": [USER],
            "userName": f"ct-{content_type.replace('/', '_').replace(';', '').replace(' ', '')}-x",
        }
        response = scim.post(
            "/Users",
            content=httpx.Request("POST", "/", json=body).content,
            headers={"Content-Type": content_type, "User-Agent": ""},
        )
        assert response.status_code == 201, response.text
    user = new_user(scim)
    with httpx.Client(headers=scim.headers) as raw:
        assert raw.get(f"{bridge.base}//Users/{user['id']}").status_code == 200  # base URL with a trailing slash
        assert raw.get(f"{bridge.base}/Users/?aadOptscim062020").status_code == 200
        assert raw.get(f"{bridge.base}/Users?aadOptSCIM062020=true&foo=bar").status_code == 200


def test_health_needs_no_credentials_and_me_is_not_implemented(bridge: LiveBridge, scim: httpx.Client) -> None:
    assert httpx.get(f"{bridge.root}/health").json() == {"status": "ok", "store": "ok"}
    response = scim.get("/Me")
    assert response.status_code == 501 and response.json()["status"] == "501"

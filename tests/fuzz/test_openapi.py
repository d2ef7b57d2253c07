"""The OpenAPI 3.1 document the bridge serves of its own SCIM API (scim/openapi.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from tests.fuzz.harness import Fuzzer
from tests.live import LiveBridge

pytestmark = [pytest.mark.fuzz]


def served(fuzzer: Fuzzer) -> dict[str, Any]:
    response = fuzzer.read("/openapi.json")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    return response.json()  # type: ignore[no-any-return]


def test_the_document_is_valid_openapi_3_1_with_the_bridge_as_its_server(fuzzer: Fuzzer) -> None:
    document = served(fuzzer)
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema
    assert document["servers"] == [{"url": fuzzer.bridge.base}]


def test_the_validator_would_notice_a_broken_document(fuzzer: Fuzzer) -> None:
    document = served(fuzzer)
    document["paths"]["/Users"]["get"]["responses"] = "none"
    with pytest.raises(OpenAPIValidationError):
        validate(document)


def test_the_document_needs_the_scim_credentials(fuzz_bridge: LiveBridge) -> None:
    with httpx.Client(base_url=fuzz_bridge.base) as anonymous:
        response = anonymous.get("/openapi.json")
    assert response.status_code == 401
    assert response.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


def test_every_scim_endpoint_and_method_is_described(fuzzer: Fuzzer) -> None:
    paths = served(fuzzer)["paths"]
    for endpoint in ("/Users", "/Groups"):
        assert set(paths[endpoint]) == {"get", "post"}
        assert set(paths[f"{endpoint}/.search"]) == {"post"}
        assert {"get", "put", "patch", "delete"} <= set(paths[f"{endpoint}/{{id}}"])
        listed = {p["$ref"].rsplit("/", 1)[-1] for p in paths[endpoint]["get"]["parameters"]}
        assert listed == {
            "filter",
            "sortBy",
            "sortOrder",
            "startIndex",
            "count",
            "cursor",
            "attributes",
            "excludedAttributes",
        }
    for path in ("/.search", "/Bulk"):
        assert set(paths[path]) == {"post"}
    assert set(paths["/Me"]) == {"get", "post", "put", "patch", "delete"}
    for path in ("/ServiceProviderConfig", "/ResourceTypes", "/ResourceTypes/{name}", "/Schemas", "/Schemas/{urn}"):
        assert set(paths[path]) == {"get"}
    errors = served(fuzzer)["components"]["schemas"]["Error"]
    assert errors["required"] == ["schemas", "status"]


def attribute_names(attributes: list[dict[str, Any]]) -> set[str]:
    names = set()
    for attribute in attributes:
        names.add(attribute["name"])
        names.update(f"{attribute['name']}.{sub}" for sub in attribute_names(attribute.get("subAttributes", [])))
    return names


def property_names(schema: dict[str, Any]) -> set[str]:
    names = set()
    for name, sub in schema.get("properties", {}).items():
        names.add(name)
        inner = sub.get("items", sub)
        names.update(f"{name}.{child}" for child in property_names(inner))
    return names


def test_every_attribute_of_every_served_schema_is_in_the_document(fuzzer: Fuzzer) -> None:
    """Generated from the same definitions as /Schemas: the two cannot disagree."""
    components = served(fuzzer)["components"]["schemas"]
    resource_types = fuzzer.read("/ResourceTypes").json()["Resources"]
    schemas = {s["id"]: s for s in fuzzer.read("/Schemas").json()["Resources"]}
    for resource_type in resource_types:
        component = components[resource_type["name"]]
        core = schemas[resource_type["schema"]]
        assert attribute_names(core["attributes"]) <= property_names(component), resource_type["name"]
        for extension in resource_type.get("schemaExtensions", []):
            urn = extension["schema"]
            assert attribute_names(schemas[urn]["attributes"]) <= property_names(component["properties"][urn])
    user = components["User"]["properties"]
    assert user["password"]["writeOnly"] is True and user["groups"]["readOnly"] is True
    assert user["emails"]["type"] == "array" and "userName" in components["User"]["required"]

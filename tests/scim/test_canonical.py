"""Create and replace store the normalised body; it must equal scim2-models' own dump of it."""

from __future__ import annotations

from typing import Any

import pytest
from scim2_models import Context

from scim_bridge.scim import normalize
from scim_bridge.scim.schemas import ENTERPRISE_USER, GROUP, USER, ResourceTypeInfo

FULL_USER = {
    "schemas": [USER.core_schema, ENTERPRISE_USER],
    "userName": "bjensen",
    "externalId": "e-1",
    "name": {
        "formatted": "Ms. Barbara J Jensen III",
        "familyName": "Jensen",
        "givenName": "Barbara",
        "middleName": "Jane",
        "honorificPrefix": "Ms.",
        "honorificSuffix": "III",
    },
    "displayName": "Babs",
    "nickName": "Babs",
    "profileUrl": "https://login.example.com/bjensen",
    "title": "Tour Guide",
    "userType": "Employee",
    "preferredLanguage": "en-US",
    "locale": "en-US",
    "timezone": "America/Los_Angeles",
    "active": "true",
    "password": "t1meMa$heen",
    "roles": [],
    "groups": [{"value": "g"}],
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": "True"},
        {"value": "babs@jensen.org", "type": "home"},
    ],
    "phoneNumbers": [{"value": "555-555-5555", "type": "work"}],
    "ims": [{"value": "someaimhandle", "type": "aim"}],
    "photos": [{"value": "https://photos.example.com/profilephoto/72930000000Ccne/F", "type": "photo"}],
    "addresses": [
        {
            "type": "work",
            "streetAddress": "100 Universal City Plaza",
            "locality": "Hollywood",
            "region": "CA",
            "postalCode": "91608",
            "country": "USA",
            "primary": True,
        }
    ],
    "entitlements": [{"value": "admin"}],
    "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMC"}],
    ENTERPRISE_USER: {
        "employeeNumber": "701984",
        "costCenter": "4130",
        "organization": "Universal Studios",
        "division": "Theme Park",
        "department": "Tour Operations",
        "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"},
    },
    "title_": None,
    "nullable": None,
}
GROUP_BODY = {
    "schemas": [GROUP.core_schema],
    "displayName": "Tour Guides",
    "externalId": "x",
    "members": [{"value": "2819c223", "display": "Babs", "$ref": None}],
}


@pytest.mark.parametrize(
    "resource_type, body",
    [(USER, FULL_USER), (GROUP, GROUP_BODY), (USER, {"schemas": [USER.core_schema], "userName": "x", "emails": []})],
)
def test_normalised_body_equals_the_scim2_models_dump(resource_type: ResourceTypeInfo, body: dict[str, Any]) -> None:
    payload = normalize.resource_body(body, resource_type, "https://bridge.example/scim/v2")
    model = resource_type.model.model_validate(payload, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
    dumped = model.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    assert normalize.canonical(payload) == dumped

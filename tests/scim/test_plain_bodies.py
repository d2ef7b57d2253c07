"""The validation shortcut (scim/plain_bodies.py) says "plainly valid" only where scim2-models accepts.

A body it wrongly called plain would be stored without the model's checks, so the property is
checked on generated bodies: mostly plain ones, each perturbed where a client could go wrong
(another JSON type, a lone surrogate, a second primary, a missing required attribute, an unknown
key, an unknown schema). And the bodies IdPs send most must take the shortcut, or it buys nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scim2_models import Context

from scim_bridge.scim import normalize, plain_bodies
from scim_bridge.scim.plain_bodies import BOOLEAN, COMPLEX, ENUM, MULTI, STRING, PlainField
from scim_bridge.scim.resources import POLICY, ResourceService
from scim_bridge.scim.schemas import ENTERPRISE_USER, GROUP, USER, ResourceTypeInfo

CONTEXTS = (Context.RESOURCE_CREATION_REQUEST, Context.RESOURCE_REPLACEMENT_REQUEST)
BASE = "https://bridge.example.com/scim/v2"

strings = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "work", "WORK", "a\ud800b", "\x00", "é", "bulkId:x", "urn:x"]),
)
wrong = st.one_of(
    st.integers(), st.floats(allow_nan=False), st.none(), st.lists(st.integers(), max_size=2), st.just({})
)


def value_of(plain: PlainField, draw: Any) -> Any:
    if draw(st.integers(0, 14)) == 0:  # a client's mistake
        return draw(st.one_of(wrong, strings, st.booleans()))
    if plain.kind is STRING or plain.kind is ENUM:
        return draw(strings)
    if plain.kind is BOOLEAN:
        return draw(st.booleans())
    if plain.kind is COMPLEX:
        return object_of(plain.sub, plain.required, draw)
    assert plain.kind is MULTI
    return [object_of(plain.sub, plain.required, draw) for _ in range(draw(st.integers(0, 3)))]


def object_of(table: dict[str, PlainField], required: tuple[str, ...], draw: Any) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(sorted(table)), unique=True, max_size=6)) if table else []
    result = {name: value_of(table[name], draw) for name in [*required, *names]}
    for name in required:
        if draw(st.integers(0, 20)) == 0:
            result.pop(name, None)
    if draw(st.integers(0, 20)) == 0:
        result[draw(st.sampled_from(["$ref", "unknown", "Value", "manager", "schemas"]))] = draw(strings)
    return result


@st.composite
def payloads(draw: Any, resource_type: ResourceTypeInfo) -> dict[str, Any]:
    shape = plain_bodies.SHAPES[resource_type.name]
    payload = object_of(shape.fields, shape.required, draw)
    schemas = [resource_type.core_schema, *[urn for urn in resource_type.extensions if urn in payload]]
    if draw(st.integers(0, 10)) == 0:
        schemas = draw(
            st.sampled_from([[], ["urn:unknown"], [*schemas, "urn:unknown"], [resource_type.core_schema.lower()]])
        )
    payload["schemas"] = schemas
    return payload


def model_accepts(resource_type: ResourceTypeInfo, payload: dict[str, Any], context: Context) -> bool:
    try:
        resource_type.model.model_validate(payload, scim_ctx=context, scim_policy=POLICY)
    except Exception:
        return False
    return True


@pytest.mark.parametrize("resource_type", [USER, GROUP], ids=["User", "Group"])
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_body_taken_as_plainly_valid_is_one_scim2_models_accepts(resource_type: ResourceTypeInfo, data: Any) -> None:
    payload = data.draw(payloads(resource_type))
    if plain_bodies.accepts(resource_type, payload):
        for context in CONTEXTS:
            assert model_accepts(resource_type, payload, context), payload


TYPICAL = [
    # bench/front_door.py's POST, Entra's and Okta's usual creates (research/scim-clients.md §2, §3)
    (
        USER,
        {
            "schemas": [USER.core_schema],
            "userName": "load-1@example.com",
            "name": {"givenName": "A", "familyName": "B"},
            "emails": [{"value": "load-1@example.com", "type": "work", "primary": True}],
            "active": True,
        },
    ),
    (
        USER,
        {
            "schemas": [USER.core_schema, ENTERPRISE_USER],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
            "active": "True",
            "displayName": "BobIsAmazing",
            "emails": [{"primary": "true", "type": "work", "value": "Test_User_fd0ea19b@testuser.com"}],
            "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
            "title": "Tester",
            ENTERPRISE_USER: {"department": "some department", "employeeNumber": "42"},
        },
    ),
    (
        USER,
        {
            "schemas": [USER.core_schema],
            "userName": "test.user@okta.local",
            "name": {"givenName": "Test", "familyName": "User"},
            "emails": [{"primary": True, "value": "test.user@okta.local", "type": "work"}],
            "displayName": "Test User",
            "locale": "en-US",
            "externalId": "00ujl29u0le5T6Aj10h7",
            "groups": [],
            "password": "1mz050nq",
            "active": True,
        },
    ),
    (GROUP, {"schemas": [GROUP.core_schema], "displayName": "Tour Guides", "members": [{"value": "2819c223"}]}),
]


@pytest.mark.parametrize("resource_type, body", TYPICAL, ids=["bench", "entra", "okta", "group"])
def test_the_bodies_idps_send_most_take_the_shortcut(resource_type: ResourceTypeInfo, body: dict[str, Any]) -> None:
    payload = normalize.resource_body(dict(body), resource_type, BASE)
    assert plain_bodies.accepts(resource_type, payload)
    assert all(model_accepts(resource_type, payload, context) for context in CONTEXTS)


@pytest.mark.parametrize(
    "change",
    [
        {"userName": 7},
        {"active": "maybe"},
        {"emails": [{"value": "a@x", "primary": True}, {"value": "b@x", "primary": True}]},
        {"profileUrl": "https://x/p"},  # a Reference: the model checks it
        {ENTERPRISE_USER: {"manager": {"value": "m"}}},  # the manager is not plain
        {"name": {"givenName": ["A"]}},
    ],
    ids=["int userName", "string active", "two primaries", "reference", "manager", "list in name"],
)
def test_anything_else_goes_to_scim2_models(change: dict[str, Any]) -> None:
    payload = {"schemas": [USER.core_schema], "userName": "x", **change}
    assert not plain_bodies.accepts(USER, payload)


def test_a_user_without_username_is_still_refused_with_400() -> None:
    service = ResourceService(store=None)  # type: ignore[arg-type]  # validation only, no store call
    with pytest.raises(Exception) as raised:
        service._stored_form(USER, {"schemas": [USER.core_schema], "displayName": "x"}, {}, CONTEXTS[0])
    assert getattr(raised.value, "status", None) == 400


def test_a_model_with_an_unknown_validator_is_not_plain() -> None:
    from pydantic import model_validator
    from scim2_models import User

    class Checked(User):
        @model_validator(mode="after")
        def refuse_bob(self) -> Checked:
            if self.user_name == "bob":
                raise ValueError("no bob")
            return self

    info = ResourceTypeInfo("User", "/Users", USER.core_schema, (), Checked, {})
    assert plain_bodies._shape(info) is None

"""The membership fast path must give exactly what scim2-models gives for the same operations."""

from __future__ import annotations

from typing import Any

import pytest
from scim2_models import Context, Group, PatchOp

from scim_bridge.scim import group_patch
from scim_bridge.scim.resources import POLICY

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def reference(document: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    model = Group.model_validate(document, scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST, scim_policy=POLICY)
    with POLICY:
        PatchOp[Group].model_validate(
            {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations},
            scim_ctx=Context.RESOURCE_PATCH_REQUEST,
        ).patch(model)
    return model.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)  # type: ignore[no-any-return]


START = {"schemas": [GROUP], "displayName": "Marketing EMEA", "members": [{"value": "u1"}, {"value": "u2"}]}


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "add", "path": "members", "value": [{"value": "u3", "display": "Three"}, {"value": "u1"}]}],
        [{"op": "remove", "path": "members", "value": [{"value": "u1"}]}],
        [{"op": "remove", "path": 'members[value eq "u2"]'}],
        [{"op": "remove", "path": 'members[value eq "u1" or value eq "u2"]'}],
        [{"op": "remove", "path": "members"}],
        [{"op": "replace", "path": "members", "value": [{"value": "u9"}]}],
        [{"op": "replace", "path": "displayName", "value": "Renamed"}],
        [{"op": "replace", "value": {"displayName": "Renamed", "externalId": "x1"}}],
        [
            {"op": "add", "path": "members", "value": [{"value": "u3"}]},
            {"op": "remove", "path": 'members[value eq "u1"]'},
        ],
    ],
)
def test_fast_path_matches_scim2_models(operations: list[dict[str, Any]]) -> None:
    fast = group_patch.apply(START, operations)
    assert fast is not None
    assert fast == reference(START, operations)


def test_other_operations_take_the_general_path() -> None:
    assert group_patch.apply(START, [{"op": "replace", "path": 'members[value eq "u1"].display', "value": "x"}]) is None
    assert group_patch.apply(START, [{"op": "add", "path": "members", "value": "not-a-list"}]) is None

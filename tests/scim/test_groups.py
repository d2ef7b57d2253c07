"""Groups and memberships (checklist items 59–76)."""

from __future__ import annotations

import httpx

from tests.scim.conftest import GROUP, PATCH, new_group, new_user, patch_ops, unique


def members(scim: httpx.Client, group_id: str) -> set[str]:
    return {m["value"] for m in scim.get(f"/Groups/{group_id}").json().get("members", [])}


def test_create_with_extra_schema_and_no_members(scim: httpx.Client) -> None:
    response = scim.post(
        "/Groups",
        json={
            "schemas": [GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
            "externalId": "8aa1a0c0",
            "displayName": unique("grp"),
            "meta": {"resourceType": "Group"},
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["id"] and response.json().get("members", []) == []


def test_duplicate_display_name_is_409(scim: httpx.Client) -> None:
    group = new_group(scim)
    response = scim.post("/Groups", json={"schemas": [GROUP], "displayName": group["displayName"].upper()})
    assert response.status_code == 409 and response.json()["scimType"] == "uniqueness"


def test_excluded_members_on_get_and_filter(scim: httpx.Client) -> None:
    user = new_user(scim)
    group = new_group(scim, [user["id"]])
    one = scim.get(f"/Groups/{group['id']}", params={"excludedAttributes": "members"}).json()
    assert "members" not in one and one["displayName"] == group["displayName"]
    listed = scim.get(
        "/Groups", params={"excludedAttributes": "members", "filter": f'displayName eq "{group["displayName"]}"'}
    ).json()
    assert listed["totalResults"] == 1 and "members" not in listed["Resources"][0]


def test_member_add_and_remove_in_every_client_shape(scim: httpx.Client) -> None:
    u1, u2, u3 = new_user(scim), new_user(scim), new_user(scim)
    group = new_group(scim)
    added = scim.patch(
        f"/Groups/{group['id']}",
        json=patch_ops(
            {
                "op": "Add",
                "path": "members",
                "value": [{"$ref": None, "value": u1["id"]}, {"value": u2["id"], "display": "x"}, {"value": u3["id"]}],
            }
        ),
    )
    assert added.status_code == 200 and len(added.json()["members"]) == 3
    assert members(scim, group["id"]) == {u1["id"], u2["id"], u3["id"]}
    # Entra default: remove with a value list (not RFC, but it must remove only u1).
    scim.patch(
        f"/Groups/{group['id']}", json=patch_ops({"op": "Remove", "path": "members", "value": [{"value": u1["id"]}]})
    )
    assert members(scim, group["id"]) == {u2["id"], u3["id"]}
    # Entra with the flag, and Okta: a filtered path.
    scim.patch(f"/Groups/{group['id']}", json=patch_ops({"op": "remove", "path": f'members[value eq "{u2["id"]}"]'}))
    assert members(scim, group["id"]) == {u3["id"]}
    # Adding an existing member and removing an absent one succeed silently.
    again = scim.patch(
        f"/Groups/{group['id']}",
        json=patch_ops(
            {"op": "add", "path": "members", "value": [{"value": u3["id"]}]},
            {"op": "remove", "path": f'members[value eq "{u1["id"]}"]'},
        ),
    )
    assert again.status_code == 200 and members(scim, group["id"]) == {u3["id"]}
    # RFC: remove without value or filter empties the group.
    scim.patch(f"/Groups/{group['id']}", json=patch_ops({"op": "remove", "path": "members"}))
    assert members(scim, group["id"]) == set()


def test_replace_members_and_user_groups_are_derived(scim: httpx.Client) -> None:
    u1, u2 = new_user(scim), new_user(scim)
    group = new_group(scim, [u1["id"]])
    scim.patch(
        f"/Groups/{group['id']}", json=patch_ops({"op": "replace", "path": "members", "value": [{"value": u2["id"]}]})
    )
    assert members(scim, group["id"]) == {u2["id"]}
    assert scim.get(f"/Users/{u1['id']}").json().get("groups", []) == []
    groups = scim.get(f"/Users/{u2['id']}").json()["groups"]
    assert [(g["value"], g["display"]) for g in groups] == [(group["id"], group["displayName"])]


def test_okta_rename_carries_the_same_id_and_a_different_id_is_refused(scim: httpx.Client) -> None:
    group = new_group(scim)
    new_name = unique("renamed")
    response = scim.patch(
        f"/Groups/{group['id']}",
        json=patch_ops({"op": "replace", "value": {"id": group["id"], "displayName": new_name}}),
    )
    assert response.status_code == 200 and response.json()["displayName"] == new_name
    assert scim.get(f"/Groups/{group['id']}").json()["displayName"] == new_name
    refused = scim.patch(
        f"/Groups/{group['id']}", json=patch_ops({"op": "replace", "value": {"id": "other", "displayName": "x"}})
    )
    assert refused.status_code == 400 and refused.json()["scimType"] == "mutability"
    renamed = scim.patch(
        f"/Groups/{group['id']}", json=patch_ops({"op": "Replace", "path": "displayName", "value": "n-" + new_name})
    )
    assert renamed.status_code == 200


def test_unknown_member_ids_are_skipped_and_reported(scim: httpx.Client) -> None:
    user = new_user(scim)
    group = new_group(scim)
    response = scim.patch(
        f"/Groups/{group['id']}",
        json=patch_ops({"op": "add", "path": "members", "value": [{"value": user["id"]}, {"value": "no-such-user"}]}),
    )
    assert response.status_code == 200
    assert response.headers["x-scim-bridge-skipped-members"] == "no-such-user"
    assert members(scim, group["id"]) == {user["id"]}


def test_group_patch_returns_the_group_when_attributes_are_asked(scim: httpx.Client) -> None:
    group = new_group(scim)
    response = scim.patch(
        f"/Groups/{group['id']}",
        params={"attributes": "displayName"},
        json=patch_ops({"op": "replace", "path": "displayName", "value": unique("g")}),
    )
    assert response.status_code == 200 and set(response.json()) == {"schemas", "id", "displayName"}


def test_put_without_members_keeps_them_and_with_members_replaces(scim: httpx.Client) -> None:
    u1, u2 = new_user(scim), new_user(scim)
    group = new_group(scim, [u1["id"]])
    kept = scim.put(f"/Groups/{group['id']}", json={"schemas": [GROUP], "displayName": group["displayName"]})
    assert kept.status_code == 200 and members(scim, group["id"]) == {u1["id"]}
    scim.put(
        f"/Groups/{group['id']}",
        json={"schemas": [GROUP], "displayName": group["displayName"], "members": [{"value": u2["id"]}]},
    )
    assert members(scim, group["id"]) == {u2["id"]}


def test_large_membership_patch(scim: httpx.Client) -> None:
    users = [new_user(scim)["id"] for _ in range(60)]
    group = new_group(scim)
    # Keycloak PATCH_RESOURCE sends the whole list every time (scim-clients.md §4.4); 500 members with
    # most of them unknown ids exercises both the size and the skip path.
    value = [{"value": u} for u in users] + [{"value": f"ghost-{i}"} for i in range(440)]
    response = scim.patch(
        f"/Groups/{group['id']}",
        json={"schemas": [PATCH], "Operations": [{"op": "add", "path": "members", "value": value}]},
        timeout=30,
    )
    assert response.status_code == 200
    assert members(scim, group["id"]) == set(users)


def test_delete_group_drops_it_from_user_groups(scim: httpx.Client) -> None:
    user = new_user(scim)
    group = new_group(scim, [user["id"]])
    assert scim.delete(f"/Groups/{group['id']}").status_code == 204
    assert scim.get(f"/Users/{user['id']}").json().get("groups", []) == []


def test_group_patch_can_answer_204_for_entra(tmp_path: object) -> None:
    from tests.live import LiveBridge

    with (
        LiveBridge(f"sqlite:///{tmp_path}/g.db", group_patch_returns_resource=False) as bridge,
        bridge.client() as scim,
    ):
        user = new_user(scim)
        group = new_group(scim)
        added = scim.patch(
            f"/Groups/{group['id']}",
            json=patch_ops({"op": "Add", "path": "members", "value": [{"$ref": None, "value": user["id"]}]}),
        )
        assert added.status_code == 204 and added.content == b""
        assert members(scim, group["id"]) == {user["id"]}
        asked = scim.patch(
            f"/Groups/{group['id']}",
            params={"excludedAttributes": "members"},
            json=patch_ops({"op": "replace", "path": "displayName", "value": unique("g")}),
        )
        assert asked.status_code == 200 and "members" not in asked.json()

"""The iconik emulator's ACLs service and group roles over real HTTP, against iconik's own schemas."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from scim_bridge.emulators import iconik
from tests.emulators.live import serve_iconik as serve
from tests.emulators.spec import assert_matches

ACLS, USERS = "iconik/acls.json", "iconik/users.json"


@pytest.fixture
def api() -> Iterator[tuple[httpx.Client, iconik.IconikState]]:
    yield from serve()


def make(client: httpx.Client) -> tuple[str, str, str, str]:
    """A collection, two groups and a non-admin user in the first group."""
    collection = client.post("/assets/v1/collections/", json={"title": "Marketing"}).json()["id"]
    editors = client.post("/users/v1/groups/", json={"name": "Editors"}).json()["id"]
    legal = client.post("/users/v1/groups/", json={"name": "Legal"}).json()["id"]
    user = client.post(
        "/users/v1/users/",
        json={"email": "ed@example.com", "first_name": "Ed", "type": "STANDARD", "groups": [editors]},
    ).json()["id"]
    return collection, editors, legal, user


def test_group_acl_set_read_back_update_and_delete(api: tuple) -> None:
    client, _ = api
    collection, editors, _, user = make(client)
    path = f"/acls/v1/groups/{editors}/acl/collections/{collection}/"
    created = client.put(path, json={"permissions": ["read", "write"]})
    assert created.status_code == 201
    assert_matches(ACLS, "/v1/groups/{group_id}/acl/{object_type}/{object_key}/", "put", 201, created.json())
    updated = client.put(path, json={"permissions": ["read"]})
    assert updated.status_code == 200 and updated.json()["permissions"] == ["read"]
    assert_matches(ACLS, "/v1/groups/{group_id}/acl/{object_type}/{object_key}/", "put", 200, updated.json())
    read = client.get(path)
    assert read.status_code == 200 and read.json()["group_id"] == editors
    assert_matches(ACLS, "/v1/groups/{group_id}/acl/{object_type}/{object_key}/", "get", 200, read.json())
    whole = client.get(f"/acls/v1/acl/collections/{collection}/")
    assert whole.json()["groups_acl"] == [{"group_id": editors, "permissions": ["read"]}]
    assert_matches(ACLS, "/v1/acl/{object_type}/{object_key}/", "get", 200, whole.json())
    # The group's member now may read, not write.
    assert client.get(f"/acls/v1/users/{user}/acl/collections/{collection}/read/").status_code == 200
    assert client.get(f"/acls/v1/users/{user}/acl/collections/{collection}/write/").status_code == 403
    assert client.get(f"/acls/v1/groups/{editors}/acl/collections/{collection}/read/").json() == {}
    assert client.delete(path).status_code == 204
    assert client.get(path).status_code == 404
    assert client.delete(path).json() == {"errors": ["ACL does not exist"]}


def test_user_acl_and_permission_checks(api: tuple) -> None:
    client, _ = api
    collection, _, _, user = make(client)
    path = f"/acls/v1/users/{user}/acl/collections/{collection}/"
    created = client.put(path, json={"permissions": ["change-acl", "read"]})
    assert created.status_code == 201 and created.json()["permissions"] == ["read", "change-acl"]
    assert_matches(ACLS, "/v1/users/{user_id}/acl/{object_type}/{object_key}/", "put", 201, created.json())
    read = client.get(path)
    assert_matches(ACLS, "/v1/users/{user_id}/acl/{object_type}/{object_key}/", "get", 200, read.json())
    has = client.get(path + "read/")
    assert has.status_code == 200
    assert_matches(ACLS, "/v1/users/{user_id}/acl/{object_type}/{object_key}/{permission}/", "get", 200, has.json())
    mine = client.get(f"/acls/v1/acl/collections/{collection}/permissions/")  # the token's admin: everything
    assert mine.json() == {"permissions": ["read", "write", "delete", "change-acl"]}
    assert_matches(ACLS, "/v1/acl/{object_type}/{object_key}/permissions/", "get", 200, mine.json())
    checked = client.post("/acls/v1/acl/collections/read/", json={"object_keys": [collection, "not-there"]})
    assert checked.json() == {"access_granted": [collection], "access_denied": ["not-there"]}
    assert_matches(ACLS, "/v1/acl/{object_type}/{permission}/", "post", 200, checked.json())
    many = client.post(
        "/acls/v1/acl/",
        json={
            "objects": [{"object_type": "collections", "object_keys": [collection], "permissions": ["read", "write"]}]
        },
    )
    assert_matches(ACLS, "/v1/acl/", "post", 200, many.json())
    assert client.put(path, json={"permissions": ["publish"]}).status_code == 400
    assert client.put(path, json={}).status_code == 400
    assert client.delete(path).status_code == 204


def test_unknown_objects_and_principals_are_404(api: tuple) -> None:
    client, _ = api
    collection, editors, _, _ = make(client)
    missing = "00000000-0000-0000-0000-000000000000"
    assert client.get(f"/acls/v1/acl/collections/{missing}/").status_code == 404
    answer = client.put(f"/acls/v1/groups/{editors}/acl/collections/{missing}/", json={"permissions": ["read"]})
    assert answer.status_code == 404 and answer.json() == {"errors": ["Object does not exist"]}
    unknown_group = client.put(f"/acls/v1/groups/{missing}/acl/collections/{collection}/", json={"permissions": []})
    assert unknown_group.status_code == 404 and unknown_group.json() == {"errors": ["Group does not exist"]}


def test_bulk_append_keeps_existing_and_overwrite_replaces(api: tuple) -> None:
    client, state = api
    collection, editors, legal, user = make(client)
    client.put(f"/acls/v1/groups/{editors}/acl/collections/{collection}/", json={"permissions": ["read", "write"]})
    appended = client.put(
        "/acls/v1/acl/collections/",
        json={"object_keys": [collection, "gone"], "group_ids": [legal], "permissions": ["read"], "mode": "APPEND"},
    )
    assert appended.status_code == 200 and appended.json() == {"updated_object_keys": [collection]}
    assert_matches(ACLS, "/v1/acl/{object_type}/", "put", 200, appended.json())
    groups = {
        e["group_id"]: e["permissions"]
        for e in client.get(f"/acls/v1/acl/collections/{collection}/").json()["groups_acl"]
    }
    assert groups == {editors: ["read", "write"], legal: ["read"]}
    # OVERWRITE (the default mode) leaves only what it names.
    client.put(
        "/acls/v1/acl/collections/", json={"object_keys": [collection], "user_ids": [user], "permissions": ["read"]}
    )
    acl = client.get(f"/acls/v1/acl/collections/{collection}/").json()
    assert acl["groups_acl"] == [] and acl["users_acl"] == [{"user_id": user, "permissions": ["read"]}]
    bulk = client.put(
        "/acls/v1/acl/collections/bulk/",
        json={
            "objects": [
                {"object_keys": [collection], "group_ids": [legal], "permissions": ["read", "delete"], "mode": "APPEND"}
            ]
        },
    )
    assert bulk.status_code == 200 and bulk.json() == [{"updated_object_keys": [collection]}]
    assert_matches(ACLS, "/v1/acl/{object_type}/bulk/", "put", 200, bulk.json())
    removed = client.request(
        "DELETE", "/acls/v1/acl/collections/", json={"object_keys": [collection], "group_ids": [legal]}
    )
    assert removed.status_code == 200
    assert state.acls[f"collections/{collection}"]["groups"] == {}
    assert (
        client.put(
            "/acls/v1/acl/collections/", json={"object_keys": [collection], "permissions": ["read"], "mode": "MERGE"}
        ).status_code
        == 400
    )
    too_many = client.put(
        "/acls/v1/acl/collections/bulk/", json={"objects": [{"object_keys": ["a", "b"], "permissions": ["read"]}]}
    )
    assert too_many.status_code == 400


def test_content_acls_one_shot_by_default_and_propagating_behind_a_switch(api: tuple) -> None:
    client, _ = api
    root, editors, _, user = make(client)
    child = client.post("/assets/v1/collections/", json={"title": "Spring", "parent_id": root}).json()["id"]
    body = {
        "object_ids": [root],
        "group_ids": [editors],
        "permissions": ["read"],
        "include_assets": True,
        "include_collections": True,
        "mode": "APPEND",
    }
    answer = client.put("/acls/v1/acl/collections/content/", json=body)
    assert answer.status_code == 202
    assert client.get(f"/acls/v1/acl/collections/{child}/").json()["groups_acl"] == [
        {"group_id": editors, "permissions": ["read"]}
    ]
    later = client.post("/assets/v1/collections/", json={"title": "Summer", "parent_id": root}).json()["id"]
    assert client.get(f"/acls/v1/users/{user}/acl/collections/{later}/read/").status_code == 403  # one-shot
    assert client.put("/acls/v1/acl/assets/content/", json=body).status_code == 501
    assert (
        client.request(
            "DELETE",
            "/acls/v1/acl/collections/content/",
            json={
                "object_ids": [root],
                "group_ids": [editors],
                "include_assets": True,
                "include_collections": True,
            },
        ).status_code
        == 200
    )
    assert client.get(f"/acls/v1/acl/collections/{child}/").json()["groups_acl"] == []


def test_propagating_content_acls_reach_future_content() -> None:
    for client, _ in serve(iconik.IconikSwitches(acl_content_propagates=True)):
        root, editors, _, user = make(client)
        client.put(
            "/acls/v1/acl/collections/content/",
            json={
                "object_ids": [root],
                "group_ids": [editors],
                "permissions": ["read", "write"],
                "include_assets": True,
                "include_collections": True,
            },
        )
        later = client.post("/assets/v1/collections/", json={"title": "Later", "parent_id": root}).json()["id"]
        acl = client.get(f"/acls/v1/acl/collections/{later}/").json()
        assert acl["inherited_groups_acl"] == [
            {"group_id": editors, "object_type": "collections", "object_key": root, "permissions": ["read", "write"]}
        ]
        assert_matches(ACLS, "/v1/acl/{object_type}/{object_key}/", "get", 200, acl)
        on_root = client.get(f"/acls/v1/acl/collections/{root}/").json()
        assert on_root["propagating_groups_acl"][0]["group_id"] == editors
        assert client.get(f"/acls/v1/users/{user}/acl/collections/{later}/write/").status_code == 200


def test_roles_on_groups_and_effective_user_roles(api: tuple) -> None:
    client, state = api
    reviewers = client.post(
        "/users/v1/groups/",
        json={
            "name": "Reviewers",
            "roles": ["can_read_assets", "can_write_approval_status"],
            "role_categories": {"collaborate": True, "download": False},
        },
    )
    assert reviewers.status_code == 201
    assert_matches(USERS, "/v1/groups/", "post", 201, reviewers.json())
    editors = client.post(
        "/users/v1/groups/", json={"name": "Editors", "roles": ["can_read_assets", "can_write_assets"]}
    ).json()
    user = client.post(
        "/users/v1/users/",
        json={
            "email": "r@example.com",
            "first_name": "R",
            "type": "BROWSE_ONLY",
            "groups": [reviewers.json()["id"], editors["id"]],
        },
    ).json()
    roles = client.get(f"/users/v1/users/{user['id']}/roles/")
    assert roles.json() == {"objects": ["can_read_assets", "can_write_approval_status", "can_write_assets"]}
    assert_matches(USERS, "/v1/users/{user_id}/roles/", "get", 200, roles.json())
    assert client.get(f"/users/v1/users/{user['id']}/roles/can_write_assets/").status_code == 200
    assert client.get(f"/users/v1/users/{user['id']}/roles/can_delete_users/").status_code == 404
    current = client.get("/users/v1/users/current/roles/")
    assert_matches(USERS, "/v1/users/current/roles/", "get", 200, current.json())
    # Taking a role off the group takes it off the user.
    patched = client.patch(f"/users/v1/groups/{editors['id']}/", json={"roles": ["can_read_assets"]})
    assert_matches(USERS, "/v1/groups/{group_id}/", "patch", 200, patched.json())
    assert client.get(f"/users/v1/users/{user['id']}/roles/can_write_assets/").status_code == 404
    found = client.get("/users/v1/groups/", params={"roles": "can_write_approval_status"}).json()
    assert [g["name"] for g in found["objects"]] == ["Reviewers"]
    assert client.post("/users/v1/groups/", json={"name": "Bad", "roles": "can_read_assets"}).status_code == 400
    assert client.post("/users/v1/groups/", json={"name": "Bad", "role_categories": {"x": True}}).status_code == 400
    snapshot = client.get(client.base_url.copy_with(path="/_emulator/state")).json()
    assert snapshot["roles"]["users"][user["id"]] == ["can_read_assets", "can_write_approval_status"]
    assert set(snapshot) >= {"roles", "acls", "collections", "projects", "members", "approvals", "webhooks"}
    assert state.groups[editors["id"]]["roles"] == ["can_read_assets"]


def test_acl_routes_sit_behind_the_token_check(api: tuple) -> None:
    client, _ = api
    collection, _, _, _ = make(client)
    bare = httpx.get(str(client.base_url) + f"/acls/v1/acl/collections/{collection}/")
    assert bare.status_code == 401 and bare.json() == {"errors": ["Token is invalid"]}

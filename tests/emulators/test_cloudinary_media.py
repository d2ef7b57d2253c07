"""The Cloudinary emulator's folders, folder roles and Permissions API v2, over real HTTP,
checked against the vendor's response schemas (asset-management.yml, permissions.yml)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scim_bridge.emulators import cloudinary
from tests.emulators.live import LiveApp
from tests.emulators.spec import assert_matches

ASSETS, PERMS = "cloudinary/asset-management.yml", "cloudinary/permissions.yml"
A = "/v1_1/{cloud_name}"
V2 = "/v2/accounts/{account_id}/permissions"
VIEWER, CONTRIBUTOR = "cld::role::folder::viewer", "cld::role::folder::contributor"


@dataclass
class Emulator:
    admin: httpx.Client  # Admin API of the default product environment, with its key
    perms: httpx.Client  # Permissions API, with the account key
    account: httpx.Client  # Provisioning API, with the account key
    state: cloudinary.CloudinaryState
    switches: cloudinary.CloudinarySwitches
    live: LiveApp

    @property
    def environment_id(self) -> str:
        return next(iter(self.state.environments))


def _emulator(switches: cloudinary.CloudinarySwitches) -> Iterator[Emulator]:
    state = cloudinary.CloudinaryState()
    with LiveApp(cloudinary.build(state, switches)) as live:
        published = httpx.get(f"{live.url}/_emulator/state").json()["product_environments"][0]
        assert published["cloud_name"] == "production" and published["access_keys"][0]["enabled"] is True
        key = published["access_keys"][0]
        with (
            httpx.Client(
                base_url=f"{live.url}/v1_1/production", auth=(key["api_key"], key["api_secret"]), timeout=10
            ) as admin,
            httpx.Client(
                base_url=f"{live.url}/v2/accounts/{state.account_id}/permissions",
                auth=(state.key, state.secret),
                timeout=10,
            ) as perms,
            httpx.Client(
                base_url=f"{live.url}/v1_1/provisioning/accounts/{state.account_id}",
                auth=(state.key, state.secret),
                timeout=10,
            ) as account,
        ):
            yield Emulator(admin, perms, account, state, switches, live)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    yield from _emulator(cloudinary.CloudinarySwitches())


def _folder(emu: Emulator, path: str) -> dict:
    return next(f for f in emu.state.folders.values() if f["path"] == path)


def test_folders_create_nested_list_and_delete(emu: Emulator) -> None:
    created = emu.admin.post("/folders/campaigns/emea/spring")
    assert created.status_code == 200
    assert_matches(ASSETS, f"{A}/folders/{{folder}}", "post", 200, created.json())
    assert created.json()["path"] == "campaigns/emea/spring" and created.json()["success"] is True
    again = emu.admin.post("/folders/campaigns/emea/spring")
    assert again.status_code == 409 and set(again.json()) == {"error"} and again.json()["error"]["message"]
    assert emu.admin.post("/folders/campaigns/emea").status_code == 409  # the missing ancestor was created

    roots = emu.admin.get("/folders")
    assert_matches(ASSETS, f"{A}/folders", "get", 200, roots.json())
    assert [f["path"] for f in roots.json()["folders"]] == ["campaigns"] and roots.json()["total_count"] == 1
    sub = emu.admin.get("/folders/campaigns/emea")
    assert_matches(ASSETS, f"{A}/folders/{{folder}}", "get", 200, sub.json())
    [spring] = sub.json()["folders"]
    assert spring["external_id"] == created.json()["external_id"]

    detail = emu.admin.put("/folders/by_path", json={"path": "Campaigns/EMEA/spring", "case_sensitive": False})
    assert_matches(ASSETS, f"{A}/folders/by_path", "put", 200, detail.json())
    assert [a["path"] for a in detail.json()["ancestors"]] == ["campaigns", "campaigns/emea"]
    by_id = emu.admin.put("/folders/by_id", json={"id": spring["external_id"]})
    assert_matches(ASSETS, f"{A}/folders/by_id", "put", 200, by_id.json())
    assert by_id.json()["external_id"] == spring["external_id"]  # immutable, the id folder roles use

    assert emu.admin.get("/folders/nope").status_code == 404
    assert emu.admin.post("/folders/a//b").status_code == 400
    deleted = emu.admin.delete("/folders/campaigns/emea")
    assert_matches(ASSETS, f"{A}/folders/{{folder}}", "delete", 200, deleted.json())
    assert deleted.json() == {"deleted": ["campaigns/emea", "campaigns/emea/spring"]}
    assert emu.admin.get("/folders/campaigns").json()["folders"] == []


def test_admin_api_takes_the_environment_key_not_the_account_key(emu: Emulator) -> None:
    url = f"{emu.live.url}/v1_1/production/folders"
    assert httpx.get(url, auth=(emu.state.key, emu.state.secret)).status_code == 401
    assert httpx.get(f"{emu.live.url}/v1_1/elsewhere/folders", auth=emu.admin.auth).status_code == 401
    key = emu.account.post(f"/sub_accounts/{emu.environment_id}/access_keys", json={"name": "agency_x"}).json()
    assert httpx.get(url, auth=(key["api_key"], key["api_secret"])).status_code == 200
    emu.account.put(f"/sub_accounts/{emu.environment_id}/access_keys/{key['api_key']}", json={"enabled": False})
    refused = httpx.get(url, auth=(key["api_key"], key["api_secret"]))
    assert refused.status_code == 401 and refused.json() == {"error": {"message": "Invalid credentials"}}


def test_account_key_on_the_admin_api_behind_a_switch() -> None:
    for emu in _emulator(cloudinary.CloudinarySwitches(admin_api_account_key=True)):
        response = httpx.get(f"{emu.live.url}/v1_1/production/folders", auth=(emu.state.key, emu.state.secret))
        assert response.status_code == 200


def test_invite_add_remove_and_inherited_roles(emu: Emulator) -> None:
    user = emu.account.post("/users", json={"name": "Ann", "email": "ann@example.com"}).json()
    group = emu.account.post("/user_groups", json={"name": "Marketing-EMEA"}).json()
    emu.admin.post("/folders/campaigns/emea")
    parent, child = _folder(emu, "campaigns"), _folder(emu, "campaigns/emea")
    agency_key = emu.state.access_keys[emu.environment_id][0]["api_key"]

    def invite(folder: dict, principal: dict, roles: list[str], operation: str = "add") -> httpx.Response:
        return emu.admin.post(
            f"/folder_operations/invite/{folder['external_id']}",
            json={"principal": principal, "operation": operation, "roles": roles},
        )

    added = invite(parent, {"type": "group", "id": group["id"]}, [VIEWER])
    assert added.status_code == 200 and added.json() == {"success": True}
    assert_matches(ASSETS, f"{A}/folder_operations/invite/{{folder_id}}", "post", 200, added.json())
    invite(child, {"type": "user", "id": user["id"]}, [CONTRIBUTOR])
    invite(child, {"type": "apiKey", "id": agency_key}, [CONTRIBUTOR])

    listed = emu.admin.get(f"/folder_operations/invite/{child['external_id']}", params={"permitted_roles": "true"})
    assert_matches(ASSETS, f"{A}/folder_operations/invite/{{folder_id}}", "get", 200, listed.json())
    shared = {(s["type"], s["id"]): s for s in listed.json()["shared_with"]}
    assert shared[("group", group["id"])]["folder_id"] == parent["external_id"]  # where it was defined
    assert [(r["id"], r["inherited"]) for r in shared[("group", group["id"])]["roles"]] == [(VIEWER, True)]
    assert [(r["id"], r["inherited"]) for r in shared[("user", user["id"])]["roles"]] == [(CONTRIBUTOR, False)]
    assert ("apiKey", agency_key) in shared
    assert VIEWER in {r["id"] for r in listed.json()["permitted_roles"]}
    assert "permitted_roles" not in emu.admin.get(f"/folder_operations/invite/{child['external_id']}").json()
    on_parent = emu.admin.get(f"/folder_operations/invite/{parent['external_id']}").json()["shared_with"]
    assert [(s["type"], s["roles"][0]["inherited"]) for s in on_parent] == [("group", False)]

    assert invite(parent, {"type": "group", "id": group["id"]}, [VIEWER], "remove").json() == {"success": True}
    remaining = emu.admin.get(f"/folder_operations/invite/{child['external_id']}").json()["shared_with"]
    assert {s["type"] for s in remaining} == {"user", "apiKey"}
    state = httpx.get(f"{emu.live.url}/_emulator/state").json()
    assert state["grants"][f"user:{user['id']}"] == {child["external_id"]: [CONTRIBUTOR]}


def test_invite_refusals(emu: Emulator) -> None:
    user = emu.account.post("/users", json={"name": "Bo", "email": "bo@example.com"}).json()
    emu.admin.post("/folders/brand")
    folder = _folder(emu, "brand")
    url = f"/folder_operations/invite/{folder['external_id']}"
    principal = {"type": "user", "id": user["id"]}
    too_many = emu.admin.post(url, json={"principal": principal, "operation": "add", "roles": [VIEWER] * 11})
    assert too_many.status_code == 400 and "10" in too_many.json()["error"]["message"]
    assert (
        emu.admin.post(url, json={"principal": principal, "operation": "add", "roles": [VIEWER] * 10}).status_code
        == 200
    )
    unknown_role = emu.admin.post(url, json={"principal": principal, "operation": "add", "roles": ["cld::role::x"]})
    assert unknown_role.status_code == 400 and set(unknown_role.json()["error"]) == {"message"}
    global_role = emu.admin.post(
        url, json={"principal": principal, "operation": "add", "roles": ["cld::role::prodenv::ml_user"]}
    )
    assert global_role.status_code == 400
    stranger = emu.admin.post(
        url, json={"principal": {"type": "user", "id": "nobody"}, "operation": "add", "roles": [VIEWER]}
    )
    assert stranger.status_code == 400
    missing = emu.admin.get("/folder_operations/invite/0000")
    assert missing.status_code == 404 and missing.json()["error"]["message"]
    assert (
        emu.admin.post(
            "/folder_operations/invite/0000", json={"principal": principal, "operation": "add", "roles": [VIEWER]}
        ).status_code
        == 404
    )


def test_principal_roles_and_invite_share_one_model(emu: Emulator) -> None:
    group = emu.account.post("/user_groups", json={"name": "Designers"}).json()
    emu.admin.post("/folders/campaigns")
    folder = _folder(emu, "campaigns")
    role = emu.perms.post(
        "/roles",
        json={
            "permission_type": "content",
            "scope_type": "prodenv",
            "name": "Marketing content contributor",
            "system_policy_ids": [
                "cld::policy::content::folder::view_download",
                "cld::policy::content::folder::add_assets",
            ],
        },
    )
    assert role.status_code == 201
    assert_matches(PERMS, f"{V2}/roles", "post", 201, role.json())
    role_id = role.json()["data"]["id"]
    data = role.json()["data"]
    assert data["management_type"] == "custom" and data["policy_parameters"] == ["folder_id"]
    assert isinstance(data["created_at"], int)  # epoch seconds

    grant = {
        "operation": "add",
        "principal": {"type": "group", "id": group["id"]},
        "roles": [
            {"id": role_id, "scope_id": emu.environment_id, "policy_parameters": {"folder_id": folder["external_id"]}}
        ],
    }
    put = emu.perms.put("/principal_roles", json=grant)
    assert put.status_code == 200 and put.content == b""
    got = emu.perms.get(
        "/principal_roles",
        params={"principal_type": "group", "principal_id": group["id"], "permission_type": "content"},
    )
    assert_matches(PERMS, f"{V2}/principal_roles", "get", 200, got.json())
    [assigned] = got.json()["data"]
    assert assigned["id"] == role_id and assigned["policy_parameters"] == {"folder_id": folder["external_id"]}
    invite = emu.admin.get(f"/folder_operations/invite/{folder['external_id']}", params={"permitted_roles": "true"})
    shared = invite.json()["shared_with"]
    assert [(s["id"], [r["id"] for r in s["roles"]]) for s in shared] == [(group["id"], [role_id])]
    assert role_id in {r["id"] for r in invite.json()["permitted_roles"]}  # custom content roles are offered too

    # the other way round: a grant through invite is a principal role
    emu.admin.post(
        f"/folder_operations/invite/{folder['external_id']}",
        json={"principal": {"type": "group", "id": group["id"]}, "operation": "add", "roles": [VIEWER]},
    )
    ids = {
        r["id"]
        for r in emu.perms.get(
            "/principal_roles",
            params={
                "principal_type": "group",
                "principal_id": group["id"],
                "permission_type": "content",
                "folder_id": folder["external_id"],
            },
        ).json()["data"]
    }
    assert ids == {role_id, VIEWER}
    inspected = emu.perms.get(
        "/principal_roles/inspect", params={"scope_type": "prodenv", "folder_id": folder["external_id"]}
    )
    assert_matches(PERMS, f"{V2}/principal_roles/inspect", "get", 200, inspected.json())
    assert [(p["type"], len(p["roles"])) for p in inspected.json()["data"]["principals"]] == [("group", 2)]
    principals = emu.perms.get(f"/roles/{VIEWER}/principals", params={"verbose": "true"})
    assert_matches(PERMS, f"{V2}/roles/{{role_id}}/principals", "get", 200, principals.json())
    assert [(p["id"], p["scope_id"]) for p in principals.json()["data"]] == [(group["id"], emu.environment_id)]

    removed = emu.perms.put(
        f"/roles/{VIEWER}/principals",
        json={
            "operation": "remove",
            "principals": [
                {
                    "principal_type": "group",
                    "principal_id": group["id"],
                    "scope_id": emu.environment_id,
                    "policy_parameters": {"folder_id": folder["external_id"]},
                }
            ],
        },
    )
    assert removed.status_code == 200
    grant["operation"] = "remove"
    emu.perms.put("/principal_roles", json=grant)
    assert emu.admin.get(f"/folder_operations/invite/{folder['external_id']}").json() == {"shared_with": []}


def test_role_catalog_and_reads(emu: Emulator) -> None:
    roles = emu.perms.get("/roles", params={"permission_type": "content"})
    assert_matches(PERMS, f"{V2}/roles", "get", 200, roles.json())
    ids = [r["id"] for r in roles.json()["data"]]
    assert ids[:4] == [VIEWER, CONTRIBUTOR, "cld::role::folder::editor", "cld::role::folder::manager"]
    one = emu.perms.get(f"/roles/{VIEWER}", params={"folder_id": "abc123"})
    assert_matches(PERMS, f"{V2}/roles/{{role_id}}", "get", 200, one.json())
    assert all('"abc123"' in p["policy_statement"] for p in one.json()["data"]["policies"])
    catalog = httpx.get(f"{emu.live.url}/v2/accounts/permissions/public/catalog")  # no credentials
    assert_matches(PERMS, "/v2/accounts/permissions/public/catalog", "get", 200, catalog.json())
    assert VIEWER in {r["id"] for r in catalog.json()["catalog"]["system_roles"]}
    assert "cld::policy::content::folder::add_assets" in {p["id"] for p in catalog.json()["catalog"]["system_policies"]}


def test_v2_error_shape(emu: Emulator) -> None:
    def error(response: httpx.Response, status: int, code: str) -> dict:
        assert response.status_code == status, response.text
        assert_matches(PERMS, f"{V2}/roles", "post", 400, response.json())  # the spec's ErrorResponse
        body = response.json()["error"]
        assert set(body) >= {"category", "code", "message"} and body["code"] == code
        return body

    assert error(emu.perms.get("/roles"), 400, "ACCOUNTS_00005")["details"] == {"fields": ["permission_type"]}
    assert error(emu.perms.post("/roles", json={"permission_type": "content"}), 400, "ACCOUNTS_00005")["details"] == {
        "fields": ["name", "scope_type"]
    }
    missing_role = error(emu.perms.get("/roles/nope"), 404, "ACCOUNTS_00003")
    assert missing_role["category"] == "server_error" and missing_role["details"] == {"fields": [{"role_id": "nope"}]}
    emu.perms.post("/roles", json={"id": "dup", "name": "Dup", "permission_type": "global", "scope_type": "prodenv"})
    error(
        emu.perms.post(
            "/roles", json={"id": "dup", "name": "Other", "permission_type": "global", "scope_type": "prodenv"}
        ),
        409,
        "ACCOUNTS_00006",
    )
    nobody = {
        "operation": "add",
        "principal": {"type": "user", "id": "nobody"},
        "roles": [{"id": "cld::role::prodenv::ml_user", "scope_id": emu.environment_id}],
    }
    assert error(emu.perms.put("/principal_roles", json=nobody), 404, "ACCOUNTS_00003")["details"] == {
        "fields": [{"principal_id": "nobody"}]
    }
    bad_operation = {**nobody, "operation": "subtract"}
    error(emu.perms.put("/principal_roles", json=bad_operation), 400, "ACCOUNTS_00005")
    user = emu.account.post("/users", json={"name": "Cy", "email": "cy@example.com"}).json()
    no_folder = {
        "operation": "add",
        "principal": {"type": "user", "id": user["id"]},
        "roles": [{"id": VIEWER, "scope_id": emu.environment_id}],
    }
    assert (
        error(emu.perms.put("/principal_roles", json=no_folder), 400, "ACCOUNTS_00005")["message"] == "missing fields"
    )
    unauthorised = httpx.get(
        f"{emu.live.url}/v2/accounts/{emu.state.account_id}/permissions/roles",
        params={"permission_type": "global"},
        auth=(emu.state.key, "wrong"),
    )
    assert error(unauthorised, 401, "ACCOUNTS_00006")["message"] == "invalid credentials"


def test_legacy_permission_model_refuses_folder_roles() -> None:
    for emu in _emulator(cloudinary.CloudinarySwitches(permission_model="legacy")):
        # the one cheap read that tells the bridge which model it faces
        probe = emu.perms.get("/roles", params={"permission_type": "global"})
        assert probe.status_code == 403 and probe.json()["error"]["code"] == "ACCOUNTS_00006"
        assert "legacy" in probe.json()["error"]["message"]
        emu.admin.post("/folders/brand")  # folders themselves exist in both models
        folder = _folder(emu, "brand")
        listed = emu.admin.get(f"/folder_operations/invite/{folder['external_id']}")
        assert listed.status_code == 403 and set(listed.json()["error"]) == {"message"}
        assert (
            emu.admin.post(
                f"/folder_operations/invite/{folder['external_id']}",
                json={"principal": {"type": "apiKey", "id": "1"}, "operation": "add", "roles": [VIEWER]},
            ).status_code
            == 403
        )
        assert emu.perms.put("/principal_roles", json={}).status_code == 403
        # switching the account over keeps the grants that exist (one model)
        emu.switches.permission_model = "roles"
        assert emu.perms.get("/roles", params={"permission_type": "global"}).status_code == 200


def test_new_routes_share_quota_faults_and_call_log() -> None:
    state = cloudinary.CloudinaryState()
    with LiveApp(cloudinary.build(state, cloudinary.CloudinarySwitches(hourly_limit=2))) as live:
        key = next(iter(state.access_keys.values()))[0]
        auth = (key["api_key"], key["api_secret"])
        first = httpx.get(f"{live.url}/v1_1/production/folders", auth=auth)
        assert first.headers["x-featureratelimit-remaining"] == "1"
        httpx.get(
            f"{live.url}/v2/accounts/{state.account_id}/permissions/roles",
            params={"permission_type": "global"},
            auth=(state.key, state.secret),
        )
        assert httpx.get(f"{live.url}/v1_1/production/folders", auth=auth).status_code == 429
        assert [c["path"] for c in state.calls] == [
            "/v1_1/production/folders",
            f"/v2/accounts/{state.account_id}/permissions/roles",
        ]
        httpx.put(f"{live.url}/_emulator/faults", json={"error_rate": 1.0, "error_status": 503})
        assert httpx.get(f"{live.url}/v2/accounts/permissions/public/catalog").status_code == 503


def test_drift_injected_in_state_shows_through_the_api(emu: Emulator) -> None:
    user = emu.account.post("/users", json={"name": "Di", "email": "di@example.com"}).json()
    emu.admin.post("/folders/brand")
    folder = _folder(emu, "brand")
    # someone grants a role in the Console: the emulator's state takes it directly
    emu.state.role_assignments.append(
        {
            "principal_type": "user",
            "principal_id": user["id"],
            "role_id": "cld::role::folder::manager",
            "scope_type": "prodenv",
            "scope_id": emu.environment_id,
            "policy_parameters": {"folder_id": folder["external_id"]},
            "created_at": 0,
            "updated_at": 0,
        }
    )
    shared = emu.admin.get(f"/folder_operations/invite/{folder['external_id']}").json()["shared_with"]
    assert [r["id"] for r in shared[0]["roles"]] == ["cld::role::folder::manager"]
    emu.account.delete(f"/users/{user['id']}")  # a deleted user's grants go with it
    assert emu.admin.get(f"/folder_operations/invite/{folder['external_id']}").json() == {"shared_with": []}


def test_signed_notification_verifies_with_the_environment_secret(emu: Emulator) -> None:
    received: list[dict[str, Any]] = []

    async def hook(request: Request) -> Response:
        received.append({"headers": dict(request.headers), "body": await request.body()})
        return Response(status_code=200)

    with LiveApp(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as receiver:
        for algorithm in ("sha1", "sha256"):
            sent = httpx.post(
                f"{emu.live.url}/_emulator/notify",
                timeout=10,
                json={"url": f"{receiver.url}/hook", "algorithm": algorithm, "notification_type": "create_folder"},
            )
            assert sent.status_code == 200 and sent.json()["status"] == 200
    key = emu.state.access_keys[emu.environment_id][0]
    for delivery, algorithm in zip(received, ("sha1", "sha256"), strict=False):
        timestamp = delivery["headers"]["x-cld-timestamp"]
        expected = hashlib.new(algorithm, delivery["body"] + timestamp.encode() + key["api_secret"].encode())
        assert delivery["headers"]["x-cld-signature"] == expected.hexdigest()
    payload = json.loads(received[0]["body"])
    assert payload["notification_type"] == "create_folder" and payload["signature_key"] == key["api_key"]
    assert payload["notification_context"]["triggered_by"] == {"source": "api", "id": key["api_key"]}

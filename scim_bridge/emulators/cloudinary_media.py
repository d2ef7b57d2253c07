"""Cloudinary folders, folder roles and the Permissions API v2, for the Cloudinary emulator.

Built from Cloudinary's OpenAPI documents (../shared/specs/cloudinary/asset-management.yml
v0.7.5: folders and folder_operations/invite; permissions.yml v2.0.0) and research/cloudinary.md §3:

* Admin API, per product environment: `/v1_1/{cloud_name}/folders…` and
  `/v1_1/{cloud_name}/folder_operations/invite/{folder_id}`, HTTP Basic with a key and secret of
  the environment whose `cloud_name` is in the path, errors `{"error": {"message"}}`.
* Permissions API: `/v2/accounts/{account_id}/permissions/…` with the account key, `{"data": …}`
  envelopes, epoch-second timestamps, errors `{"error": {category, code, message, details}}`.

One grant model serves both: a role assignment {principal, role, scope, policy_parameters}. A
folder role given through `invite` is the assignment `policy_parameters={"folder_id": <external
id>}` in the folder's product environment, so `principal_roles` shows it and vice versa.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from .cloudinary import CloudinaryState, CloudinarySwitches

PUBLIC_PREFIX = "/v2/accounts/permissions/public/"  # no authentication (spec: tag Public)
INSPECT_PAGE = 100  # principals per inspect page; the real page size is not documented
INVITE_MAX_ROLES = 10  # spec: assign_folder_roles_request.roles.maxItems
_T0 = 1719475216  # system roles and policies carry this fixed epoch (the spec's example value)


# The catalog fixture (GET /public/catalog). Ids, and the names and descriptions the spec or the
# research note quote, are Cloudinary's; the rest of the texts and Cedar statements, and which
# policies make up which role beyond the spec's examples, are ours. UNCONFIRMED where not quoted.
def _policy(
    policy_id: str, name: str, description: str, category: str, sub_category: str, scope_type: str, statement: str
) -> dict[str, Any]:
    content = "::content::" in policy_id
    policy: dict[str, Any] = {
        "id": policy_id,
        "name": name,
        "description": description,
        "category": category,
        "sub_category": sub_category,
        "permission_type": "content" if content else "global",
        "scope_type": scope_type,
        "policy_statement": statement,
    }
    if content:
        policy["policy_parameters"] = ["folder_id"]
    return policy


def _feature(feature: str) -> str:
    return f'permit(principal, action, resource == Cloudinary::Feature::"{feature}");'


def _in_folder(action: str, kind: str = "Asset") -> str:
    return (
        f'permit(principal, action == Cloudinary::Action::"{action}", resource is Cloudinary::{kind}) '
        'when { resource.ancestor_ids.contains("<folder_id>") };'
    )


SYSTEM_POLICIES = {
    p["id"]: p
    for p in [
        _policy(
            "cld::policy::global::ml::access",
            "Access the Media Library",
            "Access the Media Library within the Console. Without this permission, users can't view any assets.",
            "Management",
            "General operations",
            "prodenv",
            _feature("cld::global::ml::access"),
        ),
        _policy(
            "cld::policy::global::folder_and_asset_management::view",
            "View all folders and assets",
            "View all folders and assets in the product environment.",
            "Management",
            "Folder and asset management",
            "prodenv",
            'permit(principal, action == Cloudinary::Action::"read", resource);',
        ),
        _policy(
            "cld::policy::global::folder_and_asset_management::create_asset",
            "Upload assets",
            "Upload assets to any folder, including the root, without requiring specific folder permissions.",
            "Management",
            "Folder and asset management",
            "prodenv",
            'permit(principal, action in [Cloudinary::Action::"create"], resource is Cloudinary::Asset);',
        ),
        _policy(
            "cld::policy::global::api_keys::manage",
            "Manage API keys",
            "View, create and revoke API keys.",
            "Settings",
            "API keys",
            "prodenv",
            _feature("cld::global::api_keys::manage"),
        ),
        _policy(
            "cld::policy::global::upload_presets::manage",
            "Manage upload settings",
            "View, create, modify, or delete upload settings, such as upload presets, upload mappings, and upload "
            "defaults.",
            "Settings",
            "Upload Settings",
            "prodenv",
            "permit(principal, action, resource is Cloudinary::UploadPreset);",
        ),
        _policy(
            "cld::policy::global::users_and_groups::manage",
            "Manage users and groups",
            "View, add, and remove users and groups in the account, and manage group memberships.",
            "Settings",
            "User Management",
            "account",
            "permit (principal, action, resource is Cloudinary::User);",
        ),
        _policy(
            "cld::policy::global::account_security::manage",
            "Manage account security settings",
            "Define account-wide security settings related to authentication, access control, and user privacy.",
            "Settings",
            "Account Security",
            "account",
            _feature("cld::global::account::update"),
        ),
        _policy(
            "cld::policy::global::assets::moderate",
            "Moderate all assets",
            "Approve and reject all assets in moderation.",
            "Management",
            "Moderation",
            "prodenv",
            'permit(principal, action == Cloudinary::Action::"moderate", resource is Cloudinary::Asset);',
        ),
        *[
            _policy(
                f"cld::policy::global::reports::{kind}::view",
                f"View {kind} reports",
                f"View {kind} reports.",
                "Reports",
                "Reports",
                "prodenv",
                _feature(f"cld::global::reports::{kind}::view"),
            )
            for kind in ("usage", "delivery", "errors")
        ],
        _policy(
            "cld::policy::content::folder::view_download",
            "View all assets",
            "View all assets in the folder and its nested subfolders.",
            "Folder",
            "View and download",
            "prodenv",
            _in_folder("read", "Folder") + "\n" + _in_folder("read"),
        ),
        _policy(
            "cld::policy::content::folder::add_assets",
            "Add assets",
            "Add assets to the folder by uploading new files, saving an asset as new, or moving existing assets "
            "from other folders.",
            "Folder",
            "Contribute",
            "prodenv",
            _in_folder("create"),
        ),
        _policy(
            "cld::policy::content::folder::download_public_assets",
            "Download public assets",
            "Download the public assets in the folder.",
            "Folder",
            "View and download",
            "prodenv",
            _in_folder("download"),
        ),
    ]
}


def _system_role(role_id: str, name: str, description: str, scope_type: str, policy_ids: list[str]) -> dict[str, Any]:
    return {
        "id": role_id,
        "name": name,
        "description": description,
        "management_type": "system",
        "permission_type": "content" if "::folder::" in role_id else "global",
        "scope_type": scope_type,
        "system_policy_ids": policy_ids,
        "created_at": _T0,
        "updated_at": _T0,
    }


_VIEW = ["cld::policy::content::folder::view_download", "cld::policy::content::folder::download_public_assets"]
_ADD = [*_VIEW, "cld::policy::content::folder::add_assets"]
SYSTEM_ROLES = {
    r["id"]: r
    for r in [
        _system_role(
            "cld::role::account::master_admin",
            "Master Admin",
            "Manage all account-level settings and features.",
            "account",
            ["cld::policy::global::users_and_groups::manage", "cld::policy::global::account_security::manage"],
        ),
        _system_role(
            "cld::role::account::admin",
            "Admin",
            "Manage roles, users, and groups, and access Cloudinary products.",
            "account",
            ["cld::policy::global::users_and_groups::manage"],
        ),
        _system_role(
            "cld::role::account::reports",
            "Reports",
            "View account-level reports and usage metrics, including audit logs, dashboard usage summaries, "
            "and account-wide activity reports.",
            "account",
            ["cld::policy::global::reports::usage::view"],
        ),
        _system_role(
            "cld::role::prodenv::master_admin",
            "Master Admin",
            "Fully manage product environment, including settings, product features, dashboards, and reports.",
            "prodenv",
            [
                "cld::policy::global::ml::access",
                "cld::policy::global::folder_and_asset_management::view",
                "cld::policy::global::api_keys::manage",
            ],
        ),
        _system_role(
            "cld::role::prodenv::ml_user",
            "Media Library User",
            "Access specific folders and collections according to assigned permissions.",
            "prodenv",
            ["cld::policy::global::ml::access"],
        ),
        _system_role(
            "cld::role::prodenv::reports",
            "Reports",
            "View product environment reports and usage metrics.",
            "prodenv",
            [f"cld::policy::global::reports::{k}::view" for k in ("usage", "delivery", "errors")],
        ),
        # The folder ladder. Viewer, Contributor and Manager texts are the spec's.
        _system_role("cld::role::folder::viewer", "Viewer", "View and download public assets.", "prodenv", _VIEW),
        _system_role(
            "cld::role::folder::contributor",
            "Contributor",
            "Viewer permissions, plus add assets and create subfolders.",
            "prodenv",
            _ADD,
        ),
        # UNCONFIRMED: the Manager description names an Editor role; its id and text are inferred.
        _system_role(
            "cld::role::folder::editor",
            "Editor",
            "Contributor permissions, plus edit assets and folders.",
            "prodenv",
            _ADD,
        ),
        _system_role(
            "cld::role::folder::manager",
            "Manager",
            "Editor permissions, plus delete, share, and full download access.",
            "prodenv",
            _ADD,
        ),
    ]
}


def catalog() -> dict[str, Any]:
    """The public catalog, in the spec example's shape (`policy`, not `policy_statement`)."""
    policies = [
        {
            **{k: v for k, v in p.items() if k not in ("policy_statement", "policy_parameters")},
            "policy": p["policy_statement"],
        }
        for p in SYSTEM_POLICIES.values()
    ]
    roles = [
        {k: r[k] for k in ("id", "name", "description", "permission_type", "scope_type", "system_policy_ids")}
        for r in SYSTEM_ROLES.values()
    ]
    return {"catalog": {"system_policies": policies, "system_roles": roles}}


# errors -------------------------------------------------------------------------------------------
class _Problem(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.status, self.body = status, body


def _admin(message: str, status: int) -> _Problem:
    return _Problem(status, {"error": {"message": message}})


def _v2(status: int, code: str, message: str, details: dict[str, Any] | None = None) -> _Problem:
    # The spec's examples file 404 and 500 under "server_error", everything else under "user_error".
    category = "server_error" if status in (404, 500) else "user_error"
    error: dict[str, Any] = {"category": category, "code": code, "message": message}
    if details is not None:
        error["details"] = details
    return _Problem(status, {"error": error})


def _missing(*fields: str) -> _Problem:
    return _v2(400, "ACCOUNTS_00005", "missing fields", {"fields": list(fields)})


def _invalid(name: str, value: Any) -> _Problem:
    return _v2(400, "ACCOUNTS_00005", "invalid request", {"fields": [{name: value}]})


def _not_found(name: str, value: Any) -> _Problem:
    return _v2(404, "ACCOUNTS_00003", "not found", {"fields": [{name: value}]})


def unauthorised_body(path: str) -> dict[str, Any] | None:
    """The Permissions API's own 401 body (spec AuthorizationErrorExample); None elsewhere."""
    if path.startswith("/v2/"):
        return {"error": {"category": "user_error", "code": "ACCOUNTS_00006", "message": "invalid credentials"}}
    return None


# authentication of Admin API calls (used by the emulator's guard) ---------------------------------
def admin_cloud_name(path: str) -> str | None:
    """The cloud name of an Admin API path (`/v1_1/{cloud_name}/…`), None for other APIs."""
    parts = path.split("/", 3)
    if len(parts) > 3 and parts[1] == "v1_1" and parts[2] != "provisioning":
        return parts[2]
    return None


def admin_credentials_ok(
    state: CloudinaryState, switches: CloudinarySwitches, cloud_name: str, key: str, secret: str
) -> bool:
    """An enabled key of the enabled product environment named in the path (research §1.1)."""
    if (
        switches.admin_api_account_key
        and secrets.compare_digest(key, state.key)
        and secrets.compare_digest(secret, state.secret)
    ):
        return True
    for environment in state.environments.values():
        if environment["cloud_name"] == cloud_name and environment["enabled"]:
            keys = state.access_keys[environment["id"]]
            return any(
                k["enabled"]
                and secrets.compare_digest(k["api_key"], key)
                and secrets.compare_digest(k["api_secret"], secret)
                for k in keys
            )
    return False


# helpers ------------------------------------------------------------------------------------------
def _epoch() -> int:
    return int(time.time())


async def _json(request: Request, problem: _Problem) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise problem from None
    if not isinstance(body, dict):
        raise problem
    return body


def _true(value: str | None) -> bool:
    return (value or "").lower() == "true"


def _valid_path(path: str) -> bool:  # spec: folder_path, no empty, leading, trailing or double slashes
    return bool(path) and not path.startswith("/") and not path.endswith("/") and "//" not in path


def _principal_exists(state: CloudinaryState, kind: str, principal_id: str, environment_id: str | None) -> bool:
    if kind == "user":
        return principal_id in state.users
    if kind == "group":
        return principal_id in state.groups
    if kind == "apiKey":  # the key value, of the scope's product environment (or of any, account-wide)
        scopes = [environment_id] if environment_id else list(state.access_keys)
        return any(k["api_key"] == principal_id for e in scopes for k in state.access_keys.get(e, []))
    return kind == "provisioningKey" and principal_id == state.key


def _prune(state: CloudinaryState) -> None:
    # UNCONFIRMED: a deleted user, group, key, folder or product environment takes its grants with it.
    for folder_id, folder in list(state.folders.items()):
        if folder["environment_id"] not in state.environments:
            del state.folders[folder_id]
    state.role_assignments[:] = [
        a
        for a in state.role_assignments
        if (a["scope_id"] is None or a["scope_id"] in state.environments)
        and _principal_exists(state, a["principal_type"], a["principal_id"], a["scope_id"])
        and ((a["policy_parameters"] or {}).get("folder_id") in (None, *state.folders))
    ]


def routes(state: CloudinaryState, switches: CloudinarySwitches) -> list[Route]:
    """The Admin API folder routes and the Permissions API routes, over the emulator's state."""

    # one grant model ------------------------------------------------------------------------------
    def find_role(role_id: str) -> dict[str, Any] | None:
        return SYSTEM_ROLES.get(role_id) or state.custom_roles.get(role_id)

    def role_params(role: dict[str, Any]) -> list[str]:
        return sorted({p for i in role["system_policy_ids"] for p in SYSTEM_POLICIES[i].get("policy_parameters", [])})

    def folder_role(role: dict[str, Any]) -> bool:
        return role["permission_type"] == "content" and "folder_id" in role_params(role)

    def principal_exists(kind: str, principal_id: str, environment_id: str | None) -> bool:
        return _principal_exists(state, kind, principal_id, environment_id)

    def prune() -> None:
        _prune(state)

    def change(operation: str, assignment: dict[str, Any]) -> None:
        """Add or remove one assignment; both are idempotent (UNCONFIRMED: no 409 or 404 for repeats)."""
        key = ("principal_type", "principal_id", "role_id", "scope_id", "policy_parameters")
        existing = next((a for a in state.role_assignments if all(a[k] == assignment[k] for k in key)), None)
        if operation == "add" and existing is None:
            now = _epoch()
            state.role_assignments.append({**assignment, "created_at": now, "updated_at": now})
        elif operation == "remove" and existing is not None:
            state.role_assignments.remove(existing)

    def assignment(
        principal_type: str,
        principal_id: str,
        role: dict[str, Any],
        scope_id: str | None,
        params: dict[str, Any] | None,
    ) -> dict[str, Any]:
        return {
            "principal_type": principal_type,
            "principal_id": principal_id,
            "role_id": role["id"],
            "scope_type": role["scope_type"],
            "scope_id": scope_id if role["scope_type"] == "prodenv" else None,
            "policy_parameters": params or None,
        }

    # folders --------------------------------------------------------------------------------------
    def environment(request: Request) -> dict[str, Any]:
        cloud_name = request.path_params["cloud_name"]
        found = next((e for e in state.environments.values() if e["cloud_name"] == cloud_name), None)
        if found is None:  # reachable only with switches.admin_api_account_key; text UNCONFIRMED
            raise _admin(f"Invalid cloud_name {cloud_name}", 401)
        return found

    def folders_in(environment_id: str) -> list[dict[str, Any]]:
        return [f for f in state.folders.values() if f["environment_id"] == environment_id]

    def by_path(environment_id: str, path: str, case_sensitive: bool = True) -> dict[str, Any] | None:
        same: Callable[[str], bool] = (lambda p: p == path) if case_sensitive else (lambda p: p.lower() == path.lower())
        return next((f for f in folders_in(environment_id) if same(f["path"])), None)

    def ancestors(folder: dict[str, Any]) -> list[dict[str, Any]]:
        parts = folder["path"].split("/")
        found = [by_path(folder["environment_id"], "/".join(parts[:i])) for i in range(1, len(parts))]
        return [f for f in found if f is not None]

    def folder_view(folder: dict[str, Any]) -> dict[str, Any]:
        return {"name": folder["name"], "path": folder["path"], "external_id": folder["external_id"]}

    def detail_view(folder: dict[str, Any]) -> dict[str, Any]:
        return {
            **folder_view(folder),
            "created_at": folder["created_at"],
            "resource_count": 0,
            "total_bytes": 0,
            "last_uploaded_at": None,
            "ancestors": [folder_view(a) for a in ancestors(folder)],
        }

    def listing(folders: list[dict[str, Any]]) -> JSONResponse:
        ordered = sorted(folders, key=lambda f: f["path"])
        return JSONResponse(
            {"folders": [folder_view(f) for f in ordered], "next_cursor": None, "total_count": len(ordered)}
        )

    def folder_path(request: Request) -> str:
        path = request.path_params["path"]
        if not _valid_path(path):
            raise _admin(f"Invalid folder path {path}", 400)  # text UNCONFIRMED
        return str(path)

    async def root_folders(request: Request) -> JSONResponse:
        return listing([f for f in folders_in(environment(request)["id"]) if "/" not in f["path"]])

    async def subfolders(request: Request) -> JSONResponse:
        env, path = environment(request), folder_path(request)
        if by_path(env["id"], path) is None:
            raise _admin(f"Can't find folder with path {path}", 404)  # text UNCONFIRMED
        return listing([f for f in folders_in(env["id"]) if f["path"].rpartition("/")[0] == path])

    async def create_folder(request: Request) -> JSONResponse:
        env, path = environment(request), folder_path(request)
        if by_path(env["id"], path) is not None:
            raise _admin(f"Folder {path} already exists", 409)  # research §3.4: 409; text UNCONFIRMED
        # What the public facts say (spec createFolder, research §3.4): POST creates an empty folder at
        # the path, 200 with the `folder` schema (name, path, external_id, created_at) plus
        # `success`, 409 when it exists. What they do not say, and is assumed here:
        # * missing ancestors are created too (the SDKs' create_folder examples pass nested paths
        #   to an empty environment; no page states it);
        # * the new folder carries no role of its own: nobody, not even the creating key, gets a
        #   direct grant; it shows its ancestors' grants as `inherited` (research §3.2), which is
        #   all a per-attribute folder under a granted parent reaches before the bridge grants it;
        # * paths are case-sensitive (by_path takes `case_sensitive`, so "Campaigns" ≠ "campaigns").
        parts = path.split("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if by_path(env["id"], prefix) is None:
                external_id = secrets.token_hex(17)
                state.folders[external_id] = {
                    "external_id": external_id,
                    "name": parts[depth - 1],
                    "path": prefix,
                    "environment_id": env["id"],
                    "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                }
        created = state.folders[external_id]
        return JSONResponse({**folder_view(created), "created_at": created["created_at"], "success": True})

    async def delete_folder(request: Request) -> JSONResponse:
        env, path = environment(request), folder_path(request)
        if by_path(env["id"], path) is None:
            raise _admin(f"Can't find folder with path {path}", 404)
        # The spec deletes the folder "and all assets within it"; the emulator holds no assets, so
        # nothing is refused. Subfolders go too and are listed (UNCONFIRMED: whether they are listed).
        doomed = sorted(
            (f for f in folders_in(env["id"]) if f["path"] == path or f["path"].startswith(path + "/")),
            key=lambda f: f["path"],
        )
        for folder in doomed:
            del state.folders[folder["external_id"]]
        prune()
        return JSONResponse({"deleted": [f["path"] for f in doomed]})

    async def folder_by_path(request: Request) -> JSONResponse:
        env = environment(request)
        body = await _json(request, _admin("Invalid JSON body", 400))
        if not isinstance(body.get("path"), str):
            raise _admin("path is required", 400)
        # UNCONFIRMED: case_sensitive defaults to true; the root ("") is not emulated (404).
        folder = by_path(env["id"], body["path"], body.get("case_sensitive") is not False)
        if folder is None:
            raise _admin(f"Can't find folder with path {body['path']}", 404)
        return JSONResponse(detail_view(folder))

    async def folder_by_id(request: Request) -> JSONResponse:
        env = environment(request)
        body = await _json(request, _admin("Invalid JSON body", 400))
        folder = state.folders.get(str(body.get("id")))
        if folder is None or folder["environment_id"] != env["id"]:
            raise _admin(f"Can't find folder with id {body.get('id')}", 404)
        return JSONResponse(detail_view(folder))

    # folder roles through the Admin API (research §3.2) -------------------------------------------
    def invite_folder(request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
        if switches.permission_model == "legacy":
            # UNCONFIRMED: what a legacy account answers here is not public; a 403 is our choice.
            raise _admin("Folder roles are not available: the account uses legacy permissions", 403)
        env = environment(request)
        folder = state.folders.get(request.path_params["folder_id"])
        if folder is None or folder["environment_id"] != env["id"]:
            raise _admin("Folder not found", 404)  # text UNCONFIRMED
        return env, folder

    def role_summary(role: dict[str, Any]) -> dict[str, Any]:
        return {"id": role["id"], "name": role["name"], "description": role.get("description") or ""}

    async def folder_roles(request: Request) -> JSONResponse:
        env, folder = invite_folder(request)
        shared: dict[tuple[str, str, str], dict[str, Any]] = {}
        for defined_on in [*ancestors(folder), folder]:  # root first, then down to the folder itself
            for a in state.role_assignments:
                on_folder = (a["policy_parameters"] or {}).get("folder_id") == defined_on["external_id"]
                if a["scope_id"] == env["id"] and on_folder:
                    item = shared.setdefault(
                        (a["principal_type"], a["principal_id"], defined_on["external_id"]),
                        {
                            "type": a["principal_type"],
                            "id": a["principal_id"],
                            "folder_id": defined_on["external_id"],
                            "roles": [],
                        },
                    )
                    item["roles"].append(
                        {
                            **role_summary(find_role(a["role_id"]) or {"id": a["role_id"], "name": ""}),
                            "inherited": defined_on is not folder,
                        }
                    )
        body: dict[str, Any] = {"shared_with": list(shared.values())}
        if _true(request.query_params.get("permitted_roles")):
            body["permitted_roles"] = [
                role_summary(r) for r in [*SYSTEM_ROLES.values(), *state.custom_roles.values()] if folder_role(r)
            ]
        return JSONResponse(body)

    async def assign_folder_roles(request: Request) -> JSONResponse:
        env, folder = invite_folder(request)
        body = await _json(request, _admin("Invalid JSON body", 400))
        principal, operation, role_ids = body.get("principal"), body.get("operation"), body.get("roles")
        if (
            not isinstance(principal, dict)
            or principal.get("type") not in ("user", "group", "apiKey")
            or not isinstance(principal.get("id"), str)
        ):
            raise _admin("principal must be {type: user|group|apiKey, id}", 400)
        if operation not in ("add", "remove"):
            raise _admin(f"Invalid operation {operation}", 400)
        if not isinstance(role_ids, list) or not role_ids or not all(isinstance(r, str) for r in role_ids):
            raise _admin("roles must be a non-empty list of role ids", 400)
        if len(role_ids) > INVITE_MAX_ROLES:
            raise _admin(f"roles: at most {INVITE_MAX_ROLES} roles per request", 400)
        roles = [find_role(r) for r in role_ids]
        for role_id, role in zip(role_ids, roles, strict=False):
            if role is None or not folder_role(role):
                raise _admin(f"Invalid role {role_id}", 400)
        if not principal_exists(principal["type"], principal["id"], env["id"]):
            raise _admin(f"Invalid principal {principal['type']} {principal['id']}", 400)
        for role in roles:
            assert role is not None
            change(
                operation,
                assignment(principal["type"], principal["id"], role, env["id"], {"folder_id": folder["external_id"]}),
            )
        return JSONResponse({"success": True})

    # Permissions API v2 (research §3.3) -----------------------------------------------------------
    def role_view(role: dict[str, Any]) -> dict[str, Any]:
        view = {
            k: role.get(k)
            for k in (
                "id",
                "name",
                "description",
                "management_type",
                "permission_type",
                "scope_type",
                "created_at",
                "updated_at",
            )
        }
        if role["permission_type"] == "content":
            view["policy_parameters"] = role_params(role)
        return view

    def role_detail(role: dict[str, Any], request: Request) -> dict[str, Any]:
        def policy(policy_id: str) -> dict[str, Any]:
            statement = SYSTEM_POLICIES[policy_id]["policy_statement"]
            for name in ("folder_id", "collection_id"):  # spec FolderId: filled into the statement
                if request.query_params.get(name):
                    statement = statement.replace(f"<{name}>", request.query_params[name])
            return {**SYSTEM_POLICIES[policy_id], "policy_statement": statement, "created_at": _T0, "updated_at": _T0}

        return {**role_view(role), "policies": [policy(p) for p in role["system_policy_ids"]]}

    def known_role(role_id: str) -> dict[str, Any]:
        role = find_role(role_id)
        if role is None:
            raise _not_found("role_id", role_id)
        return role

    def enum(request: Request, name: str, allowed: tuple[str, ...], required: bool = False) -> str | None:
        value = request.query_params.get(name)
        if value is None and required:
            raise _missing(name)
        if value is not None and value not in allowed:
            raise _invalid(name, value)
        return value

    def assigned_view(a: dict[str, Any]) -> dict[str, Any]:
        """A role as assigned to a principal (spec PrincipalRolesData)."""
        role = find_role(a["role_id"]) or {}
        view = {
            k: role.get(k) for k in ("id", "name", "description", "management_type", "permission_type", "scope_type")
        }
        if a["scope_id"] is not None:
            view["scope_id"] = a["scope_id"]
        if a["policy_parameters"]:
            view["policy_parameters"] = a["policy_parameters"]
        return {**view, "created_at": a["created_at"], "updated_at": a["updated_at"]}

    def matches(a: dict[str, Any], request: Request) -> bool:
        """The content and scope filters shared by principal_roles, inspect and a role's principals."""
        q, params = request.query_params, a["policy_parameters"] or {}
        wanted = {n: q[n] for n in ("folder_id", "collection_id") if q.get(n)}
        wanted.update(zip(q.getlist("param_key"), q.getlist("param_value"), strict=False))
        return (
            all(params.get(k) == v for k, v in wanted.items())
            and (not q.get("scope_type") or a["scope_type"] == q["scope_type"])
            and (not q.get("scope_id") or a["scope_id"] == q["scope_id"])
        )

    def legacy_refusal() -> None:
        if switches.permission_model == "legacy":
            # UNCONFIRMED: a legacy account's exact answer is not public. The code and category are
            # the spec's ForbiddenErrorExample; the message says why.
            raise _v2(
                403,
                "ACCOUNTS_00006",
                "not allowed: the account uses legacy permissions (Roles and Permissions is not enabled)",
            )

    async def list_roles(request: Request) -> JSONResponse:
        permission_type = enum(request, "permission_type", ("global", "content"), required=True)
        scope_type = enum(request, "scope_type", ("account", "prodenv"))
        management_type = enum(request, "management_type", ("system", "custom"))
        roles = [
            r
            for r in [*SYSTEM_ROLES.values(), *state.custom_roles.values()]
            if r["permission_type"] == permission_type
            and scope_type in (None, r["scope_type"])
            and management_type in (None, r["management_type"])
        ]
        return JSONResponse({"data": [role_view(r) for r in roles]})

    async def create_role(request: Request) -> JSONResponse:
        body = await _json(request, _invalid("body", "not a JSON object"))
        missing = [n for n in ("name", "permission_type", "scope_type") if not body.get(n)]
        if missing:
            raise _missing(*missing)
        if body["permission_type"] not in ("global", "content"):
            raise _invalid("permission_type", body["permission_type"])
        if body["scope_type"] not in ("account", "prodenv"):
            raise _invalid("scope_type", body["scope_type"])
        policy_ids = body.get("system_policy_ids") or []
        for policy_id in policy_ids:  # UNCONFIRMED: a policy must match the role's permission and scope types
            policy = SYSTEM_POLICIES.get(policy_id)
            if policy is None or (policy["permission_type"], policy["scope_type"]) != (
                body["permission_type"],
                body["scope_type"],
            ):
                raise _invalid("system_policy_ids", policy_id)
        slug = re.sub(r"[^a-z0-9]+", "_", str(body["name"]).lower()).strip("_") or "role"
        role_id = str(body.get("id") or f"{slug}_{secrets.token_hex(4)[:7]}")
        if find_role(role_id) is not None:
            raise _v2(409, "ACCOUNTS_00006", "already exists", {"fields": [{"id": role_id}]})
        if any(r["name"].lower() == str(body["name"]).lower() for r in state.custom_roles.values()):
            raise _v2(409, "ACCOUNTS_00006", "already exists", {"fields": [{"name": body["name"]}]})
        now = _epoch()
        role = {
            "id": role_id,
            "name": body["name"],
            "description": body.get("description"),
            "management_type": "custom",
            "permission_type": body["permission_type"],
            "scope_type": body["scope_type"],
            "system_policy_ids": list(policy_ids),
            "created_at": now,
            "updated_at": now,
        }
        state.custom_roles[role_id] = role
        return JSONResponse({"data": role_detail(role, request)}, status_code=201)

    async def get_role(request: Request) -> JSONResponse:
        return JSONResponse({"data": role_detail(known_role(request.path_params["role_id"]), request)})

    def validated(
        operation: Any, principal_type: Any, principal_id: Any, role: dict[str, Any], scope_id: Any, params: Any
    ) -> dict[str, Any]:
        """One requested assignment, checked the way the spec's error examples suggest."""
        if operation not in ("add", "remove"):
            raise _invalid("operation", operation)
        if principal_type not in ("user", "group", "apiKey", "provisioningKey"):
            raise _invalid("principal_type", principal_type)
        if role["scope_type"] == "prodenv":
            if not scope_id:
                raise _missing("scope_id")
            if scope_id not in state.environments:
                raise _not_found("scope_id", scope_id)
        if role["permission_type"] == "content":
            if not isinstance(params, dict) or not params:
                raise _missing("policy_parameters")
            if len(params) != 1 or not set(params) <= {"folder_id", "collection_id"}:
                raise _invalid("policy_parameters", params)
            # UNCONFIRMED: an unknown folder is refused; collections have no API, so any id is taken.
            folder = state.folders.get(str(params.get("folder_id")))
            if "folder_id" in params and (folder is None or folder["environment_id"] != scope_id):
                raise _not_found("folder_id", params["folder_id"])
        elif params:
            raise _invalid("policy_parameters", params)
        if not isinstance(principal_id, str) or not principal_exists(
            principal_type, principal_id, scope_id if role["scope_type"] == "prodenv" else None
        ):
            raise _not_found("principal_id", principal_id)
        return assignment(principal_type, principal_id, role, scope_id, params)

    async def principal_roles(request: Request) -> JSONResponse:
        q = request.query_params
        missing = [n for n in ("principal_type", "principal_id", "permission_type") if not q.get(n)]
        if missing:
            raise _missing(*missing)
        enum(request, "principal_type", ("user", "group", "apiKey", "provisioningKey"))
        enum(request, "permission_type", ("global", "content"))
        enum(request, "management_type", ("system", "custom"))
        if not principal_exists(q["principal_type"], q["principal_id"], None):
            raise _not_found("principal_id", q["principal_id"])
        found = [
            a
            for a in state.role_assignments
            if (a["principal_type"], a["principal_id"]) == (q["principal_type"], q["principal_id"])
            and (find_role(a["role_id"]) or {}).get("permission_type") == q["permission_type"]
            and q.get("management_type") in (None, (find_role(a["role_id"]) or {}).get("management_type"))
            and matches(a, request)
        ]
        return JSONResponse({"data": [assigned_view(a) for a in found]})

    async def update_principal_roles(request: Request) -> Response:
        body = await _json(request, _invalid("body", "not a JSON object"))
        missing = [n for n in ("operation", "principal", "roles") if not body.get(n)]
        if missing:
            raise _missing(*missing)
        principal = body["principal"] if isinstance(body["principal"], dict) else {}
        if not isinstance(body["roles"], list):
            raise _invalid("roles", body["roles"])
        changes = []
        for item in body["roles"]:  # all are checked before any is applied
            if not isinstance(item, dict) or not item.get("id"):
                raise _missing("role_id")
            changes.append(
                validated(
                    body["operation"],
                    principal.get("type"),
                    principal.get("id"),
                    known_role(str(item["id"])),
                    item.get("scope_id"),
                    item.get("policy_parameters"),
                )
            )
        for one in changes:
            change(body["operation"], one)
        return Response(status_code=200)  # spec: 200, no body

    async def inspect(request: Request) -> JSONResponse:
        enum(request, "scope_type", ("account", "prodenv"), required=True)
        principal_type = request.query_params.get("principal_type")
        principal_id = request.query_params.get("principal_id")
        if principal_type and not principal_id:  # spec: principal_id is mandatory with principal_type
            raise _missing("principal_id")
        grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for a in state.role_assignments:
            if (
                matches(a, request)
                and principal_type in (None, a["principal_type"])
                and principal_id in (None, a["principal_id"])
            ):
                grouped.setdefault((a["principal_type"], a["principal_id"]), []).append(assigned_view(a))
        cursor = request.query_params.get("cursor") or "0"
        start = int(cursor) if cursor.isdigit() else 0
        page = list(grouped.items())[start : start + INSPECT_PAGE]
        body: dict[str, Any] = {"data": {"principals": [{"type": t, "id": i, "roles": r} for (t, i), r in page]}}
        if start + INSPECT_PAGE < len(grouped):
            body["next_cursor"] = str(start + INSPECT_PAGE)
        return JSONResponse(body)

    async def role_principals(request: Request) -> JSONResponse:
        role = known_role(request.path_params["role_id"])
        verbose = _true(request.query_params.get("verbose"))
        found = [a for a in state.role_assignments if a["role_id"] == role["id"] and matches(a, request)]

        def view(a: dict[str, Any]) -> dict[str, Any]:  # spec VerboseParam: only id and type unless verbose
            if not verbose:
                return {"id": a["principal_id"], "type": a["principal_type"]}
            return {
                "id": a["principal_id"],
                "type": a["principal_type"],
                "role_id": a["role_id"],
                "policy_parameters": a["policy_parameters"] or {},
                "scope_type": a["scope_type"],
                "scope_id": a["scope_id"],
                "created_at": a["created_at"],
                "updated_at": a["updated_at"],
            }

        data = [view(a) for a in found]
        return JSONResponse({"data": data})

    async def update_role_principals(request: Request) -> Response:
        role = known_role(request.path_params["role_id"])
        body = await _json(request, _invalid("body", "not a JSON object"))
        missing = [n for n in ("operation", "principals") if not body.get(n)]
        if missing:
            raise _missing(*missing)
        if not isinstance(body["principals"], list):
            raise _invalid("principals", body["principals"])
        changes = []
        for item in body["principals"]:
            item = item if isinstance(item, dict) else {}
            if not item.get("principal_type") or not item.get("principal_id"):
                raise _missing(*[n for n in ("principal_type", "principal_id") if not item.get(n)])
            changes.append(
                validated(
                    body["operation"],
                    item["principal_type"],
                    item["principal_id"],
                    role,
                    item.get("scope_id"),
                    item.get("policy_parameters"),
                )
            )
        for one in changes:
            change(body["operation"], one)
        return Response(status_code=200)

    async def public_catalog(request: Request) -> JSONResponse:
        return JSONResponse(catalog())

    # emulator control: a signed notification, as Cloudinary's webhooks send them (research §5.2) -----
    async def notify(request: Request) -> JSONResponse:
        """POST {"url", "cloud_name"?, "payload"? | "notification_type"?, "algorithm"?: sha1|sha256}."""
        body = await _json(request, _admin("Invalid JSON body", 400))
        algorithm = body.get("algorithm", "sha1")
        if not isinstance(body.get("url"), str) or algorithm not in ("sha1", "sha256"):
            raise _admin("url is required; algorithm is sha1 or sha256", 400)
        cloud_name = body.get("cloud_name", "production")
        env = next((e for e in state.environments.values() if e["cloud_name"] == cloud_name), None)
        key = next((k for k in state.access_keys.get(env["id"], []) if k["enabled"]), None) if env else None
        if key is None:
            raise _admin(f"No enabled key for cloud_name {cloud_name}", 404)
        payload = dict(body.get("payload") or {"notification_type": body.get("notification_type", "upload")})
        # UNCONFIRMED beyond the field names: triggered_by.id is the acting API key for API calls.
        payload.setdefault(
            "notification_context",
            {
                "triggered_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "triggered_by": {"source": "api", "id": key["api_key"]},
            },
        )
        payload.setdefault("signature_key", key["api_key"])
        raw, timestamp = json.dumps(payload).encode(), str(_epoch())
        # The signature is the hex digest of body + timestamp + API secret (research §5.2).
        signature = hashlib.new(algorithm, raw + timestamp.encode() + key["api_secret"].encode()).hexdigest()
        headers = {"Content-Type": "application/json", "X-Cld-Timestamp": timestamp, "X-Cld-Signature": signature}
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                delivered = await client.post(body["url"], content=raw, headers=headers)
        except httpx.HTTPError as error:
            return JSONResponse({"error": {"message": f"delivery failed: {error!r}"}}, status_code=502)
        return JSONResponse(
            {
                "status": delivered.status_code,
                "timestamp": timestamp,
                "signature": signature,
                "algorithm": algorithm,
                "payload": payload,
            }
        )

    # wiring ---------------------------------------------------------------------------------------
    def endpoint(
        handler: Callable[[Request], Awaitable[Response]], refuse_legacy: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        async def wrapped(request: Request) -> Response:
            try:
                if refuse_legacy:
                    legacy_refusal()
                prune()
                return await handler(request)
            except _Problem as problem:
                return JSONResponse(problem.body, status_code=problem.status)

        return wrapped

    cloud, v2 = "/v1_1/{cloud_name}", "/v2/accounts/{account_id}/permissions"
    from .cloudinary_policies import handlers  # it reads this module's error helpers

    custom = handlers(state)
    return [
        Route(f"{v2}/policies/custom", endpoint(custom["list"], True), methods=["GET"]),
        Route(f"{v2}/policies/custom", endpoint(custom["create"], True), methods=["POST"]),
        Route(f"{v2}/policies/custom/{{policy_id}}", endpoint(custom["one"], True), methods=["GET"]),
        Route(f"{v2}/policies/custom/{{policy_id}}", endpoint(custom["update"], True), methods=["PUT"]),
        Route(f"{v2}/policies/custom/{{policy_id}}", endpoint(custom["remove"], True), methods=["DELETE"]),
        Route(f"{cloud}/folders", endpoint(root_folders), methods=["GET"]),
        Route(f"{cloud}/folders/by_path", endpoint(folder_by_path), methods=["PUT"]),
        Route(f"{cloud}/folders/by_id", endpoint(folder_by_id), methods=["PUT"]),
        Route(f"{cloud}/folders/{{path:path}}", endpoint(subfolders), methods=["GET"]),
        Route(f"{cloud}/folders/{{path:path}}", endpoint(create_folder), methods=["POST"]),
        Route(f"{cloud}/folders/{{path:path}}", endpoint(delete_folder), methods=["DELETE"]),
        Route(f"{cloud}/folder_operations/invite/{{folder_id}}", endpoint(folder_roles), methods=["GET"]),
        Route(f"{cloud}/folder_operations/invite/{{folder_id}}", endpoint(assign_folder_roles), methods=["POST"]),
        Route(f"{PUBLIC_PREFIX}catalog", endpoint(public_catalog), methods=["GET"]),
        Route(f"{v2}/roles", endpoint(list_roles, True), methods=["GET"]),
        Route(f"{v2}/roles", endpoint(create_role, True), methods=["POST"]),
        Route(f"{v2}/roles/{{role_id}}", endpoint(get_role, True), methods=["GET"]),
        Route(f"{v2}/roles/{{role_id}}/principals", endpoint(role_principals, True), methods=["GET"]),
        Route(f"{v2}/roles/{{role_id}}/principals", endpoint(update_role_principals, True), methods=["PUT"]),
        Route(f"{v2}/principal_roles", endpoint(principal_roles, True), methods=["GET"]),
        Route(f"{v2}/principal_roles", endpoint(update_principal_roles, True), methods=["PUT"]),
        Route(f"{v2}/principal_roles/inspect", endpoint(inspect, True), methods=["GET"]),
        Route("/_emulator/notify", endpoint(notify), methods=["POST"]),
    ]


def snapshot(state: CloudinaryState, switches: CloudinarySwitches) -> dict[str, Any]:
    """What /_emulator/state adds: environments with their keys, folders, and grants."""
    _prune(state)
    cloud_names = {e["id"]: e["cloud_name"] for e in state.environments.values()}
    grants: dict[str, dict[str, list[str]]] = {}  # "type:id" → folder external id → role ids
    for a in state.role_assignments:
        folder_id = (a["policy_parameters"] or {}).get("folder_id")
        if folder_id:
            grants.setdefault(f"{a['principal_type']}:{a['principal_id']}", {}).setdefault(folder_id, []).append(
                a["role_id"]
            )
    return {
        "permission_model": switches.permission_model,
        "product_environments": [
            {
                **{k: e[k] for k in ("id", "name", "cloud_name", "enabled")},
                "access_keys": [
                    {k: key[k] for k in ("name", "api_key", "api_secret", "enabled")}
                    for key in state.access_keys[e["id"]]
                ],
            }
            for e in state.environments.values()
        ],
        "folders": [
            {
                **{k: f[k] for k in ("external_id", "name", "path", "created_at")},
                "cloud_name": cloud_names.get(f["environment_id"]),
            }
            for f in state.folders.values()
        ],
        "grants": grants,
        "role_assignments": state.role_assignments,
        "custom_roles": list(state.custom_roles.values()),
    }

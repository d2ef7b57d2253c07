"""Cloudinary folder access for groups: folders by path, and folder roles through the Admin API's
`folder_operations/invite` or the Permissions API's principal roles (research/cloudinary.md §3).

Which one an account takes depends on its permission model (§3.1): accounts on "Roles and
Permissions" answer the Permissions API; legacy accounts share folders only in the Console (no
public API). The model is detected once with one cheap read, and a mismatch with the policy is a
`Forbidden` naming the setting, so the operator sees it at once instead of a slow trickle of 403s.

Folder roles are read back from the invite listing (direct grants only: `inherited` ones belong
to an ancestor folder and are managed there).
"""

from __future__ import annotations

from typing import Any

import httpx

from ..audit.context import intent, label, remember
from .base import Conflict, Forbidden, Gone
from .http import RateLimiter, TargetHttp


class CloudinaryFolderAccess:
    def __init__(
        self,
        base_url: str,
        account_id: str,
        account_auth: tuple[str, str],
        cloud_name: str,
        admin_auth: tuple[str, str],
        account_limiter: RateLimiter,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        root = base_url.rstrip("/")
        self.cloud_name = cloud_name
        # The Admin API has its own quota per product environment (research §1.2); the Permissions
        # and Provisioning APIs share the account's, so they share the translator's limiter.
        self.admin = TargetHttp(
            "cloudinary", f"{root}/v1_1/{cloud_name}", rate=account_limiter.rate, auth=admin_auth, transport=transport
        )
        self.permissions = TargetHttp(
            "cloudinary",
            f"{root}/v2/accounts/{account_id}/permissions",
            rate=0,
            auth=account_auth,
            transport=transport,
            limiter=account_limiter,
        )
        self.provisioning = TargetHttp(
            "cloudinary",
            f"{root}/v1_1/provisioning/accounts/{account_id}",
            rate=0,
            auth=account_auth,
            transport=transport,
            limiter=account_limiter,
        )
        self.model: str | None = None  # "roles" | "invite", once detected
        self._environment_id: str | None = None

    async def close(self) -> None:
        for http in (self.admin, self.permissions, self.provisioning):
            await http.close()

    async def detect_model(self, wanted: str) -> str:
        """`roles` when the Permissions API answers, else `invite`; `wanted` (auto|roles|invite) must
        agree with what the account answers."""
        if self.model is not None:
            return self.model
        try:
            await self.permissions.call("GET", "/roles", params={"permission_type": "global"})
            found = "roles"
        except Forbidden as error:
            if error.status == 401:
                raise  # wrong credentials, not a permission model
            found = "invite"
        if wanted == "roles" and found != "roles":
            raise Forbidden(
                "cloudinary: access.cloudinary.permission_model is 'roles' but the account does not "
                "answer the Permissions API (it is on legacy permissions: Console → Settings → Role "
                "Management is missing); folder roles cannot be applied"
            )
        self.model = "invite" if wanted == "invite" else found
        return self.model

    async def ensure_folder(self, path: str, create: bool) -> str | None:
        """The folder's external id; created (with its ancestors) when missing and `create`."""
        found = await self._ensure_folder(path, create)
        remember("cloudinary", found, path)
        return found

    async def _ensure_folder(self, path: str, create: bool) -> str | None:
        try:
            with intent(f"look up folder {path}"):
                found = await self.admin.call("PUT", "/folders/by_path", json={"path": path})
            return str(found.json()["external_id"])
        except Gone:
            if not create:
                return None
        try:
            with intent(f"create folder {path}"):
                created = await self.admin.call("POST", f"/folders/{path}", idempotent=True)
            return str(created.json()["external_id"])
        except Conflict:  # created meanwhile (another replica, or a lost answer): read it
            with intent(f"look up folder {path}"):
                return str(
                    (await self.admin.call("PUT", "/folders/by_path", json={"path": path})).json()["external_id"]
                )

    async def folder_grants(self, folder_id: str) -> dict[tuple[str, str], set[str]]:
        """(principal type, id) → role ids granted on this folder itself (not inherited)."""
        try:
            with intent(f"read the grants on {label('cloudinary', folder_id, 'folder')}"):
                body = (await self.admin.call("GET", f"/folder_operations/invite/{folder_id}")).json()
        except Forbidden as error:
            raise self._model_error(error) from None
        grants: dict[tuple[str, str], set[str]] = {}
        for item in body.get("shared_with", []):
            direct = {r["id"] for r in item.get("roles", []) if not r.get("inherited")}
            if item.get("folder_id", folder_id) == folder_id and direct:
                grants.setdefault((item["type"], item["id"]), set()).update(direct)
        return grants

    async def change(self, operation: str, folder_id: str, principal: tuple[str, str], roles: list[str]) -> None:
        """Add or remove folder roles for one principal, through the model the account uses."""
        if not roles:
            return
        with intent(_grant_words(operation, principal, roles, label("cloudinary", folder_id, "folder"))):
            await self._change(operation, folder_id, principal, roles)

    async def _change(self, operation: str, folder_id: str, principal: tuple[str, str], roles: list[str]) -> None:
        kind, principal_id = principal
        try:
            if self.model == "roles":
                scope = await self._scope_id()
                await self.permissions.call(
                    "PUT",
                    "/principal_roles",
                    idempotent=True,
                    json={
                        "operation": operation,
                        "principal": {"type": kind, "id": principal_id},
                        "roles": [
                            {"id": r, "scope_id": scope, "policy_parameters": {"folder_id": folder_id}} for r in roles
                        ],
                    },
                )
            else:
                for start in range(0, len(roles), 10):  # at most 10 roles per call (research §3.2)
                    await self.admin.call(
                        "POST",
                        f"/folder_operations/invite/{folder_id}",
                        idempotent=True,
                        json={
                            "principal": {"type": kind, "id": principal_id},
                            "operation": operation,
                            "roles": roles[start : start + 10],
                        },
                    )
        except Forbidden as error:
            raise self._model_error(error) from None

    async def change_collection(self, operation: str, collection_id: str, group_id: str, roles: list[str]) -> None:
        """Collection roles exist only in the Permissions API, by collection id (research §3.5)."""
        if not roles:
            return
        if self.model != "roles":
            raise Forbidden(
                "cloudinary: access.cloudinary.collections needs the Permissions API (Roles and "
                "Permissions); this account answers only folder_operations/invite"
            )
        scope = await self._scope_id()
        with intent(_grant_words(operation, ("group", group_id), roles, f"collection {collection_id}")):
            await self.permissions.call(
                "PUT",
                "/principal_roles",
                idempotent=True,
                json={
                    "operation": operation,
                    "principal": {"type": "group", "id": group_id},
                    "roles": [
                        {"id": r, "scope_id": scope, "policy_parameters": {"collection_id": collection_id}}
                        for r in roles
                    ],
                },
            )

    # agency keys (research §1.7: product environment access keys) ---------------------------------
    async def create_key(self, name: str) -> str:
        """A new enabled key; only its public part is returned (the secret is dropped here)."""
        scope = await self._scope_id()
        with intent(f"create the API key {name!r}"):
            created = await self.provisioning.call(
                "POST", f"/sub_accounts/{scope}/access_keys", json={"name": name, "enabled": True}
            )
        api_key = str(created.json()["api_key"])
        remember("cloudinary", api_key, f"API key {name!r}")  # the key is an identifier, not the secret
        return api_key

    async def set_key_enabled(self, api_key: str, enabled: bool) -> bool:
        """False when the key is gone (deleted in the Console): a new one is made next time."""
        scope = await self._scope_id()
        try:
            with intent(f"{'enable' if enabled else 'disable'} {label('cloudinary', api_key, 'API key')}"):
                await self.provisioning.call(
                    "PUT", f"/sub_accounts/{scope}/access_keys/{api_key}", json={"enabled": enabled}
                )
            return True
        except Gone:
            return False

    # reviewers: a global role carrying the moderation policy (research §4.1) -----------------------
    MODERATOR_ROLE = "scim_bridge_moderator"

    async def ensure_moderator_role(self) -> str:
        try:
            await self.permissions.call("GET", f"/roles/{self.MODERATOR_ROLE}")
        except Gone:
            try:
                await self.permissions.call(
                    "POST",
                    "/roles",
                    expect=(201,),
                    json={
                        "id": self.MODERATOR_ROLE,
                        "name": "Reviewers (scim-bridge)",
                        "permission_type": "global",
                        "scope_type": "prodenv",
                        "description": "Approve and reject assets in moderation; "
                        "given by scim-bridge to the policy's reviewer groups",
                        "system_policy_ids": ["cld::policy::global::assets::moderate"],
                    },
                )
            except Conflict:
                pass  # created meanwhile
        return self.MODERATOR_ROLE

    # folder-scoped reviewers: Cedar custom policies (research §3.3, §4.1) -----------------------------
    async def custom_policies(self) -> list[dict[str, Any]]:
        """The product environment's custom policies (one page: the emulator's; paging UNCONFIRMED)."""
        scope = await self._scope_id()
        with intent("read the custom policies"):
            found = await self.permissions.call(
                "GET", "/policies/custom", params={"scope_type": "prodenv", "scope_id": scope}
            )
        return list(found.json().get("data", []))

    async def create_policy(self, name: str, statement: str, description: str) -> str:
        scope = await self._scope_id()
        with intent(f"create the custom policy {name!r}"):
            created = await self.permissions.call(
                "POST",
                "/policies/custom",
                expect=(201,),
                json={
                    "name": name,
                    "policy_statement": statement,
                    "description": description,
                    "scope_type": "prodenv",
                    "scope_id": scope,
                    "enabled": True,
                },
            )
        return str(created.json()["data"]["id"])

    async def delete_policy(self, policy_id: str, name: str) -> None:
        try:
            with intent(f"delete the custom policy {name!r}"):
                await self.permissions.call("DELETE", f"/policies/custom/{policy_id}", expect=(204,))
        except Gone:
            pass  # deleted meanwhile

    async def global_roles(self, group_id: str) -> set[str]:
        body = (
            await self.permissions.call(
                "GET",
                "/principal_roles",
                params={"principal_type": "group", "principal_id": group_id, "permission_type": "global"},
            )
        ).json()
        return {str(r["id"]) for r in body.get("data", [])}

    async def change_global(self, operation: str, group_id: str, role_id: str) -> None:
        scope = await self._scope_id()
        with intent(_grant_words(operation, ("group", group_id), [role_id], "the product environment")):
            await self._change_global(operation, group_id, role_id, scope)

    async def _change_global(self, operation: str, group_id: str, role_id: str, scope: str) -> None:
        await self.permissions.call(
            "PUT",
            "/principal_roles",
            idempotent=True,
            json={
                "operation": operation,
                "principal": {"type": "group", "id": group_id},
                "roles": [{"id": role_id, "scope_id": scope}],
            },
        )

    async def _scope_id(self) -> str:
        """The product environment's id (scope_id in the Permissions API, inferred: research §3.3)."""
        if self._environment_id is None:
            environments = (await self.provisioning.call("GET", "/sub_accounts")).json().get("sub_accounts", [])
            match = next((e for e in environments if e.get("cloud_name") == self.cloud_name), None)
            if match is None:
                raise Gone(
                    f"cloudinary: no product environment with cloud name {self.cloud_name!r} "
                    "(access.cloudinary.product_environment)"
                )
            self._environment_id = str(match["id"])
        return self._environment_id

    def _model_error(self, error: Forbidden) -> Forbidden:
        return Forbidden(
            f"cloudinary: folder roles refused ({error}); the account may be on legacy permissions, "
            "which have no API for folder sharing: check access.cloudinary.permission_model and "
            "the Console's Settings → Role Management",
            error.status,
        )


def _grant_words(operation: str, principal: tuple[str, str], roles: list[str], where: str) -> str:
    """ "grant Marketing EMEA contributor on campaigns/emea", "revoke … from …"."""
    kind, principal_id = principal
    who = label("cloudinary", principal_id, "API key" if kind == "apiKey" else kind)
    names = ", ".join(r.rsplit("::", 1)[-1] for r in roles)
    return f"grant {who} {names} on {where}" if operation == "add" else f"revoke {names} on {where} from {who}"


def principal_key(kind: str, principal_id: str) -> str:
    return f"{kind}:{principal_id}"


def as_principal(key: str) -> tuple[str, str]:
    kind, _, principal_id = key.partition(":")
    return kind, principal_id


def grants_view(grants: dict[tuple[str, str], set[str]]) -> dict[str, Any]:
    return {principal_key(*k): sorted(v) for k, v in grants.items()}

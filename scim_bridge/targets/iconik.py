"""iconik translator: the Users service's users, groups and membership.

Facts from research/iconik.md §1–§3 and §10: `App-ID` + `Auth-Token` headers; paths end with
"/"; create 201, delete 204, member add 201, member remove 200; users have no external id (the
bridge keeps the ID map and adopts by email), groups carry `external_id` (the SCIM group id);
`status: INACTIVE` disables; deactivating the token's own user locks the bridge out, so that
account is never disabled or deleted. Rate: ≈50 requests/s per the only (secondary) source, so
45/s by default, and a 429 pauses every call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from ..audit.context import intent, label, remember
from .adoption import AdoptionIndex, create_or_adopt
from .base import EnsuredUser, Gone, Target, TargetAccount, TargetUser
from .capabilities import ApprovalRequests, Capability, CollectionAcls, ProjectTeams
from .http import TargetHttp, find_or_create
from .iconik_access import IconikAccess
from .iconik_approvals import IconikApprovals
from .settings import TargetSettings

API = "/API/users/v1"


@dataclass(frozen=True)
class IconikConfig:
    base_url: str  # e.g. https://app.iconik.io (or the emulator)
    app_id: str
    auth_token: str
    rate: float = 45.0
    service_account_email: str | None = None


class IconikTarget(Target):
    name = "iconik"
    memberships_on_create = True  # UserCreateSchema takes `groups` (research/iconik.md §2)
    listing_carries_groups = True  # every listed user carries its `groups`
    offers = frozenset({Capability.LAST_LOGIN, Capability.ACTIVITY})  # last_web_login (§7.1), webhooks
    access: IconikAccess | None = None  # when the policy governs collections, workspaces or projects
    approval_client: IconikApprovals | None = None  # when the policy has reviewer rules

    def __init__(self, config: IconikConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.http = TargetHttp(
            "iconik",
            config.base_url.rstrip("/") + API,
            rate=config.rate,
            transport=transport,
            headers={"App-ID": config.app_id, "Auth-Token": config.auth_token, "Accept": "application/json"},
        )
        self._own_id: str | None = None
        self._asked_current = False
        self.adoption = AdoptionIndex(self._all_emails)

    async def close(self) -> None:
        await self.adoption.close()
        await self.http.close()
        if self.access is not None:
            await self.access.close()
        if self.approval_client is not None:
            await self.approval_client.close()

    @property
    def service_account_email(self) -> str | None:
        return self.config.service_account_email

    @property
    def acls(self) -> CollectionAcls | None:
        return self.access

    @property
    def projects(self) -> ProjectTeams | None:
        return self.access  # projects live in the assets service, like collections (research §5)

    @property
    def approvals(self) -> ApprovalRequests | None:
        return self.approval_client

    async def _token_user_id(self) -> str | None:
        """The user the token runs as, never disabled or deleted: deactivating it locks the bridge
        out (research/iconik.md §1.1). The configured `service_account_email` names it; without
        one, GET /users/current/ (the token's user, §2.1) does, so a forgotten setting cannot lock
        the bridge out."""
        if self._own_id is None and self.config.service_account_email:
            found = await self._find_by_email(self.config.service_account_email)
            self._own_id = found["id"] if found else None  # not there yet: asked again next time
        elif self._own_id is None and not self._asked_current:
            try:
                with intent("read the token's own user"):
                    self._own_id = str((await self.http.call("GET", "/users/current/")).json()["id"])
            except Gone:
                pass  # an account without the endpoint: nothing more to ask
            self._asked_current = True
        return self._own_id

    async def find_account(self, email: str) -> TargetAccount | None:
        found = await self._find_by_email(email)
        if found is None:
            return None
        active = found.get("status") == "ACTIVE"
        return TargetAccount(found["id"], found.get("email") or "", found.get("type", ""), active)

    async def _find_by_email(self, email: str) -> dict[str, Any] | None:
        with intent(f"look up {email}"):
            page = (await self.http.call("GET", "/users/", params={"email": email, "per_page": 10})).json()
        return next((u for u in page.get("objects", []) if (u.get("email") or "").lower() == email.lower()), None)

    async def ensure_user(self, user: TargetUser, known_id: str | None, groups: tuple[str, ...] = ()) -> EnsuredUser:
        fields: dict[str, Any] = {
            "email": user.email,
            "first_name": user.first_name or user.display_name or user.email,
            "last_name": user.last_name,
            "type": user.role,
            "status": "ACTIVE" if user.enabled else "INACTIVE",
        }
        own_id = await self._token_user_id()
        if known_id:
            remember(self.name, known_id, user.email)
            try:
                with intent(_account_words(user, known_id != own_id)):
                    await self.http.call(
                        "PATCH", f"/users/{known_id}/", json=_for_own_account(fields) if known_id == own_id else fields
                    )
                return EnsuredUser(known_id)
            except Gone:
                self.adoption.forget(user.email)

        # UserCreateSchema takes `groups` (research/iconik.md §2): a joiner is created in its
        # groups in one call instead of one call per group.
        async def create() -> dict[str, Any]:
            body = {**fields, "groups": list(groups)} if groups else fields
            joining = f" in {', '.join(label(self.name, g, 'group') for g in groups)}" if groups else ""
            with intent(f"create {user.email} ({user.role}{'' if user.enabled else ', inactive'}){joining}"):
                return dict((await self.http.call("POST", "/users/", json=body, expect=(201,))).json())

        async def adopt(target_id: str) -> None:  # never touches the adopted account's own groups
            with intent(f"adopt {user.email}: {_account_words(user, target_id != own_id)}"):
                await self.http.call(
                    "PATCH", f"/users/{target_id}/", json=_for_own_account(fields) if target_id == own_id else fields
                )

        # Lists are search-index backed (research/iconik.md §2.1): read-after-write by id, adopt by email.
        target_id, created = await create_or_adopt(
            self.adoption, user.email, lambda: self._find_by_email(user.email), create, adopt
        )
        remember(self.name, target_id, user.email)
        return EnsuredUser(target_id, frozenset(groups) if created else frozenset(), created)

    async def _all_emails(self) -> dict[str, str]:
        return {a.email.lower(): a.id for a in await self.list_users() if a.email}

    async def delete_user(self, target_id: str) -> None:
        if target_id == await self._token_user_id():
            return
        try:
            with intent(f"delete {label(self.name, target_id, 'account')}"):
                await self.http.call("DELETE", f"/users/{target_id}/", expect=(204,))
        except Gone:
            pass

    async def ensure_group(self, name: str, known_id: str | None, external_id: str) -> str:
        if known_id:
            try:
                with intent(f"read group {name}"):
                    current = (await self.http.call("GET", f"/groups/{known_id}/")).json()
                if current.get("name") != name or current.get("external_id") != external_id:
                    with intent(f"rename group {current.get('name')} to {name}"):
                        await self.http.call(
                            "PATCH", f"/groups/{known_id}/", json={"name": name, "external_id": external_id}
                        )
                remember(self.name, known_id, name)
                return known_id
            except Gone:
                pass

        async def find() -> dict[str, Any] | None:
            with intent(f"look up group {name}"):
                page = (await self.http.call("GET", "/groups/", params={"name": name, "per_page": 100})).json()
            return next(
                (g for g in page.get("objects", []) if g.get("external_id") == external_id or g["name"] == name), None
            )

        async def create() -> dict[str, Any]:
            body = {"name": name, "external_id": external_id}
            with intent(f"create group {name}"):
                return dict((await self.http.call("POST", "/groups/", json=body, expect=(201,))).json())

        found, created = await find_or_create(find, create)
        if not created and found.get("external_id") != external_id:
            with intent(f"adopt group {name}"):
                await self.http.call("PATCH", f"/groups/{found['id']}/", json={"external_id": external_id})
        remember(self.name, found["id"], name)
        return str(found["id"])

    async def delete_group(self, target_id: str) -> None:
        try:
            with intent(f"delete {label(self.name, target_id, 'group')}"):
                await self.http.call("DELETE", f"/groups/{target_id}/", expect=(204,))
        except Gone:
            pass

    async def add_member(self, group_id: str, user_id: str) -> None:
        with intent(f"add {label(self.name, user_id, 'account')} to {label(self.name, group_id, 'group')}"):
            await self.http.call("POST", f"/groups/{group_id}/users/{user_id}/", expect=(201,), idempotent=True)

    async def remove_member(self, group_id: str, user_id: str) -> None:
        try:
            with intent(f"remove {label(self.name, user_id, 'account')} from {label(self.name, group_id, 'group')}"):
                await self.http.call("DELETE", f"/groups/{group_id}/users/{user_id}/")
        except Gone:
            pass

    async def disable_user(self, target_id: str, email: str) -> None:
        if target_id != await self._token_user_id():  # never lock the bridge out
            try:
                with intent(f"disable {email}"):
                    await self.http.call("PATCH", f"/users/{target_id}/", json={"status": "INACTIVE"})
            except Gone:
                pass  # deleted meanwhile: nothing is left to reach anything

    async def probe(self) -> None:
        """One page of one user: a single attempt (no in-place retry), so a quarantined target sees
        exactly one call per probe."""
        await self.http.call("GET", "/users/", params={"page": 1, "per_page": 1}, idempotent=False)

    async def list_users(self) -> list[TargetAccount]:
        accounts, page = [], 1
        while True:
            with intent(f"list accounts (page {page})"):
                body = (await self.http.call("GET", "/users/", params={"page": page, "per_page": 100})).json()
            for u in body.get("objects", []):
                remember(self.name, u["id"], u.get("email"))
            accounts += [
                TargetAccount(
                    u["id"],
                    u.get("email") or "",
                    u.get("type", ""),
                    u.get("status") == "ACTIVE",
                    list(u.get("groups") or []),
                    u.get("last_web_login"),
                )
                for u in body.get("objects", [])
            ]
            if not body.get("next_url"):
                return accounts
            page += 1


def _account_words(user: TargetUser, governs_state: bool) -> str:
    """The intent of writing an account; a disable is said as such (what a reviewer looks for)."""
    if not governs_state:  # the token's own user: never disabled nor re-typed
        return f"update {user.email}"
    return f"disable {user.email}" if not user.enabled else f"update {user.email} ({user.role}, active)"


def _for_own_account(fields: dict[str, Any]) -> dict[str, Any]:
    """The token's own user is never deactivated (that locks the bridge out, §1.1) nor given
    another type (roles can only restrict the user type, §3: a POWER token made BROWSE_ONLY loses
    the rights the bridge acts with)."""
    return {k: v for k, v in fields.items() if k not in ("status", "type")}


def build(settings: TargetSettings) -> IconikTarget:
    """The translator as the policy describes it (the registry's factory): the Users service always,
    the assets and ACL clients when `access.iconik` governs collections, workspaces or projects."""
    creds = settings.credentials
    target = IconikTarget(
        IconikConfig(
            settings.base_url, creds["app_id"], creds["auth_token"], settings.rate, settings.service_account_email
        ),
        settings.transport,
    )
    access = settings.access
    if (
        access.get("collections")
        or access.get("workspaces")
        or access.get("group_roles")  # role assignments go through the same client (iconik_access.py)
        or (access.get("projects") or {}).get("groups")
    ):
        target.access = IconikAccess(
            settings.base_url,
            {"App-ID": creds["app_id"], "Auth-Token": creds["auth_token"], "Accept": "application/json"},
            target.http.limiter,
            settings.transport,
        )
    if settings.reviewer_routing:
        target.approval_client = IconikApprovals(
            settings.base_url,
            {"App-ID": creds["app_id"], "Auth-Token": creds["auth_token"], "Accept": "application/json"},
            target.http.limiter,
            settings.transport,
        )
    return target

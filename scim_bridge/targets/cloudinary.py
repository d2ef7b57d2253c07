"""Cloudinary translator: the Account (Provisioning) API's users, user groups and membership.

Facts from research/cloudinary.md §1: HTTP Basic with the account API key and secret; 200 on
success, creates included; users are unique by email (adopted, not duplicated); `enabled: false`
disables; groups are flat and have only a name. The rate limit of this API is undocumented
(§1.2): the client-side rate is a setting, and 420/429 pause every call until the reset time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from ..audit.context import intent, label, remember
from .adoption import AdoptionIndex, create_or_adopt
from .base import EnsuredUser, Gone, Target, TargetAccount, TargetUser
from .capabilities import AgencyKeys, Capability
from .cloudinary_access import CloudinaryFolderAccess
from .http import TargetHttp, find_or_create
from .settings import TargetConfigError, TargetSettings


@dataclass(frozen=True)
class CloudinaryConfig:
    base_url: str  # e.g. https://api.cloudinary.com (or the emulator)
    account_id: str
    key: str
    secret: str
    rate: float = 10.0  # requests/s; undocumented upstream, so chosen: 10/s (36,000/h)
    service_account_email: str | None = None  # the bridge's own login: never disabled or deleted


class CloudinaryTarget(Target):
    name = "cloudinary"
    memberships_on_create = False  # the create takes no groups (research/cloudinary.md §1.4)
    listing_carries_groups = False  # GET /users has no groups: one call per account or per group
    offers = frozenset({Capability.LAST_LOGIN, Capability.ACTIVITY})  # last_login (§5.2), notifications
    folders: CloudinaryFolderAccess | None = None  # when the policy governs folders, collections or agency keys

    def __init__(self, config: CloudinaryConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.http = TargetHttp(
            "cloudinary",
            f"{config.base_url.rstrip('/')}/v1_1/provisioning/accounts/{config.account_id}",
            rate=config.rate,
            auth=(config.key, config.secret),
            transport=transport,
        )
        self.adoption = AdoptionIndex(self._all_emails)

    async def close(self) -> None:
        await self.adoption.close()
        await self.http.close()
        if self.folders is not None:
            await self.folders.close()

    @property
    def service_account_email(self) -> str | None:
        return self.config.service_account_email

    @property
    def agency_keys(self) -> AgencyKeys | None:
        return self.folders  # agency keys are Admin API keys of the governed product environment

    def _protected(self, email: str) -> bool:
        own = self.config.service_account_email or ""
        return bool(own) and email.lower() == own.lower()

    async def ensure_user(self, user: TargetUser, known_id: str | None, groups: tuple[str, ...] = ()) -> EnsuredUser:
        # Cloudinary's create takes no groups (research/cloudinary.md §1.4): `groups` is not used.
        fields = {"name": user.display_name, "email": user.email, "role": user.role, "enabled": user.enabled}
        if self._protected(user.email):
            # never disable nor re-role the account the bridge itself uses (an admin demoted to a
            # media library user would lose the rights the bridge acts with)
            fields.pop("enabled")
            fields.pop("role")
        words = _account_words(user, "enabled" in fields)
        if known_id:
            remember(self.name, known_id, user.email)
            try:
                with intent(words):
                    await self.http.call("PUT", f"/users/{known_id}", json=fields)
                return EnsuredUser(known_id)
            except Gone:
                self.adoption.forget(user.email)  # deleted by hand: create (or adopt) again

        async def create() -> dict[str, Any]:
            with intent(f"create {user.email} ({user.role}{'' if user.enabled else ', disabled'})"):
                return dict((await self.http.call("POST", "/users", json=fields)).json())

        async def adopt(target_id: str) -> None:  # then converge its fields
            with intent(f"adopt {user.email}: {words}"):
                await self.http.call("PUT", f"/users/{target_id}", json=fields)

        with intent(f"look up {user.email}"):
            target_id, created = await create_or_adopt(
                self.adoption, user.email, lambda: self._find_by_email(user.email), create, adopt
            )
        remember(self.name, target_id, user.email)
        return EnsuredUser(target_id, created=created)

    async def _all_emails(self) -> dict[str, str]:
        return {a.email.lower(): a.id for a in await self._list_accounts()}

    async def find_account(self, email: str) -> TargetAccount | None:
        found = await self._find_by_email(email)
        if found is None:
            return None
        return TargetAccount(found["id"], found["email"], found.get("role", ""), bool(found.get("enabled")))

    async def _find_by_email(self, email: str) -> dict[str, Any] | None:
        with intent(f"look up {email}"):
            existing = await self.http.call("GET", "/users", params={"emails": email})
        return next((u for u in existing.json().get("users", []) if u["email"].lower() == email.lower()), None)

    async def delete_user(self, target_id: str) -> None:
        try:
            with intent(f"read {label(self.name, target_id, 'account')} before deleting it"):
                current = await self.http.call("GET", f"/users/{target_id}")
            email = current.json().get("email", "")
            if self._protected(email):
                return
            with intent(f"delete {email or label(self.name, target_id, 'account')}"):
                await self.http.call("DELETE", f"/users/{target_id}")
        except Gone:
            pass

    async def ensure_group(self, name: str, known_id: str | None, external_id: str) -> str:
        # Cloudinary groups carry only a name (research/cloudinary.md §1.5): external_id unused.
        if known_id:
            try:
                with intent(f"read group {name}"):
                    current = await self.http.call("GET", f"/user_groups/{known_id}")
                old = current.json().get("name")
                if old != name:
                    with intent(f"rename group {old} to {name}"):
                        await self.http.call("PUT", f"/user_groups/{known_id}", json={"name": name})
                remember(self.name, known_id, name)
                return known_id
            except Gone:
                pass

        async def find() -> dict[str, Any] | None:
            with intent(f"look up group {name}"):
                groups = (await self.http.call("GET", "/user_groups")).json().get("user_groups", [])
            return next((g for g in groups if g["name"].lower() == name.lower()), None)

        async def create() -> dict[str, Any]:
            with intent(f"create group {name}"):
                return dict((await self.http.call("POST", "/user_groups", json={"name": name})).json())

        group_id = str((await find_or_create(find, create))[0]["id"])
        remember(self.name, group_id, name)
        return group_id

    async def delete_group(self, target_id: str) -> None:
        try:
            with intent(f"delete {label(self.name, target_id, 'group')}"):
                await self.http.call("DELETE", f"/user_groups/{target_id}")
        except Gone:
            pass

    async def add_member(self, group_id: str, user_id: str) -> None:
        with intent(f"add {label(self.name, user_id, 'account')} to {label(self.name, group_id, 'group')}"):
            await self.http.call("POST", f"/user_groups/{group_id}/users/{user_id}", idempotent=True)

    async def remove_member(self, group_id: str, user_id: str) -> None:
        try:
            with intent(f"remove {label(self.name, user_id, 'account')} from {label(self.name, group_id, 'group')}"):
                await self.http.call("DELETE", f"/user_groups/{group_id}/users/{user_id}")
        except Gone:
            pass

    async def _list_accounts(self) -> list[TargetAccount]:
        # GET /users pages with page/page_size and signals no end (research/cloudinary.md §1.4,
        # UNCONFIRMED how the real API ends a listing): a short page is taken as the last one.
        accounts, page, size = [], 1, 100
        while True:
            with intent(f"list accounts (page {page})"):
                users = (await self.http.call("GET", "/users", params={"page": page, "page_size": size})).json()[
                    "users"
                ]
            for u in users:
                remember(self.name, u["id"], u["email"])
            accounts += [
                TargetAccount(
                    u["id"], u["email"], u.get("role", ""), bool(u.get("enabled")), last_login=u.get("last_login")
                )
                for u in users
            ]
            if len(users) < size:
                return accounts
            page += 1

    async def group_members(self, group_id: str) -> list[str]:
        """Ids of a group's members: one call, where the listing would need one per account."""
        try:
            return [
                str(u["id"]) for u in (await self.http.call("GET", f"/user_groups/{group_id}/users")).json()["users"]
            ]
        except Gone:
            return []

    async def disable_user(self, target_id: str, email: str) -> None:
        """Disable an account the directory does not know (an owned orphan); never the bridge's own."""
        if not self._protected(email):
            try:
                with intent(f"disable {email}"):
                    await self.http.call("PUT", f"/users/{target_id}", json={"enabled": False})
            except Gone:
                pass  # deleted meanwhile: nothing is left to reach anything

    async def probe(self) -> None:
        """One page of one user: a single attempt (no in-place retry), so a quarantined target sees
        exactly one call per probe."""
        await self.http.call("GET", "/users", params={"page": 1, "page_size": 1}, idempotent=False)

    async def list_accounts(self) -> list[TargetAccount]:
        """Every account without its groups: one call per page (last-login polling)."""
        return await self._list_accounts()

    async def list_users(self) -> list[TargetAccount]:
        accounts = await self._list_accounts()
        for account in accounts:
            groups = (await self.http.call("GET", f"/users/{account.id}/groups")).json()["groups"]
            account.groups = [g["id"] for g in groups]
        return accounts


def _account_words(user: TargetUser, governs_state: bool) -> str:
    """The intent of writing an account: a disable is said as such, since that is what a reviewer
    looks for; anything else is an update with the role and state it sets."""
    if not governs_state:  # the bridge's own account: its name only
        return f"update {user.email}"
    return f"disable {user.email}" if not user.enabled else f"update {user.email} ({user.role}, enabled)"


def build(settings: TargetSettings) -> CloudinaryTarget:
    """The translator as the policy describes it (the registry's factory): the Provisioning API
    always, the folder-access clients when `access.cloudinary` governs anything."""
    creds = settings.credentials
    target = CloudinaryTarget(
        CloudinaryConfig(
            settings.base_url,
            creds["account_id"],
            creds["key"],
            creds["secret"],
            settings.rate,
            settings.service_account_email,
        ),
        settings.transport,
    )
    access = settings.access
    if access.get("folders") or access.get("collections") or access.get("agency_keys"):
        environment = access.get("product_environment")
        if not environment or not creds.get("admin_key") or not creds.get("admin_secret"):
            raise TargetConfigError(
                "access.cloudinary.folders needs access.cloudinary.product_environment and the "
                "product environment's API key (admin_key, admin_secret in the credentials, or "
                "CLOUDINARY_ADMIN_API_KEY / CLOUDINARY_ADMIN_API_SECRET)"
            )
        target.folders = CloudinaryFolderAccess(
            settings.base_url,
            creds["account_id"],
            (creds["key"], creds["secret"]),
            str(environment),
            (creds["admin_key"], creds["admin_secret"]),
            target.http.limiter,
            settings.transport,
        )
    return target

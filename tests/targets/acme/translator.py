"""The translator of the made-up "Acme DAM" third target: only the core of targets/base.py
(accounts, groups, membership), every optional capability left at the ABC's default. Built by its
registry entry from a TargetSettings, like Cloudinary's and iconik's."""

from __future__ import annotations

from typing import Any

from scim_bridge.targets.base import EnsuredUser, Gone, Target, TargetAccount, TargetUser
from scim_bridge.targets.http import TargetHttp, find_or_create
from scim_bridge.targets.settings import TargetConfigError, TargetSettings


class AcmeTarget(Target):
    name = "acme"

    def __init__(self, settings: TargetSettings) -> None:
        token = settings.credentials.get("token")
        if not token:
            raise TargetConfigError("targets.acme: credentials need a token")
        self.http = TargetHttp(
            "acme",
            settings.base_url,
            rate=settings.rate,
            headers={"Authorization": f"Bearer {token}"},
            transport=settings.transport,
        )
        self._service = settings.service_account_email

    @property
    def service_account_email(self) -> str | None:
        return self._service

    async def close(self) -> None:
        await self.http.close()

    def _fields(self, user: TargetUser) -> dict[str, Any]:
        return {"email": user.email, "name": user.display_name, "role": user.role, "enabled": user.enabled}

    async def find_account(self, email: str) -> TargetAccount | None:
        found = (await self.http.call("GET", "/users", params={"email": email})).json()
        return _account(found[0]) if found else None

    async def ensure_user(self, user: TargetUser, known_id: str | None, groups: tuple[str, ...] = ()) -> EnsuredUser:
        fields = self._fields(user)
        if user.email.lower() == (self._service or "").lower():
            fields.pop("enabled")  # the service account is never disabled
        if known_id:
            try:
                await self.http.call("PUT", f"/users/{known_id}", json=fields)
                return EnsuredUser(known_id)
            except Gone:
                pass  # deleted by hand: adopt or create below

        async def create() -> str:
            return str((await self.http.call("POST", "/users", json=fields, expect=(201,))).json()["id"])

        async def find() -> str | None:
            account = await self.find_account(user.email)
            return account.id if account else None

        account_id, created = await find_or_create(find, create)
        if not created:
            await self.http.call("PUT", f"/users/{account_id}", json=fields)
        return EnsuredUser(account_id, created=created)

    async def disable_user(self, target_id: str, email: str) -> None:
        if email.lower() == (self._service or "").lower():
            return
        try:
            await self.http.call("PUT", f"/users/{target_id}", json={"enabled": False})
        except Gone:
            pass

    async def delete_user(self, target_id: str) -> None:
        try:
            await self.http.call("DELETE", f"/users/{target_id}", expect=(204,))
        except Gone:
            pass

    async def list_users(self) -> list[TargetAccount]:
        return [_account(u) for u in (await self.http.call("GET", "/users")).json()]

    async def ensure_group(self, name: str, known_id: str | None, external_id: str) -> str:
        if known_id:
            try:
                await self.http.call("PUT", f"/groups/{known_id}", json={"name": name})
                return known_id
            except Gone:
                pass

        async def find() -> str | None:
            found = (await self.http.call("GET", "/groups", params={"name": name})).json()
            return str(found[0]["id"]) if found else None

        async def create() -> str:
            return str((await self.http.call("POST", "/groups", json={"name": name}, expect=(201,))).json()["id"])

        group_id, _ = await find_or_create(find, create)
        return group_id

    async def delete_group(self, target_id: str) -> None:
        try:
            await self.http.call("DELETE", f"/groups/{target_id}", expect=(204,))
        except Gone:
            pass

    async def add_member(self, group_id: str, user_id: str) -> None:
        await self.http.call("PUT", f"/groups/{group_id}/members/{user_id}", expect=(204,))

    async def remove_member(self, group_id: str, user_id: str) -> None:
        try:
            await self.http.call("DELETE", f"/groups/{group_id}/members/{user_id}", expect=(204,))
        except Gone:
            pass

    async def group_members(self, group_id: str) -> list[str]:
        return [str(m) for m in (await self.http.call("GET", f"/groups/{group_id}/members")).json()]


def _account(user: dict[str, Any]) -> TargetAccount:
    return TargetAccount(user["id"], user["email"], user.get("role", ""), user.get("enabled", True), user["groups"])


def build(settings: TargetSettings) -> Target:
    return AcmeTarget(settings)

"""iconik access for groups and project teams: collections, group ACLs on them, and projects with
their members (research/iconik.md §4, §5).

ACLs are written one principal at a time (`PUT /API/acls/v1/groups/{group}/acl/collections/{id}/`
sets exactly that group's permissions), so the bridge never overwrites what others granted on
the same collection. Applying a grant to what a collection already holds uses the documented
content endpoint in APPEND mode; whether iconik propagates it to content added later is not
public (research §4.3, UNCONFIRMED), so the bridge re-applies it whenever it re-applies grants.
"""

from __future__ import annotations

from typing import Any

import httpx

from ..audit.context import intent, label, remember
from .base import Gone, Invalid
from .http import RateLimiter, TargetHttp


class IconikAccess:
    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        limiter: RateLimiter,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        root = base_url.rstrip("/")
        # One quota per application token (research §1.5): every client shares the translator's limiter.
        self.assets = TargetHttp(
            "iconik", f"{root}/API/assets/v1", rate=0, headers=headers, transport=transport, limiter=limiter
        )
        self.acls = TargetHttp(
            "iconik", f"{root}/API/acls/v1", rate=0, headers=headers, transport=transport, limiter=limiter
        )
        self.users = TargetHttp(
            "iconik", f"{root}/API/users/v1", rate=0, headers=headers, transport=transport, limiter=limiter
        )

    async def close(self) -> None:
        await self.assets.close()
        await self.acls.close()
        await self.users.close()

    # group roles (research §3.1: strings on the group; PATCH merges, so only `roles` is sent) -----
    async def group_roles(self, group_id: str) -> set[str]:
        return set((await self.users.call("GET", f"/groups/{group_id}/")).json().get("roles") or [])

    async def set_group_roles(self, group_id: str, roles: list[str]) -> None:
        await self.users.call("PATCH", f"/groups/{group_id}/", json={"roles": roles})

    # collections -------------------------------------------------------------------------------
    async def collection_exists(self, collection_id: str) -> bool:
        try:
            found = (await self.assets.call("GET", f"/collections/{collection_id}/")).json()
            return bool(found.get("status") != "DELETED")
        except Gone:
            return False

    async def find_collection(self, title: str, parent_id: str | None) -> str | None:
        """A live collection with this title under this parent (None: a root collection)."""
        page = 1
        while True:
            params: dict[str, Any] = {"page": page, "per_page": 100}
            if parent_id is None:
                params["is_root"] = "true"
            try:
                body = (await self.assets.call("GET", "/collections/", params=params)).json()
            except Gone:  # past the last page
                return None
            for collection in body.get("objects", []):
                if (
                    collection.get("title") == title
                    and collection.get("parent_id") == parent_id
                    and collection.get("status") != "DELETED"
                ):
                    remember("iconik", collection["id"], title)
                    return str(collection["id"])
            if page >= int(body.get("pages") or 1):
                return None
            page += 1

    async def descendant_collections(self, root_id: str) -> list[str]:
        """Every live collection below `root_id`, at any depth (read from each one's `parents`)."""
        found: list[str] = []
        page = 1
        while True:
            try:
                body = (await self.assets.call("GET", "/collections/", params={"page": page, "per_page": 100})).json()
            except Gone:  # past the last page
                return found
            for collection in body.get("objects", []):
                if root_id in (collection.get("parents") or []) and collection.get("status") != "DELETED":
                    found.append(str(collection["id"]))
            if page >= int(body.get("pages") or 1):
                return found
            page += 1

    async def create_collection(self, title: str, parent_id: str | None) -> str:
        body: dict[str, Any] = {"title": title}
        if parent_id:
            body["parent_id"] = parent_id
        under = f" under {label('iconik', parent_id, 'collection')}" if parent_id else ""
        with intent(f"create collection {title}{under}"):
            found = str((await self.assets.call("POST", "/collections/", json=body, expect=(201,))).json()["id"])
        remember("iconik", found, title)
        return found

    # group ACLs --------------------------------------------------------------------------------
    async def group_acls(self, collection_id: str) -> dict[str, set[str]]:
        """group id → permissions granted directly on the collection."""
        with intent(f"read the ACLs of {_collection(collection_id)}"):
            body = (await self.acls.call("GET", f"/acl/collections/{collection_id}/")).json()
        return {str(e["group_id"]): set(e.get("permissions") or []) for e in body.get("groups_acl", [])}

    async def user_acls(self, collection_id: str) -> dict[str, set[str]]:
        """user id → permissions granted to the account itself on the collection (never by the bridge)."""
        body = (await self.acls.call("GET", f"/acl/collections/{collection_id}/")).json()
        return {str(e["user_id"]): set(e.get("permissions") or []) for e in body.get("users_acl", [])}

    async def remove_user_acl(self, collection_id: str, user_id: str) -> None:
        try:
            await self.acls.call("DELETE", f"/users/{user_id}/acl/collections/{collection_id}/", expect=(204,))
        except Gone:
            pass  # already gone

    async def set_group_acl(self, collection_id: str, group_id: str, permissions: list[str]) -> None:
        with intent(f"grant {_group(group_id)} {', '.join(permissions)} on {_collection(collection_id)}"):
            await self.acls.call(
                "PUT",
                f"/groups/{group_id}/acl/collections/{collection_id}/",
                json={"permissions": permissions},
                expect=(200, 201),
            )

    async def remove_group_acl(self, collection_id: str, group_id: str) -> None:
        try:
            with intent(f"revoke every permission of {_group(group_id)} on {_collection(collection_id)}"):
                await self.acls.call("DELETE", f"/groups/{group_id}/acl/collections/{collection_id}/", expect=(204,))
        except Gone:
            pass  # already gone

    async def grant_contents(self, collection_id: str, group_id: str, permissions: list[str]) -> None:
        """Also grant on what the collection holds now (APPEND: nobody else's ACL is replaced)."""
        words = f"grant {_group(group_id)} {', '.join(permissions)} on the contents of {_collection(collection_id)}"
        with intent(words):
            await self._grant_contents(collection_id, group_id, permissions)

    async def _grant_contents(self, collection_id: str, group_id: str, permissions: list[str]) -> None:
        await self.acls.call(
            "PUT",
            "/acl/collections/content/",
            expect=(202,),
            json={
                "object_ids": [collection_id],
                "group_ids": [group_id],
                "permissions": permissions,
                "mode": "APPEND",
                "include_collections": True,
                "include_assets": True,
            },
        )

    # projects ----------------------------------------------------------------------------------
    async def ensure_project(self, name: str, known_id: str | None, parent_collection: str | None = None) -> str:
        with intent(f"ensure project {name}"):
            project_id = await self._ensure_project(name, known_id, parent_collection)
        remember("iconik", project_id, f"project {name}")
        return project_id

    async def _ensure_project(self, name: str, known_id: str | None, parent_collection: str | None) -> str:
        if known_id:
            try:
                current = (await self.assets.call("GET", f"/projects/{known_id}/")).json()
                if current.get("name") != name:
                    await self.assets.call("PATCH", f"/projects/{known_id}/", json={"name": name})
                # The project collection is what people see in iconik: it carries the project's name.
                # Checked even when the project already has it (a retry after a crash in between).
                await self._retitle(current.get("collection_id"), name)
                return known_id
            except Gone:
                pass
        existing = await self._project_named(name)
        if existing:
            return existing
        body: dict[str, Any] = {"name": name}
        if parent_collection:
            body["collection_parent_id"] = parent_collection
        try:
            return str((await self.assets.call("POST", "/projects/", json=body, expect=(201,))).json()["id"])
        except Invalid:
            found = await self._project_named(name)  # the create may have happened before its answer was lost
            if found:
                return found
            raise

    async def _retitle(self, collection_id: str | None, title: str) -> None:
        if not collection_id:
            return
        try:
            collection = (await self.assets.call("GET", f"/collections/{collection_id}/")).json()
        except Gone:
            return  # deleted by hand: nothing to rename
        if collection.get("title") != title and collection.get("status") != "DELETED":
            await self.assets.call("PATCH", f"/collections/{collection_id}/", json={"title": title})

    async def _project_named(self, name: str) -> str | None:
        page = 1
        while True:
            try:
                body = (await self.assets.call("GET", "/projects/", params={"page": page, "per_page": 100})).json()
            except Gone:
                return None
            match = next((p for p in body.get("objects", []) if p.get("name") == name), None)
            if match:
                return str(match["id"])
            if page >= int(body.get("pages") or 1):
                return None
            page += 1

    async def delete_project(self, project_id: str, with_collection: bool = False) -> None:
        """Delete a project; with_collection: its collection too (iconik keeps it otherwise, with its
        content and ACLs: UNCONFIRMED, research §5.2). The collection goes to iconik's delete queue."""
        also = " and its collection" if with_collection else ""
        with intent(f"delete {label('iconik', project_id, 'project')}{also}"):
            await self._delete_project(project_id, with_collection)

    async def _delete_project(self, project_id: str, with_collection: bool) -> None:
        collection_id = None
        try:
            if with_collection:
                collection_id = (await self.assets.call("GET", f"/projects/{project_id}/")).json().get("collection_id")
            await self.assets.call("DELETE", f"/projects/{project_id}/", expect=(202, 204))
        except Gone:
            pass
        if collection_id:
            try:
                await self.assets.call("DELETE", f"/collections/{collection_id}/", expect=(202, 204))
            except Gone:
                pass

    async def project_members(self, project_id: str) -> set[str]:
        body = (await self.assets.call("GET", f"/projects/{project_id}/members/")).json()
        return {str(m["id"]) for m in body.get("objects", [])}

    async def add_project_member(self, project_id: str, user_id: str) -> None:
        with intent(f"add {label('iconik', user_id, 'account')} to {label('iconik', project_id, 'project')}"):
            await self.assets.call(
                "POST", f"/projects/{project_id}/members/", json={"id": user_id}, expect=(201,), idempotent=True
            )

    async def remove_project_member(self, project_id: str, user_id: str) -> None:
        try:
            with intent(f"remove {label('iconik', user_id, 'account')} from {label('iconik', project_id, 'project')}"):
                await self.assets.call("DELETE", f"/projects/{project_id}/members/{user_id}/", expect=(204,))
        except Gone:
            pass


def _group(group_id: str) -> str:
    return label("iconik", group_id, "group")


def _collection(collection_id: str) -> str:
    return label("iconik", collection_id, "collection")

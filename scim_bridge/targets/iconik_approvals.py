"""iconik review & approve for reviewer routing (Capability.APPROVALS): where an asset sits, and an
approval request naming the reviewers (research/iconik.md §5.1, §6; specs/iconik/assets.json).

    GET  /API/assets/v1/assets/{id}/                      AssetSchema.in_collections: its collections
    GET  /API/assets/v1/collections/{id}/                 CollectionSchema: title, parents (root first)
    GET  /API/assets/v1/collections/                      every collection (the sweep: page/per_page)
    GET  /API/assets/v1/collections/{id}/contents/        ?object_types=assets: the assets it holds
    GET  /API/assets/v1/{type}/{id}/approvals/request/    the request, 404 while there is none
    POST /API/assets/v1/{type}/{id}/approvals/request/    ApprovalSchema {users, min_number} → 201,
                                                          or 202 {"job_id"} (done in the background)

The request names users only, never the reviewer group: whether iconik takes a group's members
when the request is made or when they vote is UNCONFIRMED (research §6), and the bridge must be
able to say exactly who was asked (the audit entry) and that nobody who left was.
"""

from __future__ import annotations

from typing import Any

import httpx

from ..audit.context import intent, label, remember
from .base import Gone
from .http import RateLimiter, TargetHttp


class IconikApprovals:
    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        limiter: RateLimiter,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        # The translator's limiter: one quota per application token (research §1.5).
        self.assets = TargetHttp(
            "iconik",
            f"{base_url.rstrip('/')}/API/assets/v1",
            rate=0,
            headers=headers,
            transport=transport,
            limiter=limiter,
        )

    async def close(self) -> None:
        await self.assets.close()

    async def containers(self, object_type: str, object_id: str) -> list[str]:
        """Ids of the collections holding the object; [] when it is gone or is no asset."""
        if object_type != "assets":  # only an asset's collections are documented (AssetSchema)
            return []
        try:
            with intent(f"read where {label('iconik', object_id, 'asset')} sits"):
                body = (await self.assets.call("GET", f"/assets/{object_id}/")).json()
        except Gone:
            return []
        if body.get("title"):
            remember("iconik", object_id, str(body["title"]))
        return [str(c) for c in body.get("in_collections") or [] if c]

    async def lineage(self, collection_id: str) -> list[str]:
        """Titles of the collection and of its ancestors, the collection first, then its parent
        up to the root; [] when it is gone."""
        titles: list[str] = []
        try:
            found = await self._collection(collection_id)
            titles.append(str(found.get("title") or ""))
            for parent in reversed(found.get("parents") or []):  # `parents` lists the root first
                titles.append(str((await self._collection(str(parent))).get("title") or ""))
        except Gone:
            return titles
        return titles

    async def _collection(self, collection_id: str) -> dict[str, Any]:
        with intent(f"read {label('iconik', collection_id, 'collection')}"):
            body: dict[str, Any] = (await self.assets.call("GET", f"/collections/{collection_id}/")).json()
        if body.get("status") == "DELETED":
            raise Gone(f"collection {collection_id} is deleted")
        if body.get("title"):
            remember("iconik", collection_id, str(body["title"]))
        return body

    async def collections(self) -> list[tuple[str, str, list[str]]]:
        """(id, title, ancestor ids, the root first) of every live collection."""
        return [
            (str(c["id"]), str(c.get("title") or ""), [str(p) for p in c.get("parents") or []])
            for c in await self._pages("/collections/", {}, "read the collections")
            if c.get("status") != "DELETED"
        ]

    async def assets_in(self, collection_id: str) -> list[tuple[str, str]]:
        """(asset id, date_created) of the assets a collection holds."""
        words = f"list the assets in {label('iconik', collection_id, 'collection')}"
        try:
            found = await self._pages(f"/collections/{collection_id}/contents/", {"object_types": "assets"}, words)
        except Gone:  # deleted meanwhile
            return []
        return [(str(a["id"]), str(a.get("date_created") or "")) for a in found if a.get("id")]

    async def _pages(self, path: str, params: dict[str, Any], words: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            with intent(words):
                body = (await self.assets.call("GET", path, params={**params, "page": page, "per_page": 100})).json()
            found += body.get("objects") or []
            if page >= int(body.get("pages") or 1):
                return found
            page += 1

    async def approval_request(self, object_type: str, object_id: str) -> dict[str, Any] | None:
        """The object's approval request, None while there is none."""
        try:
            with intent(f"read the approval request on {label('iconik', object_id, object_type.rstrip('s'))}"):
                found: dict[str, Any] = (
                    await self.assets.call("GET", f"/{object_type}/{object_id}/approvals/request/")
                ).json()
        except Gone:
            return None
        return found

    async def request_approval(self, object_type: str, object_id: str, user_ids: list[str], words: str) -> None:
        """Ask these users to approve the object; any one approval approves it (min_number 1, the
        spec's default). Not retried in place (a POST): the router reads the request back first."""
        body = {"users": sorted(user_ids), "groups": [], "externals": [], "min_number": 1}
        with intent(words):
            await self.assets.call(
                "POST", f"/{object_type}/{object_id}/approvals/request/", json=body, expect=(201, 202)
            )

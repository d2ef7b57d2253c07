"""The ID map: SCIM id ↔ target id, with the last state applied to each target and its sync
status, kept in the store's key/value space (shared by every replica, durable like the rest).

    idmap:{target}   "User/{scim id}"  → {"id", "applied": {...}, "groups": {group key: target id},
                                          "status": "synced"|"failed", "error", "updated"}
                     "Group/{scim id}" → {"id", "name", "status", "error", "updated"}
    members          "Group/{scim id}" → [user ids the group had when last processed]
    dead-letters     "{type}/{scim id}" → {"error", "attempts", "time"}
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from ..store import Store

MEMBERS = "members"
DEAD_LETTERS = "dead-letters"


def _namespace(target: str) -> str:
    return f"idmap:{target}"


def _groups(target: str) -> str:
    return f"idmap-groups:{target}"


class IdMap:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, target: str, resource_type: str, scim_id: str) -> dict[str, Any] | None:
        raw = await self.store.kv_get(_namespace(target), f"{resource_type}/{scim_id}")
        return orjson.loads(raw) if raw else None

    async def put(self, target: str, resource_type: str, scim_id: str, entry: dict[str, Any]) -> None:
        entry = {**entry, "updated": time.time()}
        raw = orjson.dumps(entry)
        await self.store.kv_put(_namespace(target), f"{resource_type}/{scim_id}", raw)
        if resource_type != "User":  # groups and projects also in a small index (grant runs read it)
            await self.store.kv_put(_groups(target), f"{resource_type}/{scim_id}", raw)

    async def mark_failed(self, target: str, resource_type: str, scim_id: str, error: str) -> None:
        entry = await self.get(target, resource_type, scim_id) or {}
        await self.put(target, resource_type, scim_id, {**entry, "status": "failed", "error": error})

    async def forget(self, target: str, resource_type: str, scim_id: str) -> None:
        await self.store.kv_delete(_namespace(target), f"{resource_type}/{scim_id}")
        if resource_type != "User":
            await self.store.kv_delete(_groups(target), f"{resource_type}/{scim_id}")

    async def group_entries(self, target: str) -> list[tuple[str, dict[str, Any]]]:
        """The Group and Project entries only, without reading every user's entry (there may be
        100,000 of those). Built on first use from the full map if it predates the index."""
        if await self.store.kv_get(_groups(target) + ":built", "yes") is None:  # once per store
            for key, value in await self.entries(target):
                if not key.startswith("User/"):
                    await self.store.kv_put(_groups(target), key, orjson.dumps(value))
            await self.store.kv_put(_groups(target) + ":built", "yes", b"1")
        return [(key, orjson.loads(raw)) for key, raw in await self.store.kv_items(_groups(target))]

    async def entries(self, target: str) -> list[tuple[str, dict[str, Any]]]:
        return [(key, orjson.loads(raw)) for key, raw in await self.store.kv_items(_namespace(target))]

    async def raw_entries(self, target: str) -> list[tuple[str, bytes]]:
        """The entries unparsed: `plan` over 100,000 users parses each one only when it reads it."""
        return await self.store.kv_items(_namespace(target))

    # the members a group had when last processed: who to re-evaluate when it changes or goes
    async def last_members(self, group_id: str) -> set[str]:
        raw = await self.store.kv_get(MEMBERS, f"Group/{group_id}")
        return set(orjson.loads(raw)) if raw else set()

    async def set_last_members(self, group_id: str, members: set[str] | None) -> None:
        if members is None:
            await self.store.kv_delete(MEMBERS, f"Group/{group_id}")
        else:
            await self.store.kv_put(MEMBERS, f"Group/{group_id}", orjson.dumps(sorted(members)))

    # dead letters ----------------------------------------------------------------------------------
    async def dead_letter(self, resource_type: str, scim_id: str, error: str, attempts: int) -> None:
        record = {"error": error, "attempts": attempts, "time": time.time()}
        await self.store.kv_put(DEAD_LETTERS, f"{resource_type}/{scim_id}", orjson.dumps(record))

    async def dead_letters(self) -> list[tuple[str, dict[str, Any]]]:
        return [(key, orjson.loads(raw)) for key, raw in await self.store.kv_items(DEAD_LETTERS)]

    async def replay(self) -> int:
        """Requeue every dead letter (scim-bridge replay); returns how many."""
        letters = await self.dead_letters()
        for key, _ in letters:
            resource_type, scim_id = key.split("/", 1)
            await self.store.enqueue(resource_type, scim_id, "standard")
            await self.store.kv_delete(DEAD_LETTERS, key)
        return len(letters)

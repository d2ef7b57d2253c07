"""iconik project teams kept whole across renames, deletes and re-creates of their directory group.

Project members are users (research/iconik.md §5.2), so each user's sync keeps its own project
memberships (engine.py `_apply_user`). That alone loses members when a group stops being a project
team and becomes one again: nobody's membership changed, so nobody was re-queued, and each user's
ID map still named the project that was deleted meanwhile. Two rules close that gap:

- a group whose project identity changed (it became a project team, stopped being one, or its
  project was renamed) re-queues every current member, so each one converges again;
- a user's recorded project membership counts only while it names the project the bridge holds for
  that group now; a membership of a project since deleted or re-created is dropped and re-added.

The project follows its group: created when the group becomes a project team (even before it has a
member), renamed with it (the project collection too), and on delete or rename out of the project
globs closed per `on_group_delete`: `delete` deletes the project and then its collection (into
iconik's delete queue, restorable there; iconik keeps the collection of a deleted project,
research §5 and the emulator's UNCONFIRMED note), `keep` leaves both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..store import REVOCATION_LANE, STANDARD_LANE, Store
from .idmap import IdMap
from .policy import Policy

PROJECT_OF = "project-of"  # kv: scim group id → the project name the group last stood for


class ProjectTeams:
    def __init__(self, store: Store, policy: Policy, idmap: IdMap) -> None:
        self.store, self.policy, self.idmap = store, policy, idmap

    async def requeue_if_changed(self, scim_id: str, project: str | None, members: set[str]) -> None:
        """Re-queue every member when the group's project changed: a level-triggered membership only
        converges for the users that are synced again."""
        raw = await self.store.kv_get(PROJECT_OF, scim_id)
        if (raw.decode() if raw else None) == project:
            return
        lane = STANDARD_LANE if project else REVOCATION_LANE  # leaving a project takes access away
        for user_id in members:
            await self.store.enqueue("User", user_id, lane)
        if project:
            await self.store.kv_put(PROJECT_OF, scim_id, project.encode())
        else:
            await self.store.kv_delete(PROJECT_OF, scim_id)

    async def apply(
        self,
        target_name: str,
        access: Any,
        scim_id: str,
        project: str | None,
        ensure: Callable[[], Awaitable[str]],
    ) -> None:
        """The group's project exists under its current name, or is closed per policy."""
        known = await self.idmap.get(target_name, "Project", scim_id)
        if project is None:
            if known and known.get("id"):
                if self.policy.access.section(target_name).closes_project_with_group():
                    await access.delete_project(known["id"], with_collection=True)
                await self.idmap.forget(target_name, "Project", scim_id)
            return
        project_id = await ensure()  # creates, adopts by name or renames (project and collection)
        # Stamped on every pass, so the group's sync status says when it was last converged.
        await self.idmap.put(target_name, "Project", scim_id, {"id": project_id, "name": project, "status": "synced"})

    async def drop_stale(self, target_name: str, current: dict[str, str], wanted: dict[str, str]) -> None:
        """Forget a user's memberships of projects that are no longer the group's project (deleted
        when the group was renamed away, re-created since): the converge then adds the user to the
        project that exists now instead of believing it is already in."""
        for key in [k for k in current if k in wanted]:
            entry = await self.idmap.get(target_name, "Project", key)
            if not entry or str(entry.get("id")) != current[key]:
                current.pop(key)

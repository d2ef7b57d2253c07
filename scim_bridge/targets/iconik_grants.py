"""iconik's grants applier (its registry entry's `grants`): collections, workspaces, group ACLs
(with `apply_to_contents`) and role assignments, applied through the translator's CollectionAcls
client as the grants run (sync/access_sync.py) asks.

Level-triggered like the rest: every run recomputes the grants from `access.iconik` and the groups
the bridge manages, reads each collection's ACLs and changes the difference; only principals the
bridge manages are ever changed. A dry run (reconciliation) records the differences instead.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..audit.context import remember
from .base import Gone
from .capabilities import GrantsRun, HeldGrant, HeldResource
from .iconik_policy import IconikAccess

GROUP_ROLES = "iconik:applied:group-role"  # kv: target group name → the iconik roles the bridge set


class IconikGrants:
    """One grants run's work in iconik (a `GrantsApplier`: targets/capabilities.py)."""

    def __init__(self, run: GrantsRun, section: Any) -> None:
        self.run = run
        self.section = section if isinstance(section, IconikAccess) else IconikAccess()

    async def apply(self, target: Any) -> None:
        if target.acls is not None:
            await self._apply(target.acls)

    async def held(self, target: Any) -> list[HeldResource]:
        """Each collection the policy names or the grants run resolved (workspaces too), with the
        group ACLs on it, then the ACLs given to single accounts (no rule gives those)."""
        access = target.acls
        if access is None:
            return []
        raw = await self.run.kv_get("iconik:collections")
        ids: dict[str, str] = orjson.loads(raw) if raw else {}
        titles = [c.title for c in self.section.collections]
        derived = await self.run.derived_names("iconik")
        titles += sorted({g.resource for g in self.run.grants("iconik", derived)} - set(titles))
        found = []
        for title in [*titles, *sorted(set(ids) - set(titles))]:
            resource = HeldResource("collection", title, ids.get(title), rights_add_up=False)
            found.append(resource)
            if resource.id is None:
                continue
            try:
                acls = await access.group_acls(resource.id)
            except Gone:
                resource.note = "deleted in iconik"
                continue
            resource.grants += [HeldGrant("group", g, set(p)) for g, p in sorted(acls.items())]
            users = await access.user_acls(resource.id)
            resource.grants += [HeldGrant("user", u, set(p)) for u, p in sorted(users.items())]
        return found

    async def content_added(self, payload: dict[str, Any]) -> bool:
        """Whether an iconik webhook delivery says a collection was created (or moved) below a
        collection whose grants apply to its contents: then the grants must run again (at once,
        rather than at the next `regrant_seconds` pass). ACL events are ignored: the grants run itself
        causes those."""
        titles = {c.title for c in self.section.collections if c.apply_to_contents}
        if not titles or payload.get("event_type") != "collections" or payload.get("realm") not in (None, "entity"):
            return False
        if payload.get("operation") not in ("create", "update"):
            return False
        data = payload.get("data")
        if not isinstance(data, dict):
            return False
        above = {str(p) for p in data.get("parents") or [] if p} | (
            {str(data["parent_id"])} if data.get("parent_id") else set()
        )
        if not above:
            return False
        raw = await self.run.kv_get("iconik:collections")  # title → id, as the last grants run resolved them
        resolved: dict[str, str] = orjson.loads(raw) if raw else {}
        return any(resolved.get(title) in above for title in titles)

    async def _direct_collection_acls(self, access: Any, title: str, collection_id: str) -> None:
        if not self.run.dry_run and not self.run.strip_direct:
            return  # one more read per collection, only when reconciling
        for user_id, permissions in (await access.user_acls(collection_id)).items():
            if self.run.dry_run:
                self.run.direct.append(("iconik", "collection", title, "user", user_id, sorted(permissions)))
            elif user_id in self.run.strip_direct:
                await access.remove_user_acl(collection_id, user_id)

    async def _apply(self, access: Any) -> None:
        config = self.section
        if config.group_roles or await self.run.kv_get(GROUP_ROLES):
            await self._group_roles(access, await self.run.managed_groups("iconik"))
        if not config.collections and not config.workspaces:
            return
        managed = await self.run.managed_groups("iconik")
        managed_ids = set(managed.values())
        grants = self.run.grants("iconik", await self.run.derived_names("iconik"))
        ids: dict[str, str] = {}
        for collection in config.collections:
            parent = ids.get(collection.parent) if collection.parent else None
            found = await self._collection_id(
                access, collection.title, collection.id, parent, collection.create and not self.run.dry_run
            )
            if found:
                ids[collection.title] = found
            elif self.run.dry_run:
                self.run.drift.append(
                    ("iconik", "missing-collection", collection.title, "the policy's collection is missing")
                )
        for workspace in config.workspaces:
            parent = ids.get(workspace.parent) if workspace.parent else None
            for grant in grants:
                if grant.rule.startswith("access.iconik.workspaces") and grant.resource not in ids:
                    found = await self._collection_id(access, grant.resource, None, parent, not self.run.dry_run)
                    if found:
                        ids[grant.resource] = found
                    elif self.run.dry_run:
                        self.run.drift.append(("iconik", "missing-collection", grant.resource, "workspace missing"))
        contents = {c.title for c in config.collections if c.apply_to_contents}
        applied: dict[str, dict[str, list[str]]] = {}
        for title, collection_id in ids.items():
            desired: dict[str, set[str]] = {}
            for grant in (g for g in grants if g.resource == title):
                group_id = managed.get(self.run.target_name(grant.group))
                if group_id:
                    desired.setdefault(group_id, set()).update(grant.rights)
            try:
                acls = await access.group_acls(collection_id)
            except Gone:  # deleted by hand: found or created again on the next run, which this one asks for
                if self.run.dry_run:
                    self.run.drift.append(("iconik", "missing-collection", title, "deleted in iconik"))
                    continue
                await self.run.kv_delete(f"iconik:collection:{title}")
                self.run.rerun = True
                continue
            await self._direct_collection_acls(access, title, collection_id)
            current = {g: p for g, p in acls.items() if g in managed_ids}
            by_name = {v: k for k, v in managed.items()}
            if self.run.dry_run and title in contents:
                await self._content_drift(access, title, collection_id, desired, by_name)
            if self.run.dry_run:
                for group_id in set(current) | set(desired):
                    had, wants = current.get(group_id, set()), desired.get(group_id, set())
                    if had != wants:
                        kind = "missing-grant" if not had else "extra-grant" if not wants else "wrong-grant"
                        self.run.drift.append(
                            ("iconik", kind, title, f"{by_name[group_id]}: {sorted(had)} → {sorted(wants)}")
                        )
                continue
            for group_id in set(current) - set(desired):  # revocations first
                await access.remove_group_acl(collection_id, group_id)
            for group_id, permissions in desired.items():
                if current.get(group_id) != permissions:
                    await access.set_group_acl(collection_id, group_id, sorted(permissions))
                if title in contents:  # re-applied each run: later content is not known to inherit it
                    await access.grant_contents(collection_id, group_id, sorted(permissions))
            applied[title] = {by_name[g]: sorted(p) for g, p in desired.items()}
        if self.run.dry_run:
            return
        await self.run.kv_put("iconik:applied", orjson.dumps(applied))
        await self.run.kv_put("iconik:collections", orjson.dumps(ids))

    async def _group_roles(self, access: Any, managed: dict[str, str]) -> None:
        """Each rule's group holds exactly its roles; a group whose rule went loses the roles the
        bridge gave it (kept in the store: another group's roles, set by hand, are not the bridge's)."""
        wanted: dict[str, set[str]] = {}
        for rule in self.section.group_roles:
            name = self.run.target_name(rule.group)
            if name in managed:  # a group not created yet gets its roles when it is (Access re-runs then)
                wanted.setdefault(name, set()).update(rule.roles)
        raw = await self.run.kv_get(GROUP_ROLES)
        given: dict[str, list[str]] = orjson.loads(raw) if raw else {}
        for name in sorted(set(given) | set(wanted)):
            group_id = managed.get(name)
            if group_id is None:
                continue  # deleted with its group
            try:
                held = await access.group_roles(group_id)
            except Gone:
                continue
            want = wanted.get(name, set())
            target = want if name in wanted else held - set(given.get(name, []))
            if held == target:
                continue
            if self.run.dry_run:
                self.run.drift.append(("iconik", "wrong-group-roles", name, f"{sorted(held)} → {sorted(target)}"))
            else:
                await access.set_group_roles(group_id, sorted(target))
        if not self.run.dry_run:
            await self.run.kv_put(GROUP_ROLES, orjson.dumps({n: sorted(r) for n, r in wanted.items()}))

    async def _content_drift(
        self,
        access: Any,
        title: str,
        collection_id: str,
        desired: dict[str, set[str]],
        by_name: dict[str, str],
    ) -> None:
        """Reconciliation of `apply_to_contents`: each sub-collection must hold at least the
        collection's grants (more is someone else's business: APPEND never takes anything away)."""
        for sub_id in await access.descendant_collections(collection_id):
            try:
                acls = await access.group_acls(sub_id)
            except Gone:
                continue  # deleted meanwhile
            for group_id, permissions in desired.items():
                missing = sorted(permissions - acls.get(group_id, set()))
                if missing:
                    self.run.drift.append(
                        (
                            "iconik",
                            "missing-content-grant",
                            title,
                            f"sub-collection {sub_id}: {by_name[group_id]} lacks {missing}",
                        )
                    )

    async def _collection_id(
        self, access: Any, title: str, fixed: str | None, parent: str | None, create: bool
    ) -> str | None:
        if fixed:
            remember("iconik", fixed, title)
            return fixed
        key = f"iconik:collection:{title}"
        cached = await self.run.kv_get(key)
        if cached:
            remember("iconik", cached.decode(), title)
            return cached.decode()
        found: str | None = await access.find_collection(title, parent)
        if found is None and create:
            found = await access.create_collection(title, parent)
        if found:
            await self.run.kv_put(key, found.encode())
        return found

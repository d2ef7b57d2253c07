"""Cloudinary's grants applier (its registry entry's `grants`): folders and folder roles, per-attribute
folders, collections by id, agency API keys and the moderation grants of `access.reviewers`, applied
through the translator's FolderGrants client as the grants run (sync/access_sync.py) asks.

Level-triggered like the rest: every run recomputes the grants from `access.cloudinary` and the
groups the bridge manages, reads what each folder holds and changes the difference; only principals
the bridge manages are ever changed. A dry run (reconciliation) records the differences instead.
"""

from __future__ import annotations

import fnmatch
import logging
from typing import Any

import orjson

from ..audit.context import remember
from ..sync.access import folder_role_id
from .base import Gone
from .capabilities import GrantsRun, HeldGrant, HeldResource
from .cloudinary_moderation import REVIEWER_POLICY, moderation_policies
from .cloudinary_policy import CloudinaryAccess

log = logging.getLogger("scim_bridge.sync")


def moderate_statement(group_id: str, folder_id: str) -> str:
    """Moderation of the assets below one folder, for one group (research/cloudinary.md §4.1)."""
    return (
        f'permit(principal in Cloudinary::Group::"{group_id}", action == Cloudinary::Action::"moderate", '
        f'resource is Cloudinary::Asset) when {{ resource.ancestor_ids.contains("{folder_id}") }};'
    )


class CloudinaryGrants:
    """One grants run's work in Cloudinary (a `GrantsApplier`: targets/capabilities.py)."""

    def __init__(self, run: GrantsRun, section: Any) -> None:
        self.run = run
        self.section = section if isinstance(section, CloudinaryAccess) else CloudinaryAccess()

    async def apply(self, target: Any) -> None:
        if target.folders is not None:
            await self._apply(target.folders)

    async def content_added(self, payload: dict[str, Any]) -> bool:
        return False  # Cloudinary's notifications do not announce content a grant must cover

    async def held(self, target: Any) -> list[HeldResource]:
        """Each governed folder (the fixed ones, then each per-attribute folder's values) and the
        roles on it; an API key says whose agency key it is."""
        folders = target.folders
        if folders is None:
            return []
        paths = [f.path for f in self.section.folders if not f.attribute]
        derived = await self.run.derived_names("cloudinary")
        paths += sorted({g.resource for g in self.run.grants("cloudinary", derived)} - set(paths))  # per value
        found = []
        for path in paths:
            raw = await self.run.kv_get(f"cloudinary:folder:{path}")
            resource = HeldResource("folder", path, raw.decode() if raw else None, rights_add_up=True)
            found.append(resource)
            if resource.id is None:
                continue
            try:
                grants = await folders.folder_grants(resource.id)
            except Gone:
                resource.note = "deleted in Cloudinary"
                continue
            for (kind, principal_id), roles in sorted(grants.items()):
                owner, rule = await self._key_owner(principal_id) if kind == "apiKey" else (None, None)
                resource.grants.append(HeldGrant(kind, principal_id, set(roles), owner, rule))
        if self.run.reviewers:
            found += await self._held_moderation(folders)
        return found

    async def _held_moderation(self, folders: Any) -> list[HeldResource]:
        """Folder-scoped moderation: one resource per custom policy the bridge owns, with its rule
        (targets/cloudinary_moderation.py); an account without the Permissions API has none, and says so."""
        if await folders.detect_model(self.section.permission_model) != "roles":
            note = "not applied: this account has no Permissions API, so no folder-scoped moderation"
            return [HeldResource("moderation", "folder-scoped moderation (access.reviewers)", None, False, note)]
        found = []
        for held in await moderation_policies(self.run.reviewers, folders):
            resource = HeldResource("moderation", held.name, held.id, False, None if held.enabled else "disabled")
            if held.group_id:
                resource.grants.append(HeldGrant("group", held.group_id, {"moderate"}, rule=held.rule))
            found.append(resource)
        return found

    async def _key_owner(self, api_key: str) -> tuple[str | None, str | None]:
        """(agency, rule) of an API key the policy's agency_keys made, else (None, None)."""
        for index, rule in enumerate(self.section.agency_keys):
            if await self.run.kv_get(f"cloudinary:agency-key:{rule.group}") == api_key.encode():
                return rule.group, f"access.cloudinary.agency_keys[{index}]"
        return None, None

    async def _apply(self, folders: Any) -> None:
        config = self.section
        if not config.folders and not config.collections and not config.agency_keys:
            return
        await folders.detect_model(config.permission_model)
        managed = await self.run.managed_groups("cloudinary")
        managed_ids = set(managed.values())
        derived = await self.run.derived_names("cloudinary")
        grants = self.run.grants("cloudinary", derived)
        paths = {f.path: f.create for f in config.folders if not f.attribute}
        for index, folder_rule in enumerate(config.folders):  # a per-attribute folder, once a value's group exists
            for name in derived if folder_rule.attribute else []:
                paths.update(
                    {
                        g.resource: folder_rule.create
                        for g in folder_rule.templated(index, name)
                        if g.resource not in paths
                    }
                )
        applied: dict[str, dict[str, list[str]]] = {}
        resolved: dict[str, str] = {}  # governed folder path → its external id (folder-scoped reviewers)
        for path, create in paths.items():
            folder_id = await self._folder_id(folders, path, create and not self.run.dry_run)
            if folder_id is None:
                if self.run.dry_run:
                    self.run.drift.append(("cloudinary", "missing-folder", path, "the policy's folder is missing"))
                else:
                    log.warning("access: Cloudinary folder %s does not exist and create is off", path)
                continue
            desired: dict[str, set[str]] = {}
            for grant in (g for g in grants if g.resource == path):
                group_id = managed.get(self.run.target_name(grant.group))
                if group_id:  # a group not created yet gets its grant when it is (Access re-runs then)
                    desired.setdefault(group_id, set()).update(grant.rights)
            try:
                actual = await folders.folder_grants(folder_id)
            except Gone:  # deleted by hand since it was resolved: resolve (and create) it again
                if self.run.dry_run:  # reconcile reports it; --apply's grants run makes it again
                    self.run.drift.append(("cloudinary", "missing-folder", path, "deleted in Cloudinary"))
                    continue
                await self.run.kv_delete(f"cloudinary:folder:{path}")
                folder_id = await self._folder_id(folders, path, create and not self.run.dry_run)
                if folder_id is None:
                    continue
                actual = await folders.folder_grants(folder_id)
            by_name = {v: k for k, v in managed.items()}
            resolved[path] = folder_id
            await self._direct_folder_grants(folders, path, folder_id, actual)
            current = {pid: roles for (kind, pid), roles in actual.items() if kind == "group" and pid in managed_ids}
            for group_id in set(current) | set(desired):  # revocations first
                extra = sorted(current.get(group_id, set()) - desired.get(group_id, set()))
                if extra and self.run.dry_run:
                    self.run.drift.append(
                        ("cloudinary", "extra-grant", path, f"{', '.join(extra)} on {by_name[group_id]}")
                    )
                elif extra:
                    await folders.change("remove", folder_id, ("group", group_id), extra)
            for group_id, roles in desired.items():
                missing = sorted(roles - current.get(group_id, set()))
                if missing and self.run.dry_run:
                    self.run.drift.append(
                        ("cloudinary", "missing-grant", path, f"{', '.join(missing)} for {by_name[group_id]}")
                    )
                elif missing:
                    await folders.change("add", folder_id, ("group", group_id), missing)
            if self.run.dry_run:
                continue
            applied[path] = {by_name[g]: sorted(r) for g, r in desired.items()}
        if self.run.dry_run:  # reconcile: the folder-scoped moderation policies are grants too
            if self.run.reviewers and folders.model == "roles":
                await self._folder_reviewers(folders, managed, resolved)
            return
        await self.run.kv_put("cloudinary:applied", orjson.dumps(applied))
        if config.collections:
            await self._cloudinary_collections(folders, managed)
        for rule in config.agency_keys:
            await self._agency_key(folders, rule)
        if self.run.reviewers and folders.model == "roles":
            await self._cloudinary_reviewers(folders, managed)
            await self._folder_reviewers(folders, managed, resolved)

    async def _direct_folder_grants(
        self, folders: Any, path: str, folder_id: str, actual: dict[tuple[str, str], set[str]]
    ) -> None:
        keys = {
            raw.decode()
            for rule in self.section.agency_keys
            if (raw := await self.run.kv_get(f"cloudinary:agency-key:{rule.group}"))
        }
        for (kind, principal_id), roles in actual.items():
            if kind == "group" or (kind == "apiKey" and principal_id in keys):
                continue
            if self.run.dry_run:
                self.run.direct.append(("cloudinary", "folder", path, kind, principal_id, sorted(roles)))
            elif kind == "user" and principal_id in self.run.strip_direct:
                await folders.change("remove", folder_id, (kind, principal_id), sorted(roles))

    async def _agency_key(self, folders: Any, rule: Any) -> None:
        """An agency's own API key: enabled with exactly its folder roles while its directory group
        has an active member; disabled, with no role, otherwise."""
        active = await self.run.group_has_active_member(rule.group)
        key_name = f"cloudinary:agency-key:{rule.group}"
        raw = await self.run.kv_get(key_name)
        api_key = raw.decode() if raw else None
        if api_key and not self.run.dry_run and not await folders.set_key_enabled(api_key, active):
            api_key = None  # deleted in the Console: a new one if the agency still needs it
        if api_key is None and active:
            if self.run.dry_run:
                self.run.drift.append(("cloudinary", "missing-key", rule.group, "the agency's API key is missing"))
                return
            api_key = await folders.create_key(f"scim-bridge: {rule.group}")  # the secret stays in Cloudinary
            await self.run.kv_put(key_name, api_key.encode())
        if api_key is None:
            return
        remember("cloudinary", api_key, f"the API key of {rule.group}")
        role = folder_role_id(rule.role)
        for path in rule.folders:
            folder_id = await self._folder_id(folders, path, not self.run.dry_run)
            if folder_id is None:
                continue
            held = (await folders.folder_grants(folder_id)).get(("apiKey", api_key), set())
            wanted = {role} if active else set()
            if self.run.dry_run and held != wanted:
                self.run.drift.append(
                    (
                        "cloudinary",
                        "wrong-grant",
                        path,
                        f"agency key of {rule.group}: {sorted(held)} → {sorted(wanted)}",
                    )
                )
                continue
            await folders.change("remove", folder_id, ("apiKey", api_key), sorted(held - wanted))
            await folders.change("add", folder_id, ("apiKey", api_key), sorted(wanted - held))

    async def _cloudinary_collections(self, folders: Any, managed: dict[str, str]) -> None:
        """Collections by id (no public API lists them): the diff is against what the bridge gave,
        kept in the store, since there is no listing to read back per collection."""
        raw = await self.run.kv_get("cloudinary:collections")
        given: dict[str, dict[str, list[str]]] = orjson.loads(raw) if raw else {}
        desired: dict[str, dict[str, set[str]]] = {}
        for collection in self.section.collections:
            for grant in collection.grants:
                group_id = managed.get(self.run.target_name(grant.group))
                if group_id:
                    desired.setdefault(collection.id, {}).setdefault(group_id, set()).add(grant.role)
        for collection_id, by_group in given.items():  # revocations first
            for group_id, roles in by_group.items():
                extra = sorted(set(roles) - desired.get(collection_id, {}).get(group_id, set()))
                await folders.change_collection("remove", collection_id, group_id, extra)
        for collection_id, wanted_by_group in desired.items():
            for group_id, wanted_roles in wanted_by_group.items():
                new = sorted(wanted_roles - set(given.get(collection_id, {}).get(group_id, [])))
                await folders.change_collection("add", collection_id, group_id, new)
        await self.run.kv_put(
            "cloudinary:collections",
            orjson.dumps({c: {g: sorted(r) for g, r in by_group.items()} for c, by_group in desired.items()}),
        )

    async def _cloudinary_reviewers(self, folders: Any, managed: dict[str, str]) -> None:
        """Reviewer groups of a rule without folders (everywhere) hold a global role carrying the
        moderation policy; a rule with folders is scoped by custom policies (_folder_reviewers)."""
        role = await folders.ensure_moderator_role()
        wanted = {
            managed[self.run.target_name(r.group)]
            for r in self.run.reviewers
            if self.run.target_name(r.group) in managed and not r.folders  # folders: _folder_reviewers instead
        }
        raw = await self.run.kv_get("cloudinary:moderators")
        given = set(orjson.loads(raw)) if raw else set()  # only what the bridge gave is taken back
        for group_id in given - wanted:
            if group_id in set(managed.values()):
                await folders.change_global("remove", group_id, role)
        for group_id in wanted:
            if role not in await folders.global_roles(group_id):
                await folders.change_global("add", group_id, role)
        await self.run.kv_put("cloudinary:moderators", orjson.dumps(sorted(wanted)))

    async def _folder_reviewers(self, folders: Any, managed: dict[str, str], resolved: dict[str, str]) -> None:
        """A reviewer rule with folders: one Cedar custom policy per (group, governed folder its globs
        match), permitting `moderate` on the assets below that folder (research §4.1's statement).
        Only policies named by the bridge (REVIEWER_POLICY) are changed. UNCONFIRMED upstream: that
        the service accepts a `principal in Cloudinary::Group` statement and that the moderation queue
        honours a folder-scoped permit; and whether reviewers also need the global "Access the
        Moderation page" permission, which the bridge does not give (it would widen nothing but
        the page)."""
        wanted: dict[str, str] = {}  # policy name → statement
        for rule in self.run.reviewers:
            group_id = managed.get(self.run.target_name(rule.group))
            for path, folder_id in sorted(resolved.items()) if group_id and rule.folders else []:
                if any(fnmatch.fnmatchcase(path.lower(), glob.lower()) for glob in rule.folders):
                    wanted[f"{REVIEWER_POLICY}{rule.group} on {path}"] = moderate_statement(str(group_id), folder_id)
        held = {p["name"]: p for p in await folders.custom_policies() if str(p["name"]).startswith(REVIEWER_POLICY)}
        for name, policy in sorted(held.items()):  # revocations first
            if wanted.get(name) != policy["policy_statement"] or not policy.get("enabled", True):
                if self.run.dry_run:
                    self.run.drift.append(("cloudinary", "extra-grant", name, "moderation policy no rule gives"))
                else:
                    await folders.delete_policy(str(policy["id"]), name)
                    held.pop(name)
        for name, statement in sorted(wanted.items()):
            if name in held:
                continue
            if self.run.dry_run:
                self.run.drift.append(("cloudinary", "missing-grant", name, "moderation policy"))
            else:
                await folders.create_policy(name, statement, "folder-scoped reviewers (access.reviewers)")

    async def _folder_id(self, folders: Any, path: str, create: bool) -> str | None:
        key = f"cloudinary:folder:{path}"
        cached = await self.run.kv_get(key)
        if cached:
            remember("cloudinary", cached.decode(), path)
            return cached.decode()
        folder_id: str | None = await folders.ensure_folder(path, create)
        if folder_id:
            await self.run.kv_put(key, folder_id.encode())
        return folder_id

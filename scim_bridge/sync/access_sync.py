"""Apply the policy's `access:` grants to the targets: folders and folder roles in Cloudinary,
collections, workspaces and group ACLs in iconik. Level-triggered like the rest: one queue entry
("Access", "grants") recomputes every grant from the policy and the groups the bridge manages,
reads what each folder or collection holds, and adds or removes the difference. It runs at start,
and again whenever the bridge creates, renames or deletes a target group.

Only principals the bridge manages (the groups in its ID map) are ever changed: a role someone
granted by hand to another group or user stays (drift reports show it; reconciliation decides).
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import orjson

from ..audit.context import remember
from ..scim.filters import fold
from ..store import Store
from ..targets.base import Gone
from ..targets.cloudinary_policy import cloudinary_section
from ..targets.iconik_policy import iconik_section
from .access import expired, folder_role_id
from .access import match_template as match_template  # guardrails and web/api_v1.py import it from here
from .idmap import IdMap
from .policy import Policy

log = logging.getLogger("scim_bridge.sync")
ACCESS = "access"  # kv namespace: resolved folder / collection ids and the grants last applied
GROUP_ROLES = "iconik:applied:group-role"  # kv: target group name → the iconik roles the bridge set


@dataclass(frozen=True)
class Grant:
    target: str
    resource: str  # folder path or collection title
    group: str  # the grant's group name as the policy says it
    rights: tuple[str, ...]  # role ids (Cloudinary) or permissions (iconik)
    rule: str  # where it comes from, for explain


def policy_grants(policy: Policy, derived_names: list[str]) -> list[Grant]:
    """Every grant the policy makes, with workspace and per-attribute folder templates filled for the
    derived groups that exist."""
    grants: list[Grant] = []
    for index, folder in enumerate(cloudinary_section(policy.access).folders):
        for grant in folder.grants if not folder.attribute else []:
            grants.append(
                Grant(
                    "cloudinary",
                    folder.path,
                    grant.group,
                    (folder_role_id(grant.role),),
                    f"access.cloudinary.folders[{index}] ({folder.path})",
                )
            )
    for index, collection in enumerate(iconik_section(policy.access).collections):
        for cgrant in collection.grants:
            grants.append(
                Grant(
                    "iconik",
                    collection.title,
                    cgrant.group,
                    tuple(sorted(cgrant.permissions)),
                    f"access.iconik.collections[{index}] ({collection.title})",
                )
            )
    for target, section in policy.access.sections().items():  # workspaces, per-attribute folders: templating
        for name in derived_names:
            grants += [Grant(target, g.resource, g.group, g.rights, g.rule) for g in section.templated_rules(name)]
    return grants


REVIEWER_POLICY = "scim-bridge reviewers: "  # the name prefix of the custom policies the bridge owns


def moderate_statement(group_id: str, folder_id: str) -> str:
    """Moderation of the assets below one folder, for one group (research/cloudinary.md §4.1)."""
    return (
        f'permit(principal in Cloudinary::Group::"{group_id}", action == Cloudinary::Action::"moderate", '
        f'resource is Cloudinary::Asset) when {{ resource.ancestor_ids.contains("{folder_id}") }};'
    )


class AccessSync:
    def __init__(self, store: Store, policy: Policy, targets: dict[str, Any]) -> None:
        self.store = store
        self.policy = policy
        self.targets = targets
        self.idmap = IdMap(store)
        self.rerun = False  # set when a run found something gone and must run again
        # Reconciliation's dry run: differences are recorded (target, kind, resource, detail), not applied.
        self.dry_run = False
        self.drift: list[tuple[str, str, str, str]] = []
        # Grants to one account (or a key) rather than a group, on what the policy governs: no rule
        # gives those (access goes to groups). A dry run records them (target, kind, resource,
        # principal type, principal id, rights); a run removes those of the accounts in `strip_direct`
        # (reconcile --apply names the accounts the bridge manages).
        self.direct: list[tuple[str, str, str, str, str, list[str]]] = []
        self.strip_direct: set[str] = set()

    async def managed_groups(self, target: str) -> dict[str, str]:
        """Target group name → target id, for every group the bridge manages in `target`."""
        managed = {
            entry["name"]: str(entry["id"])
            for key, entry in await self.idmap.group_entries(target)
            if key.startswith("Group/") and entry.get("id") and entry.get("name")
        }
        for name, group_id in managed.items():  # target calls say their intent by name (audit trail)
            remember(target, group_id, name)
        return managed

    def concerns(self, group_name: str) -> bool:
        """Whether a target group of this name takes part in any grant (so its creation or deletion
        needs a grants run); during a 2,000-group load most groups do not."""
        names = {self.target_name(g.group) for g in policy_grants(self.policy, [])}
        names |= {self.target_name(r.group) for r in self.policy.access.reviewers}
        names |= {self.target_name(k.group) for k in cloudinary_section(self.policy.access).agency_keys}
        names |= {self.target_name(r.group) for r in iconik_section(self.policy.access).group_roles}
        return group_name in names or any(
            match_template(template, group_name) is not None for template in self.policy.access.workspace_groups()
        )

    def target_name(self, group: str) -> str:
        """The target group a grant's `group` names: a mirrored directory group, or a derived one."""
        return self.policy.groups.mirrored_name(group) or group

    async def derived_names(self, target: str) -> list[str]:
        return [
            key.split(":", 1)[1]
            for key, entry in [
                (k.split("/", 1)[1], v) for k, v in await self.idmap.group_entries(target) if k.startswith("Group/")
            ]
            if key.startswith("derived:") and entry.get("id")
        ]

    async def sync(self, skip: Collection[str] = ()) -> None:
        """Every grant, in every target but those in `skip` (quarantined: sync/quarantine.py)."""
        if "cloudinary" in self.targets and "cloudinary" not in skip and self.targets["cloudinary"].folders is not None:
            await self._cloudinary(self.targets["cloudinary"].folders)
        if "iconik" in self.targets and "iconik" not in skip and self.targets["iconik"].acls is not None:
            await self._iconik(self.targets["iconik"].acls)

    # Cloudinary ---------------------------------------------------------------------------------
    async def _cloudinary(self, folders: Any) -> None:
        config = cloudinary_section(self.policy.access)
        if not config.folders and not config.collections and not config.agency_keys:
            return
        await folders.detect_model(config.permission_model)
        managed = await self.managed_groups("cloudinary")
        managed_ids = set(managed.values())
        derived = await self.derived_names("cloudinary")
        grants = [g for g in policy_grants(self.policy, derived) if g.target == "cloudinary"]
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
            folder_id = await self._folder_id(folders, path, create and not self.dry_run)
            if folder_id is None:
                if self.dry_run:
                    self.drift.append(("cloudinary", "missing-folder", path, "the policy's folder is missing"))
                else:
                    log.warning("access: Cloudinary folder %s does not exist and create is off", path)
                continue
            desired: dict[str, set[str]] = {}
            for grant in (g for g in grants if g.resource == path):
                group_id = managed.get(self.target_name(grant.group))
                if group_id:  # a group not created yet gets its grant when it is (Access re-runs then)
                    desired.setdefault(group_id, set()).update(grant.rights)
            try:
                actual = await folders.folder_grants(folder_id)
            except Gone:  # deleted by hand since it was resolved: resolve (and create) it again
                if self.dry_run:  # reconcile reports it; --apply's grants run makes it again
                    self.drift.append(("cloudinary", "missing-folder", path, "deleted in Cloudinary"))
                    continue
                await self.store.kv_delete(ACCESS, f"cloudinary:folder:{path}")
                folder_id = await self._folder_id(folders, path, create and not self.dry_run)
                if folder_id is None:
                    continue
                actual = await folders.folder_grants(folder_id)
            by_name = {v: k for k, v in managed.items()}
            resolved[path] = folder_id
            await self._direct_folder_grants(folders, path, folder_id, actual)
            current = {pid: roles for (kind, pid), roles in actual.items() if kind == "group" and pid in managed_ids}
            for group_id in set(current) | set(desired):  # revocations first
                extra = sorted(current.get(group_id, set()) - desired.get(group_id, set()))
                if extra and self.dry_run:
                    self.drift.append(("cloudinary", "extra-grant", path, f"{', '.join(extra)} on {by_name[group_id]}"))
                elif extra:
                    await folders.change("remove", folder_id, ("group", group_id), extra)
            for group_id, roles in desired.items():
                missing = sorted(roles - current.get(group_id, set()))
                if missing and self.dry_run:
                    self.drift.append(
                        ("cloudinary", "missing-grant", path, f"{', '.join(missing)} for {by_name[group_id]}")
                    )
                elif missing:
                    await folders.change("add", folder_id, ("group", group_id), missing)
            if self.dry_run:
                continue
            applied[path] = {by_name[g]: sorted(r) for g, r in desired.items()}
        if self.dry_run:
            return
        await self.store.kv_put(ACCESS, "cloudinary:applied", orjson.dumps(applied))
        if config.collections:
            await self._cloudinary_collections(folders, managed)
        for rule in config.agency_keys:
            await self._agency_key(folders, rule)
        if self.policy.access.reviewers and folders.model == "roles":
            await self._cloudinary_reviewers(folders, managed)
            await self._folder_reviewers(folders, managed, resolved)

    async def _direct_folder_grants(
        self, folders: Any, path: str, folder_id: str, actual: dict[tuple[str, str], set[str]]
    ) -> None:
        keys = {
            raw.decode()
            for rule in cloudinary_section(self.policy.access).agency_keys
            if (raw := await self.store.kv_get(ACCESS, f"cloudinary:agency-key:{rule.group}"))
        }
        for (kind, principal_id), roles in actual.items():
            if kind == "group" or (kind == "apiKey" and principal_id in keys):
                continue
            if self.dry_run:
                self.direct.append(("cloudinary", "folder", path, kind, principal_id, sorted(roles)))
            elif kind == "user" and principal_id in self.strip_direct:
                await folders.change("remove", folder_id, (kind, principal_id), sorted(roles))

    async def _direct_collection_acls(self, access: Any, title: str, collection_id: str) -> None:
        if not self.dry_run and not self.strip_direct:
            return  # one more read per collection, only when reconciling
        for user_id, permissions in (await access.user_acls(collection_id)).items():
            if self.dry_run:
                self.direct.append(("iconik", "collection", title, "user", user_id, sorted(permissions)))
            elif user_id in self.strip_direct:
                await access.remove_user_acl(collection_id, user_id)

    async def _agency_key(self, folders: Any, rule: Any) -> None:
        """An agency's own API key: enabled with exactly its folder roles while its directory group
        has an active member; disabled, with no role, otherwise."""
        active = await self.group_has_active_member(rule.group)
        key_name = f"cloudinary:agency-key:{rule.group}"
        raw = await self.store.kv_get(ACCESS, key_name)
        api_key = raw.decode() if raw else None
        if api_key and not self.dry_run and not await folders.set_key_enabled(api_key, active):
            api_key = None  # deleted in the Console: a new one if the agency still needs it
        if api_key is None and active:
            if self.dry_run:
                self.drift.append(("cloudinary", "missing-key", rule.group, "the agency's API key is missing"))
                return
            api_key = await folders.create_key(f"scim-bridge: {rule.group}")  # the secret stays in Cloudinary
            await self.store.kv_put(ACCESS, key_name, api_key.encode())
        if api_key is None:
            return
        remember("cloudinary", api_key, f"the API key of {rule.group}")
        role = folder_role_id(rule.role)
        for path in rule.folders:
            folder_id = await self._folder_id(folders, path, not self.dry_run)
            if folder_id is None:
                continue
            held = (await folders.folder_grants(folder_id)).get(("apiKey", api_key), set())
            wanted = {role} if active else set()
            if self.dry_run and held != wanted:
                self.drift.append(
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

    async def group_has_active_member(self, display_name: str) -> bool:
        ids = await self.store.lookup("Group", "displayname", fold(display_name))
        record = await self.store.get("Group", ids[0]) if ids else None
        if record is None:
            return False
        members = [m["value"] for m in orjson.loads(record.body).get("members") or []]
        attribute = self.policy.access.external.expiry_attribute
        for user in await self.store.get_many("User", members):
            document = orjson.loads(user.body)
            if document.get("active", True) is not False and not expired(document, attribute):
                return True
        return False

    async def _cloudinary_collections(self, folders: Any, managed: dict[str, str]) -> None:
        """Collections by id (no public API lists them): the diff is against what the bridge gave,
        kept in the store, since there is no listing to read back per collection."""
        raw = await self.store.kv_get(ACCESS, "cloudinary:collections")
        given: dict[str, dict[str, list[str]]] = orjson.loads(raw) if raw else {}
        desired: dict[str, dict[str, set[str]]] = {}
        for collection in cloudinary_section(self.policy.access).collections:
            for grant in collection.grants:
                group_id = managed.get(self.target_name(grant.group))
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
        await self.store.kv_put(
            ACCESS,
            "cloudinary:collections",
            orjson.dumps({c: {g: sorted(r) for g, r in by_group.items()} for c, by_group in desired.items()}),
        )

    async def _cloudinary_reviewers(self, folders: Any, managed: dict[str, str]) -> None:
        """Reviewer groups of a rule without folders (everywhere) hold a global role carrying the
        moderation policy; a rule with folders is scoped by custom policies (_folder_reviewers)."""
        role = await folders.ensure_moderator_role()
        wanted = {
            managed[self.target_name(r.group)]
            for r in self.policy.access.reviewers
            if self.target_name(r.group) in managed and not r.folders  # folders: _folder_reviewers instead
        }
        raw = await self.store.kv_get(ACCESS, "cloudinary:moderators")
        given = set(orjson.loads(raw)) if raw else set()  # only what the bridge gave is taken back
        for group_id in given - wanted:
            if group_id in set(managed.values()):
                await folders.change_global("remove", group_id, role)
        for group_id in wanted:
            if role not in await folders.global_roles(group_id):
                await folders.change_global("add", group_id, role)
        await self.store.kv_put(ACCESS, "cloudinary:moderators", orjson.dumps(sorted(wanted)))

    async def _folder_reviewers(self, folders: Any, managed: dict[str, str], resolved: dict[str, str]) -> None:
        """A reviewer rule with folders: one Cedar custom policy per (group, governed folder its globs
        match), permitting `moderate` on the assets below that folder (research §4.1's statement).
        Only policies named by the bridge (REVIEWER_POLICY) are changed. UNCONFIRMED upstream: that
        the service accepts a `principal in Cloudinary::Group` statement and that the moderation queue
        honours a folder-scoped permit; and whether reviewers also need the global "Access the
        Moderation page" permission, which the bridge does not give (it would widen nothing but
        the page)."""
        wanted: dict[str, str] = {}  # policy name → statement
        for rule in self.policy.access.reviewers:
            group_id = managed.get(self.target_name(rule.group))
            for path, folder_id in sorted(resolved.items()) if group_id and rule.folders else []:
                if any(fnmatch.fnmatchcase(path.lower(), glob.lower()) for glob in rule.folders):
                    wanted[f"{REVIEWER_POLICY}{rule.group} on {path}"] = moderate_statement(str(group_id), folder_id)
        held = {p["name"]: p for p in await folders.custom_policies() if str(p["name"]).startswith(REVIEWER_POLICY)}
        for name, policy in sorted(held.items()):  # revocations first
            if wanted.get(name) != policy["policy_statement"] or not policy.get("enabled", True):
                if self.dry_run:
                    self.drift.append(("cloudinary", "extra-grant", name, "moderation policy no rule gives"))
                else:
                    await folders.delete_policy(str(policy["id"]), name)
                    held.pop(name)
        for name, statement in sorted(wanted.items()):
            if name in held:
                continue
            if self.dry_run:
                self.drift.append(("cloudinary", "missing-grant", name, "moderation policy"))
            else:
                await folders.create_policy(name, statement, "folder-scoped reviewers (access.reviewers)")

    async def _folder_id(self, folders: Any, path: str, create: bool) -> str | None:
        key = f"cloudinary:folder:{path}"
        cached = await self.store.kv_get(ACCESS, key)
        if cached:
            remember("cloudinary", cached.decode(), path)
            return cached.decode()
        folder_id: str | None = await folders.ensure_folder(path, create)
        if folder_id:
            await self.store.kv_put(ACCESS, key, folder_id.encode())
        return folder_id

    # iconik -------------------------------------------------------------------------------------
    async def _iconik(self, access: Any) -> None:
        config = iconik_section(self.policy.access)
        if config.group_roles or await self.store.kv_get(ACCESS, GROUP_ROLES):
            await self._group_roles(access, await self.managed_groups("iconik"))
        if not config.collections and not config.workspaces:
            return
        managed = await self.managed_groups("iconik")
        managed_ids = set(managed.values())
        grants = [g for g in policy_grants(self.policy, await self.derived_names("iconik")) if g.target == "iconik"]
        ids: dict[str, str] = {}
        for collection in config.collections:
            parent = ids.get(collection.parent) if collection.parent else None
            found = await self._collection_id(
                access, collection.title, collection.id, parent, collection.create and not self.dry_run
            )
            if found:
                ids[collection.title] = found
            elif self.dry_run:
                self.drift.append(
                    ("iconik", "missing-collection", collection.title, "the policy's collection is missing")
                )
        for workspace in config.workspaces:
            parent = ids.get(workspace.parent) if workspace.parent else None
            for grant in grants:
                if grant.rule.startswith("access.iconik.workspaces") and grant.resource not in ids:
                    found = await self._collection_id(access, grant.resource, None, parent, not self.dry_run)
                    if found:
                        ids[grant.resource] = found
                    elif self.dry_run:
                        self.drift.append(("iconik", "missing-collection", grant.resource, "workspace missing"))
        contents = {c.title for c in config.collections if c.apply_to_contents}
        applied: dict[str, dict[str, list[str]]] = {}
        for title, collection_id in ids.items():
            desired: dict[str, set[str]] = {}
            for grant in (g for g in grants if g.resource == title):
                group_id = managed.get(self.target_name(grant.group))
                if group_id:
                    desired.setdefault(group_id, set()).update(grant.rights)
            try:
                acls = await access.group_acls(collection_id)
            except Gone:  # deleted by hand: found or created again on the next run, which this one asks for
                if self.dry_run:
                    self.drift.append(("iconik", "missing-collection", title, "deleted in iconik"))
                    continue
                await self.store.kv_delete(ACCESS, f"iconik:collection:{title}")
                self.rerun = True
                continue
            await self._direct_collection_acls(access, title, collection_id)
            current = {g: p for g, p in acls.items() if g in managed_ids}
            by_name = {v: k for k, v in managed.items()}
            if self.dry_run and title in contents:
                await self._content_drift(access, title, collection_id, desired, by_name)
            if self.dry_run:
                for group_id in set(current) | set(desired):
                    had, wants = current.get(group_id, set()), desired.get(group_id, set())
                    if had != wants:
                        kind = "missing-grant" if not had else "extra-grant" if not wants else "wrong-grant"
                        self.drift.append(
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
        if self.dry_run:
            return
        await self.store.kv_put(ACCESS, "iconik:applied", orjson.dumps(applied))
        await self.store.kv_put(ACCESS, "iconik:collections", orjson.dumps(ids))

    async def _group_roles(self, access: Any, managed: dict[str, str]) -> None:
        """Each rule's group holds exactly its roles; a group whose rule went loses the roles the
        bridge gave it (kept in the store: another group's roles, set by hand, are not the bridge's)."""
        wanted: dict[str, set[str]] = {}
        for rule in iconik_section(self.policy.access).group_roles:
            name = self.target_name(rule.group)
            if name in managed:  # a group not created yet gets its roles when it is (Access re-runs then)
                wanted.setdefault(name, set()).update(rule.roles)
        raw = await self.store.kv_get(ACCESS, GROUP_ROLES)
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
            if self.dry_run:
                self.drift.append(("iconik", "wrong-group-roles", name, f"{sorted(held)} → {sorted(target)}"))
            else:
                await access.set_group_roles(group_id, sorted(target))
        if not self.dry_run:
            await self.store.kv_put(ACCESS, GROUP_ROLES, orjson.dumps({n: sorted(r) for n, r in wanted.items()}))

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
                    self.drift.append(
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
        cached = await self.store.kv_get(ACCESS, key)
        if cached:
            remember("iconik", cached.decode(), title)
            return cached.decode()
        found: str | None = await access.find_collection(title, parent)
        if found is None and create:
            found = await access.create_collection(title, parent)
        if found:
            await self.store.kv_put(ACCESS, key, found.encode())
        return found


async def governed_content_added(store: Store, policy: Policy, payload: dict[str, Any]) -> bool:
    """Whether an iconik webhook delivery says a collection was created (or moved) below a
    collection whose grants apply to its contents: then the grants must run again (at once,
    rather than at the next `regrant_seconds` pass). ACL events are ignored: the grants run itself
    causes those."""
    titles = {c.title for c in iconik_section(policy.access).collections if c.apply_to_contents}
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
    raw = await store.kv_get(ACCESS, "iconik:collections")  # title → id, as the last grants run resolved them
    resolved: dict[str, str] = orjson.loads(raw) if raw else {}
    return any(resolved.get(title) in above for title in titles)

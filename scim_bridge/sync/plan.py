"""`scim-bridge plan`: what the current directory and a policy would change in each target,
computed against the ID map (what the bridge last applied), without calling any target.

It answers "what happens if I deploy this policy?" before it happens. Differences made by hand
in a target are not seen here: that is reconciliation's job (it lists the targets).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import orjson

from ..store import Store
from .access_sync import ACCESS, policy_grants
from .engine import SyncEngine
from .idmap import IdMap
from .policy import Policy


@dataclass(frozen=True)
class Change:
    target: str
    action: str  # create-user, update-user, disable-user, enable-user, delete-user, add-member, remove-member,
    #              create-group, rename-group, delete-group, create-folder, create-collection, grant, revoke,
    #              join-project, leave-project, guardrail
    subject: str  # email or group name
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.target:10} {self.action:14} {self.subject}{'  ' + self.detail if self.detail else ''}"


async def plan(store: Store, policy: Policy) -> list[Change]:
    engine = SyncEngine(store, policy, {})
    idmap = IdMap(store)
    groups = {r.id: orjson.loads(r.body) async for r in _all(store, "Group")}
    names = {gid: g.get("displayName", "") for gid, g in groups.items()}
    member_of: dict[str, dict[str, str]] = {}
    for gid, group in groups.items():
        for member in group.get("members") or []:
            member_of.setdefault(member["value"], {})[gid] = names[gid]
    changes: list[Change] = []
    for target in policy.enabled_targets():
        known_groups = {
            key.split("/", 1)[1]: value for key, value in await idmap.entries(target) if key.startswith("Group/")
        }
        wanted_groups: dict[str, str] = {}
        for gid, name in names.items():
            mirrored = policy.groups.mirrored_name(name)
            if mirrored:
                wanted_groups[gid] = mirrored
        present = set()
        async for record in _all(store, "User"):
            present.add(record.id)
            document = orjson.loads(record.body)
            desired = engine.desired_user(target, document, member_of.get(record.id, {}))
            for key, name in desired.groups.items():
                if key.startswith("derived:"):
                    wanted_groups.setdefault(key, name)
            known = await idmap.get(target, "User", record.id)
            changes += _user_changes(target, document, desired, known)
        for key, entry in await idmap.entries(target):  # users the directory no longer has
            kind, scim_id = key.split("/", 1)
            if kind == "User" and scim_id not in present and entry.get("id"):
                email = (entry.get("applied") or {}).get("email", scim_id)
                if policy.deprovision == "delete":
                    changes.append(Change(target, "delete-user", email))
                elif (entry.get("applied") or {}).get("enabled", True):
                    changes.append(Change(target, "disable-user", email, "deleted in the directory"))
        for key, name in wanted_groups.items():
            known = known_groups.get(key)
            if known is None:
                changes.append(Change(target, "create-group", name))
            elif known.get("name") != name:
                changes.append(Change(target, "rename-group", known.get("name", "?"), f"→ {name}"))
        for key, known in known_groups.items():
            if key not in wanted_groups and not key.startswith("derived:"):
                changes.append(Change(target, "delete-group", known.get("name", key)))
        changes += await _access_changes(store, policy, target, set(wanted_groups.values()))
    return changes


async def _access_changes(store: Store, policy: Policy, target: str, group_names: set[str]) -> list[Change]:
    """Folders / collections to create and grants to add or take back, against what was last applied."""
    grants = [g for g in policy_grants(policy, sorted(group_names)) if g.target == target]  # workspaces by name
    raw = await store.kv_get(ACCESS, f"{target}:applied")
    applied: dict[str, dict[str, list[str]]] = orjson.loads(raw) if raw else {}
    changes: list[Change] = []
    resources = dict.fromkeys(g.resource for g in grants)
    if target == "cloudinary":
        resources.update(dict.fromkeys(f.path for f in policy.access.cloudinary.folders))
    else:
        resources.update(dict.fromkeys(c.title for c in policy.access.iconik.collections))
    kind = "folder" if target == "cloudinary" else "collection"
    for resource in resources:
        if await store.kv_get(ACCESS, f"{target}:{kind}:{resource}") is None and resource not in applied:
            changes.append(Change(target, f"create-{kind}", resource))
        desired: dict[str, set[str]] = {}
        for grant in (g for g in grants if g.resource == resource):
            name = policy.groups.mirrored_name(grant.group) or grant.group
            if name in group_names:
                desired.setdefault(name, set()).update(grant.rights)
        had = {name: set(rights) for name, rights in applied.get(resource, {}).items()}
        for name in sorted(set(had) | set(desired)):
            gone, new = had.get(name, set()) - desired.get(name, set()), desired.get(name, set()) - had.get(name, set())
            if gone:
                changes.append(Change(target, "revoke", resource, f"{', '.join(sorted(gone))} from {name}"))
            if new:
                changes.append(Change(target, "grant", resource, f"{', '.join(sorted(new))} to {name}"))
    return changes


def _user_changes(target: str, document: dict[str, Any], desired: Any, known: dict[str, Any] | None) -> list[Change]:
    account = desired.account
    email = account.email if account else document.get("userName", "?")
    if known is None or not known.get("id"):
        if account is None or not account.enabled:
            return []
        changes = [Change(target, "create-user", email, f"role={account.role}")]
        changes += [Change(target, "add-member", email, f"to {name}") for name in sorted(desired.groups.values())]
        changes += [Change(target, "join-project", email, name) for name in sorted(desired.projects.values())]
        if desired.note:
            changes.append(Change(target, "guardrail", email, desired.note))
        return changes
    applied = known.get("applied") or {}
    changes = []
    new = asdict(account)
    if applied.get("enabled") != new["enabled"]:
        changes.append(Change(target, "disable-user" if not new["enabled"] else "enable-user", email))
    if applied.get("role") != new["role"]:
        changes.append(Change(target, "update-user", email, f"role {applied.get('role')} → {new['role']}"))
    other = {k for k in new if k not in ("enabled", "role") and applied.get(k) != new[k]}
    if other:
        changes.append(Change(target, "update-user", email, ", ".join(sorted(other))))
    had = set((known.get("group_names") or {}).values())
    wants = set(desired.groups.values())
    changes += [Change(target, "add-member", email, f"to {name}") for name in sorted(wants - had)]
    changes += [Change(target, "remove-member", email, f"from {name}") for name in sorted(had - wants)]
    in_projects = set((known.get("projects") or {}).keys())
    changes += [
        Change(target, "join-project", email, name)
        for key, name in sorted(desired.projects.items())
        if key not in in_projects
    ]
    changes += [Change(target, "leave-project", email, key) for key in sorted(in_projects - set(desired.projects))]
    if desired.note:
        changes.append(Change(target, "guardrail", email, desired.note))
    return changes


async def _all(store: Store, resource_type: str) -> Any:
    async for record in store.scan(resource_type):
        yield record

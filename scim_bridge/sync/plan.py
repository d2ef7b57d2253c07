"""`scim-bridge plan`: what the current directory and a policy would change in each target,
computed against the ID map (what the bridge last applied), without calling any target.

It answers "what happens if I deploy this policy?" before it happens. Differences made by hand
in a target are not seen here: that is reconciliation's job (it lists the targets).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import orjson

from ..store import Store
from ..targets.base import TargetUser
from .access_sync import ACCESS
from .desired import AccessModel
from .idmap import IdMap
from .policy import Policy, UserFacts

# The grants whose last applied state the grants run keeps per resource ("{target}:applied"): the
# others (Cloudinary collections, moderation, agency keys) are diffed by reconcile against the target.
DIFFED_KINDS = ("folder", "collection")
ACCOUNT_FIELDS = fields(TargetUser)


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
    """Every change, per target: the desired-access model (sync/desired.py) of each directory user
    and group, against what the ID map says was applied. One scan of the directory."""
    model = AccessModel(policy)
    names: dict[str, str] = {}
    member_of: dict[str, dict[str, str]] = {}
    async for group_record in store.scan("Group"):
        body = orjson.loads(group_record.body)
        names[group_record.id] = body.get("displayName", "")
        for member in body.get("members") or []:
            member_of.setdefault(member["value"], {})[group_record.id] = names[group_record.id]
    targets = model.targets
    known: dict[str, dict[str, bytes]] = {t: dict(await IdMap(store).raw_entries(t)) for t in targets}
    user_changes: dict[str, list[Change]] = {t: [] for t in targets}
    wanted_groups: dict[str, dict[str, str]] = {t: {} for t in targets}
    for gid, name in names.items():
        group = model.group(name)
        for target in targets:
            mirrored = group.targets[target].name
            if mirrored:
                wanted_groups[target][gid] = mirrored
    present: set[str] = set()
    async for record in store.scan("User"):
        present.add(record.id)
        document = orjson.loads(record.body)
        groups = member_of.get(record.id, {})
        facts = UserFacts.of(document, sorted(groups.values()))
        for target in targets:
            desired = model.for_target(target, document, groups, facts).desired_user()
            for key, name in desired.groups.items():
                if key.startswith("derived:"):
                    wanted_groups[target].setdefault(key, name)
            raw = known[target].get(f"User/{record.id}")
            user_changes[target] += _user_changes(target, document, desired, orjson.loads(raw) if raw else None)
    changes: list[Change] = []
    for target in targets:
        changes += user_changes[target]
        entries = known[target]
        for key, raw in entries.items():  # users the directory no longer has
            kind, scim_id = key.split("/", 1)
            if kind != "User" or scim_id in present:
                continue
            entry = orjson.loads(raw)
            if entry.get("id"):
                email = (entry.get("applied") or {}).get("email", scim_id)
                if policy.deprovision == "delete":
                    changes.append(Change(target, "delete-user", email))
                elif (entry.get("applied") or {}).get("enabled", True):
                    changes.append(Change(target, "disable-user", email, "deleted in the directory"))
        known_groups = {
            key.split("/", 1)[1]: orjson.loads(raw) for key, raw in entries.items() if key.startswith("Group/")
        }
        for key, name in wanted_groups[target].items():
            had = known_groups.get(key)
            if had is None:
                changes.append(Change(target, "create-group", name))
            elif had.get("name") != name:
                changes.append(Change(target, "rename-group", had.get("name", "?"), f"→ {name}"))
        for key, had in known_groups.items():
            if key not in wanted_groups[target] and not key.startswith("derived:"):
                changes.append(Change(target, "delete-group", had.get("name", key)))
        changes += await _access_changes(store, model, target, set(wanted_groups[target].values()))
    return changes


async def _access_changes(store: Store, model: AccessModel, target: str, group_names: set[str]) -> list[Change]:
    """Folders / collections to create and grants to add or take back, against what was last
    applied: what the model's groups carry (workspaces by the derived groups' names)."""
    raw = await store.kv_get(ACCESS, f"{target}:applied")
    applied: dict[str, dict[str, list[str]]] = orjson.loads(raw) if raw else {}
    carried = [(name, g) for name in sorted(group_names) for g in model.grants_of(target, name, derived=True)]
    roles = [(name, g) for name, g in carried if g.kind == "group-role"]
    carried = [(name, g) for name, g in carried if g.kind in DIFFED_KINDS]
    resources: dict[tuple[str, str], None] = dict.fromkeys((g.kind, g.resource) for _, g in carried)
    resources.update(dict.fromkeys(model.policy.access.section(target).resources()))
    changes: list[Change] = []
    for kind, resource in resources:
        if await store.kv_get(ACCESS, f"{target}:{kind}:{resource}") is None and resource not in applied:
            changes.append(Change(target, f"create-{kind}", resource))
        desired: dict[str, set[str]] = {}
        for name, grant in carried:
            if grant.resource == resource and grant.kind == kind:
                desired.setdefault(name, set()).update(grant.rights)
        had = {name: set(rights) for name, rights in applied.get(resource, {}).items()}
        for name in sorted(set(had) | set(desired)):
            gone, new = had.get(name, set()) - desired.get(name, set()), desired.get(name, set()) - had.get(name, set())
            if gone:
                changes.append(Change(target, "revoke", resource, f"{', '.join(sorted(gone))} from {name}"))
            if new:
                changes.append(Change(target, "grant", resource, f"{', '.join(sorted(new))} to {name}"))
    raw = await store.kv_get(ACCESS, f"{target}:applied:group-role")  # group → roles the grants run set
    given: dict[str, list[str]] = orjson.loads(raw) if raw else {}
    wanted: dict[str, set[str]] = {}
    for name, grant in roles:
        wanted.setdefault(name, set()).update(grant.rights)
    for name in sorted(set(given) | set(wanted)):
        gone, new = (
            set(given.get(name, [])) - wanted.get(name, set()),
            wanted.get(name, set()) - set(given.get(name, [])),
        )
        if gone:
            changes.append(Change(target, "revoke", f"roles of {name}", ", ".join(sorted(gone))))
        if new:
            changes.append(Change(target, "grant", f"roles of {name}", ", ".join(sorted(new))))
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
    new = {f.name: getattr(account, f.name) for f in ACCOUNT_FIELDS}  # asdict's deep copy, 100,000 times, shows
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
    if desired.note and changes:  # why the changes stop short; a note alone is not a change
        changes.append(Change(target, "guardrail", email, desired.note))
    return changes

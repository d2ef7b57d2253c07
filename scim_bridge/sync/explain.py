"""`scim-bridge explain USER`: rule by rule, why a user has each role, group, folder role,
collection permission and project in each target, under the current directory and policy.

It reads the store and the policy only (no target call), like `plan`; the last line per target
says whether the ID map shows that state applied yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ..scim.filters import fold
from ..store import Store
from .access_sync import policy_grants
from .engine import SyncEngine
from .idmap import IdMap
from .passlog import role_reason
from .policy import Policy, UserFacts


@dataclass
class Explanation:
    user: dict[str, Any]
    targets: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # target → [(what, why)]

    def lines(self) -> list[str]:
        out = [f"{self.user['userName']} ({self.user['id']})"]
        for target, items in self.targets.items():
            out.append(f"  {target}:")
            out += [f"    {what:44} ← {why}" for what, why in items]
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "targets": {t: [{"grant": w, "because": y} for w, y in items] for t, items in self.targets.items()},
        }


async def find_user(store: Store, who: str) -> Any:
    record = await store.get("User", who)
    if record is None:
        ids = await store.lookup("User", "username", fold(who))
        record = await store.get("User", ids[0]) if ids else None
    return record


async def explain(store: Store, policy: Policy, who: str) -> Explanation | None:
    record = await find_user(store, who)
    if record is None:
        return None
    document = orjson.loads(record.body)
    _, group_ids = await store.get_with_referrers("User", record.id, "Group", "members.value")
    groups = {r.id: orjson.loads(r.body).get("displayName", "") for r in await store.get_many("Group", group_ids)}
    facts = UserFacts.of(document, sorted(groups.values()))
    engine = SyncEngine(store, policy, {})
    result = Explanation(
        {
            "id": record.id,
            "userName": document.get("userName"),
            "active": document.get("active", True),
            "external": policy.is_external(facts),
        }
    )
    for target in policy.enabled_targets():
        desired = engine.desired_user(target, document, groups)
        items: list[tuple[str, str]] = []
        account = desired.account
        if account is not None:
            items.append((f"role {account.role}", role_reason(policy, target, facts)))
            items.append(
                (
                    f"account {'enabled' if account.enabled else 'disabled'}",
                    "active in the directory" if account.enabled else (desired.note or "inactive in the directory"),
                )
            )
        for key, name in sorted(desired.groups.items(), key=lambda kv: kv[1]):
            if key.startswith("derived:"):
                items.append((f"group {name}", "derived from attributes (derived_groups / workspaces)"))
            else:
                items.append(
                    (f"group {name}", f"member of directory group {groups.get(key, key)!r}, mirrored by groups")
                )
        names = set(desired.groups.values())
        for grant in policy_grants(policy, sorted(names)):
            group_name = policy.groups.mirrored_name(grant.group) or grant.group
            if grant.target == target and group_name in names:
                kind = "folder" if target == "cloudinary" else "collection"
                items.append(
                    (
                        f"{kind} {grant.resource}: {', '.join(r.rsplit('::', 1)[-1] for r in grant.rights)}",
                        f"{grant.rule} via group {group_name}",
                    )
                )
        for key, project in sorted(desired.projects.items()):
            items.append(
                (f"project {project}", f"member of directory group {groups.get(key, key)!r} (access.iconik.projects)")
            )
        if desired.note:
            items.append(("guardrail", desired.note))
        known = await IdMap(store).get(target, "User", record.id)
        items.append(("applied", f"ID map state: {known.get('status') if known else 'not synced yet'}"))
        result.targets[target] = items
    return result


_role_reason = role_reason  # audit/review.py imports it by this name

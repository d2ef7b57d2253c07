"""`scim-bridge explain USER`: rule by rule, why a user has each role, group, folder role,
collection permission and project in each target, under the current directory and policy: the
desired-access model (sync/desired.py) printed, entry by entry, with what a guardrail withheld.

It reads the store and the policy only (no target call), like `plan`; the last line per target
says whether the ID map shows that state applied yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ..scim.filters import fold
from ..store import Store
from .desired import ACCOUNT, GROUP, PROJECT, ROLE, AccessModel, TargetAccess, grant_kinds
from .idmap import IdMap
from .passlog import role_reason
from .policy import Policy, UserFacts


@dataclass
class Explanation:
    user: dict[str, Any]
    targets: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # target → [(what, why)]
    model: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # target → the model's entries

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
            "model": self.model,  # every entry with its rule, directory fact and guardrail verdict
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
    person = AccessModel(policy).person(record.id, document, groups)
    result = Explanation(
        {
            "id": record.id,
            "userName": document.get("userName"),
            "active": document.get("active", True),
            "external": person.external,
        }
    )
    idmap = IdMap(store)
    for target, access in person.targets.items():
        items = explain_target(policy, target, facts, access)
        known = await idmap.get(target, "User", record.id)
        items.append(("applied", f"ID map state: {known.get('status') if known else 'not synced yet'}"))
        result.targets[target] = items
        result.model[target] = [e.as_json() for e in access.entries]
    return result


def explain_target(policy: Policy, target: str, facts: UserFacts, access: TargetAccess) -> list[tuple[str, str]]:
    """The model's entries for one target as (what, why) lines: role, account, groups, grants,
    projects, then what a guardrail withheld and its note."""
    items: list[tuple[str, str]] = []
    if access.account is not None:
        items.append((f"role {access.account.role}", role_reason(policy, target, facts)))
        [state] = access.allowed(ACCOUNT)
        items.append((state.what(), access.note if not access.account.enabled and access.note else state.why()))
    for entry in sorted(access.allowed(GROUP), key=lambda e: e.subject):
        items.append((entry.what(), entry.why()))
    kinds = grant_kinds()
    order = {kind: i for i, kind in enumerate(kinds)}
    for entry in sorted(access.allowed(*kinds), key=lambda e: (order[e.kind], e.subject, e.via)):
        items.append((entry.what(), entry.why()))
    for entry in sorted(access.allowed(PROJECT), key=lambda e: e.subject):
        items.append((entry.what(), entry.why()))
    for entry in access.withheld:
        if entry.kind != ROLE:  # a withheld role is in the role line's reason
            items.append((entry.what(), entry.why()))
    if access.note:
        items.append(("guardrail", access.note))
    return items


_role_reason = role_reason  # audit/review.py imports it by this name

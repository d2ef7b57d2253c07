"""Who reviews where: the reviewer rules (`access.reviewers`) read against the directory.

One computation for the two places that need it, so they cannot disagree: `GET /api/v1/reviewers`
(web/api_v1.py) answers who must approve in a folder or collection, and reviewer routing
(sync/approvals.py) asks exactly those people when new content arrives. A reviewer is a direct
member of the rule's directory group who is active as the sync sees it (`active` not false, no
external access date passed); one who left is not one.

Does not: call a target (the target ids come from the ID map), nor change anything.
"""

from __future__ import annotations

import fnmatch
from typing import Any

import orjson

from ..scim.filters import fold
from ..store import Store
from .access import expired
from .access_sync import match_template
from .idmap import IdMap
from .policy import Policy, UserFacts


def matches(globs: list[str], value: str) -> bool:
    """No glob: everywhere. Case-insensitive, like the external profile's globs (sync/guardrails.py)."""
    return not globs or any(fnmatch.fnmatchcase(value.lower(), glob.lower()) for glob in globs)


async def reviewer_group(store: Store, policy: Policy, target: str, index: int, group: str) -> dict[str, Any]:
    """One rule's group: the directory group, the target group it becomes, its active members."""
    idmap = IdMap(store)
    answer: dict[str, Any] = {
        "rule": f"access.reviewers[{index}]",
        "group": group,
        "directoryGroup": None,
        "targetGroup": None,
        "members": [],
    }
    group_ids = await store.lookup("Group", "displayname", fold(group))
    record = await store.get("Group", group_ids[0]) if group_ids else None
    if record is None:
        derived = any(
            match_template(t, group) is not None for t in [*policy.derived_groups, *policy.access.workspace_groups()]
        )
        answer["note"] = (
            "a derived group: its members follow an attribute and are not listed here"
            if derived
            else "no directory group has this name"
        )
        return answer
    document = orjson.loads(record.body)
    answer["directoryGroup"] = {"id": record.id, "displayName": document.get("displayName")}
    mapped = await idmap.get(target, "Group", record.id)
    name = policy.groups.mirrored_name(document.get("displayName", ""))
    if mapped or name:
        answer["targetGroup"] = {"name": (mapped or {}).get("name") or name, "id": (mapped or {}).get("id")}
    # Direct members only: SCIM groups in a group are not expanded (the targets do not nest either).
    member_ids = [m["value"] for m in document.get("members") or [] if isinstance(m, dict) and m.get("value")]
    for user in await store.get_many("User", member_ids):
        person = orjson.loads(user.body)
        if not await is_active(store, policy, user.id, person):
            continue
        account = await idmap.get(target, "User", user.id)
        answer["members"].append(
            {
                "id": user.id,
                "userName": person.get("userName"),
                "displayName": person.get("displayName"),
                "email": _email(person),
                "targetId": (account or {}).get("id"),
            }
        )
    return answer


def _email(document: dict[str, Any]) -> str | None:
    emails = [e for e in document.get("emails") or [] if isinstance(e, dict) and e.get("value")]
    return next((e["value"] for e in emails if e.get("primary")), emails[0]["value"] if emails else None)


async def is_active(
    store: Store, policy: Policy, scim_id: str, document: dict[str, Any], group_names: list[str] | None = None
) -> bool:
    """Active as the sync sees it: `active` not false, and no external access date passed
    (the same rule as SyncEngine.desired_user)."""
    if document.get("active", True) is False:
        return False
    attribute = policy.access.external.expiry_attribute
    if not expired(document, attribute):
        return True
    if group_names is None:  # only on this rare path: a passed date, so is the user external?
        groups = await store.get_many("Group", await store.lookup("Group", "members.value", scim_id))
        group_names = [orjson.loads(g.body).get("displayName", "") for g in groups]
    return not policy.is_external(UserFacts.of(document, sorted(group_names)))

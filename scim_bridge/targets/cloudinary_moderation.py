"""Folder-scoped moderation in the access review: the custom policies the bridge owns (named
`REVIEWER_POLICY + "<group> on <folder>"`, targets/cloudinary_grants.py), each with the reviewer rule
that gives it, read from the target as it is (the grants' `held()` hands them to audit/review.py,
which renders them as `moderation` resources).

A policy's principal is read from its own statement, not from the ID map: a review shows what the
target holds. A bridge-named policy whose name no rule accounts for (a rule removed, a folder no
longer matched) has no rule: it is what reconciliation removes.

Does not: change anything, nor read the global moderation role (one role, shown by
GET /api/v1/reviewers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..sync.reviewers import matches
from .capabilities import FolderGrants

REVIEWER_POLICY = "scim-bridge reviewers: "  # the name prefix of the custom policies the bridge owns

_PRINCIPAL = re.compile(r'principal in \w+::Group::"([^"]+)"')  # moderate_statement's principal


@dataclass(frozen=True)
class ModerationPolicy:
    name: str
    id: str
    group_id: str | None  # the group the statement permits; None: a statement the bridge did not write
    rule: str | None  # the reviewer rule that gives it; None: no rule does
    enabled: bool


def rule_of(reviewers: list[Any], name: str) -> str | None:
    """The reviewer rule behind a bridge-named policy: its group, and a folder glob matching its folder."""
    group, _, path = name.removeprefix(REVIEWER_POLICY).rpartition(" on ")
    return next(
        (
            f"access.reviewers[{index}]"
            for index, rule in enumerate(reviewers)
            if rule.group == group and rule.folders and matches(rule.folders, path)
        ),
        None,
    )


async def moderation_policies(reviewers: list[Any], folders: FolderGrants) -> list[ModerationPolicy]:
    found = []
    for held in await folders.custom_policies():
        name = str(held.get("name") or "")
        if not name.startswith(REVIEWER_POLICY):
            continue  # someone else's policy: not the bridge's to account for
        principal = _PRINCIPAL.search(str(held.get("policy_statement") or ""))
        found.append(
            ModerationPolicy(
                name,
                str(held.get("id")),
                principal.group(1) if principal else None,
                rule_of(reviewers, name),
                bool(held.get("enabled", True)),
            )
        )
    return sorted(found, key=lambda p: p.name)

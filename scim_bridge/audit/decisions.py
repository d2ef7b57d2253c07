"""Guardrail decisions and expiries in the audit trail: one `kind: "guardrail"` entry each time a
decision about a person starts to apply, and one when it stops.

    {"kind": "guardrail", "correlation", "decision": "withhold-group" | "change-role" | "expire",
     "state": "applied" | "lifted", "resource": {"type": "User", "id", "name"},
     "rule": the policy rule whose grant was withheld ("access.iconik.workspaces[0]"), or the
             guardrail that decided ("roles[2]", "access.external.expiry_attribute"),
     "group"?: the withheld group, "target"?: the target whose role changed, "detail": in words}

The decisions are those the engine applies, from the same pure functions (sync/guardrails.py);
the engine asks here once per user pass. Only changes are written (the set last written is kept
in the store's kv, namespace "guardrail-decisions"), so a person synced a hundred times while
withheld from a group has one entry for it, and one more on the day it is lifted.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ..store import Store, StoreUnavailable
from .context import CORRELATION_ID

if TYPE_CHECKING:
    from ..sync.policy import Policy, UserFacts

log = logging.getLogger("scim_bridge.audit")
DECISIONS = "guardrail-decisions"  # kv: SCIM id → the decisions last written, as JSON
_ROLES_RULE = re.compile(r"roles\[\d+\]")


@dataclass(frozen=True)
class Decision:
    decision: str  # withhold-group | change-role | expire
    rule: str
    detail: str
    group: str | None = None
    target: str | None = None

    @property
    def key(self) -> str:
        return f"{self.decision}|{self.rule}|{self.group or ''}|{self.target or ''}"

    def as_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"decision": self.decision, "rule": self.rule, "detail": self.detail}
        if self.group is not None:
            found["group"] = self.group
        if self.target is not None:
            found["target"] = self.target
        return found


def decisions_for(policy: Policy, document: dict[str, Any], facts: UserFacts, targets: list[str]) -> list[Decision]:
    """Every guardrail decision the engine applies to this person now."""
    from ..sync.access import expired
    from ..sync.guardrails import all_withheld, decide_role, group_problems_by_rule

    if not policy.is_external(facts):
        return []
    found: list[Decision] = []
    attribute = policy.access.external.expiry_attribute
    if document.get("active", True) is not False and expired(document, attribute):
        found.append(
            Decision(
                "expire",
                f"access.external.expiry_attribute ({attribute})",
                f"external access of {facts.user_name} expired: every account disabled",
            )
        )
    for group in sorted(all_withheld(policy, facts)):
        for rule, problem in group_problems_by_rule(policy, group):
            found.append(
                Decision(
                    "withhold-group",
                    rule,
                    f"external user {facts.user_name} not added to {group}: it grants {problem}",
                    group=group,
                )
            )
    for target in targets:
        note = decide_role(policy, target, facts).note
        if note:
            cited = _ROLES_RULE.search(note)
            rule = cited.group(0) if cited else "access.external"
            found.append(Decision("change-role", rule, note.removeprefix("guardrail: "), target=target))
    return found


async def record_user(
    store: Store, policy: Policy, scim_id: str, document: dict[str, Any], facts: UserFacts, targets: list[str]
) -> None:
    """Append an entry for every decision that started or stopped applying since the last pass.
    Never raises: the pass's own work goes on (a store outage here is logged)."""
    if not policy.guardrails.external and not policy.guardrails.internal_email_domains:
        return  # nobody is ever external: no decision to make
    try:
        now = {d.key: d for d in decisions_for(policy, document, facts, targets)}
        raw = await store.kv_get(DECISIONS, scim_id)
        before: dict[str, dict[str, Any]] = orjson.loads(raw) if raw else {}
        if set(now) == set(before):
            return
        resource = {"type": "User", "id": scim_id, "name": facts.user_name}
        correlation = CORRELATION_ID.get()
        entries = [
            _entry({**d.as_json(), "state": "applied"}, resource, correlation)
            for key, d in now.items()
            if key not in before
        ]
        entries += [
            _entry({**old, "state": "lifted"}, resource, correlation) for key, old in before.items() if key not in now
        ]
        await store.audit_append(entries)
        if now:
            await store.kv_put(DECISIONS, scim_id, orjson.dumps({k: d.as_json() for k, d in now.items()}))
        else:
            await store.kv_delete(DECISIONS, scim_id)
    except StoreUnavailable:
        log.warning("guardrail decisions of User %s not recorded: store down", scim_id)


def _entry(decision: dict[str, Any], resource: dict[str, Any], correlation: str | None) -> bytes:
    return orjson.dumps(
        {"kind": "guardrail", "correlation": correlation, "resource": resource, **decision},
        option=orjson.OPT_SORT_KEYS,
    )

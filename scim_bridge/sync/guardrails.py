"""Guardrails for external users (agencies, contractors, anyone outside
`guardrails.internal_email_domains`), held twice against the external profile (`access.external`):

* at load time (`policy_violations`): a rule aimed at external people (a role rule, a folder,
  Cloudinary collection or iconik collection grant, a workspace, a project team, an agency key,
  a reviewer entry) that would give them an admin role, a role or user type the profile does not
  list, an internal-only resource, anything outside the profile's folders and collections, or a
  right above its ceiling, is refused with the rule's name (and its line, policy.py);
* at apply time (`withheld_groups`, `decide_role`): an external *person* (matched by attribute or
  email domain, which the policy cannot know in advance) is kept out of any group whose grants,
  workspace or project break the same rules, and a withheld group gives nothing: it is left out
  of role matching too, and whatever role is left is held to the profile. The ID map, `plan` and
  `explain` say why, from these same functions.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..targets.registry import TARGETS
from .access import FOLDER_ROLES, fill, folder_role_id

if TYPE_CHECKING:
    from .policy import Match, Policy, UserFacts

Problems = list[tuple[tuple[str | int, ...], str]]


def _glob_overlap(a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    return fnmatch.fnmatchcase(a, b) or fnmatch.fnmatchcase(b, a)


def _as_glob(template: str) -> str:
    """A template such as "Region {division}" as the glob of every name it can give."""
    return re.sub(r"\{\w+(\|lower)?\}", "*", template)


def external_group(policy: Policy, group: str) -> bool:
    """Whether membership of `group` alone makes someone external (a `group:` guardrail)."""
    return any(
        m.group is not None and not m.attribute and m.email_domain is None and _glob_overlap(group, m.group)
        for m in policy.guardrails.external
    )


def aimed_at_external(policy: Policy, when: Match) -> bool:
    """Whether everyone a roles rule's `when` matches is external, as far as the policy can tell."""
    if when.group is not None and external_group(policy, when.group):
        return True
    if when.email_domain is not None:
        domains = policy.guardrails.internal_email_domains
        if domains and when.email_domain.lower() not in domains:
            return True
        if any(
            m.email_domain and m.email_domain.lower() == when.email_domain.lower() for m in policy.guardrails.external
        ):
            return True
    for m in policy.guardrails.external:  # an attribute guardrail the rule's own attributes imply
        if m.attribute and m.group is None and m.email_domain is None and when.attribute:
            if all(k in when.attribute and _glob_overlap(when.attribute[k], v) for k, v in m.attribute.items()):
                return True
    return False


def _folder_problem(policy: Policy, path: str, internal: bool, role: str) -> str | None:
    profile = policy.access.external
    if internal:
        return f"internal-only folder {path}"
    if profile.folders and not any(fnmatch.fnmatchcase(path.lower(), p.lower()) for p in profile.folders):
        return f"folder {path}, which is not among access.external.folders"
    ceiling = FOLDER_ROLES.index(profile.max_folder_role)
    ladder = [folder_role_id(r) for r in FOLDER_ROLES]
    role_id = folder_role_id(role)
    if role_id not in ladder or ladder.index(role_id) > ceiling:
        return f"folder role {role} on {path}, above access.external.max_folder_role ({profile.max_folder_role})"
    return None


def _collection_problem(
    policy: Policy, title: str, internal: bool, permissions: list[str], kind: str = "collection"
) -> str | None:
    """`title` may be a glob (a workspace or project template): it must fall inside the profile."""
    profile = policy.access.external
    if internal:
        return f"internal-only {kind} {title}"
    if profile.collections and not any(fnmatch.fnmatchcase(title.lower(), p.lower()) for p in profile.collections):
        return f"{kind} {title}, which is not among access.external.collections"
    above = sorted(set(permissions) - set(profile.max_collection_permissions))
    if above:
        return f"{', '.join(above)} on {kind} {title}, above access.external.max_collection_permissions"
    return None


def _role_problem(policy: Policy, target: str, role: str) -> str | None:
    if role in policy.admin_roles(target):
        return f"{target} admin role {role}"
    if role == policy.default_role(target):
        return None
    allowed, where = policy.external_roles(target)
    return None if role in allowed else f"{target} role {role}, which is not among {where}"


class ExternalProfile:
    """What the load-time guardrails ask of the external profile (`access.external` with
    `guardrails.external`), handed to each target's `access.<name>` section so that it checks its
    own rules (`TargetSection.guardrail_problems`, `group_problems`) without knowing the policy."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def external_group(self, group: str) -> bool:
        """Whether membership of `group` alone makes someone external (a `group:` guardrail)."""
        return external_group(self.policy, group)

    def folder_problem(self, path: str, internal: bool, role: str) -> str | None:
        """Why a folder role on `path` must not be an external person's (None: it may be)."""
        return _folder_problem(self.policy, path, internal, role)

    def collection_problem(
        self, title: str, internal: bool, permissions: list[str], kind: str = "collection"
    ) -> str | None:
        """Why `permissions` on a collection titled `title` (a glob for a template) must not be an
        external person's (None: they may be)."""
        return _collection_problem(self.policy, title, internal, permissions, kind)

    def templated_reach(self, attribute: str, group: str, resource: str) -> str | None:
        """The names (a glob) of a per-value resource (a workspace, a per-attribute folder: the
        `resource` template on `attribute`, granted to the derived `group` template) that external
        people reach, if any."""
        if external_group(self.policy, _as_glob(group)):
            return _as_glob(resource)
        for (
            m
        ) in self.policy.guardrails.external:  # a resource per value of the very attribute that makes people external
            pattern = (m.attribute or {}).get(attribute)
            if pattern is not None and m.group is None and m.email_domain is None:
                return _as_glob(fill(resource, {attribute: pattern}) or resource)
        return None


def policy_violations(policy: Policy) -> Problems:
    """(where in the YAML, what is wrong) for every rule aimed at external people that breaks a guardrail."""
    problems: Problems = []
    access = policy.access
    for index, rule in enumerate(policy.roles):
        if not aimed_at_external(policy, rule.when):
            continue
        for target in TARGETS:
            role = rule.role(target)
            problem = _role_problem(policy, target, role) if role else None
            if problem:
                problems.append(
                    (
                        ("roles", index),
                        f"roles[{index}]: gives {problem} to {rule.when.model_dump(exclude_none=True)}, "
                        "which guardrails make external",
                    )
                )
    profile = ExternalProfile(policy)
    for name, section in access.sections().items():  # each target's section checks its own rules
        problems += [(("access", name, *where), problem) for where, problem in section.guardrail_problems(profile)]
    for r_index, reviewer in enumerate(access.reviewers):
        if external_group(policy, reviewer.group):
            problems.append(
                (
                    ("access", "reviewers", r_index),
                    f"access.reviewers[{r_index}]: external group {reviewer.group!r} would receive "
                    f"{' and '.join([*_reviewer_grants(policy), 'reviewer routing'])}, "
                    "which access.external does not allow",
                )
            )
    return problems


def _reviewer_grants(policy: Policy) -> list[str]:
    """What the targets give a reviewer group besides reviewer routing (a moderation role)."""
    return [grant for section in policy.access.sections().values() if (grant := section.reviewer_grant())]


def group_problems(policy: Policy, name: str) -> list[str]:
    """What membership of the group (or derived group) `name` would give an external person that
    the profile does not allow."""
    return sorted({p for _, p in group_problems_by_rule(policy, name)}, key=lambda p: (not p.startswith("internal"), p))


def group_problems_by_rule(policy: Policy, name: str) -> list[tuple[str, str]]:
    """group_problems with the rule that gives each (for the audit trail: audit/decisions.py)."""
    access, lowered = policy.access, name.lower()
    problems: list[tuple[str, str | None]] = []
    profile = ExternalProfile(policy)
    for section in access.sections().values():
        problems += section.group_problems(profile, name)
    for r_index, reviewer in enumerate(access.reviewers):
        if reviewer.group.lower() == lowered:
            problems.append(
                (
                    f"access.reviewers[{r_index}]",
                    f"{' and '.join(['reviewer routing', *_reviewer_grants(policy)])} (access.reviewers)",
                )
            )
    return [(rule, problem) for rule, problem in problems if problem]


def withheld_groups(policy: Policy, facts: UserFacts, group_names: list[str]) -> dict[str, str]:
    """For an external user: the groups (by directory or derived name) it must not join, and why."""
    if not policy.is_external(facts):
        return {}
    withheld: dict[str, str] = {}
    for name in dict.fromkeys(group_names):
        found = group_problems(policy, name)
        if found:
            withheld[name] = f"guardrail: external user {facts.user_name} not added to {name}: it grants " + "; ".join(
                found
            )
    return withheld


def all_withheld(policy: Policy, facts: UserFacts) -> dict[str, str]:
    """withheld_groups over every group the user has: its directory groups and derived ones."""
    return withheld_groups(policy, facts, [*facts.groups, *policy.derived_group_names(facts)])


@dataclass(frozen=True)
class RoleDecision:
    role: str
    rule: int | None  # the roles rule that decided (None: the default role)
    note: str | None  # why a guardrail changed it


def decide_role(policy: Policy, target: str, facts: UserFacts) -> RoleDecision:
    """The first matching roles rule's role, else the default. For an external user the rules see
    only the groups it is not withheld from, and the role must be one `access.external` allows
    (else the default, with a note): engine, plan, explain and the provisioning log all ask here."""
    default = policy.default_role(target)
    external = policy.is_external(facts)
    withheld = all_withheld(policy, facts) if external else {}
    kept = facts.model_copy(update={"groups": [g for g in facts.groups if g not in withheld]}) if withheld else facts
    candidates = [i for i, rule in enumerate(policy.roles) if rule.role(target)]
    index = next((i for i in candidates if policy.roles[i].when.matches(kept)), None)
    notes: list[str] = []
    unheld = next((i for i in candidates if policy.roles[i].when.matches(facts)), None)
    if unheld is not None and unheld != index:
        pattern = (policy.roles[unheld].when.group or "*").lower()
        groups = ", ".join(sorted(g for g in withheld if g in facts.groups and fnmatch.fnmatchcase(g.lower(), pattern)))
        notes.append(
            f"guardrail: roles[{unheld}] not applied to external user {facts.user_name}: "
            f"it matches only through {groups}, which the guardrail withholds"
        )
    role = policy.roles[index].role(target) or default if index is not None else default
    problem = _role_problem(policy, target, role) if external else None
    if problem:
        notes.append(f"guardrail: external user {facts.user_name} may not receive {target} role {role} ({problem})")
        role = default
    return RoleDecision(role, index, "; ".join(notes) or None)

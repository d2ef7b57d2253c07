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

from ..targets.cloudinary_policy import cloudinary_section
from ..targets.iconik_policy import iconik_section
from ..targets.registry import TARGETS
from .access import FOLDER_ROLES, fill, folder_role_id
from .access_sync import match_template

if TYPE_CHECKING:
    from ..targets.cloudinary_policy import CloudinaryFolder
    from .policy import Match, Policy, UserFacts

# What a project member reaches in the project's collection (titled like the project): iconik does
# not document it (research/iconik.md §11 q8); the emulator's switch gives read and write, so the
# guardrail assumes that much.
PROJECT_PERMISSIONS = ["read", "write"]
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


def _cloudinary_collection_problem(collection_id: str, internal: bool) -> str:
    # access.external lists folders and iconik collections only: a Cloudinary collection is outside it.
    what = "internal-only Cloudinary collection" if internal else "Cloudinary collection"
    return f"{what} {collection_id}, which access.external does not list"


def _role_problem(policy: Policy, target: str, role: str) -> str | None:
    if role in policy.admin_roles(target):
        return f"{target} admin role {role}"
    if role == policy.default_role(target):
        return None
    allowed, where = policy.external_roles(target)
    return None if role in allowed else f"{target} role {role}, which is not among {where}"


def _workspace_glob(policy: Policy, index: int) -> str | None:
    """The titles (a glob) of a workspace's collections that external people reach, if any."""
    workspace = iconik_section(policy.access).workspaces[index]
    if external_group(policy, _as_glob(workspace.group)):
        return _as_glob(workspace.title)
    for m in policy.guardrails.external:  # a workspace per value of the very attribute that makes people external
        pattern = (m.attribute or {}).get(workspace.attribute)
        if pattern is not None and m.group is None and m.email_domain is None:
            return _as_glob(fill(workspace.title, {workspace.attribute: pattern}) or workspace.title)
    return None


def _attribute_folder_glob(policy: Policy, folder: CloudinaryFolder, group: str) -> str | None:
    """The paths (a glob) of a per-attribute folder that external people reach through `group` (a
    derived-group template), if any: the same test as a workspace's."""
    if external_group(policy, _as_glob(group)):
        return _as_glob(folder.path)
    for m in policy.guardrails.external:  # a folder per value of the very attribute that makes people external
        pattern = (m.attribute or {}).get(folder.attribute or "")
        if pattern is not None and m.group is None and m.email_domain is None:
            return _as_glob(fill(folder.path, {folder.attribute or "": pattern}) or folder.path)
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
    for f_index, folder in enumerate(cloudinary_section(access).folders):
        for g_index, grant in enumerate(folder.grants):
            if folder.attribute:  # a folder per value: the paths its derived group gives external people
                reach = _attribute_folder_glob(policy, folder, grant.group)
                problem = _folder_problem(policy, reach, folder.internal, grant.role) if reach else None
            else:
                problem = _folder_problem(policy, folder.path, folder.internal, grant.role)
            if problem and (folder.attribute or external_group(policy, grant.group)):
                where = f"access.cloudinary.folders[{f_index}].grants[{g_index}]"
                problems.append(
                    (
                        ("access", "cloudinary", "folders", f_index, "grants", g_index),
                        f"{where}: external group {grant.group!r} would reach {problem}",
                    )
                )
    for c_index, ccollection in enumerate(cloudinary_section(access).collections):
        for g_index, grant in enumerate(ccollection.grants):
            if external_group(policy, grant.group):
                problem = _cloudinary_collection_problem(ccollection.id, ccollection.internal)
                problems.append(
                    (
                        ("access", "cloudinary", "collections", c_index, "grants", g_index),
                        f"access.cloudinary.collections[{c_index}].grants[{g_index}]: external group "
                        f"{grant.group!r} would reach {problem}",
                    )
                )
    for k_index, key in enumerate(cloudinary_section(access).agency_keys):  # an agency key is external by nature
        for path in key.folders:
            declared = next((f for f in cloudinary_section(access).folders if f.path == path), None)
            problem = _folder_problem(policy, path, bool(declared and declared.internal), key.role)
            if problem:
                problems.append(
                    (
                        ("access", "cloudinary", "agency_keys", k_index),
                        f"access.cloudinary.agency_keys[{k_index}]: the key of {key.group!r} would reach {problem}",
                    )
                )
    for c_index, collection in enumerate(iconik_section(access).collections):
        for g_index, cgrant in enumerate(collection.grants):
            problem = _collection_problem(policy, collection.title, collection.internal, list(cgrant.permissions))
            if problem and external_group(policy, cgrant.group):
                problems.append(
                    (
                        ("access", "iconik", "collections", c_index, "grants", g_index),
                        f"access.iconik.collections[{c_index}].grants[{g_index}]: external group "
                        f"{cgrant.group!r} would reach {problem}",
                    )
                )
    for w_index, workspace in enumerate(iconik_section(access).workspaces):
        reach = _workspace_glob(policy, w_index)
        problem = _collection_problem(policy, reach, False, list(workspace.permissions), "workspace") if reach else None
        if problem:
            problems.append(
                (
                    ("access", "iconik", "workspaces", w_index),
                    f"access.iconik.workspaces[{w_index}]: external group {workspace.group!r} would reach {problem}",
                )
            )
    for p_index, pattern in enumerate(iconik_section(access).projects.groups):
        if external_group(policy, pattern):
            title = iconik_section(access).projects.name.replace("{displayName}", pattern)
            problem = _collection_problem(policy, title, False, PROJECT_PERMISSIONS, "project collection")
            if problem:
                problems.append(
                    (
                        ("access", "iconik", "projects", "groups", p_index),
                        f"access.iconik.projects.groups[{p_index}]: external group {pattern!r} would reach {problem}",
                    )
                )
    for r_index, reviewer in enumerate(access.reviewers):
        if external_group(policy, reviewer.group):
            problems.append(
                (
                    ("access", "reviewers", r_index),
                    f"access.reviewers[{r_index}]: external group {reviewer.group!r} would receive the "
                    "Cloudinary moderation role and reviewer routing, which access.external does not allow",
                )
            )
    return problems


def group_problems(policy: Policy, name: str) -> list[str]:
    """What membership of the group (or derived group) `name` would give an external person that
    the profile does not allow."""
    return sorted({p for _, p in group_problems_by_rule(policy, name)}, key=lambda p: (not p.startswith("internal"), p))


def group_problems_by_rule(policy: Policy, name: str) -> list[tuple[str, str]]:
    """group_problems with the rule that gives each (for the audit trail: audit/decisions.py)."""
    access, lowered = policy.access, name.lower()
    problems: list[tuple[str, str | None]] = []
    for f_index, folder in enumerate(cloudinary_section(access).folders):
        for granted in folder.templated(f_index, name):  # a per-attribute folder this derived group gets
            problems.append(
                (granted.rule, _folder_problem(policy, granted.resource, folder.internal, granted.rights[0]))
            )
        for g_index, grant in enumerate(folder.grants):
            if grant.group.lower() == lowered and not folder.attribute:
                problems.append(
                    (
                        f"access.cloudinary.folders[{f_index}].grants[{g_index}]",
                        _folder_problem(policy, folder.path, folder.internal, grant.role),
                    )
                )
    for c_index, ccollection in enumerate(cloudinary_section(access).collections):
        if any(g.group.lower() == lowered for g in ccollection.grants):
            problems.append(
                (
                    f"access.cloudinary.collections[{c_index}]",
                    _cloudinary_collection_problem(ccollection.id, ccollection.internal),
                )
            )
    for c_index, collection in enumerate(iconik_section(access).collections):
        for g_index, cgrant in enumerate(collection.grants):
            if cgrant.group.lower() == lowered:
                problems.append(
                    (
                        f"access.iconik.collections[{c_index}].grants[{g_index}]",
                        _collection_problem(policy, collection.title, collection.internal, list(cgrant.permissions)),
                    )
                )
    for w_index, workspace in enumerate(iconik_section(access).workspaces):
        value = match_template(workspace.group, name)
        if value is not None:
            title = fill(workspace.title, {workspace.attribute: value}) or name
            problems.append(
                (
                    f"access.iconik.workspaces[{w_index}]",
                    _collection_problem(policy, title, False, list(workspace.permissions), "workspace"),
                )
            )
    project = iconik_section(access).project_name(name)
    if project is not None:
        problems.append(
            (
                "access.iconik.projects",
                _collection_problem(policy, project, False, PROJECT_PERMISSIONS, "project collection"),
            )
        )
    for r_index, reviewer in enumerate(access.reviewers):
        if reviewer.group.lower() == lowered:
            problems.append(
                (
                    f"access.reviewers[{r_index}]",
                    "reviewer routing and the Cloudinary moderation role (access.reviewers)",
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

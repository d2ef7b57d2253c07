"""Guardrails for external users (agencies, contractors), held twice:

* at load time (`policy_violations`): a policy whose rules would give an external group an admin
  role, an internal-only folder or collection, anything outside the external profile's folders
  and collections, or a right above the profile's ceiling, is refused with the rule's name;
* at apply time (`withheld_groups`): an external *person* (matched by attribute or email domain,
  which the policy cannot know in advance) is kept out of any group whose grants break the same
  rules, and the ID map says why.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING

from .access import FOLDER_ROLES, folder_role_id

if TYPE_CHECKING:
    from .policy import Policy, UserFacts


def _glob_overlap(a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    return fnmatch.fnmatchcase(a, b) or fnmatch.fnmatchcase(b, a)


def external_group(policy: Policy, group: str) -> bool:
    """Whether membership of `group` alone makes someone external (a `group:` guardrail)."""
    return any(
        m.group is not None and not m.attribute and m.email_domain is None and _glob_overlap(group, m.group)
        for m in policy.guardrails.external
    )


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


def _collection_problem(policy: Policy, title: str, internal: bool, permissions: list[str]) -> str | None:
    profile = policy.access.external
    if internal:
        return f"internal-only collection {title}"
    if profile.collections and not any(fnmatch.fnmatchcase(title.lower(), p.lower()) for p in profile.collections):
        return f"collection {title}, which is not among access.external.collections"
    above = sorted(set(permissions) - set(profile.max_collection_permissions))
    if above:
        return f"{', '.join(above)} on collection {title}, above access.external.max_collection_permissions"
    return None


def policy_violations(policy: Policy) -> list[tuple[tuple[str | int, ...], str]]:
    """(where in the YAML, what is wrong) for every rule that breaks a guardrail."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    admin = policy.guardrails.admin_roles
    for index, rule in enumerate(policy.roles):
        if rule.when.group is None or not external_group(policy, rule.when.group):
            continue
        for target in ("cloudinary", "iconik"):
            role = getattr(rule, target)
            if role and role in admin.get(target, []):
                problems.append(
                    (
                        ("roles", index),
                        f"roles[{index}]: gives {target} admin role {role} to group "
                        f"{rule.when.group!r}, which guardrails.external makes external",
                    )
                )
    for f_index, folder in enumerate(policy.access.cloudinary.folders):
        for g_index, grant in enumerate(folder.grants):
            problem = _folder_problem(policy, folder.path, folder.internal, grant.role)
            if problem and external_group(policy, grant.group):
                problems.append(
                    (
                        ("access", "cloudinary", "folders", f_index, "grants", g_index),
                        f"access.cloudinary.folders[{f_index}].grants[{g_index}]: external group "
                        f"{grant.group!r} would reach {problem}",
                    )
                )
    for k_index, key in enumerate(policy.access.cloudinary.agency_keys):  # an agency key is external by nature
        for path in key.folders:
            declared = next((f for f in policy.access.cloudinary.folders if f.path == path), None)
            problem = _folder_problem(policy, path, bool(declared and declared.internal), key.role)
            if problem:
                problems.append(
                    (
                        ("access", "cloudinary", "agency_keys", k_index),
                        f"access.cloudinary.agency_keys[{k_index}]: the key of {key.group!r} would reach {problem}",
                    )
                )
    for c_index, collection in enumerate(policy.access.iconik.collections):
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
    return problems


def withheld_groups(policy: Policy, facts: UserFacts, group_names: list[str]) -> dict[str, str]:
    """For an external user: the groups (by directory or derived name) it must not join, and why."""
    if not policy.is_external(facts):
        return {}
    withheld: dict[str, str] = {}
    for name in dict.fromkeys(group_names):
        problems = []
        for folder in policy.access.cloudinary.folders:
            for grant in folder.grants:
                if grant.group.lower() == name.lower():
                    problems.append(_folder_problem(policy, folder.path, folder.internal, grant.role))
        for collection in policy.access.iconik.collections:
            for cgrant in collection.grants:
                if cgrant.group.lower() == name.lower():
                    problems.append(
                        _collection_problem(policy, collection.title, collection.internal, list(cgrant.permissions))
                    )
        found = sorted({p for p in problems if p}, key=lambda p: (not p.startswith("internal"), p))
        if found:
            withheld[name] = f"guardrail: external user {facts.user_name} not added to {name}: it grants " + "; ".join(
                found
            )
    return withheld

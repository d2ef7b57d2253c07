"""One desired-access model: for a person (and for a group), everything they should hold in every
target, each entry with its provenance and the guardrail's verdict.

    AccessModel(policy).person(scim_id, document, groups)   → PersonAccess
    AccessModel(policy).group(display_name)                  → GroupAccess

A person's `TargetAccess` per enabled target holds entries of these kinds:

    account     enabled / disabled (the directory's `active`, an agency's expiry, deprovisioning)
    role        the role or user type (the first matching roles rule, else the default)
    group       a target group it joins (a mirrored directory group, or a derived one)
    folder, collection, cloudinary-collection, moderation, group-role
                a grant one of those groups carries (access.<target> rules, workspaces included;
                group-role: iconik functional roles on the group)
    agency-key  an agency key kept on while the person is an active member of its group
    project     a project team it is a member of

Each entry says which rule gave it and the directory fact it rests on (`Source`), and whether a
guardrail allowed or withheld it, with the guardrail's words (`Verdict`). A withheld entry stays in
the model (so `explain` and `review` can say why), but gives nothing: only allowed entries are
applied. The sync engine applies it (`TargetAccess.desired_user`), `explain` prints it, `plan` diffs
it against the ID map, `reconcile` and `review` against what the targets hold: one computation, so
they cannot disagree. It reads the policy only (no store, no target): callers hand it the directory.

The per-target rules come from each `access.<target>` section (sync/access.py `TargetSection`), so
a target with an access section needs no edit here.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import Any

from ..targets.base import TargetUser
from .access import PolicyGrant, expired
from .desired_entries import (
    ACCOUNT,
    ALLOWED,
    GROUP,
    NOT_FROM_ANY_RULE,
    PROJECT,
    REACH_KINDS,
    ROLE,
    DesiredUser,
    Entry,
    GroupAccess,
    GroupTarget,
    PersonAccess,
    Source,
    TargetAccess,
    Verdict,
    grant_kinds,
)
from .guardrails import all_withheld, decide_role
from .policy import Match, Policy, UserFacts

__all__ = [
    "grant_kinds",
    "ACCOUNT",
    "GROUP",
    "NOT_FROM_ANY_RULE",
    "PROJECT",
    "REACH_KINDS",
    "ROLE",
    "AccessModel",
    "DesiredUser",
    "Entry",
    "GroupAccess",
    "PersonAccess",
    "Source",
    "TargetAccess",
    "Verdict",
]


class AccessModel:
    """The policy's rules indexed once (by target group name), so a whole directory is cheap."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.targets = policy.enabled_targets()
        self._by_group: dict[str, dict[str, list[PolicyGrant]]] = {}
        self._by_directory_group: dict[str, dict[str, list[PolicyGrant]]] = {}
        for target in self.targets:
            by_group: dict[str, list[PolicyGrant]] = {}
            by_directory: dict[str, list[PolicyGrant]] = {}
            for grant in policy.access.section(target).grant_rules(policy.access.reviewers):
                if grant.directory_group:
                    by_directory.setdefault(grant.group.lower(), []).append(grant)
                else:
                    by_group.setdefault(self.target_name(grant.group), []).append(grant)
            self._by_group[target], self._by_directory_group[target] = by_group, by_directory
        self._templated: dict[tuple[str, str], list[PolicyGrant]] = {}
        self._projects: dict[tuple[str, str], str | None] = {}
        self._mirrored: dict[str, str | None] = {}  # directory group → target group (a directory has 2,000)

    def project_name(self, target: str, display_name: str) -> str | None:
        key = (target, display_name)
        if key not in self._projects:
            self._projects[key] = self.policy.access.section(target).project_name(display_name)
        return self._projects[key]

    def mirrored_name(self, display_name: str) -> str | None:
        if display_name not in self._mirrored:
            self._mirrored[display_name] = self.policy.groups.mirrored_name(display_name)
        return self._mirrored[display_name]

    def target_name(self, group: str) -> str:
        """The target group a rule's `group` names: a mirrored directory group, or a derived one."""
        return self.policy.groups.mirrored_name(group) or group

    def grants_of(self, target: str, group_name: str, derived: bool = False) -> list[PolicyGrant]:
        """Every grant the target group `group_name` carries in `target`."""
        found = list(self._by_group[target].get(group_name, []))
        if derived:
            key = (target, group_name)
            if key not in self._templated:
                self._templated[key] = self.policy.access.section(target).templated_rules(group_name)
            found += self._templated[key]
        return found

    # a group -------------------------------------------------------------------------------------
    def group(self, display_name: str) -> GroupAccess:
        out: dict[str, GroupTarget] = {}
        for target in self.targets:
            name = self.mirrored_name(display_name)
            grants = [
                _grant_entry(g, name or display_name, f"held by group {name}", ALLOWED)
                for g in (self.grants_of(target, name) if name else [])
            ]
            grants += [
                _grant_entry(g, display_name, f"directory group {display_name!r}", ALLOWED)
                for g in self._by_directory_group[target].get(display_name.lower(), [])
            ]
            project = self.project_name(target, display_name)
            out[target] = GroupTarget(name, project, grants)
        return GroupAccess(display_name, out)

    # a person ------------------------------------------------------------------------------------
    def person(self, scim_id: str, document: dict[str, Any] | None, groups: dict[str, str]) -> PersonAccess:
        facts = UserFacts.of(document or {"userName": ""}, sorted(groups.values()))
        external = document is not None and self.policy.is_external(facts)
        because = self.external_because(facts) if external else []
        return PersonAccess(
            scim_id,
            facts.user_name,
            external,
            because,
            {t: self.for_target(t, document, groups, facts) for t in self.targets},
        )

    def external_because(self, facts: UserFacts) -> list[str]:
        found = [f"guardrails.external[{i}]" for i, m in enumerate(self.policy.guardrails.external) if m.matches(facts)]
        if not self.policy.guardrails.internal_domain(facts):
            found.append("guardrails.internal_email_domains")
        return found

    def for_target(
        self, target: str, document: dict[str, Any] | None, groups: dict[str, str], facts: UserFacts | None = None
    ) -> TargetAccess:
        policy = self.policy
        if document is None:  # deleted in the directory
            if policy.deprovision == "delete":
                return TargetAccess(target, False, None, [_account("deleted", "deprovision: delete")])
            return TargetAccess(target, True, None, [_account("disabled", f"deprovision: {policy.deprovision}")])
        facts = facts or UserFacts.of(document, sorted(groups.values()))
        external = policy.is_external(facts)
        decision = decide_role(policy, target, facts)
        role, note = decision.role, decision.note
        entries = self._role_entries(target, facts, decision.rule, role, note, external)
        active = document.get("active", True) is not False
        if active and external and expired(document, policy.access.external.expiry_attribute):
            active = False  # the agency's access date has passed: revoked without any directory change
            note = f"external access of {facts.user_name} expired"
            entries.append(_account("disabled", "access.external.expiry_attribute", note))
        elif active:
            entries.append(_account("enabled", "the directory", "active in the directory"))
        else:
            entries.append(_account("disabled", "the directory", "inactive in the directory"))
        account = _target_user(document, role, active)
        withheld = all_withheld(policy, facts) if external else {}  # a withheld group gives nothing
        members: list[tuple[str, str, str, bool]] = []  # (key, target name, fact, derived)
        if active or policy.deprovision != "strip_groups":
            for group_id, display_name in groups.items():
                mirrored = self.mirrored_name(display_name)
                if mirrored:
                    fact = f"member of directory group {display_name!r}, mirrored by groups"
                    members.append((group_id, mirrored, fact, False))
            for derived_name in policy.derived_group_names(facts):
                members.append((f"derived:{derived_name}", derived_name, _derived_fact(derived_name), True))
        for key, name, fact, derived in members:
            source_name = name if derived else groups[key]
            verdict = _verdict(withheld.get(source_name), external)
            entries.append(
                Entry(GROUP, name, Source("groups" if not derived else "derived_groups", fact), (), verdict, key)
            )
            for grant in self.grants_of(target, name, derived):
                entries.append(_grant_entry(grant, name, fact, verdict))
        for display_name in groups.values():  # rules naming the directory group itself
            for grant in self._by_directory_group[target].get(display_name.lower(), []):
                fact = f"member of directory group {display_name!r}"
                entries.append(_grant_entry(grant, display_name, fact, _verdict(withheld.get(display_name), external)))
        if active:  # project members are users: a leaver leaves every project at once
            for group_id, display_name in groups.items():
                project = self.project_name(target, display_name)
                if project:
                    source = Source(
                        f"access.{target}.projects",
                        f"member of directory group {display_name!r} (access.{target}.projects)",
                    )
                    entries.append(
                        Entry(
                            PROJECT,
                            project,
                            source,
                            ("member",),
                            _verdict(withheld.get(display_name), external),
                            group_id,
                        )
                    )
        if withheld:
            note = "; ".join([*([note] if note else []), *sorted(withheld.values())])
        return TargetAccess(target, True, account, entries, note)

    def _role_entries(
        self, target: str, facts: UserFacts, index: int | None, role: str, note: str | None, external: bool
    ) -> list[Entry]:
        policy = self.policy
        if index is None:
            source = Source("default role (no roles rule matched)", f"targets.{target} default")
        else:
            when = policy.roles[index].when
            source = Source(f"roles[{index}] when {when.model_dump(exclude_none=True)}", _match_fact(when, facts))
        found = [
            Entry(ROLE, role, source, (), Verdict(True, note or ("access.external allows it" if external else "")))
        ]
        unheld = next((i for i, r in enumerate(policy.roles) if r.role(target) and r.when.matches(facts)), None)
        if unheld is not None and policy.roles[unheld].role(target) != role:  # what a guardrail kept back
            rule = policy.roles[unheld]
            held = Source(
                f"roles[{unheld}] when {rule.when.model_dump(exclude_none=True)}", _match_fact(rule.when, facts)
            )
            found.append(Entry(ROLE, rule.role(target) or role, held, (), Verdict(False, note or "guardrail")))
        return found

    def people(
        self, users: Iterable[tuple[str, dict[str, Any]]], member_of: dict[str, dict[str, str]]
    ) -> Iterable[PersonAccess]:
        for scim_id, document in users:
            yield self.person(scim_id, document, member_of.get(scim_id, {}))


def _verdict(withheld: str | None, external: bool) -> Verdict:
    if withheld:
        return Verdict(False, withheld)
    return Verdict(True, "access.external allows it") if external else ALLOWED


def _account(state: str, rule: str, fact: str = "") -> Entry:
    return Entry(ACCOUNT, state, Source(rule, fact or rule))


def _grant_entry(grant: PolicyGrant, via: str, fact: str, verdict: Verdict) -> Entry:
    return Entry(grant.kind, grant.resource, Source(grant.rule, fact), grant.rights, verdict, via=via)


def _derived_fact(name: str) -> str:
    return "derived from attributes (derived_groups / workspaces)" if name else ""


def _match_fact(when: Match, facts: UserFacts) -> str:
    """The directory facts a roles rule matched on, in words."""
    parts = []
    if when.group is not None:
        matched = [g for g in facts.groups if fnmatch.fnmatchcase(g.lower(), when.group.lower())]
        parts.append("member of " + ", ".join(repr(g) for g in matched))
    for name in when.attribute or {}:
        parts.append(f"{name}={facts.attributes.get(name, '')}")
    if when.email_domain is not None:
        parts.append(f"email domain {facts.attributes.get('emailDomain', '')}")
    return "; ".join(parts)


def _target_user(document: dict[str, Any], role: str, enabled: bool) -> TargetUser:
    name = document.get("name") or {}
    email = (
        next((e["value"] for e in document.get("emails") or [] if e.get("primary")), None)
        or next((e["value"] for e in document.get("emails") or []), None)
        or document["userName"]
    )
    return TargetUser(
        email=email,
        first_name=name.get("givenName", ""),
        last_name=name.get("familyName", ""),
        display_name=document.get("displayName") or name.get("formatted") or document["userName"],
        role=role,
        enabled=enabled,
    )

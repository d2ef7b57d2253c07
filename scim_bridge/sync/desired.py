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
from dataclasses import dataclass, field
from typing import Any

from ..targets.base import TargetUser
from .access import PolicyGrant, expired
from .guardrails import all_withheld, decide_role
from .policy import Match, Policy, UserFacts

ACCOUNT, ROLE, GROUP, PROJECT = "account", "role", "group", "project"
GRANT_KINDS = ("folder", "collection", "cloudinary-collection", "moderation", "agency-key", "group-role")
REACH_KINDS = ("folder", "collection", PROJECT)  # what a review lists per person as "reaches"
NOT_FROM_ANY_RULE = "not from any rule / added in the target"


@dataclass(frozen=True)
class Source:
    rule: str  # the policy rule, e.g. "roles[0]", "access.iconik.workspaces[0] (division=EMEA)"
    fact: str  # the directory fact it rests on, e.g. "member of directory group 'Global Brand'"

    def __str__(self) -> str:
        return f"{self.rule}; {self.fact}" if self.fact else self.rule


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    rule: str = ""  # the guardrail that decided ("" : no guardrail applies, an internal person)


ALLOWED = Verdict(True)


@dataclass(frozen=True)
class Entry:
    kind: str  # account, role, group, project, or one of GRANT_KINDS
    subject: str  # enabled|disabled, the role, the target group, folder path, collection, project
    source: Source
    rights: tuple[str, ...] = ()
    verdict: Verdict = ALLOWED
    key: str = ""  # group and project: the group key ("{scim group id}" or "derived:{name}")
    via: str = ""  # a grant: the target group that carries it

    @property
    def allowed(self) -> bool:
        return self.verdict.allowed

    @property
    def short_rights(self) -> list[str]:
        return [r.rsplit("::", 1)[-1] for r in self.rights]

    def what(self) -> str:
        if self.kind in GRANT_KINDS:
            label = "agency key on folder" if self.kind == "agency-key" else self.kind
            text = f"{label} {self.subject}: {', '.join(self.short_rights)}"
        elif self.kind == ACCOUNT:
            text = f"account {self.subject}"
        else:
            text = f"{self.kind} {self.subject}"
        return text if self.allowed else f"withheld {text}"

    def why(self) -> str:
        if self.kind in GRANT_KINDS:
            text = f"{self.source.rule} via group {self.via}"
        elif self.kind == ROLE:
            text = self.source.rule
        else:
            text = self.source.fact or self.source.rule
        if self.verdict.rule:
            text = f"{text}; {self.verdict.rule}" if self.allowed else self.verdict.rule
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "rights": list(self.rights),
            "rule": self.source.rule,
            "fact": self.source.fact,
            "via": self.via,
            "allowed": self.allowed,
            "guardrail": self.verdict.rule,
        }


@dataclass(frozen=True)
class DesiredUser:
    """What the engine converges one target's account to (the model, as the engine applies it)."""

    exists: bool  # False: the account must go (deleted, deprovision mode "delete")
    account: TargetUser | None
    groups: dict[str, str]  # group key → target group name ("{scim group id}" or "derived:{name}")
    note: str | None = None  # e.g. a guardrail that changed the role
    projects: dict[str, str] = field(default_factory=dict)  # scim group id → project name


@dataclass
class TargetAccess:
    target: str
    exists: bool
    account: TargetUser | None
    entries: list[Entry] = field(default_factory=list)
    note: str | None = None

    def allowed(self, *kinds: str) -> list[Entry]:
        return [e for e in self.entries if e.allowed and (not kinds or e.kind in kinds)]

    @property
    def withheld(self) -> list[Entry]:
        return [e for e in self.entries if not e.allowed]

    @property
    def groups(self) -> dict[str, str]:
        return {e.key: e.subject for e in self.allowed(GROUP)}

    @property
    def projects(self) -> dict[str, str]:
        return {e.key: e.subject for e in self.allowed(PROJECT)}

    def reach(self) -> set[tuple[str, str, str]]:
        """(kind, resource, right) the person reaches through its account: nothing when disabled."""
        if self.account is None or not self.account.enabled:
            return set()
        found = {(e.kind, e.subject, r) for e in self.allowed("folder", "collection") for r in e.short_rights}
        return found | {(PROJECT, e.subject, "member") for e in self.allowed(PROJECT)}

    def rule_for(self, kind: str, resource: str, right: str) -> str | None:
        """The rule (and group) that gives this right, if the model gives it."""
        for e in self.allowed(kind):
            if e.subject == resource and (kind == PROJECT or right in e.short_rights):
                return f"{e.source.rule} (via {e.via})" if e.via else f"{e.source.rule}; {e.source.fact}"
        return None

    def desired_user(self) -> DesiredUser:
        return DesiredUser(self.exists, self.account, self.groups, self.note, self.projects)


@dataclass
class PersonAccess:
    scim_id: str
    user_name: str
    external: bool
    external_because: list[str]
    targets: dict[str, TargetAccess]


@dataclass
class GroupTarget:
    name: str | None  # the mirrored target group (None: not mirrored)
    project: str | None  # the project it stands for, if a project team
    grants: list[Entry]


@dataclass
class GroupAccess:
    display_name: str
    targets: dict[str, GroupTarget]


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
        unheld = next(
            (i for i, r in enumerate(policy.roles) if getattr(r, target, None) and r.when.matches(facts)), None
        )
        if unheld is not None and getattr(policy.roles[unheld], target) != role:  # what a guardrail kept back
            rule = policy.roles[unheld]
            held = Source(
                f"roles[{unheld}] when {rule.when.model_dump(exclude_none=True)}", _match_fact(rule.when, facts)
            )
            found.append(Entry(ROLE, getattr(rule, target), held, (), Verdict(False, note or "guardrail")))
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

"""The records of the desired-access model (sync/desired.py): what one entry says (`Entry`: a
kind, a subject, its `Source` rule and directory fact, the guardrail's `Verdict`), a person's
entries in one target (`TargetAccess`, with the engine's `DesiredUser` view of them), a person
over every target (`PersonAccess`) and a group (`GroupAccess`). Computing them is desired.py's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..targets.base import TargetUser

ACCOUNT, ROLE, GROUP, PROJECT = "account", "role", "group", "project"
#: The grant kinds of folders and collections; a target's `access.<name>` section names its own
#: kinds besides (TargetSection.GRANT_KINDS): grant_kinds() lists them all.
COMMON_GRANT_KINDS = ("folder", "collection")


def grant_kinds() -> tuple[str, ...]:
    """Every kind a grant entry may have, in the order explain lists them: folders, collections,
    then each registered target's own kinds, in registry order."""
    from ..targets.registry import TARGETS, resolve  # the registry names models that import sync/

    kinds = [*COMMON_GRANT_KINDS, *(k for entry in TARGETS.values() for k in resolve(entry.access_model).GRANT_KINDS)]
    return tuple(dict.fromkeys(kinds))


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
    kind: str  # account, role, group, project, or one of grant_kinds()
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

    @property
    def is_grant(self) -> bool:
        return self.kind not in (ACCOUNT, ROLE, GROUP, PROJECT)

    def what(self) -> str:
        if self.is_grant:
            label = "agency key on folder" if self.kind == "agency-key" else self.kind
            text = f"{label} {self.subject}: {', '.join(self.short_rights)}"
        elif self.kind == ACCOUNT:
            text = f"account {self.subject}"
        else:
            text = f"{self.kind} {self.subject}"
        return text if self.allowed else f"withheld {text}"

    def why(self) -> str:
        if self.is_grant:
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

"""The mapping policy: a YAML file saying what each directory user and group becomes in each target.

Validated on load; an error names the line and the field. Credentials never live in the YAML:
each target names the environment variables (or a JSON file) that hold them.

    targets:
      cloudinary: {enabled: true, base_url: https://api.cloudinary.com, default_role: media_library_user}
      iconik: {enabled: true, base_url: https://app.iconik.io, default_user_type: BROWSE_ONLY}
    roles:                       # first match wins, per target
      - when: {group: "Legal Reviewers"}
        cloudinary: media_library_admin
    groups: {include: ["*"], exclude: ["project-*"], name: "{displayName}"}
    derived_groups: ["dept-{department}", "region-{division}"]
    deprovision: disable         # disable | delete | strip_groups
    guardrails:
      external: [{attribute: {userType: "External*"}}, {group: "Agency *"}]
      internal_email_domains: [example.com]   # default deny: any other domain is external
"""

from __future__ import annotations

import fnmatch
import functools
import json
import os
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from ..targets.registry import TARGETS, resolve
from .access import Access, Reconciliation, validate_at
from .brake import Safety
from .notify import Notify

# Attributes a rule or a template may name, and where they live in a SCIM User.
ATTRIBUTES = {
    "department": ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "department"),
    "division": ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "division"),
    "organization": ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "organization"),
    "costCenter": ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "costCenter"),
    "employeeNumber": ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "employeeNumber"),
    "userType": (None, "userType"),
    "title": (None, "title"),
    "locale": (None, "locale"),
    "preferredLanguage": (None, "preferredLanguage"),
    "userName": (None, "userName"),
    "displayName": (None, "displayName"),
    "emailDomain": (None, "emailDomain"),
}
_TEMPLATE_FIELD = re.compile(r"\{(\w+)\}")


class PolicyError(Exception):
    """A policy that cannot be used, with the line and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Match(_Strict):
    group: str | None = None  # glob on the SCIM group displayName, e.g. "Agency *"
    attribute: dict[str, str] | None = None  # attribute → glob, all must match
    email_domain: str | None = None

    @field_validator("attribute")
    @classmethod
    def _known(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name in value or {}:
            if name not in ATTRIBUTES:
                raise ValueError(f"unknown attribute {name!r} (known: {', '.join(sorted(ATTRIBUTES))})")
        return value

    @model_validator(mode="after")
    def _something(self) -> Match:
        if self.group is None and not self.attribute and self.email_domain is None:
            raise ValueError("a match needs group, attribute or email_domain")
        return self

    def matches(self, facts: UserFacts) -> bool:
        if self.group is not None and not any(fnmatch.fnmatchcase(g.lower(), self.group.lower()) for g in facts.groups):
            return False
        for name, pattern in (self.attribute or {}).items():
            value = facts.attributes.get(name)
            if value is None or not fnmatch.fnmatchcase(value.lower(), pattern.lower()):
                return False
        if (
            self.email_domain is not None
            and facts.attributes.get("emailDomain", "").lower() != self.email_domain.lower()
        ):
            return False
        return True


class RoleRule(_Strict):
    """`when` and, per target, the role it gives: `<target>: <role>`, a key for each registered
    target, checked against the roles its `targets.<name>` model knows (`ROLES`)."""

    model_config = ConfigDict(extra="allow")
    when: Match

    @model_validator(mode="after")
    def _registered(self) -> RoleRule:
        extra = self.__pydantic_extra__ or {}
        for name, role in extra.items():
            if name not in TARGETS:
                raise ValueError(f"unknown target {name!r} in a roles rule (known: {', '.join(TARGETS)})")
            extra[name] = validate_at(name, _role_adapter(section_model(name).ROLES).validate_python, role)
        return self

    def role(self, target: str) -> str | None:
        """The role this rule gives in `target`, None when it names none."""
        found = getattr(self, target, None)
        return found if isinstance(found, str) else None


class TargetPolicy(_Strict):
    """What every `targets.<name>` section has; a target's own model (its registry entry's
    `policy_model`) subclasses it and says which roles it knows and which is the default."""

    #: The roles (user types) the target knows; empty: any string. Role rules are checked against it.
    ROLES: ClassVar[tuple[str, ...]] = ()
    #: The roles besides the default an external person may hold, when `access.external.roles`
    #: does not name the target (empty: the default role only).
    EXTERNAL_ROLES: ClassVar[tuple[str, ...]] = ()
    #: The `access.external` field that lists them instead, for the targets that had one first.
    EXTERNAL_ROLES_FIELD: ClassVar[str | None] = None
    #: The roles the guardrail treats as admin (never an external person's), unless
    #: `guardrails.admin_roles` names the target.
    ADMIN_ROLES: ClassVar[tuple[str, ...]] = ()
    #: What the target's approvals are scoped by (`access.reviewers[].folders` or `.collections`),
    #: the query parameter of /api/v1/reviewers; None: the target has no approvals.
    REVIEW_SCOPE: ClassVar[Literal["folder", "collection"] | None] = None
    #: True: /api/v1/reviewers adds the users and groups of an approval request to its answer.
    APPROVAL_REQUEST: ClassVar[bool] = False

    enabled: bool = False
    base_url: str = ""
    rate: float = Field(10.0, gt=0)
    credentials_env: dict[str, str] = {}
    optional_credentials_env: dict[str, str] = {}
    credentials_file: str | None = None
    service_account_email: str | None = None
    default_role: str = ""

    def role_default(self) -> str:
        """The role of a person no roles rule matches."""
        return self.default_role


def section_model(name: str) -> type[TargetPolicy]:
    """The `targets.<name>` model of a registered target."""
    model: type[TargetPolicy] = resolve(TARGETS[name].policy_model)
    return model


@functools.cache
def _role_adapter(roles: tuple[str, ...]) -> TypeAdapter[str | None]:
    """A role as a roles rule names it: one of `roles` (an enum's message lists them), any string
    for a target that does not say, or null (the rule gives that target nothing)."""
    kind: Any = Literal[roles] | None if roles else str | None  # Literal[("a", "b")] is Literal["a", "b"]
    return TypeAdapter(kind)


class Targets(_Strict):
    """One section per registered target (targets/registry.py), validated by its entry's
    `policy_model`; a target the registry does not know is an error. Every registered target has
    its section after load, its model's defaults where the YAML has none, in registry order."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _registered(self) -> Targets:
        extra = self.__pydantic_extra__ if self.__pydantic_extra__ is not None else {}
        for name in extra:
            if name not in TARGETS:
                raise ValueError(f"unknown target {name!r} (known: {', '.join(TARGETS)})")
        sections = {
            name: validate_at(name, section_model(name).model_validate, extra[name])
            if name in extra
            else section_model(name)()
            for name in TARGETS
        }
        extra.clear()
        extra.update(sections)
        return self

    def section(self, name: str) -> TargetPolicy:
        found = (self.__pydantic_extra__ or {}).get(name)
        return found if isinstance(found, TargetPolicy) else section_model(name)()


class GroupMirroring(_Strict):
    include: list[str] = ["*"]
    exclude: list[str] = []
    name: str = "{displayName}"

    def mirrored_name(self, display_name: str) -> str | None:
        lowered = display_name.lower()
        if not any(fnmatch.fnmatchcase(lowered, p.lower()) for p in self.include):
            return None
        if any(fnmatch.fnmatchcase(lowered, p.lower()) for p in self.exclude):
            return None
        return self.name.replace("{displayName}", display_name)


_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}")


class Guardrails(_Strict):
    external: list[Match] = []
    # Default deny: when set, anyone whose email domain (primary email, else userName) is not
    # listed is external, so a freelancer nobody thought to tag does not get internal access.
    internal_email_domains: list[str] = []
    # target → its admin roles; a target not named here: its section's ADMIN_ROLES.
    admin_roles: dict[str, list[str]] = {}

    @field_validator("internal_email_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        for domain in value:  # exact domains only: a glob or an address here would silently widen "internal"
            if not _DOMAIN.fullmatch(domain.lower()):
                raise ValueError(f"{domain!r} is not an email domain (write example.com: no @, wildcard or scheme)")
        return [domain.lower() for domain in value]

    def internal_domain(self, facts: UserFacts) -> bool:
        """Whether the default-deny list lets this user count as internal (always, when it is unset)."""
        domain = facts.attributes.get("emailDomain", "").lower()
        return not self.internal_email_domains or domain in self.internal_email_domains


class Policy(_Strict):
    targets: Targets = Field(default_factory=Targets)  # built at load: its models import this module
    roles: list[RoleRule] = []
    groups: GroupMirroring = GroupMirroring()
    derived_groups: list[str] = []
    deprovision: Literal["disable", "delete", "strip_groups"] = "disable"
    guardrails: Guardrails = Guardrails()
    access: Access = Field(default_factory=Access)  # grants, external profile (sync/access.py), as targets
    reconcile: Reconciliation = Reconciliation()
    safety: Safety = Safety()  # the mass-deprovision brake (sync/brake.py), quarantine (sync/quarantine.py)
    notify: Notify = Notify()  # webhook and e-mail notifications (sync/notify.py)

    @field_validator("derived_groups")
    @classmethod
    def _templates(cls, value: list[str]) -> list[str]:
        for template in value:
            for name in _TEMPLATE_FIELD.findall(template):
                if name not in ATTRIBUTES:
                    raise ValueError(f"template {template!r} names unknown attribute {name!r}")
        return value

    def enabled_targets(self) -> list[str]:
        """The registered targets the policy turns on, in registry order."""
        return [name for name in TARGETS if self.targets.section(name).enabled]

    @model_validator(mode="after")
    def _external_roles(self) -> Policy:
        for target in TARGETS:
            allowed, _ = self.external_roles(target)
            known = section_model(target).ROLES
            for role in allowed if known else ():
                if role not in known:
                    raise ValueError(f"access.external: unknown {target} role {role!r} (known: {', '.join(known)})")
        for target in self.access.external.roles:
            if target not in TARGETS:
                raise ValueError(f"access.external.roles: unknown target {target!r} (known: {', '.join(TARGETS)})")
        return self

    def external_roles(self, target: str) -> tuple[list[str], str]:
        """(the roles besides the default an external person may hold in `target`, where that is said)."""
        external, model = self.access.external, section_model(target)
        if target in external.roles:
            return external.roles[target], f"access.external.roles.{target}"
        if model.EXTERNAL_ROLES_FIELD:  # the target's own list, from before `roles`
            said = external.target_roles(model.EXTERNAL_ROLES_FIELD)
            roles = said if said is not None else list(model.EXTERNAL_ROLES)
            return roles, f"access.external.{model.EXTERNAL_ROLES_FIELD}"
        roles = list(model.EXTERNAL_ROLES)
        return roles, f"the external roles of targets.{target} ({', '.join(roles) or 'none'})"

    def admin_roles(self, target: str) -> list[str]:
        """The roles the guardrail never gives an external person in `target`."""
        return self.guardrails.admin_roles.get(target, list(section_model(target).ADMIN_ROLES))

    def is_external(self, facts: UserFacts) -> bool:
        return any(match.matches(facts) for match in self.guardrails.external) or not self.guardrails.internal_domain(
            facts
        )

    def default_role(self, target: str) -> str:
        return self.targets.section(target).role_default()

    def role_for(self, target: str, facts: UserFacts) -> tuple[str, str | None]:
        """(role, guardrail note): the first matching rule's role, else the default, held to the
        external profile for an external user (sync/guardrails.py `decide_role`)."""
        from .guardrails import decide_role

        decision = decide_role(self, target, facts)
        return decision.role, decision.note

    def derived_group_names(self, facts: UserFacts) -> list[str]:
        names = []
        for template in dict.fromkeys([*self.derived_groups, *self.access.workspace_groups()]):  # each once
            fields = _TEMPLATE_FIELD.findall(template)
            values = {f: facts.attributes.get(f) for f in fields}
            if all(values.values()):
                names.append(_fill_template(template, values))
        return names


def _fill_template(template: str, values: dict[str, Any]) -> str:
    return _TEMPLATE_FIELD.sub(lambda match: str(values[match.group(1)]), template)


class UserFacts(BaseModel):
    """What rules can see of a user: attributes by policy name, and SCIM group display names."""

    user_name: str
    attributes: dict[str, str]
    groups: list[str]

    @classmethod
    def of(cls, document: dict[str, Any], group_names: list[str]) -> UserFacts:
        attributes: dict[str, str] = {}
        for name, (urn, key) in ATTRIBUTES.items():
            container = document.get(urn, {}) if urn else document
            value = container.get(key) if isinstance(container, dict) else None
            if isinstance(value, str) and value:
                attributes[name] = value
        email = (
            next((e.get("value") for e in document.get("emails") or [] if e.get("primary")), None)
            or next((e.get("value") for e in document.get("emails") or []), None)
            or document.get("userName", "")
        )
        if "@" in str(email):
            attributes["emailDomain"] = str(email).rsplit("@", 1)[1]
        return cls(user_name=document.get("userName", ""), attributes=attributes, groups=group_names)


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; errors name the line and the field."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise PolicyError(f"SCIM_BRIDGE_POLICY: cannot read {path}: {error.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
        root = yaml.compose(text)
    except yaml.YAMLError as error:
        raise PolicyError(f"{path}: {error}") from None
    try:
        policy = Policy.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        location = [str(part) for part in first["loc"] if part not in ("literal", "list", "dict")]
        line = _line_of(root, first["loc"])
        where = f"line {line}: " if line else ""
        raise PolicyError(f"{path}: {where}{'.'.join(location) or 'policy'}: {first['msg']}") from None
    from .guardrails import policy_violations

    for location_of, problem in policy_violations(policy):  # guardrails hold before anything is applied
        line = _line_of(root, location_of)
        raise PolicyError(f"{path}: {f'line {line}: ' if line else ''}guardrail: {problem}")
    return policy


def _line_of(node: Any, location: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node a validation error points at (the deepest one found)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in location:
        if isinstance(node, yaml.MappingNode):
            child = next((value for key, value in node.value if key.value == str(part)), None)
            if child is None:
                key_node = next((key for key, _ in node.value if key.value == str(part)), None)
                return key_node.start_mark.line + 1 if key_node else line
            node = child
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def target_credentials(policy: TargetPolicy) -> dict[str, str]:
    """Credentials from the JSON file the policy names, else from the environment variables it names.
    Optional ones (optional_credentials_env) are in the answer only when set."""
    if policy.credentials_file:
        try:
            values = json.loads(Path(policy.credentials_file).read_text())
        except (OSError, ValueError) as error:
            raise PolicyError(f"credentials_file {policy.credentials_file}: {error}") from None
    else:
        names = {**policy.optional_credentials_env, **policy.credentials_env}
        values = {field: os.environ.get(variable, "") for field, variable in names.items()}
    missing = [field for field in policy.credentials_env if not values.get(field)]
    if missing:
        source = policy.credentials_file or ", ".join(policy.credentials_env[f] for f in missing)
        raise PolicyError(f"missing credentials {', '.join(missing)} (from {source})")
    optional = {field: str(values[field]) for field in policy.optional_credentials_env if values.get(field)}
    return {**{field: str(values[field]) for field in policy.credentials_env}, **optional}

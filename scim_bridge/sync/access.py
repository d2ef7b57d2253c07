"""The `access:` part of the policy: what each person can reach in the targets, beyond accounts
and groups. Validated on load with the rest of the policy (policy.py).

Access is granted to *groups*, never to individual accounts: a folder role or a collection ACL
names a target group (a mirrored directory group or an attribute-derived one), and a person
reaches it by being a member. So a mover changes access by changing groups (the membership
sync already does that, revocations first), and a leaver loses everything with the account.
iconik project teams are the exception: project members are users (research/iconik.md §5.2),
so they are kept per user, like group membership.

    access:
      cloudinary:
        product_environment: production        # the cloud whose folders are governed
        permission_model: auto                 # auto | roles | invite
        folders:
          - path: campaigns/emea
            grants: [{group: "Marketing EMEA", role: contributor}, {group: "Global Brand", role: viewer}]
          - path: "campaigns/{division|lower}"  # one folder per value, created on first use (like workspaces)
            grants: [{group: "region-{division}", role: contributor}]
          - {path: masters, internal: true, grants: [{group: "Global Brand", role: manager}]}
      iconik:
        collections:
          - {title: "Brand Masters", internal: true, grants: [{group: "Global Brand", permissions: [read, write]}]}
        workspaces:                             # one collection per value, for the derived group
          - {attribute: division, group: "region-{division}", title: "Region {division}", permissions: [read]}
        group_roles:                            # iconik role assignments (functional roles on the group)
          - {group: "Legal Reviewers", roles: [can_read_assets, can_write_approval_status]}
        projects: {groups: ["project-*", "campaign-*"], on_group_delete: delete}
      external:                                 # the agency profile (also guardrails.external)
        folders: ["agencies/*"]
        collections: ["Agency *"]
        max_folder_role: contributor
        expiry_attribute: "urn:example:params:scim:schemas:extension:agency:2.0:User:accessExpires"
      reviewers:
        - {group: "Legal Reviewers", folders: ["campaigns/*"], collections: ["Brand Masters"]}
      context:
        region: "{division}"
        folders: ["campaigns/*"]               # narrows the person's granted folders (empty: all of them)
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic_core import InitErrorDetails

if TYPE_CHECKING:
    from .guardrails import ExternalProfile

FolderRole = Literal["viewer", "contributor", "editor", "manager"]  # the ladder, lowest first
CollectionPermission = Literal["read", "write", "delete", "change-acl"]
FOLDER_ROLES: tuple[FolderRole, ...] = get_args(FolderRole)
TEMPLATE_FIELD = re.compile(r"\{(\w+)(\|lower)?\}")  # {attribute} or {attribute|lower}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def validate_at(key: str, validate: Callable[[Any], Any], value: Any) -> Any:
    """`validate(value)` for the part of the policy under `key` (a target's section, its role in a
    rule): its errors keep their path below `key`, so the message names `targets.<name>.rate`
    rather than the `targets.rate` a validator of the enclosing model would report."""
    try:
        return validate(value)
    except ValidationError as error:
        details: list[InitErrorDetails] = []
        for e in error.errors():
            detail = InitErrorDetails(type=e["type"], loc=(key, *e["loc"]), input=e["input"])
            if "ctx" in e:
                detail["ctx"] = e["ctx"]
            details.append(detail)
        raise ValidationError.from_exception_data(error.title, details) from None


@dataclass(frozen=True)
class PolicyGrant:
    """One grant a rule of a target's access section makes to a group (sync/desired.py reads them)."""

    kind: str  # folder, collection, or one of its section's GRANT_KINDS (moderation, agency-key…)
    resource: str  # folder path, collection title or id, the moderation role
    group: str  # the group as the rule names it
    rights: tuple[str, ...]  # role ids (Cloudinary) or permissions (iconik)
    rule: str  # where in the policy, e.g. "access.cloudinary.folders[0] (campaigns/emea)"
    directory_group: bool = False  # `group` is a directory group's displayName, not a target group's name


class TargetSection(_Strict):
    """What every `access.<target>` section answers, so the desired-access model (sync/desired.py)
    loops over the targets instead of naming them: the grants its rules make to named groups, the
    grants a derived group's name implies (workspaces), and the project a directory group stands for."""

    #: The kinds of the grants its rules make beyond folders and collections (PolicyGrant.kind),
    #: words of explain, review and audit output.
    GRANT_KINDS: ClassVar[tuple[str, ...]] = ()

    def grant_rules(self, reviewers: list[Reviewers]) -> list[PolicyGrant]:
        return []

    def templated_rules(self, derived_name: str) -> list[PolicyGrant]:
        return []

    def project_name(self, group_name: str) -> str | None:
        return None

    def resources(self) -> list[tuple[str, str]]:
        """(kind, name) of what the section declares (created or found even before a grant)."""
        return []

    def makes_grants(self) -> bool:
        """Whether any rule of the section grants something, so a grants run has work to do."""
        return False

    def agency_groups(self) -> set[str]:
        """Lower-cased names of the groups whose membership turns an agency key on or off."""
        return set()

    def regrant_every(self) -> int:
        """Seconds between periodic grants runs this section needs (0: none), for content that
        arrives under a granted resource without inheriting its grant."""
        return 0

    def closes_project_with_group(self) -> bool:
        """Whether a project goes when its directory group does (else it is kept, unlinked)."""
        return True

    def derived_group_templates(self) -> list[str]:
        """Derived-group templates the section's rules imply (a collection or a folder per value of
        an attribute, for that value's group), added to `derived_groups`."""
        return []

    def guardrail_problems(self, profile: ExternalProfile) -> list[tuple[tuple[str | int, ...], str]]:
        """(where below `access.<target>`, what is wrong) for each rule that would give external
        people what the profile does not allow: load-time guardrails (sync/guardrails.py)."""
        return []

    def group_problems(self, profile: ExternalProfile, name: str) -> list[tuple[str, str | None]]:
        """(rule, what it gives that the profile does not allow, or None) for each grant membership
        of the group (or derived group) `name` carries in this target."""
        return []

    def resource_grants(self) -> list[PolicyGrant]:
        """The grants on the section's fixed resources (folders, collections) that the grants run
        diffs per resource; templated ones come from `templated_rules`."""
        return []

    def grant_groups(self) -> list[str]:
        """Groups (as the rules name them) that take part in grants beyond `resource_grants` (an
        agency key's, a role assignment's): creating or deleting one needs a grants run."""
        return []

    def governs_contents(self) -> set[str]:
        """Resources whose rules reach what they hold, at any depth (reviewer routing)."""
        return set()

    def reviewer_grant(self) -> str | None:
        """What this target gives an `access.reviewers` group (a moderation role), for guardrail notes."""
        return None


def folder_role_id(role: str) -> str:
    """A ladder name becomes Cloudinary's system role id; anything else is a custom role id."""
    return f"cld::role::folder::{role}" if role in FOLDER_ROLES else role


class External(_Strict):
    """The agency profile: who is external is `guardrails.external`; this says what they may reach."""

    folders: list[str] = []  # globs on folder paths; an external user reaches nothing else
    collections: list[str] = []  # globs on iconik collection titles
    max_folder_role: FolderRole = "contributor"
    max_collection_permissions: list[CollectionPermission] = ["read", "write"]
    # Roles an external user may hold besides the target's default (validated in policy.py): a
    # paid licence with edit rights, or a role above a plain library user, is never an agency's by
    # accident of a group or attribute rule. A target may name a list of its own here, from before
    # `roles` (`EXTERNAL_ROLES_FIELD` of its `targets.<name>` model, its default `EXTERNAL_ROLES`).
    roles: dict[str, list[str]] = {}  # target → roles, for any target (wins over a target's own list)
    expiry_attribute: str | None = None  # a SCIM attribute (URN-qualified if in an extension) holding a date

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _target_lists(self) -> External:
        extra = self.__pydantic_extra__ or {}
        if not extra:
            return self
        from .policy import section_model  # policy.py imports this module

        fields = {section_model(name).EXTERNAL_ROLES_FIELD for name in _registered_targets()}
        for key, value in extra.items():
            if key not in fields:
                details = [InitErrorDetails(type="extra_forbidden", loc=(key,), input=value)]
                raise ValidationError.from_exception_data(type(self).__name__, details)
            extra[key] = validate_at(key, _ROLE_LIST.validate_python, value)
        return self

    def target_roles(self, field: str) -> list[str] | None:
        """The list a target's own field (`EXTERNAL_ROLES_FIELD`) names, None when the YAML has none."""
        found = (self.__pydantic_extra__ or {}).get(field)
        return list(found) if isinstance(found, list) else None


class Reviewers(_Strict):
    group: str
    folders: list[str] = []  # globs on Cloudinary folder paths; empty: everywhere
    collections: list[str] = []  # globs on iconik collection titles; empty: everywhere


class DeliveryContext(_Strict):
    region: str = "{division}"
    locale: str = "{locale}"
    language: str = "{preferredLanguage}"
    business_unit: str = "{organization}"
    folders: list[str] = []  # folder selectors, templates
    metadata: dict[str, str] = {}  # Cloudinary structured-metadata selectors, templates
    jwt_ttl_seconds: int = Field(300, gt=0, le=86400)


class Reconciliation(_Strict):
    """`scim-bridge reconcile`: which target accounts the bridge may repair beyond those it manages
    (the ones in its ID map). Anything else is reported, never touched."""

    owned_email_domains: list[str] = []  # accounts with these email domains are the bridge's to fix
    owned_group_prefix: str | None = None  # or: members of target groups whose name starts with this
    orphans: Literal["report", "disable"] = "report"  # what --apply does to an owned orphan
    interval_seconds: int = Field(0, ge=0)  # in-process periodic run; 0 = off
    repair: bool = False  # the periodic run repairs (as --apply) instead of only reporting


class Access(_Strict):
    """`external`, `reviewers`, `context`, and one section per registered target, validated by its
    registry entry's `access_model`: after load every registered target has its section (the
    model's defaults where the YAML has none), in registry order."""

    model_config = ConfigDict(extra="allow")
    external: External = External()
    reviewers: list[Reviewers] = []
    context: DeliveryContext = DeliveryContext()

    def workspace_groups(self) -> list[str]:
        """Derived-group templates the access rules imply (workspaces, per-attribute folders)."""
        return [template for section in self.sections().values() for template in section.derived_group_templates()]

    def sections(self) -> dict[str, TargetSection]:
        """Every registered target's section, in registry order."""
        return {name: self.section(name) for name in _registered_targets()}

    def project_name(self, group_name: str) -> str | None:
        """The project a directory group stands for in the target that keeps project teams, if any."""
        return next((p for s in self.sections().values() if (p := s.project_name(group_name))), None)

    @model_validator(mode="after")
    def _registered(self) -> Access:
        from ..targets.registry import TARGETS, resolve  # the registry names models in this module

        extra = self.__pydantic_extra__ if self.__pydantic_extra__ is not None else {}
        for name in extra:
            if name not in TARGETS:
                known = sorted({*type(self).model_fields, *TARGETS})
                raise ValueError(f"unknown section {name!r} (known: {', '.join(known)})")
        sections = {}
        for name, entry in TARGETS.items():
            model: type[TargetSection] = resolve(entry.access_model)
            sections[name] = validate_at(name, model.model_validate, extra[name]) if name in extra else model()
        extra.clear()
        extra.update(sections)
        return self

    def section(self, target: str) -> TargetSection:
        """The `access.<target>` section (an empty one for a target registered after the load)."""
        found = (self.__pydantic_extra__ or {}).get(target)
        return found if isinstance(found, TargetSection) else TargetSection()


def _registered_targets() -> list[str]:
    from ..targets.registry import TARGETS  # the registry names models that import this module

    return list(TARGETS)


_ROLE_LIST: TypeAdapter[list[str]] = TypeAdapter(list[str])


@functools.cache
def _template_pattern(template: str) -> re.Pattern[str] | None:
    parts = re.split(r"\{\w+\}", template)
    if len(parts) != 2:
        return None
    return re.compile(re.escape(parts[0]) + "(.+)" + re.escape(parts[1]))


def one_field_template(template: str) -> bool:
    """Whether `template` names exactly one attribute, as a derived group's name does."""
    return _template_pattern(template) is not None


def match_template(template: str, name: str) -> str | None:
    """The value a one-field template like "region-{division}" was filled with to give `name`."""
    pattern = _template_pattern(template)
    found = pattern.fullmatch(name) if pattern else None
    return found.group(1) if found else None


def fill(template: str, attributes: dict[str, str]) -> str | None:
    """A template with every {attribute} known, else None; {attribute|lower} lower-cases the value
    (folder paths are usually lower case, directory values rarely are)."""
    fields = TEMPLATE_FIELD.findall(template)
    if any(not attributes.get(name) for name, _ in fields):
        return None
    return TEMPLATE_FIELD.sub(
        lambda m: attributes[m.group(1)].lower() if m.group(2) else attributes[m.group(1)], template
    )


def scim_value(document: dict[str, Any], path: str) -> Any:
    """A value by SCIM attribute path: `title`, `name.givenName`, `urn:…:User:attr`."""
    container: Any = document
    if path.lower().startswith("urn:"):
        urn, _, attribute = path.rpartition(":")
        container = next((v for k, v in document.items() if k.lower() == urn.lower()), None)
        path = attribute
    for part in path.split("."):
        if not isinstance(container, dict):
            return None
        container = next((v for k, v in container.items() if k.lower() == part.lower()), None)
    return container


def expired(document: dict[str, Any], attribute: str | None, now: datetime | None = None) -> bool:
    """Whether an external user's access date has passed (unparseable dates count as passed:
    a typo must not open access)."""
    if not attribute:
        return False
    value = scim_value(document, attribute)
    if value in (None, ""):
        return False
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return True
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when <= (now or datetime.now(UTC))


def expiry_of(document: dict[str, Any], attribute: str | None) -> datetime | None:
    if not attribute:
        return None
    value = scim_value(document, attribute)
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when and when.tzinfo is None else when

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

import fnmatch
import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FolderRole = Literal["viewer", "contributor", "editor", "manager"]  # the ladder, lowest first
IconikPermission = Literal["read", "write", "delete", "change-acl"]
FOLDER_ROLES: tuple[FolderRole, ...] = get_args(FolderRole)
ICONIK_PERMISSIONS: tuple[IconikPermission, ...] = get_args(IconikPermission)
_FIELD = re.compile(r"\{(\w+)(\|lower)?\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class PolicyGrant:
    """One grant a rule of a target's access section makes to a group (sync/desired.py reads them)."""

    kind: str  # folder, collection, cloudinary-collection, moderation, agency-key
    resource: str  # folder path, collection title or id, the moderation role
    group: str  # the group as the rule names it
    rights: tuple[str, ...]  # role ids (Cloudinary) or permissions (iconik)
    rule: str  # where in the policy, e.g. "access.cloudinary.folders[0] (campaigns/emea)"
    directory_group: bool = False  # `group` is a directory group's displayName, not a target group's name


class TargetSection(_Strict):
    """What every `access.<target>` section answers, so the desired-access model (sync/desired.py)
    loops over the targets instead of naming them: the grants its rules make to named groups, the
    grants a derived group's name implies (workspaces), and the project a directory group stands for."""

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

    def governs_contents(self) -> set[str]:
        """Resources whose rules reach what they hold, at any depth (reviewer routing)."""
        return set()


def folder_role_id(role: str) -> str:
    """A ladder name becomes Cloudinary's system role id; anything else is a custom role id."""
    return f"cld::role::folder::{role}" if role in FOLDER_ROLES else role


class FolderGrant(_Strict):
    group: str  # a directory group's displayName, or a derived group's name
    role: str  # viewer | contributor | editor | manager | a custom role id


class CloudinaryFolder(_Strict):
    """A folder, or with a `{attribute}` in its path (`campaigns/{division|lower}`) a folder per value
    of that attribute: created on first use and granted to that value's derived group (each grant's
    group is then a template on the same attribute, `region-{division}`), the way
    `access.iconik.workspaces` gives a collection per value, with the same templating (`fill`,
    `match_template`)."""

    path: str
    create: bool = True  # created when missing; False: must exist, else the grant waits (failed)
    internal: bool = False  # never reachable by an external user
    grants: list[FolderGrant] = []

    @field_validator("path")
    @classmethod
    def _clean(cls, value: str) -> str:
        value = value.strip("/")
        if not value:
            raise ValueError("a folder path cannot be empty")
        return value

    @property
    def attribute(self) -> str | None:
        """The attribute a per-attribute folder is made per value of (None: one fixed folder)."""
        found = _FIELD.findall(self.path)
        return found[0][0] if found else None

    @model_validator(mode="after")
    def _per_attribute(self) -> CloudinaryFolder:
        from .policy import ATTRIBUTES  # policy.py imports this module

        fields = {name for name, _ in _FIELD.findall(self.path)}
        if len(fields) > 1:
            raise ValueError(f"folder {self.path!r}: a per-attribute folder names one attribute, not {sorted(fields)}")
        unknown = sorted(fields - set(ATTRIBUTES))
        if unknown:
            raise ValueError(f"folder {self.path!r} names unknown attribute {unknown[0]!r}")
        for grant in self.grants if fields else []:
            named = {name for name, _ in _FIELD.findall(grant.group)}
            if named != fields or _template_pattern(grant.group) is None:
                raise ValueError(
                    f"folder {self.path!r}: each grant of a per-attribute folder goes to the derived group of "
                    f"that value, a template on {{{next(iter(fields))}}} such as 'region-{{{next(iter(fields))}}}' "
                    f"(not {grant.group!r}); give a fixed group a role on the parent folder instead: "
                    "folder roles are inherited by sub-folders"
                )
        return self

    def templated(self, index: int, derived_name: str) -> list[PolicyGrant]:
        """The grants a derived group's name implies on this per-attribute folder."""
        found = []
        for grant in self.grants if self.attribute else []:
            value = match_template(grant.group, derived_name)
            if value is None or not self.attribute or "/" in value or value.strip(". ") == "":
                continue  # a value is one folder name: "EMEA/North" or ".." must not make or reach another path
            path = fill(self.path, {self.attribute: value})
            if path:
                found.append(
                    PolicyGrant(
                        "folder",
                        path,
                        derived_name,
                        (folder_role_id(grant.role),),
                        f"access.cloudinary.folders[{index}] ({self.attribute}={value})",
                    )
                )
        return found


class CloudinaryCollection(_Strict):
    id: str  # Cloudinary has no public collection API: collections are named by id (research §3.5)
    internal: bool = False
    grants: list[FolderGrant] = []  # role: a content role id with collection_id policy parameters


class AgencyKey(_Strict):
    """A dedicated API key of the product environment for one agency, holding only folder roles:
    enabled while the agency's directory group has an active member, disabled otherwise. The
    bridge never keeps or shows the key's secret: the agency's admin reads it in the Console."""

    group: str  # the agency's directory group
    folders: list[str]  # folder paths the key may reach
    role: FolderRole = "contributor"


class CloudinaryAccess(TargetSection):
    product_environment: str | None = None  # cloud_name; the Admin API key comes with the credentials
    permission_model: Literal["auto", "roles", "invite"] = "auto"
    folders: list[CloudinaryFolder] = []
    collections: list[CloudinaryCollection] = []
    agency_keys: list[AgencyKey] = []

    def makes_grants(self) -> bool:
        return bool(self.folders or self.collections or self.agency_keys)

    def agency_groups(self) -> set[str]:
        return {k.group.lower() for k in self.agency_keys}

    def grant_rules(self, reviewers: list[Reviewers]) -> list[PolicyGrant]:
        found = [
            PolicyGrant(
                "folder", f.path, g.group, (folder_role_id(g.role),), f"access.cloudinary.folders[{i}] ({f.path})"
            )
            for i, f in enumerate(self.folders)
            if not f.attribute  # per-attribute folders: templated_rules, by the derived group's name
            for g in f.grants
        ]
        found += [
            PolicyGrant(
                "cloudinary-collection", c.id, g.group, (g.role,), f"access.cloudinary.collections[{i}] ({c.id})"
            )
            for i, c in enumerate(self.collections)
            for g in c.grants
        ]
        # Reviewer groups hold one global role carrying the moderation policy, or with folders one
        # custom policy per governed folder (sync/access_sync.py), where the account answers the
        # Permissions API.
        found += [
            PolicyGrant(
                "moderation",
                ", ".join(r.folders) if r.folders else MODERATOR_ROLE,  # folders: custom policies per folder
                r.group,
                ("moderate",),
                f"access.reviewers[{i}]",
            )
            for i, r in enumerate(reviewers)
        ]
        found += [
            PolicyGrant(
                "agency-key",
                path,
                k.group,
                (folder_role_id(k.role),),
                f"access.cloudinary.agency_keys[{i}] (the agency's API key, on while it has an active member)",
                directory_group=True,
            )
            for i, k in enumerate(self.agency_keys)
            for path in k.folders
        ]
        return found

    def resources(self) -> list[tuple[str, str]]:
        return [("folder", f.path) for f in self.folders if not f.attribute]

    def templated_rules(self, derived_name: str) -> list[PolicyGrant]:
        return [g for i, f in enumerate(self.folders) for g in f.templated(i, derived_name)]

    def folder_groups(self) -> list[str]:
        """The derived-group templates per-attribute folders are granted to (made derived groups)."""
        return [g.group for f in self.folders if f.attribute for g in f.grants]


class CollectionGrant(_Strict):
    group: str
    permissions: list[IconikPermission]


class IconikCollection(_Strict):
    title: str
    id: str | None = None  # adopt this collection instead of finding or creating one by title
    parent: str | None = None  # the title of another collection in this list
    create: bool = True
    internal: bool = False
    apply_to_contents: bool = False  # also grant on what the collection holds now (APPEND)
    grants: list[CollectionGrant] = []


class Workspace(_Strict):
    """A collection per value of an attribute (department, region, business unit), reachable by
    the derived group of that value."""

    attribute: str
    group: str  # derived group template, e.g. "region-{division}" (added to derived_groups)
    title: str  # collection title template, e.g. "Region {division}"
    parent: str | None = None
    permissions: list[IconikPermission] = ["read", "write"]


class GroupRoles(_Strict):
    """iconik functional roles (strings on a group, research/iconik.md §3.1): the bridge sets exactly
    these on the group's target group. They can only restrict what the user type allows; the role
    catalogue is not public (the `can_*` names of the API spec), so they are not checked here."""

    group: str
    roles: list[str] = Field(min_length=1)


class ProjectTeams(_Strict):
    groups: list[str] = []  # globs on directory group names, e.g. "project-*"
    name: str = "{displayName}"
    on_group_delete: Literal["delete", "keep"] = "delete"  # iconik projects have no archived status


class IconikAccess(TargetSection):
    collections: list[IconikCollection] = []
    workspaces: list[Workspace] = []
    group_roles: list[GroupRoles] = []  # role assignments (issue 9 item 6)
    projects: ProjectTeams = ProjectTeams()
    # Content added later under an `apply_to_contents` collection is not known to inherit its ACL
    # (research §4.3): every this many seconds the grants run again and cover it (0 = off). iconik
    # webhooks on new collections (web/webhooks.py) cover it at once; this bounds the wait without them.
    regrant_seconds: int = Field(300, ge=0)

    def makes_grants(self) -> bool:
        return bool(self.collections or self.workspaces or self.group_roles)

    def regrant_every(self) -> int:
        return self.regrant_seconds if any(c.apply_to_contents for c in self.collections) else 0

    def closes_project_with_group(self) -> bool:
        return self.projects.on_group_delete == "delete"

    def governs_contents(self) -> set[str]:
        return {c.title for c in self.collections if c.apply_to_contents}

    @model_validator(mode="after")
    def _parents(self) -> IconikAccess:
        titles = [c.title for c in self.collections]
        for index, collection in enumerate(self.collections):
            if collection.parent and collection.parent not in titles[:index]:
                raise ValueError(
                    f"collection {collection.title!r}: parent {collection.parent!r} must be listed before it"
                )
        for workspace in self.workspaces:
            if workspace.parent and workspace.parent not in titles:
                raise ValueError(
                    f"workspace {workspace.title!r}: parent {workspace.parent!r} is not a listed collection"
                )
        return self

    def grant_rules(self, reviewers: list[Reviewers]) -> list[PolicyGrant]:
        return [
            PolicyGrant(
                "collection",
                c.title,
                g.group,
                tuple(sorted(g.permissions)),
                f"access.iconik.collections[{i}] ({c.title})",
            )
            for i, c in enumerate(self.collections)
            for g in c.grants
        ] + [
            PolicyGrant("group-role", r.group, r.group, tuple(sorted(set(r.roles))), f"access.iconik.group_roles[{i}]")
            for i, r in enumerate(self.group_roles)
        ]

    def resources(self) -> list[tuple[str, str]]:
        return [("collection", c.title) for c in self.collections]

    def templated_rules(self, derived_name: str) -> list[PolicyGrant]:
        found = []
        for i, workspace in enumerate(self.workspaces):
            value = match_template(workspace.group, derived_name)
            if value is not None:
                title = fill(workspace.title, {workspace.attribute: value}) or derived_name
                found.append(
                    PolicyGrant(
                        "collection",
                        title,
                        derived_name,
                        tuple(sorted(workspace.permissions)),
                        f"access.iconik.workspaces[{i}] ({workspace.attribute}={value})",
                    )
                )
        return found

    def project_name(self, group_name: str) -> str | None:
        if any(fnmatch.fnmatchcase(group_name.lower(), p.lower()) for p in self.projects.groups):
            return self.projects.name.replace("{displayName}", group_name)
        return None


class External(_Strict):
    """The agency profile: who is external is `guardrails.external`; this says what they may reach."""

    folders: list[str] = []  # globs on folder paths; an external user reaches nothing else
    collections: list[str] = []  # globs on iconik collection titles
    max_folder_role: FolderRole = "contributor"
    max_collection_permissions: list[IconikPermission] = ["read", "write"]
    # Roles an external user may hold besides the target's default (validated in policy.py): a
    # paid iconik licence with edit rights, or a Cloudinary role above a Media Library user, is
    # never an agency's by accident of a group or attribute rule.
    cloudinary_roles: list[str] = ["media_library_user"]
    iconik_user_types: list[str] = ["BROWSE_ONLY", "BROWSE_API_ONLY"]
    roles: dict[str, list[str]] = {}  # target → roles, for any target (wins over the two lists above)
    expiry_attribute: str | None = None  # a SCIM attribute (URN-qualified if in an extension) holding a date


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
    """`external`, `reviewers`, `context`, and one section per registered target: the two typed
    fields are today's targets; another's `access.<name>` is validated by its registry entry."""

    model_config = ConfigDict(extra="allow")
    cloudinary: CloudinaryAccess = CloudinaryAccess()
    iconik: IconikAccess = IconikAccess()
    external: External = External()
    reviewers: list[Reviewers] = []
    context: DeliveryContext = DeliveryContext()

    def workspace_groups(self) -> list[str]:
        """Derived-group templates the access rules imply: iconik workspaces, per-attribute folders."""
        return [*(w.group for w in self.iconik.workspaces), *self.cloudinary.folder_groups()]

    def sections(self) -> dict[str, TargetSection]:
        """Every registered target's section, in registry order."""
        from ..targets.registry import TARGETS

        return {name: self.section(name) for name in TARGETS}

    def project_name(self, group_name: str) -> str | None:
        """The project a directory group stands for in the target that keeps project teams, if any."""
        return next((p for s in self.sections().values() if (p := s.project_name(group_name))), None)

    @model_validator(mode="after")
    def _registered(self) -> Access:
        from ..targets.registry import TARGETS, resolve  # the registry names models in this module

        extra = self.__pydantic_extra__ or {}
        for name, value in extra.items():
            if name not in TARGETS:
                known = sorted({*type(self).model_fields, *TARGETS})
                raise ValueError(f"unknown section {name!r} (known: {', '.join(known)})")
            extra[name] = resolve(TARGETS[name].access_model).model_validate(value)
        return self

    def section(self, target: str) -> TargetSection:
        """The `access.<target>` section (an empty one for a target that takes no grants)."""
        found = getattr(self, target, None)
        return found if isinstance(found, TargetSection) else TargetSection()


MODERATOR_ROLE = "scim_bridge_moderator"  # targets/cloudinary_access.py creates it under this id


@functools.cache
def _template_pattern(template: str) -> re.Pattern[str] | None:
    parts = re.split(r"\{\w+\}", template)
    if len(parts) != 2:
        return None
    return re.compile(re.escape(parts[0]) + "(.+)" + re.escape(parts[1]))


def match_template(template: str, name: str) -> str | None:
    """The value a one-field template like "region-{division}" was filled with to give `name`."""
    pattern = _template_pattern(template)
    found = pattern.fullmatch(name) if pattern else None
    return found.group(1) if found else None


def fill(template: str, attributes: dict[str, str]) -> str | None:
    """A template with every {attribute} known, else None; {attribute|lower} lower-cases the value
    (folder paths are usually lower case, directory values rarely are)."""
    fields = _FIELD.findall(template)
    if any(not attributes.get(name) for name, _ in fields):
        return None
    return _FIELD.sub(lambda m: attributes[m.group(1)].lower() if m.group(2) else attributes[m.group(1)], template)


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

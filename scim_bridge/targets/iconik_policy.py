"""iconik's policy sections: `targets.iconik` (its user types, default user type, credentials) and
`access.iconik` (collections, workspaces, role assignments, project teams).

Registered by its entry in targets/registry.py; sync/policy.py validates the section with this
model and never names it.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..sync.access import Access, CollectionPermission, PolicyGrant, Reviewers, TargetSection, fill, match_template
from ..sync.policy import TargetPolicy

if TYPE_CHECKING:
    from ..sync.guardrails import ExternalProfile

IconikUserType = Literal["POWER", "STANDARD", "BROWSE_ONLY", "BROWSE_API_ONLY"]
ICONIK_TYPES: tuple[IconikUserType, ...] = get_args(IconikUserType)


class IconikPolicy(TargetPolicy):
    ROLES = ICONIK_TYPES
    REVIEW_SCOPE = "collection"
    APPROVAL_REQUEST = True  # ready for POST …/approvals/request/ (research/iconik.md §6)
    EXTERNAL_ROLES_FIELD = "iconik_user_types"
    EXTERNAL_ROLES = ("BROWSE_ONLY", "BROWSE_API_ONLY")
    ADMIN_ROLES = ("POWER",)
    enabled: bool = False
    base_url: str = "https://app.iconik.io"
    default_user_type: IconikUserType = "BROWSE_ONLY"
    rate: float = Field(45.0, gt=0)
    credentials_env: dict[str, str] = {"app_id": "ICONIK_APP_ID", "auth_token": "ICONIK_AUTH_TOKEN"}
    # webhook_secret: the value iconik webhooks send in their X-Bridge-Secret header (/webhooks/iconik).
    optional_credentials_env: dict[str, str] = {"webhook_secret": "ICONIK_WEBHOOK_SECRET"}
    credentials_file: str | None = None
    service_account_email: str | None = None

    def role_default(self) -> str:
        return self.default_user_type


# What a project member reaches in the project's collection: iconik does not document it
# (research/iconik.md §11 q8); the emulator's switch gives read and write, so the guardrail
# assumes that much.
PROJECT_PERMISSIONS = ["read", "write"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CollectionGrant(_Strict):
    group: str
    permissions: list[CollectionPermission]


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
    permissions: list[CollectionPermission] = ["read", "write"]


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
    GRANT_KINDS = ("collection", "group-role")
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

    def derived_group_templates(self) -> list[str]:
        return [w.group for w in self.workspaces]

    def resource_grants(self) -> list[PolicyGrant]:
        return [g for g in self.grant_rules([]) if g.kind == "collection"]

    def grant_groups(self) -> list[str]:
        return [r.group for r in self.group_roles]

    def guardrail_problems(self, profile: ExternalProfile) -> list[tuple[tuple[str | int, ...], str]]:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for c_index, collection in enumerate(self.collections):
            for g_index, grant in enumerate(collection.grants):
                problem = profile.collection_problem(collection.title, collection.internal, list(grant.permissions))
                if problem and profile.external_group(grant.group):
                    problems.append(
                        (
                            ("collections", c_index, "grants", g_index),
                            f"access.iconik.collections[{c_index}].grants[{g_index}]: external group "
                            f"{grant.group!r} would reach {problem}",
                        )
                    )
        for w_index, workspace in enumerate(self.workspaces):
            reach = profile.templated_reach(workspace.attribute, workspace.group, workspace.title)
            problem = (
                profile.collection_problem(reach, False, list(workspace.permissions), "workspace") if reach else None
            )
            if problem:
                problems.append(
                    (
                        ("workspaces", w_index),
                        f"access.iconik.workspaces[{w_index}]: external group {workspace.group!r} "
                        f"would reach {problem}",
                    )
                )
        for p_index, pattern in enumerate(self.projects.groups):
            if profile.external_group(pattern):
                title = self.projects.name.replace("{displayName}", pattern)
                problem = profile.collection_problem(title, False, PROJECT_PERMISSIONS, "project collection")
                if problem:
                    problems.append(
                        (
                            ("projects", "groups", p_index),
                            f"access.iconik.projects.groups[{p_index}]: external group {pattern!r} "
                            f"would reach {problem}",
                        )
                    )
        return problems

    def group_problems(self, profile: ExternalProfile, name: str) -> list[tuple[str, str | None]]:
        lowered = name.lower()
        problems: list[tuple[str, str | None]] = []
        for c_index, collection in enumerate(self.collections):
            for g_index, grant in enumerate(collection.grants):
                if grant.group.lower() == lowered:
                    problems.append(
                        (
                            f"access.iconik.collections[{c_index}].grants[{g_index}]",
                            profile.collection_problem(collection.title, collection.internal, list(grant.permissions)),
                        )
                    )
        for w_index, workspace in enumerate(self.workspaces):
            value = match_template(workspace.group, name)
            if value is not None:
                title = fill(workspace.title, {workspace.attribute: value}) or name
                problems.append(
                    (
                        f"access.iconik.workspaces[{w_index}]",
                        profile.collection_problem(title, False, list(workspace.permissions), "workspace"),
                    )
                )
        project = self.project_name(name)
        if project is not None:
            problems.append(
                (
                    "access.iconik.projects",
                    profile.collection_problem(project, False, PROJECT_PERMISSIONS, "project collection"),
                )
            )
        return problems

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


def iconik_section(access: Access) -> IconikAccess:
    """`access.iconik`, typed (for the modules that still read it by name: tests/test_target_names.py)."""
    section = access.section("iconik")
    return section if isinstance(section, IconikAccess) else IconikAccess()

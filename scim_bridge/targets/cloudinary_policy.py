"""Cloudinary's policy sections: `targets.cloudinary` (its roles, default role, credentials) and
`access.cloudinary` (folders, per-attribute folders, collections, agency keys, and the moderation
grants of `access.reviewers`).

Registered by its entry in targets/registry.py; sync/policy.py validates the section with this
model and never names it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..sync.access import (
    TEMPLATE_FIELD,
    Access,
    FolderRole,
    PolicyGrant,
    Reviewers,
    TargetSection,
    fill,
    folder_role_id,
    match_template,
    one_field_template,
)
from ..sync.policy import ATTRIBUTES, TargetPolicy

if TYPE_CHECKING:
    from ..sync.guardrails import ExternalProfile

CloudinaryRole = Literal[
    "master_admin",
    "admin",
    "billing",
    "technical_admin",
    "reports",
    "media_library_admin",
    "media_library_user",
]
CLOUDINARY_ROLES: tuple[CloudinaryRole, ...] = get_args(CloudinaryRole)


class CloudinaryPolicy(TargetPolicy):
    ROLES = CLOUDINARY_ROLES
    REVIEW_SCOPE = "folder"
    EXTERNAL_ROLES_FIELD = "cloudinary_roles"
    EXTERNAL_ROLES = ("media_library_user",)
    ADMIN_ROLES = ("master_admin", "admin", "technical_admin", "billing", "media_library_admin")
    enabled: bool = False
    base_url: str = "https://api.cloudinary.com"
    default_role: CloudinaryRole = "media_library_user"
    rate: float = Field(10.0, gt=0)
    credentials_env: dict[str, str] = {
        "account_id": "CLOUDINARY_ACCOUNT_ID",
        "key": "CLOUDINARY_API_KEY",
        "secret": "CLOUDINARY_API_SECRET",
    }
    # Optional: without it the feature is off. webhook_secret: the API secret(s) of the product
    # environment(s) whose notifications come to /webhooks/cloudinary, comma-separated.
    optional_credentials_env: dict[str, str] = {
        "webhook_secret": "CLOUDINARY_WEBHOOK_SECRET",
        # the product environment's key for folders (Admin API)
        "admin_key": "CLOUDINARY_ADMIN_API_KEY",
        "admin_secret": "CLOUDINARY_ADMIN_API_SECRET",
    }
    credentials_file: str | None = None
    service_account_email: str | None = None
    api_key_owners: dict[str, str] = {}  # API key → who holds it (an agency, an integration), for activity


MODERATOR_ROLE = "scim_bridge_moderator"  # targets/cloudinary_access.py creates it under this id


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
        found = TEMPLATE_FIELD.findall(self.path)
        return found[0][0] if found else None

    @model_validator(mode="after")
    def _per_attribute(self) -> CloudinaryFolder:
        fields = {name for name, _ in TEMPLATE_FIELD.findall(self.path)}
        if len(fields) > 1:
            raise ValueError(f"folder {self.path!r}: a per-attribute folder names one attribute, not {sorted(fields)}")
        unknown = sorted(fields - set(ATTRIBUTES))
        if unknown:
            raise ValueError(f"folder {self.path!r} names unknown attribute {unknown[0]!r}")
        for grant in self.grants if fields else []:
            named = {name for name, _ in TEMPLATE_FIELD.findall(grant.group)}
            if named != fields or not one_field_template(grant.group):
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
    GRANT_KINDS = ("folder", "cloudinary-collection", "moderation", "agency-key")
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

    def derived_group_templates(self) -> list[str]:
        """The derived-group templates per-attribute folders are granted to (made derived groups)."""
        return [g.group for f in self.folders if f.attribute for g in f.grants]

    def reviewer_grant(self) -> str | None:
        return "the Cloudinary moderation role"

    def resource_grants(self) -> list[PolicyGrant]:
        return [g for g in self.grant_rules([]) if g.kind == "folder"]

    def grant_groups(self) -> list[str]:
        return [k.group for k in self.agency_keys]

    def guardrail_problems(self, profile: ExternalProfile) -> list[tuple[tuple[str | int, ...], str]]:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for f_index, folder in enumerate(self.folders):
            for g_index, grant in enumerate(folder.grants):
                if folder.attribute:  # a folder per value: the paths its derived group gives external people
                    reach = profile.templated_reach(folder.attribute, grant.group, folder.path)
                    problem = profile.folder_problem(reach, folder.internal, grant.role) if reach else None
                else:
                    problem = profile.folder_problem(folder.path, folder.internal, grant.role)
                if problem and (folder.attribute or profile.external_group(grant.group)):
                    problems.append(
                        (
                            ("folders", f_index, "grants", g_index),
                            f"access.cloudinary.folders[{f_index}].grants[{g_index}]: external group "
                            f"{grant.group!r} would reach {problem}",
                        )
                    )
        for c_index, collection in enumerate(self.collections):
            for g_index, grant in enumerate(collection.grants):
                if profile.external_group(grant.group):
                    problems.append(
                        (
                            ("collections", c_index, "grants", g_index),
                            f"access.cloudinary.collections[{c_index}].grants[{g_index}]: external group "
                            f"{grant.group!r} would reach {_collection_problem(collection.id, collection.internal)}",
                        )
                    )
        for k_index, key in enumerate(self.agency_keys):  # an agency key is external by nature
            for path in key.folders:
                declared = next((f for f in self.folders if f.path == path), None)
                problem = profile.folder_problem(path, bool(declared and declared.internal), key.role)
                if problem:
                    problems.append(
                        (
                            ("agency_keys", k_index),
                            f"access.cloudinary.agency_keys[{k_index}]: the key of {key.group!r} would reach {problem}",
                        )
                    )
        return problems

    def group_problems(self, profile: ExternalProfile, name: str) -> list[tuple[str, str | None]]:
        lowered = name.lower()
        problems: list[tuple[str, str | None]] = []
        for f_index, folder in enumerate(self.folders):
            for granted in folder.templated(f_index, name):  # a per-attribute folder this derived group gets
                problems.append(
                    (granted.rule, profile.folder_problem(granted.resource, folder.internal, granted.rights[0]))
                )
            for g_index, grant in enumerate(folder.grants):
                if grant.group.lower() == lowered and not folder.attribute:
                    problems.append(
                        (
                            f"access.cloudinary.folders[{f_index}].grants[{g_index}]",
                            profile.folder_problem(folder.path, folder.internal, grant.role),
                        )
                    )
        for c_index, collection in enumerate(self.collections):
            if any(g.group.lower() == lowered for g in collection.grants):
                problems.append(
                    (
                        f"access.cloudinary.collections[{c_index}]",
                        _collection_problem(collection.id, collection.internal),
                    )
                )
        return problems


def _collection_problem(collection_id: str, internal: bool) -> str:
    # access.external lists folders and iconik collections only: a Cloudinary collection is outside it.
    what = "internal-only Cloudinary collection" if internal else "Cloudinary collection"
    return f"{what} {collection_id}, which access.external does not list"


def cloudinary_section(access: Access) -> CloudinaryAccess:
    """`access.cloudinary`, typed (for the modules that still read it by name: tests/test_target_names.py)."""
    section = access.section("cloudinary")
    return section if isinstance(section, CloudinaryAccess) else CloudinaryAccess()

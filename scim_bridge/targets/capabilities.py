"""Optional capabilities of a target, beyond the core every target has (accounts, groups, membership).

A translator declares what it can do; callers ask instead of probing with `hasattr`:

    Capability.FOLDER_GRANTS    `target.folders`      folder roles, folder-like collections, moderation
    Capability.AGENCY_KEYS      `target.agency_keys`  a dedicated API key per agency, held to its folders
    Capability.COLLECTION_ACLS  `target.acls`         collections and group ACLs on them
    Capability.PROJECTS         `target.projects`     projects whose members are users
    Capability.APPROVALS        `target.approvals`    approval requests naming reviewers (routing)
    Capability.LAST_LOGIN       `TargetAccount.last_login` is filled by `list_accounts`
    Capability.ACTIVITY         the registry names a webhook receiver (`WebhookReceiver`) for the target

The grant capabilities are clients the policy turns on (a translator without them answers None,
the default of targets/base.py); LAST_LOGIN and ACTIVITY are what a translator `offers` whatever
the policy says. The protocols below are what sync/ and audit/ call on each client; today one
target implements each (Cloudinary the first two, iconik the next two), so their words are that
target's (role ids, permissions); a second implementation is where they become general.

Does not: import anything of the bridge (targets/base.py imports this module).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class Capability(StrEnum):
    FOLDER_GRANTS = "folder_grants"
    AGENCY_KEYS = "agency_keys"
    COLLECTION_ACLS = "collection_acls"
    PROJECTS = "projects"
    APPROVALS = "approvals"
    LAST_LOGIN = "last_login"
    ACTIVITY = "activity"


class FolderGrants(Protocol):
    """Roles on folders (and collections) for groups (targets/cloudinary_access.py)."""

    async def detect_model(self, wanted: str) -> str: ...

    async def ensure_folder(self, path: str, create: bool) -> str | None: ...

    async def folder_grants(self, folder_id: str) -> dict[tuple[str, str], set[str]]: ...

    async def change(self, operation: str, folder_id: str, principal: tuple[str, str], roles: list[str]) -> None: ...

    async def change_collection(self, operation: str, collection_id: str, group_id: str, roles: list[str]) -> None: ...

    async def ensure_moderator_role(self) -> str: ...

    async def global_roles(self, group_id: str) -> set[str]: ...

    async def change_global(self, operation: str, group_id: str, role_id: str) -> None: ...

    async def custom_policies(self) -> list[dict[str, Any]]: ...

    async def create_policy(self, name: str, statement: str, description: str) -> str: ...

    async def delete_policy(self, policy_id: str, name: str) -> None: ...

    async def close(self) -> None: ...


class AgencyKeys(Protocol):
    """API keys made for agencies, enabled while the agency has an active member."""

    async def create_key(self, name: str) -> str: ...

    async def set_key_enabled(self, api_key: str, enabled: bool) -> bool: ...


class CollectionAcls(Protocol):
    """Collections by title and parent, and per-group ACLs on them (targets/iconik_access.py)."""

    async def collection_exists(self, collection_id: str) -> bool: ...

    async def find_collection(self, title: str, parent_id: str | None) -> str | None: ...

    async def create_collection(self, title: str, parent_id: str | None) -> str: ...

    async def group_acls(self, collection_id: str) -> dict[str, set[str]]: ...

    async def set_group_acl(self, collection_id: str, group_id: str, permissions: list[str]) -> None: ...

    async def remove_group_acl(self, collection_id: str, group_id: str) -> None: ...

    async def user_acls(self, collection_id: str) -> dict[str, set[str]]: ...

    async def group_roles(self, group_id: str) -> set[str]: ...

    async def set_group_roles(self, group_id: str, roles: list[str]) -> None: ...

    async def remove_user_acl(self, collection_id: str, user_id: str) -> None: ...

    async def grant_contents(self, collection_id: str, group_id: str, permissions: list[str]) -> None: ...

    async def close(self) -> None: ...


class ProjectTeams(Protocol):
    """Projects named after directory groups, whose members are user accounts."""

    async def ensure_project(self, name: str, known_id: str | None, parent_collection: str | None = None) -> str: ...

    async def delete_project(self, project_id: str, with_collection: bool = False) -> None: ...

    async def project_members(self, project_id: str) -> set[str]: ...

    async def add_project_member(self, project_id: str, user_id: str) -> None: ...

    async def remove_project_member(self, project_id: str, user_id: str) -> None: ...


class ApprovalRequests(Protocol):
    """Where content sits and approval requests on it (targets/iconik_approvals.py), for routing
    new content to the reviewers of the rule that governs its collection (sync/approvals.py)."""

    async def containers(self, object_type: str, object_id: str) -> list[str]: ...

    async def lineage(self, collection_id: str) -> list[str]: ...

    async def collections(self) -> list[tuple[str, str, list[str]]]: ...

    async def assets_in(self, collection_id: str) -> list[tuple[str, str]]: ...

    async def approval_request(self, object_type: str, object_id: str) -> dict[str, Any] | None: ...

    async def request_approval(self, object_type: str, object_id: str, user_ids: list[str], words: str) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class ContentArrival:
    """A webhook delivery's news that content arrived: the object (its type and id as the target's
    approval API names them) that may now need an approval."""

    object_type: str
    object_id: str


class GrantsRun(Protocol):
    """What the grants run (sync/access_sync.py `AccessSync`) gives a target's grants applier: the
    groups the bridge manages, the policy's grants in the target, a key/value space of its own
    (resolved ids, what it last gave), and where a dry run (reconciliation) records differences
    (`drift`: target, kind, resource, detail; `direct`: grants to one account, not a group)."""

    dry_run: bool
    rerun: bool  # set when something was found gone and the run must come again
    drift: list[tuple[str, str, str, str]]
    direct: list[tuple[str, str, str, str, str, list[str]]]
    strip_direct: set[str]  # accounts whose direct grants a run removes (reconcile --apply)

    @property
    def reviewers(self) -> list[Any]: ...  # `access.reviewers`: group, folders, collections

    def grants(self, target: str, derived_names: list[str]) -> list[Any]: ...  # resource, group, rights, rule

    def target_name(self, group: str) -> str: ...

    async def managed_groups(self, target: str) -> dict[str, str]: ...

    async def derived_names(self, target: str) -> list[str]: ...

    async def group_has_active_member(self, display_name: str) -> bool: ...

    async def kv_get(self, key: str) -> bytes | None: ...

    async def kv_put(self, key: str, value: bytes) -> None: ...

    async def kv_delete(self, key: str) -> None: ...


class GrantsApplier(Protocol):
    """A target's grants, applied through its capability client: built per run by the registry
    entry's `grants` factory from the run (a GrantsRun) and the target's `access.<name>` section."""

    async def apply(self, target: Any) -> None:
        """Give and take back what the section's rules say, in `target` (its translator)."""
        ...

    async def content_added(self, payload: dict[str, Any]) -> bool:
        """Whether a webhook delivery (its JSON) announces content a grant must cover at once."""
        ...

    async def held(self, target: Any) -> list[HeldResource]:
        """What each resource the policy governs holds now, for the access review (audit/review.py)."""
        ...


@dataclass
class HeldGrant:
    """Rights one principal holds on a resource, as the target reports them."""

    principal: str  # "group", "user" or "apiKey"
    principal_id: str
    rights: set[str]  # as the target names them (role ids, permissions)
    owner: str | None = None  # an API key: who it was made for, when the policy made it
    rule: str | None = None  # an API key: the rule that made it


@dataclass
class HeldResource:
    """A governed resource (a folder, a collection) and the grants on it, for the access review."""

    kind: str  # the word review uses: "folder", "collection"
    name: str  # path or title
    id: str | None  # None: not resolved yet (the grants run has not made or found it)
    #: True: each right is a role of its own that rules add up (folder roles); False: the rights are
    #: one ACL that one rule gives whole (collection permissions).
    rights_add_up: bool
    note: str | None = None  # why its grants are not listed ("deleted in …")
    grants: list[HeldGrant] = field(default_factory=list)


class WebhookReceiver(Protocol):
    """A target's webhook deliveries, as web/webhooks.py serves them at POST /webhooks/<name>:
    whether the receiver is configured (else 404, `off_message`), why a delivery is refused (401),
    and the activity Event (audit/activity.py) it becomes. Built by the registry entry's `webhook`
    factory from the target's credentials (optional `webhook_secret`) and policy section."""

    off_message: str
    key_owners: Mapping[str, str]  # API key → who holds it, for the activity trail's actors
    regrants_on_content: bool  # a stored delivery may announce content that a grant must cover

    @property
    def configured(self) -> bool: ...

    def header_refusal(self, headers: Mapping[str, str]) -> str | None:
        """Why a delivery is refused from its headers alone (its proof missing or, for a shared
        secret, wrong), checked before the body is read: an unproven sender costs no body."""
        ...

    def refusal(self, headers: Mapping[str, str], body: bytes, now: float) -> str | None: ...

    def normalise(self, payload: dict[str, Any], headers: Mapping[str, str]) -> Any: ...

    def arrivals(self, payload: dict[str, Any]) -> list[ContentArrival]:
        """The content a delivery says arrived (reviewer routing asks for approvals on it); [] for a
        target without approvals."""
        ...

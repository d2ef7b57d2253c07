"""What the sync engine asks of a target (Cloudinary, iconik, or the next one), and how a target fails.

A translator subclasses `Target`: it implements the core (accounts, groups, membership) and
declares its optional capabilities (targets/capabilities.py). Every optional capability has a
default, so a caller asks `target.capabilities` or calls the default, never `hasattr`.

Errors form a tree so the engine decides by type, never by parsing messages:

    TargetError
    ├── RetryableError            try again later; the change is kept
    │   ├── Throttled             429/420; .retry_after seconds when the target said so
    │   ├── Unavailable           5xx, connection refused or dropped
    │   └── TargetTimeout         no answer in time
    └── PermanentError            retrying the same request cannot help
        ├── Conflict              409 (e.g. a name taken by an account the bridge does not own)
        ├── Invalid               400 (the target refused the values)
        ├── Forbidden             401/403 (the bridge's own credentials or rights are wrong)
        └── Gone                  404 on something the ID map said existed
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from .capabilities import AgencyKeys, ApprovalRequests, Capability, CollectionAcls, FolderGrants, ProjectTeams


class TargetError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetryableError(TargetError):
    pass


class Throttled(RetryableError):
    def __init__(self, message: str, retry_after: float | None = None, status: int | None = 429) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class Unavailable(RetryableError):
    pass


class TargetTimeout(RetryableError):
    pass


class PermanentError(TargetError):
    pass


class Conflict(PermanentError):
    pass


class Invalid(PermanentError):
    pass


class Forbidden(PermanentError):
    pass


class Gone(PermanentError):
    pass


@dataclass(frozen=True)
class TargetUser:
    """A user as one target should have it (desired) or has it (listed)."""

    email: str
    first_name: str
    last_name: str
    display_name: str
    role: str  # Cloudinary role or iconik user type
    enabled: bool = True


@dataclass(frozen=True)
class EnsuredUser:
    """What `ensure_user` did: the account's id, and which of the requested groups it already
    joined in the same call (a target that takes groups on create saves a call per group)."""

    id: str
    joined: frozenset[str] = frozenset()
    created: bool = False


@dataclass
class TargetAccount:
    """An account as a target lists it (for reconciliation and adoption)."""

    id: str
    email: str
    role: str
    enabled: bool
    groups: list[str] = field(default_factory=list)  # target group ids
    last_login: str | None = None  # as the target reports it (Cloudinary last_login, iconik last_web_login)


class Target(ABC):
    """One translator per target. Every operation is idempotent: retried after a crash or a lost
    answer, it converges to the same state (create-or-adopt, set-membership, set-enabled).

    An ABC rather than a `typing.Protocol`: a Protocol gives its default bodies only to classes that
    subclass it explicitly, and checks nothing at run time; with an ABC a third target writes the
    core (the abstract methods, enforced when it is built) and inherits every optional capability's
    default, so it is as cheap as it can be and a missing method fails at construction, not mid-sync.
    """

    #: The registry name, the ID map's namespace and the policy section (`targets.<name>`).
    name: ClassVar[str]
    #: True: `ensure_user` can put a new account in its groups in the same call.
    memberships_on_create: ClassVar[bool] = False
    #: True: `list_accounts` carries each account's groups (iconik); False: a caller that needs them
    #: asks `group_members`, one call per group (Cloudinary lists accounts without their groups;
    #: its `list_users` adds them at one call per account).
    listing_carries_groups: ClassVar[bool] = True
    #: What the translator can do beyond the core whatever the policy says (last login, webhooks);
    #: the grant capabilities come from the clients the policy turned on (see `capabilities`).
    offers: ClassVar[frozenset[Capability]] = frozenset()

    # -- the core: accounts --------------------------------------------------------------------
    @abstractmethod
    async def ensure_user(self, user: TargetUser, known_id: str | None, groups: tuple[str, ...] = ()) -> EnsuredUser:
        """Create the account, or adopt the one with the same email; bring its fields to `user`
        (`enabled=False` disables it, True enables it again). `groups` (target group ids) are joined
        only when the account is created here and the target takes them on create; `joined` says
        which were. The service account is never disabled."""

    @abstractmethod
    async def disable_user(self, target_id: str, email: str) -> None:
        """Disable an account the directory does not know (an owned orphan); one already gone is fine;
        never the service account."""

    @abstractmethod
    async def delete_user(self, target_id: str) -> None:
        """Delete the account; an account already gone is fine; the service account is never deleted."""

    @abstractmethod
    async def list_users(self) -> list[TargetAccount]:
        """Every account, with its groups."""

    async def find_account(self, email: str) -> TargetAccount | None:
        """The account holding `email`, as adoption would find it (provision on demand shows it when
        the ID map has none). The default reads the whole listing; translators override it with
        their by-email lookup."""
        return next((a for a in await self.list_accounts() if a.email.lower() == email.lower()), None)

    async def list_accounts(self) -> list[TargetAccount]:
        """Every account, with its groups only when `listing_carries_groups`: a target whose
        `list_users` fetches groups per account overrides this with the cheaper listing (reconcile,
        review and last-login polling use it)."""
        return await self.list_users()

    async def probe(self) -> None:
        """One cheap read that succeeds only while the target takes the bridge's credentials: the
        quarantine (sync/quarantine.py) calls it on its back-off schedule and resumes on success.
        The default lists every account; a translator overrides it with a one-item listing."""
        await self.list_accounts()

    @property
    def service_account_email(self) -> str | None:
        """The bridge's own account in this target (policy `service_account_email`): never disabled
        or deleted. None: not configured."""
        return None

    # -- the core: groups and membership ---------------------------------------------------------
    @abstractmethod
    async def ensure_group(self, name: str, known_id: str | None, external_id: str) -> str:
        """Create the group, or adopt the one with that name; rename a known one. Returns its id."""

    @abstractmethod
    async def delete_group(self, target_id: str) -> None:
        """Delete the group; a group already gone is fine."""

    @abstractmethod
    async def add_member(self, group_id: str, user_id: str) -> None:
        """Add a member; one already in the group stays there once."""

    @abstractmethod
    async def remove_member(self, group_id: str, user_id: str) -> None:
        """Remove a member; a non-member (or a group already gone) is fine."""

    async def group_members(self, group_id: str) -> list[str]:
        """Ids of a group's members. The default reads every account's groups; a target with a
        members endpoint overrides it."""
        return [a.id for a in await self.list_users() if group_id in a.groups]

    async def set_members(self, group_id: str, user_ids: set[str]) -> None:
        """Make the group's members exactly `user_ids`: removals first (revocation first, DESIGN.md)."""
        current = set(await self.group_members(group_id))
        for user_id in sorted(current - user_ids):
            await self.remove_member(group_id, user_id)
        for user_id in sorted(user_ids - current):
            await self.add_member(group_id, user_id)

    @abstractmethod
    async def close(self) -> None:
        """Close every HTTP client of the translator, its capability clients included."""

    # -- optional capabilities: None means "not offered, or not turned on by the policy" --------
    @property
    def folders(self) -> FolderGrants | None:
        """Folder roles, folder-like collections and moderation (Capability.FOLDER_GRANTS)."""
        return None

    @property
    def agency_keys(self) -> AgencyKeys | None:
        """A dedicated API key per agency (Capability.AGENCY_KEYS)."""
        return None

    @property
    def acls(self) -> CollectionAcls | None:
        """Collections and group ACLs on them (Capability.COLLECTION_ACLS)."""
        return None

    @property
    def projects(self) -> ProjectTeams | None:
        """Projects whose members are users (Capability.PROJECTS)."""
        return None

    @property
    def approvals(self) -> ApprovalRequests | None:
        """Approval requests naming reviewers, for reviewer routing (Capability.APPROVALS)."""
        return None

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What this translator does beyond the core, as configured now."""
        found = set(self.offers)
        for capability, client in (
            (Capability.FOLDER_GRANTS, self.folders),
            (Capability.AGENCY_KEYS, self.agency_keys),
            (Capability.COLLECTION_ACLS, self.acls),
            (Capability.PROJECTS, self.projects),
            (Capability.APPROVALS, self.approvals),
        ):
            if client is not None:
                found.add(capability)
        return frozenset(found)

"""What the sync engine asks of a target (Cloudinary, iconik), and how a target fails.

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

from dataclasses import dataclass, field
from typing import Protocol


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


class Target(Protocol):
    """One translator per target. Every operation is idempotent: retried after a crash or a lost
    answer, it converges to the same state (create-or-adopt, set-membership, set-enabled)."""

    name: str
    memberships_on_create: bool  # True: ensure_user can put a new account in its groups at once

    async def ensure_user(self, user: TargetUser, known_id: str | None, groups: tuple[str, ...] = ()) -> EnsuredUser:
        """Create the account, or adopt the one with the same email; bring its fields to `user`.
        `groups` (target group ids) are joined only when the account is created here and the
        target takes them on create; `joined` says which were."""

    async def delete_user(self, target_id: str) -> None:
        """Delete the account; an account already gone is fine."""

    async def ensure_group(self, name: str, known_id: str | None, external_id: str) -> str:
        """Create the group, or adopt the one with that name; rename a known one. Returns its id."""

    async def delete_group(self, target_id: str) -> None: ...

    async def add_member(self, group_id: str, user_id: str) -> None: ...

    async def remove_member(self, group_id: str, user_id: str) -> None: ...

    async def list_users(self) -> list[TargetAccount]: ...

    async def close(self) -> None: ...

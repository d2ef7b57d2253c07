"""Who and what the current task works for, for the audit trail; nothing else is imported here, so
any layer can read it.

A SCIM request gets a correlation id (the client's X-Request-Id, else a new one), which is stored
with the change's queue entry; the sync worker sets it again when it processes that resource, so
every target call the change causes carries the id of the request that caused it.
"""

from __future__ import annotations

import itertools
import re
import secrets
from contextvars import ContextVar
from typing import Any

#: The request (or sync of a change) the current task works for.
CORRELATION_ID: ContextVar[str | None] = ContextVar("scim_bridge_correlation_id", default=None)


class ScimRequest:
    """The SCIM request being served. `state` is the request's scope state, where the auth
    middleware puts the principal once it has authenticated the caller."""

    __slots__ = ("method", "path", "state")

    def __init__(self, method: str, path: str, state: dict[str, Any]) -> None:
        self.method = method
        self.path = path
        self.state = state

    @property
    def client(self) -> dict[str, str] | None:
        principal = self.state.get("principal")
        return {"kind": principal.kind, "name": principal.name} if principal is not None else None


SCIM_REQUEST: ContextVar[ScimRequest | None] = ContextVar("scim_bridge_scim_request", default=None)

#: (resource type, SCIM id) the sync worker is processing, so target calls name their subject.
SYNC_SUBJECT: ContextVar[tuple[str, str] | None] = ContextVar("scim_bridge_sync_subject", default=None)

#: The target (vendor) the current task is calling, for log lines (set around each translator call).
TARGET: ContextVar[str | None] = ContextVar("scim_bridge_target", default=None)

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")


# A random per-process prefix and a counter: unique across replicas and restarts, and a tenth of
# the cost of fresh random bytes on a path that answers ~15,000 GETs/s.
_PREFIX = secrets.token_hex(8)
_COUNTER = itertools.count(1)


def new_correlation_id() -> str:
    return f"{_PREFIX}{next(_COUNTER):08x}"


def accept_correlation_id(value: str | None) -> str:
    """The client's own request id when it is a sane token (it is echoed and stored), else a new one."""
    if value and _CLIENT_ID.match(value):
        return value
    return new_correlation_id()

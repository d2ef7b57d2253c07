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
from collections.abc import Iterator
from contextlib import contextmanager
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

#: What the current target call is for, in words ("disable ava@example.com", "grant Marketing EMEA
#: contributor on campaigns/emea"): the translator that makes the call sets it (`intent`), and the
#: audit trail writes it beside the method and path.
INTENT: ContextVar[str | None] = ContextVar("scim_bridge_target_intent", default=None)


@contextmanager
def intent(words: str) -> Iterator[None]:
    token = INTENT.set(words)
    try:
        yield
    finally:
        INTENT.reset(token)


# Names of target objects, by (target, id), for intents: a translator or the grants run learns them
# whenever it holds both (it created, found or listed the object); a call on an object never seen
# by this process names it by kind and id. Bounded: emptied, not grown, past LABELS_LIMIT.
LABELS_LIMIT = 200_000
_LABELS: dict[tuple[str, str], str] = {}


def remember(target: str, object_id: str | None, name: str | None) -> None:
    if not object_id or not name:
        return
    if len(_LABELS) >= LABELS_LIMIT:
        _LABELS.clear()
    _LABELS[(target, str(object_id))] = str(name)


def label(target: str, object_id: str, kind: str) -> str:
    """The object's name if known, else "<kind> <id>"."""
    return _LABELS.get((target, str(object_id))) or f"{kind} {object_id}"


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

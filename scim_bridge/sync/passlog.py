"""The provisioning log: one audit entry (`kind: "provisioning"`) per object per sync pass.

The engine builds a `Pass` while it syncs a user or a group and appends its entry once, at the
end (one audit append per pass, no read of any target: the old values are the ID map entry the
engine reads anyway, the new ones the entry it writes). The entry says what the directory held,
per target what was done (old → new for each modified property), the brake's verdict, the
guardrail notes, how many target calls it took (the calls themselves are `kind: "target"` entries
under the same correlation id), and a status:

    failure   a target call failed (the worker retries the pass)
    held      the deprovision brake held a change that takes access away
    warning   applied, but a guardrail withheld something (or changed the role)
    success   something changed in a target, and nothing went wrong
    skipped   nothing to do: already in step, out of scope (inactive, never provisioned), or an
              operator rejected the held change

Entry shape (audit/provisioning.py reads and exports it):

    {"kind": "provisioning", "correlation", "trigger": "sync" | "on-demand",
     "resource": {"type", "id", "name"}, "status",
     "directory": {"exists", "active", "external", "groups": [names]},     (users; groups: members)
     "targets": {name: {"status", "action", "account", "matched", "role_rule", "notes", "brake",
                        "changes": [{"property", "old", "new", "added"?, "removed"?}],
                        "calls", "failed_calls", "error"}}}
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from .. import metrics
from ..store import Store, StoreUnavailable
from ..targets.http import CALL_OBSERVER, TargetCall
from .guardrails import decide_role
from .policy import Policy, UserFacts

if TYPE_CHECKING:
    from .engine import DesiredUser

log = logging.getLogger("scim_bridge.sync")

STATUSES = ("success", "failure", "skipped", "held", "warning")
_RANK = {"failure": 0, "held": 1, "warning": 2, "success": 3, "skipped": 4}

#: Set by provision on demand: every pass the engine finishes in this context is also handed here.
PASSES: ContextVar[list[Pass] | None] = ContextVar("scim_bridge_sync_passes", default=None)
#: The trigger written in the entries of passes run in this context.
TRIGGER: ContextVar[str] = ContextVar("scim_bridge_sync_trigger", default="sync")


@dataclass
class Applied:
    """What `_apply_user` did in one target: the ID map entry before and after, and the brake."""

    before: dict[str, Any] | None
    after: dict[str, Any] | None
    verdict: str | None = None  # "hold" or "keep" when the brake stopped the change
    created: bool | None = None  # True: a new account; False: an existing one adopted by email


@dataclass
class TargetStep:
    target: str
    desired: DesiredUser | None = None
    role_rule: str | None = None
    applied: Applied | None = None
    error: str | None = None
    calls: list[TargetCall] = field(default_factory=list)
    action: str | None = None  # groups: set by the engine ("create", "rename", "delete", "held", "none")
    changes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        note = self.desired.note if self.desired is not None else None
        return [part for part in (note or "").split("; ") if part]

    def summary(self, names: dict[str, str]) -> dict[str, Any]:
        applied = self.applied
        before = applied.before if applied else None
        after = applied.after if applied else None
        changes = self.changes or (changes_between(before, after, names) if applied else [])
        action = self.action or _action(before, after, applied.verdict if applied else None, changes)
        if self.error is not None:
            status = "failure"
        elif action == "held":
            status = "held"
        elif action == "kept":
            status = "skipped"
        elif self.notes:
            status = "warning"
        else:
            status = "success" if changes else "skipped"
        if applied is not None and applied.verdict:
            brake = "held" if applied.verdict == "hold" else "kept (rejected by an operator)"
        else:
            brake = None
        account = (after or before or {}).get("id")
        matched = None
        if before and before.get("id"):
            matched = "id-map"
        elif applied is not None and applied.created is not None:
            matched = "created" if applied.created else "email (adopted)"
        return {
            "status": status,
            "action": action,
            "account": account,
            "matched": matched,
            "role_rule": self.role_rule,
            "notes": self.notes,
            "brake": brake,
            "changes": changes,
            "calls": len(self.calls),
            "failed_calls": sum(1 for c in self.calls if c.outcome != "ok"),
            "error": self.error,
        }


@dataclass
class Pass:
    """One sync pass of one resource."""

    resource_type: str
    scim_id: str
    name: str | None
    directory: dict[str, Any]
    names: dict[str, str] = field(default_factory=dict)  # group key → name, for readable changes
    steps: dict[str, TargetStep] = field(default_factory=dict)
    correlation: str | None = None
    trigger: str = "sync"

    def step(self, target: str) -> TargetStep:
        return self.steps.setdefault(target, TargetStep(target))

    @contextmanager
    def collecting_calls(self) -> Iterator[None]:
        """Hand every target call of the pass to its step too (and on to the audit trail's observer)."""
        recorder = CALL_OBSERVER.get()

        async def observe(call: TargetCall) -> None:
            self.step(call.target).calls.append(call)
            if recorder is not None:
                await recorder(call)

        token = CALL_OBSERVER.set(observe)
        try:
            yield
        finally:
            CALL_OBSERVER.reset(token)

    def entry(self) -> dict[str, Any]:
        targets = {name: step.summary(self.names) for name, step in self.steps.items()}
        status = min((t["status"] for t in targets.values()), key=_RANK.__getitem__, default="skipped")
        return {
            "kind": "provisioning",
            "correlation": self.correlation,
            "trigger": self.trigger,
            "resource": {"type": self.resource_type, "id": self.scim_id, "name": self.name},
            "status": status,
            "directory": self.directory,
            "targets": targets,
        }


async def append(store: Store, done: Pass) -> None:
    """The pass's one audit append; the pass's own work already happened, so a store outage here is
    logged, never raised."""
    collector = PASSES.get()
    if collector is not None:
        collector.append(done)
    _observe_lag(done)
    try:
        await store.audit_append([orjson.dumps(done.entry(), option=orjson.OPT_SORT_KEYS)])
    except StoreUnavailable:
        log.warning("provisioning log: store down, entry of %s %s not written", done.resource_type, done.scim_id)


def _observe_lag(done: Pass) -> None:
    """The sync lag of each target this pass converged (a worker's pass only: on-demand and
    reconcile passes start from no queue entry). Parked, held and failed targets are not applied
    yet, so they are counted on the pass that applies them; a retry counts only the targets it
    called, so one converged by an earlier attempt is not counted twice."""
    syncing = metrics.SYNCING.get()
    if syncing is None:
        return
    lag = max(0.0, time.time() - syncing.enqueued)
    for step in done.steps.values():
        if step.error is not None or step.action in ("parked", "held"):
            continue
        if step.applied is not None and step.applied.verdict:
            continue  # held or kept by the brake: the change did not go out
        if syncing.retry and not step.calls:
            continue
        metrics.SYNC_LAG.labels(step.target, syncing.lane).observe(lag)


def changes_between(before: dict[str, Any] | None, after: dict[str, Any] | None, names: dict[str, str]) -> list[Any]:
    """old → new of every property a sync sets (ID map entries before and after)."""
    out: list[dict[str, Any]] = []
    old_id, new_id = (before or {}).get("id"), (after or {}).get("id")
    if old_id != new_id:
        out.append({"property": "account", "old": old_id, "new": new_id})
    old, new = (before or {}).get("applied") or {}, (after or {}).get("applied") or {}
    if not new_id:
        new = {}
    # a new account's names are its email's: listed only when they change later (keeps entries small)
    props = ("role", "enabled", "email", "display_name", "first_name", "last_name") if old_id else ("role", "enabled")
    for prop in props:
        if old.get(prop) != new.get(prop) and (prop in ("role", "enabled") or new.get(prop) is not None):
            out.append({"property": prop, "old": old.get(prop), "new": new.get(prop)})
    for prop in ("groups", "projects"):
        was = set(((before or {}).get(prop) or {}) if old_id else {})
        now = set(((after or {}).get(prop) or {}) if new_id else {})
        if was != now:
            label = {**names, **((before or {}).get("group_names") or {}), **((after or {}).get("group_names") or {})}

            def named(keys: set[str], label: dict[str, str] = label) -> list[str]:
                return sorted(label.get(k, k.removeprefix("derived:")) for k in keys)

            out.append(
                {
                    "property": prop,
                    "old": named(was),
                    "new": named(now),
                    "added": named(now - was),
                    "removed": named(was - now),
                }
            )
    return out


def would_be(before: dict[str, Any] | None, desired: DesiredUser, mode: str, projects: bool) -> dict[str, Any] | None:
    """The ID map entry a pass would leave (a dry run's "after"), ignoring the brake."""
    known = before if before and before.get("id") else None
    if not desired.exists:
        return None
    if desired.account is None:
        if known is None:
            return None
        return {
            **known,
            "applied": {**(known.get("applied") or {}), "enabled": False},
            "groups": {} if mode == "strip_groups" else known.get("group_names") or {},
            "projects": {},
        }
    if known is None and not desired.account.enabled:
        return None
    return {
        "id": known["id"] if known else "(new)",
        "applied": asdict(desired.account),
        "groups": dict(desired.groups),
        "group_names": dict(desired.groups),
        "projects": dict(desired.projects) if projects else {},
    }


def _action(
    before: dict[str, Any] | None, after: dict[str, Any] | None, verdict: str | None, changes: list[Any]
) -> str:
    if verdict == "hold":
        return "held"
    if verdict == "keep":
        return "kept"
    old_id, new_id = (before or {}).get("id"), (after or {}).get("id")
    if not old_id and new_id:
        return "create"
    if old_id and not new_id:
        return "delete"
    if not new_id:
        return "none"
    was = ((before or {}).get("applied") or {}).get("enabled", True)
    now = ((after or {}).get("applied") or {}).get("enabled", True)
    if was and not now:
        return "disable"
    if now and not was:
        return "enable"
    return "update" if changes else "none"


def user_pass(
    scim_id: str,
    document: dict[str, Any] | None,
    groups: dict[str, str],
    external: bool,
    correlation: str | None,
) -> Pass:
    return Pass(
        "User",
        scim_id,
        (document or {}).get("userName"),
        {
            "exists": document is not None,
            "active": (document or {}).get("active", True) is not False if document else False,
            "external": external,
            "groups": sorted(groups.values()),
        },
        names=dict(groups),
        correlation=correlation,
        trigger=TRIGGER.get(),
    )


def group_pass(scim_id: str, document: dict[str, Any] | None, members: int, correlation: str | None) -> Pass:
    return Pass(
        "Group",
        scim_id,
        (document or {}).get("displayName"),
        {"exists": document is not None, "members": members},
        correlation=correlation,
        trigger=TRIGGER.get(),
    )


def role_reason(policy: Policy, target: str, facts: UserFacts) -> str:
    """Which roles rule decided a user's role in a target (explain and the provisioning log), and
    which guardrail changed it: the same decision the engine applies (guardrails.decide_role)."""
    decision = decide_role(policy, target, facts)
    if decision.rule is None:
        reason = "default role (no roles rule matched)"
    else:
        reason = f"roles[{decision.rule}] when {policy.roles[decision.rule].when.model_dump(exclude_none=True)}"
    return f"{reason}; {decision.note}" if decision.note else reason

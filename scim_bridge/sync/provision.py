"""Provision on demand: sync one person (or a small group) now, and show every step.

`POST /admin/api/users/{id}/provision` and `scim-bridge provision USER` run the engine's own
`sync_user` / `sync_group` (the worker's code and rules, not a copy) under a correlation id of
their own (`provision-…`), and answer with the steps, in Entra's order (research/operators.md):

    directory   what the directory says: the record and its groups
    rules       the rules that matched, per target (sync/explain.py's reasoning)
    guardrails  withheld groups, external, role notes, and the deprovision brake's verdict
    accounts    what each target holds now: the account found via the ID map, else by email
    actions     per target, old → new: role, enabled, groups added / removed, projects
    results     each target call of the pass (method, path, status, latency) and its status

A dry run answers the same steps up to `actions`, computed from the same desired state, and
writes nothing to any target (nor to the ID map, the brake, or the provisioning log).

Concurrency: the provision holds the resource's **queue entry lease** (`Store.lease`) for the
pass, the same lease a worker holds while it processes an entry, renewed the same way while the
pass runs (sync/lease_keeper.py), so no worker (in this process, another one, or another replica)
syncs the same resource at the same time, however long the pass takes. A worker busy with it
now is waited for (up to `WAIT_SECONDS`); a change arriving meanwhile bumps the entry, which the
worker then processes (level-triggered: a no-op if the provision already applied it). A failed
pass defers the entry, so the worker retries it with its usual backoff.

A user deleted from the directory whose accounts are still known (ID map) is provisioned like the
worker would: its accounts follow the `deprovision` policy, and the steps say so. A user unknown
both to the directory and to the ID map is a 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import time
from typing import Any

import orjson

from ..audit.context import CORRELATION_ID, SYNC_SUBJECT
from ..store import STANDARD_LANE, QueueEntry
from ..targets.base import TargetError
from ..targets.http import PRIORITY, TargetCall
from .engine import SyncEngine, _revocations
from .explain import explain, find_user
from .lease_keeper import keep_leased
from .passlog import PASSES, TRIGGER, Pass, _action, changes_between, would_be

MAX_GROUP_MEMBERS = 50
LEASE_SECONDS = 60.0  # a provision killed mid-pass gives the resource back to the workers after this
WAIT_SECONDS = 10.0  # for a worker that is syncing the same resource right now
FAILED_RETRY_SECONDS = 1.0


class ProvisionError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def new_correlation() -> str:
    return f"provision-{secrets.token_hex(8)}"


class Provisioner:
    def __init__(self, engine: SyncEngine) -> None:
        self.engine = engine
        self.store = engine.store
        self.consumer = f"provision-{socket.gethostname()}-{secrets.token_hex(4)}"

    # users -------------------------------------------------------------------------------------
    async def user(self, who: str, dry_run: bool = False, correlation: str | None = None) -> dict[str, Any]:
        """The steps of provisioning one user (SCIM id or userName) now. Raises ProvisionError."""
        correlation = correlation or new_correlation()
        record = await find_user(self.store, who)
        scim_id = record.id if record else who
        if record is None and not await self._known_anywhere("User", scim_id):
            raise ProvisionError(404, f"no user {who!r} in the directory (nor any account the bridge keeps for it)")
        task = asyncio.create_task(self._user(scim_id, dry_run, correlation))  # its own context
        return await task

    async def _user(self, scim_id: str, dry_run: bool, correlation: str) -> dict[str, Any]:
        started = time.perf_counter()
        CORRELATION_ID.set(correlation)
        SYNC_SUBJECT.set(("User", scim_id))
        PRIORITY.set(True)  # a person is waiting: the next free slot of each target's rate limit
        TRIGGER.set("on-demand")
        engine, policy = self.engine, self.engine.policy
        record, group_ids = await self.store.get_with_referrers("User", scim_id, "Group", "members.value")
        document = orjson.loads(record.body) if record else None
        groups = {
            r.id: orjson.loads(r.body).get("displayName", "") for r in await self.store.get_many("Group", group_ids)
        }
        explanation = await explain(self.store, policy, scim_id) if record else None
        steps: list[dict[str, Any]] = [
            {
                "step": "directory",
                "record": _record_view(scim_id, document, explanation.user if explanation else None),
                "groups": [
                    {"id": gid, "displayName": name} for gid, name in sorted(groups.items(), key=lambda g: g[1])
                ],
                **(
                    {}
                    if document
                    else {"note": f"deleted from the directory: its accounts follow deprovision: {policy.deprovision}"}
                ),
            },
            {
                "step": "rules",
                "targets": explanation.as_json()["targets"]
                if explanation
                else {
                    t: [{"grant": "none", "because": f"not in the directory ({policy.deprovision})"}]
                    for t in engine.targets
                },
            },
        ]
        brake = await engine.brake.status()
        guardrails: dict[str, Any] = {}
        accounts: dict[str, Any] = {}
        actions: dict[str, Any] = {}
        befores: dict[str, dict[str, Any] | None] = {}
        for name, target in engine.targets.items():
            desired = engine.desired_user(name, document, groups)
            known = await engine.idmap.get(name, "User", scim_id)
            before = known if known and known.get("id") else None
            befores[name] = before
            kinds = _revocations(before, desired, policy.deprovision) if before else []
            verdict = _brake_preview(brake, name, kinds)
            guardrails[name] = {
                "notes": [n for n in (desired.note or "").split("; ") if n],
                "revokes": kinds,
                "brake": verdict,
            }
            email = desired.account.email if desired.account else None
            accounts[name] = await _account_view(target, before, known, email, groups)
            after = would_be(before, desired, policy.deprovision, target.projects is not None)
            changes = changes_between(before, after, groups)
            held = verdict.startswith("would be held")
            actions[name] = {
                "action": _action(before, after, "hold" if held else None, changes),
                "changes": changes,
            }
        external = bool(explanation and explanation.user.get("external"))
        steps.append({"step": "guardrails", "external": external, "targets": guardrails})
        steps.append({"step": "accounts", "targets": accounts})
        if dry_run:
            steps.append({"step": "actions", "dry_run": True, "targets": actions})
            return _answer("User", scim_id, document, correlation, True, "dry-run", steps, started)
        passes, failed = await self._run("User", scim_id, lambda: engine.sync_user(scim_id))
        done = next((p for p in passes if p.resource_type == "User" and p.scim_id == scim_id), None)
        entry = done.entry() if done else None
        if entry is not None:
            for name, summary in entry["targets"].items():
                if summary["brake"]:
                    guardrails[name]["brake"] = summary["brake"]
            steps.append(
                {
                    "step": "actions",
                    "targets": {
                        name: {"action": s["action"], "changes": s["changes"], "matched": s["matched"]}
                        for name, s in entry["targets"].items()
                    },
                }
            )
            steps.append({"step": "results", "targets": _results(done, entry) if done else {}})
        status = entry["status"] if entry else ("failure" if failed else "skipped")
        return _answer("User", scim_id, document, correlation, False, status, steps, started)

    # groups ------------------------------------------------------------------------------------
    async def group(self, group_id: str, dry_run: bool = False, correlation: str | None = None) -> dict[str, Any]:
        """The group's own pass, then each current member's steps; at most MAX_GROUP_MEMBERS."""
        correlation = correlation or new_correlation()
        record = await self.store.get("Group", group_id)
        if record is None:
            ids = await self.store.lookup("Group", "displayname", group_id.lower())
            record = await self.store.get("Group", ids[0]) if ids else None
        scim_id = record.id if record else group_id
        if record is None and not await self._known_anywhere("Group", scim_id):
            raise ProvisionError(404, f"no group {group_id!r} in the directory (nor any the bridge keeps for it)")
        document = orjson.loads(record.body) if record else None
        members = [m["value"] for m in (document or {}).get("members") or []]
        if len(members) > MAX_GROUP_MEMBERS:
            raise ProvisionError(
                400,
                f"group {document['displayName'] if document else scim_id!r} has {len(members)} members; provision "
                f"on demand takes groups of at most {MAX_GROUP_MEMBERS}: the sync worker handles larger ones "
                "(the group is queued), or provision its members one by one",
            )
        task = asyncio.create_task(self._group(scim_id, document, members, dry_run, correlation))
        return await task

    async def _group(
        self, scim_id: str, document: dict[str, Any] | None, members: list[str], dry_run: bool, correlation: str
    ) -> dict[str, Any]:
        started = time.perf_counter()
        CORRELATION_ID.set(correlation)
        SYNC_SUBJECT.set(("Group", scim_id))
        PRIORITY.set(True)
        TRIGGER.set("on-demand")
        engine, policy = self.engine, self.engine.policy
        name = document.get("displayName") if document else None
        mirrored = policy.groups.mirrored_name(name) if name else None
        project = policy.access.project_name(name) if name else None
        steps: list[dict[str, Any]] = [
            {"step": "directory", "record": {"id": scim_id, "displayName": name, "deleted": document is None}},
            {
                "step": "rules",
                "mirrored_as": mirrored,
                "because": "groups include/exclude and name template" if mirrored else "not mirrored by `groups`",
                "project": project,
            },
        ]
        actions: dict[str, Any] = {}
        held_now: dict[str, Any] = {}
        for target_name in engine.targets:
            known = await engine.idmap.get(target_name, "Group", scim_id)
            old = known.get("name") if known and known.get("id") else None
            action = "create" if mirrored and not old else "rename" if mirrored and old != mirrored else "none"
            if not mirrored and old:
                action = "delete"
            changes = [{"property": "name", "old": old, "new": mirrored}] if old != mirrored else []
            actions[target_name] = {"action": action, "changes": changes}
            held_now[target_name] = {"found": "id-map" if old else None, "id": (known or {}).get("id"), "name": old}
        steps.append({"step": "accounts", "targets": held_now})
        if dry_run:
            steps.append({"step": "actions", "dry_run": True, "targets": actions})
            status = "dry-run"
        else:
            passes, failed = await self._run("Group", scim_id, lambda: engine.sync_group(scim_id))
            done = next((p for p in passes if p.resource_type == "Group"), None)
            entry = done.entry() if done else None
            if entry is not None and done is not None:
                steps.append(
                    {
                        "step": "actions",
                        "targets": {
                            t: {"action": s["action"], "changes": s["changes"]} for t, s in entry["targets"].items()
                        },
                    }
                )
                steps.append({"step": "results", "targets": _results(done, entry)})
            status = entry["status"] if entry else ("failure" if failed else "skipped")
        semaphore = asyncio.Semaphore(4)

        async def one(user_id: str) -> dict[str, Any]:
            async with semaphore:
                try:
                    return await self.user(user_id, dry_run, correlation)
                except ProvisionError as error:
                    return {"user": {"id": user_id}, "status": "failure", "error": error.message}

        people = await asyncio.gather(*(one(m) for m in members))
        answer = _answer("Group", scim_id, document, correlation, dry_run, status, steps, started)
        answer["members"] = people
        return answer

    # the lease and the pass --------------------------------------------------------------------
    async def _run(self, resource_type: str, scim_id: str, work: Any) -> tuple[list[Pass], bool]:
        """Run one engine pass holding the resource's queue entry lease; the passes it logged."""
        lease = await self._lease(resource_type, scim_id)  # the worker's own per-resource care
        passes: list[Pass] = []
        PASSES.set(passes)
        failed = False
        try:
            # renewed while the pass runs (a slow target, 429 waits), as a worker's own lease is
            if not await keep_leased(self.store, lease, self.consumer, LEASE_SECONDS, work()):
                raise ProvisionError(
                    409,
                    f"the provision of {resource_type} {scim_id} lost the queue entry's lease (this process "
                    "could not renew it in time) and stopped; the sync worker that holds it now finishes it",
                )
        except ProvisionError:
            raise  # the entry is another worker's now: nothing to ack or defer
        except TargetError:
            failed = True  # already in the pass's log entry, per target
        except BaseException:  # unfinished (the store went away, a bug): the worker takes it over
            with contextlib.suppress(Exception):
                await self.store.defer(lease, FAILED_RETRY_SECONDS)
            raise
        finally:
            PASSES.set(None)
        if failed:  # the worker retries it, with its usual backoff from here on
            await self.store.defer(lease, FAILED_RETRY_SECONDS)
        else:  # done; a change that arrived meanwhile keeps the entry for the worker
            await self.store.ack(lease)
        return passes, failed

    async def _lease(self, resource_type: str, scim_id: str) -> QueueEntry:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            entry = await self.store.lease(resource_type, scim_id, self.consumer, LEASE_SECONDS, STANDARD_LANE)
            if entry is not None:
                return entry
            if time.monotonic() > deadline:
                raise ProvisionError(
                    409,
                    f"a sync worker has been processing {resource_type} {scim_id} for over {WAIT_SECONDS:g} s "
                    "(it holds the queue entry's lease); try again shortly",
                )
            await asyncio.sleep(0.05)

    async def _known_anywhere(self, resource_type: str, scim_id: str) -> bool:
        for name in self.engine.targets:
            known = await self.engine.idmap.get(name, resource_type, scim_id)
            if known and known.get("id"):
                return True
        return False


def _record_view(scim_id: str, document: dict[str, Any] | None, summary: dict[str, Any] | None) -> dict[str, Any]:
    if document is None:
        return {"id": scim_id, "deleted": True}
    return {
        "id": scim_id,
        "userName": document.get("userName"),
        "displayName": document.get("displayName"),
        "active": document.get("active", True) is not False,
        "emails": [e.get("value") for e in document.get("emails") or []],
        "external": bool(summary and summary.get("external")),
        "deleted": False,
    }


async def _account_view(
    target: Any, before: dict[str, Any] | None, known: dict[str, Any] | None, email: str | None, groups: dict[str, str]
) -> dict[str, Any]:
    """What the target holds now: the ID map's last applied state, else the account found by email."""
    if before is not None:
        applied = before.get("applied") or {}
        names = before.get("group_names") or {}
        return {
            "found": "id-map",
            "id": before["id"],
            "role": applied.get("role"),
            "enabled": applied.get("enabled"),
            "groups": sorted(names.get(k, k) for k in before.get("groups") or {}),
            "projects": sorted(groups.get(k, k) for k in before.get("projects") or {}),
            "sync_status": before.get("status"),
        }
    view: dict[str, Any] = {"found": None, "sync_status": (known or {}).get("status")}
    if email:
        try:
            account = await target.find_account(email)
        except TargetError as error:
            return {**view, "lookup_error": str(error)}
        if account is not None:  # the pass adopts it rather than making a second one
            return {**view, "found": "email", "id": account.id, "role": account.role, "enabled": account.enabled}
    return view


def _brake_preview(status: dict[str, Any], target: str, kinds: list[str]) -> str:
    if not kinds:
        return "nothing to revoke"
    if not status.get("enabled"):
        return "brake off: allowed"
    state = status["targets"].get(target) or {}
    if state.get("engaged"):
        return f"would be held: the brake is engaged ({state['engaged']['reason']})"
    if state.get("in_window", 0) + 1 > state.get("threshold", 0):
        return f"would be held: {state['in_window']} of {state['threshold']} deprovisions in the window already"
    window = f"{state.get('window_seconds', 0):g}"
    return f"allowed: {state.get('in_window', 0)} of {state.get('threshold')} in the last {window} s"


def _call_view(call: TargetCall) -> dict[str, Any]:
    return {
        "method": call.method,
        "path": call.path.split("?", 1)[0],
        "status": call.status,
        "outcome": call.outcome,
        "latency_ms": round(call.latency_ms, 1),
    }


def _results(done: Pass, entry: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {
            "status": summary["status"],
            "error": summary["error"],
            "calls": [_call_view(c) for c in done.step(name).calls],
        }
        for name, summary in entry["targets"].items()
    }


def _answer(
    resource_type: str,
    scim_id: str,
    document: dict[str, Any] | None,
    correlation: str,
    dry_run: bool,
    status: str,
    steps: list[dict[str, Any]],
    started: float,
) -> dict[str, Any]:
    label = "userName" if resource_type == "User" else "displayName"
    key = "user" if resource_type == "User" else "group"
    return {
        key: {"id": scim_id, label: (document or {}).get(label)},
        "correlation": correlation,
        "dry_run": dry_run,
        "status": status,
        "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
        "steps": steps,
    }


def lines(answer: dict[str, Any]) -> list[str]:
    """The steps as text (scim-bridge provision)."""
    who = answer.get("user") or answer.get("group") or {}
    name = who.get("userName") or who.get("displayName") or "(deleted)"
    out = [
        f"{name} ({who.get('id')})  {'DRY RUN ' if answer['dry_run'] else ''}status {answer['status']}  "
        f"correlation {answer['correlation']}  {answer['elapsed_ms']:.0f} ms"
    ]
    for step in answer["steps"]:
        kind = step["step"]
        out.append(f"  {kind}:")
        if kind == "directory":
            out.append("    " + ", ".join(f"{k}={v}" for k, v in step["record"].items() if v not in (None, [])))
            if step.get("groups"):
                out.append("    groups: " + ", ".join(g["displayName"] for g in step["groups"]))
            if step.get("note"):
                out.append(f"    {step['note']}")
        elif kind == "rules" and "targets" in step:
            for target, items in step["targets"].items():
                for item in items:
                    out.append(f"    {target:10} {item['grant']:40} ← {item['because']}")
        elif kind == "rules":
            out.append(f"    mirrored as {step['mirrored_as']!r} ({step['because']}); project {step['project']!r}")
        elif kind == "guardrails":
            out.append(f"    external: {step['external']}")
            for target, g in step["targets"].items():
                notes = "; ".join(g["notes"]) or "none"
                out.append(f"    {target:10} notes: {notes}; brake: {g['brake']}")
        elif kind == "accounts":
            for target, view in step["targets"].items():
                if isinstance(view, dict):
                    shown = ", ".join(f"{k}={v}" for k, v in view.items() if v not in (None, [], {}))
                    out.append(f"    {target:10} {shown or 'no account'}")
                else:
                    out.append(f"    {target:10} {view}")
        elif kind == "actions":
            for target, action in step["targets"].items():
                out.append(f"    {target:10} {action['action']}")
                for change in action["changes"]:
                    if "added" in change:
                        out.append(
                            f"      {change['property']}: +{change['added'] or '[]'} -{change['removed'] or '[]'}"
                        )
                    else:
                        out.append(f"      {change['property']}: {change['old']!r} → {change['new']!r}")
        elif kind == "results":
            for target, result in step["targets"].items():
                out.append(f"    {target:10} {result['status']}{': ' + result['error'] if result['error'] else ''}")
                for call in result["calls"]:
                    out.append(
                        f"      {call['method']:6} {call['path']:50} {call['status']} {call['latency_ms']:.1f} ms"
                    )
    for member in answer.get("members", []):
        out += ["", *lines(member)] if "steps" in member else [f"  member {member['user']['id']}: {member['error']}"]
    return out

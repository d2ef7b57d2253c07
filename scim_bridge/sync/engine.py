"""Make each target match the directory for one resource (level-triggered, DESIGN.md).

`sync_user` and `sync_group` read the resource's *current* stored state, compute what each target
should have under the policy, compare it with what the ID map says was last applied, and apply
the difference with idempotent target operations. Running them twice, out of order, or after a
crash between a target call and the acknowledgement converges to the same state.

Membership is owned by users: a user's target groups are computed from the SCIM groups that list
it (and the groups its attributes derive), so a group change only re-queues the users it added
or removed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

import orjson

from ..audit import decisions
from ..audit.context import CORRELATION_ID
from ..store import REVOCATION_LANE, STANDARD_LANE, Store
from ..targets.base import Forbidden, RetryableError, Target, TargetError, TargetUser
from ..targets.http import PRIORITY
from . import passlog
from .access import expiry_of
from .access_sync import AccessSync
from .approvals import ApprovalRouting
from .brake import ALLOW, HOLD, Brake, Verdict
from .desired import AccessModel
from .desired import DesiredUser as DesiredUser  # passlog and provision import it from here
from .idmap import IdMap
from .passlog import Applied, group_pass, role_reason, user_pass
from .policy import Policy, UserFacts
from .projects import ProjectTeams
from .quarantine import Quarantine

ACCESS_ENTRY = ("Access", "grants")  # the queue entry that re-applies every folder / collection grant
EXPIRY = "expiry"  # kv: external user id → when its access ends (epoch seconds)

log = logging.getLogger("scim_bridge.sync")
#: kv namespace prefix (+ target): users whose account is being created, until the ID map has its id
_CREATING = "creating:"


class SyncEngine:
    def __init__(self, store: Store, policy: Policy, targets: dict[str, Target]) -> None:
        self.store = store
        self.policy = policy
        self.targets = targets
        self.idmap = IdMap(store)
        self.access = AccessSync(store, policy, targets)
        self.approvals = ApprovalRouting(store, policy, targets)
        self.brake = Brake(store, policy.safety.deprovision, list(targets))
        self.quarantine = Quarantine(store, policy.safety.quarantine, list(targets))
        self.projects = ProjectTeams(store, policy, self.idmap)
        self.model = AccessModel(policy)
        self._group_locks: dict[str, asyncio.Lock] = {}

    @property
    def grants_access(self) -> bool:
        return any(section.makes_grants() for section in self.policy.access.sections().values())

    def _agency_groups(self) -> set[str]:
        return {g for section in self.policy.access.sections().values() for g in section.agency_groups()}

    async def request_access_sync(self, *group_names: str | None) -> None:
        """Queue a grants run; for a group's change (its old and new names), only if the group
        takes part in a grant."""
        if self.grants_access and (not group_names or any(n and self.access.concerns(n) for n in group_names)):
            await self.store.enqueue(*ACCESS_ENTRY, STANDARD_LANE)

    async def sync_access(self) -> None:
        """Folder roles and collection ACLs for the managed groups (sync/access_sync.py)."""
        self.access.rerun = False
        # A quarantined target's grants wait for it (sync/quarantine.py); the others go on.
        held = [name for name in self.targets if await self.quarantine.holds(name, *ACCESS_ENTRY)]
        try:
            await self.access.sync(skip=held)
        except TargetError as error:
            quarantined = [n for n in self.targets if n not in held and await self.quarantine.blocks(n)]
            if quarantined:  # a target was quarantined meanwhile: its grants wait, the others run again
                for name in quarantined:
                    await self.quarantine.park(name, *ACCESS_ENTRY)
                await self.request_access_sync()
                return
            if isinstance(error, Forbidden):  # a permission model or rights mismatch: nothing will work until fixed
                log.error("access: grants cannot be applied: %s", error)
            raise
        if self.access.rerun:
            await self.request_access_sync()
        await self.approvals.queue_sweeps()  # content a missed webhook did not announce

    # users -------------------------------------------------------------------------------------
    async def enqueue_expired(self) -> int:
        """Queue (revocation lane) every external user whose access date has passed."""
        now, due = time.time(), []
        for scim_id, raw in await self.store.kv_items(EXPIRY):
            if float(raw) <= now:
                due.append(scim_id)
        for scim_id in due:
            await self.store.enqueue("User", scim_id, REVOCATION_LANE)
            await self.store.kv_delete(EXPIRY, scim_id)
        return len(due)

    async def _watch_expiry(self, scim_id: str, document: dict[str, Any] | None, groups: dict[str, str]) -> None:
        attribute = self.policy.access.external.expiry_attribute
        when = expiry_of(document, attribute) if document and attribute else None
        if (
            when
            and when.timestamp() > time.time()
            and self.policy.is_external(UserFacts.of(document or {}, sorted(groups.values())))
        ):
            await self.store.kv_put(EXPIRY, scim_id, str(when.timestamp()).encode())
        elif attribute:
            await self.store.kv_delete(EXPIRY, scim_id)

    async def sync_user(self, scim_id: str) -> None:
        record, group_ids = await self.store.get_with_referrers("User", scim_id, "Group", "members.value")
        document = orjson.loads(record.body) if record else None
        groups = {
            r.id: orjson.loads(r.body).get("displayName", "") for r in await self.store.get_many("Group", group_ids)
        }
        await self._watch_expiry(scim_id, document, groups)
        agencies = self._agency_groups()
        if agencies and any(name.lower() in agencies for name in groups.values()):
            await self.request_access_sync()  # whether the agency's own key stays on depends on its members
        failures: list[Exception] = []
        facts = UserFacts.of(document or {"userName": ""}, sorted(groups.values()))
        external = document is not None and self.policy.is_external(facts)
        if document is not None:  # withheld groups, changed roles, expiry: one audit entry as each starts or stops
            await decisions.record_user(self.store, self.policy, scim_id, document, facts, list(self.targets))
        done = user_pass(scim_id, document, groups, external, CORRELATION_ID.get())
        version = record.version if record else 0

        async def in_target(name: str, target: Target) -> None:
            step = done.step(name)
            if await self.quarantine.holds(name, "User", scim_id):
                step.action = "parked"  # until the target answers again (sync/quarantine.py)
                return
            desired = self.desired_user(name, document, groups)
            step.desired, step.role_rule = desired, role_reason(self.policy, name, facts) if document else None
            try:
                step.applied = await self._apply_user(name, target, scim_id, desired, version)
            except TargetError as error:
                if await self.quarantine.after_failure(name, error, "User", scim_id):
                    step.action = "parked"  # not retried: no attempt spent while the target is out
                    return
                step.error = str(error)
                await self.idmap.mark_failed(name, "User", scim_id, str(error))
                failures.append(error)

        with done.collecting_calls():  # the provisioning log counts each target's calls
            for name in self.targets:
                done.step(name)  # the log lists the targets in policy order, whichever finishes first
            if PRIORITY.get():
                # A revocation: every target at once, so that one target's disable does not wait for
                # the other's membership work (a leaver's pending group adds, a group being created
                # under a lock a backlog task holds): the leaver is out when the slower target is.
                outcomes = await asyncio.gather(
                    *(in_target(name, target) for name, target in self.targets.items()), return_exceptions=True
                )
                crashed = [o for o in outcomes if isinstance(o, BaseException)]
                if crashed:  # as the sequential pass would have raised it, once both are done
                    raise crashed[0]
            else:  # one target's failure must not hold up the other
                for name, target in self.targets.items():
                    await in_target(name, target)
        await passlog.append(self.store, done)  # one audit append per pass
        if failures:  # retried as a whole; targets already in step are no-ops then
            raise next((f for f in failures if isinstance(f, RetryableError)), failures[0])

    def desired_user(self, target: str, document: dict[str, Any] | None, groups: dict[str, str]) -> DesiredUser:
        """What one target should hold for this person: the desired-access model (sync/desired.py)
        as the engine applies it; explain, plan, reconcile and review read the same model."""
        return self.model.for_target(target, document, groups).desired_user()

    async def _apply_user(
        self, target_name: str, target: Target, scim_id: str, desired: DesiredUser, version: int = 0
    ) -> Applied:
        """Converge one target; returns the ID map entry before and after (the provisioning log)."""
        known = await self.idmap.get(target_name, "User", scim_id)
        if known is not None and not known.get("id"):
            known = None  # recorded as not provisioned: nothing exists in the target
        if known:
            verdict = await self._brake_verdict(target_name, scim_id, known, desired, version)
            if verdict != ALLOW:
                return Applied(known, known, verdict)
        if not desired.exists:
            if known:
                await target.delete_user(known["id"])
                await self.idmap.forget(target_name, "User", scim_id)
            return Applied(known, None)
        if desired.account is None:  # the directory deleted it; policy keeps the account disabled
            if not known:
                return Applied(None, None)
            account = TargetUser(**{**known["applied"], "enabled": False})
            wanted: dict[str, str] = (
                {}
                if self.policy.deprovision == "strip_groups"
                else {k: v for k, v in known.get("group_names", {}).items()}
            )
        else:
            account, wanted = desired.account, desired.groups
            if not known and not account.enabled:  # never create an account only to disable it
                # ... unless a create of it may have landed in a process that died before recording
                # it (kill -9 between the call and the ID map): then the adopted account is disabled
                if not (await self._may_exist(target_name, target, scim_id, account.email)):
                    await self.idmap.put(
                        target_name,
                        "User",
                        scim_id,
                        {"status": "not-provisioned", "error": "inactive in the directory"},
                    )
                    return Applied(None, None)
        applied = asdict(account)
        target_id = known["id"] if known else None
        current: dict[str, str] = dict(known.get("groups", {})) if known else {}
        created: bool | None = None
        if not known or known.get("applied") != applied or known.get("status") != "synced":
            joining: dict[str, str] = {}
            if target_id is None and target.memberships_on_create and account.enabled:
                for key, group_name in wanted.items():  # groups exist before the account that joins them
                    joining[key] = await self._target_group(target_name, target, key, group_name)
            if target_id is None:  # until the ID map holds the id, a crash would leave it unknown
                await self.store.kv_put(_CREATING + target_name, scim_id, b"1")
            ensured = await target.ensure_user(account, target_id, tuple(joining.values()))
            target_id, created = ensured.id, (ensured.created if not known else None)
            current.update({key: gid for key, gid in joining.items() if gid in ensured.joined})
            # Progress is kept, so a retry after a failure below neither looks the account up again
            # nor loses it; the status says the membership is not finished yet.
            await self.idmap.put(
                target_name,
                "User",
                scim_id,
                {
                    "id": target_id,
                    "applied": applied,
                    "groups": current,
                    "group_names": wanted,
                    "status": "partial",
                    "projects": known.get("projects", {}) if known else {},
                },
            )
            if not known:
                await self.store.kv_delete(_CREATING + target_name, scim_id)
        assert target_id is not None
        user_id = target_id
        await _converge(
            current,
            wanted,
            lambda gid: target.remove_member(gid, user_id),
            lambda key, name: self._target_group(target_name, target, key, name),
            lambda gid: target.add_member(gid, user_id),
        )
        projects: dict[str, str] = dict(known.get("projects", {})) if known else {}
        access = target.projects
        if access is not None:  # iconik project teams: members are users, kept like group membership
            await self.projects.drop_stale(target_name, projects, desired.projects if desired.account else {})
            await _converge(
                projects,
                desired.projects if desired.account else {},
                lambda pid: access.remove_project_member(pid, user_id),
                lambda key, name: self._target_project(target_name, access, key, name),
                lambda pid: access.add_project_member(pid, user_id),
            )
        after = {
            "id": target_id,
            "applied": applied,
            "groups": current,
            "group_names": wanted,
            "status": "synced",
            "error": desired.note,
            "projects": projects,
        }
        await self.idmap.put(target_name, "User", scim_id, after)
        return Applied(known, after, created=created)

    async def _may_exist(self, target_name: str, target: Target, scim_id: str, email: str) -> bool:
        """Whether an account this bridge created may exist with no ID map entry: a create was
        under way (its marker is set) and the target holds an account with the email. The marker
        goes once the answer is known."""
        if await self.store.kv_get(_CREATING + target_name, scim_id) is None:
            return False
        found = await target.find_account(email)
        if found is None:
            await self.store.kv_delete(_CREATING + target_name, scim_id)
        return found is not None

    async def _brake_verdict(
        self, target_name: str, scim_id: str, known: dict[str, Any], desired: DesiredUser, version: int
    ) -> Verdict:
        """Ask the deprovision brake about a change that takes access away (sync/brake.py); a held or
        rejected change leaves the target as it is and says so in the ID map."""
        kinds = _revocations(known, desired, self.policy.deprovision)
        if not kinds:
            if known.get("status") in ("held", "kept"):  # the directory no longer asks for it
                await self.brake.withdraw(target_name, "User", scim_id)
            return ALLOW
        verdict = await self.brake.admit(target_name, "User", scim_id, kinds, version, CORRELATION_ID.get())
        if verdict == ALLOW:
            return ALLOW
        note = (
            "held by the deprovision brake: approve or reject it (scim-bridge held)"
            if verdict == HOLD
            else "deprovision rejected by an operator: access kept until the directory changes again"
        )
        await self.idmap.put(
            target_name, "User", scim_id, {**known, "status": "held" if verdict == HOLD else "kept", "error": note}
        )
        return verdict

    async def _target_project(self, target_name: str, access: Any, key: str, name: str) -> str:
        """The iconik project of a project-team group, creating or adopting it once."""
        return await self._ensure_once(
            target_name, "Project", key, name, lambda known_id: access.ensure_project(name, known_id)
        )

    async def _target_group(self, target_name: str, target: Target, key: str, name: str) -> str:
        """The target id of a mirrored or derived group, creating or adopting it once."""
        return await self._ensure_once(
            target_name, "Group", key, name, lambda known_id: target.ensure_group(name, known_id, key)
        )

    async def _ensure_once(
        self, target_name: str, kind: str, key: str, name: str, ensure: Callable[[str | None], Awaitable[str]]
    ) -> str:
        lock = self._group_locks.setdefault(f"{target_name}:{kind}:{key}", asyncio.Lock())
        async with lock:  # two members of a new group or team must not create it twice
            known = await self.idmap.get(target_name, kind, key)
            if known and known.get("id") and known.get("name") == name and known.get("status") == "synced":
                return str(known["id"])
            target_id = str(await ensure(known.get("id") if known else None))
            await self.idmap.put(target_name, kind, key, {"id": target_id, "name": name, "status": "synced"})
            if kind == "Group" and (not known or known.get("id") != target_id or known.get("name") != name):
                # a new or renamed principal: its folder / collection grants follow
                await self.request_access_sync(name, known.get("name") if known else None)
            return target_id

    # groups ------------------------------------------------------------------------------------
    async def sync_group(self, scim_id: str) -> None:
        record = await self.store.get("Group", scim_id)
        document = orjson.loads(record.body) if record else None
        members = {m["value"] for m in (document or {}).get("members") or []}
        before = await self.idmap.last_members(scim_id)
        removed = before - members
        if len(removed) > 1:  # an emptied, truncated or deleted group brakes before its first removal goes out
            what = f"group {document['displayName'] if document else scim_id + ' (deleted)'}"
            for name in self.targets:
                await self.brake.large_removal(name, len(removed), what)
        # Users whose groups changed are re-evaluated; removals go to the revocation lane (first).
        # Queued together, not one after the other: on SQLite the writes waiting at once share one
        # commit, where a 50-member group's first sync waited for 50 commits in a row (2,000 such
        # syncs at the end of an initial load: a stretch with no target call).
        await _enqueue_all(self.store, removed, REVOCATION_LANE)
        await _enqueue_all(self.store, members - before, STANDARD_LANE)
        mirrored = self.policy.groups.mirrored_name(document["displayName"]) if document else None
        failures: list[Exception] = []
        project = self.policy.access.project_name(document["displayName"]) if document else None
        await self.projects.requeue_if_changed(scim_id, project, members)  # sync/projects.py
        agencies = self._agency_groups()
        if agencies and (document is None or document.get("displayName", "").lower() in agencies):
            await self.request_access_sync()  # an agency's members changed (or a group went): its key follows
        done = group_pass(scim_id, document, len(members), CORRELATION_ID.get())
        done.directory.update(joined=len(members - before), left=len(removed))  # re-queued users
        with done.collecting_calls():
            for name, target in self.targets.items():
                step = done.step(name)
                if await self.quarantine.holds(name, "Group", scim_id):
                    step.action = "parked"  # until the target answers again (sync/quarantine.py)
                    continue
                try:
                    step.action, step.changes = await self._apply_group(
                        name, target, scim_id, mirrored, record.version if record else 0
                    )
                    await self._apply_project(name, target, scim_id, project)
                except TargetError as error:
                    if await self.quarantine.after_failure(name, error, "Group", scim_id):
                        step.action = "parked"
                        continue
                    step.error = str(error)
                    await self.idmap.mark_failed(name, "Group", scim_id, str(error))
                    failures.append(error)
        await self.idmap.set_last_members(scim_id, members if document else None)
        await passlog.append(self.store, done)
        if failures:
            raise next((f for f in failures if isinstance(f, RetryableError)), failures[0])

    async def _apply_group(
        self, target_name: str, target: Target, scim_id: str, mirrored: str | None, version: int = 0
    ) -> tuple[str, list[dict[str, Any]]]:
        """Converge one target; returns the action and the name change (the provisioning log)."""
        known = await self.idmap.get(target_name, "Group", scim_id)
        old_name = known.get("name") if known and known.get("id") else None
        change = [{"property": "name", "old": old_name, "new": mirrored}] if old_name != mirrored else []
        if mirrored:
            if not known or known.get("name") != mirrored or known.get("status") != "synced":
                async with self._group_locks.setdefault(f"{target_name}:Group:{scim_id}", asyncio.Lock()):
                    group_id = await target.ensure_group(mirrored, known.get("id") if known else None, scim_id)
                    await self.idmap.put(
                        target_name, "Group", scim_id, {"id": group_id, "name": mirrored, "status": "synced"}
                    )
                    if not known or known.get("id") != group_id or known.get("name") != mirrored:
                        await self.request_access_sync(mirrored, known.get("name") if known else None)
            return ("create" if old_name is None else "rename" if change else "none"), change
        elif known and known.get("id"):  # deleted, or no longer mirrored: its members were re-queued
            verdict = await self.brake.admit(target_name, "Group", scim_id, ["delete-group"], version)
            if verdict != ALLOW:  # the group and its members' access stay until an operator decides
                status = "held" if verdict == HOLD else "kept"
                await self.idmap.put(target_name, "Group", scim_id, {**known, "status": status})
                return status, []
            await target.delete_group(known["id"])
            await self.idmap.forget(target_name, "Group", scim_id)
            await self.request_access_sync(known.get("name"))
            return "delete", change
        return "none", []

    async def _apply_project(self, target_name: str, target: Target, scim_id: str, project: str | None) -> None:
        """A project team's group: its project exists under its name, or is closed per policy."""
        access = target.projects
        if access is not None:
            await self.projects.apply(
                target_name,
                access,
                scim_id,
                project,
                lambda: self._target_project(target_name, access, scim_id, project or ""),
            )


async def _enqueue_all(store: Store, user_ids: set[str], lane: str, chunk: int = 256) -> None:
    """Queue each user in `lane`, up to `chunk` writes in flight (a 10,000-member group's at once
    would be 10,000 tasks)."""
    ids = list(user_ids)
    for start in range(0, len(ids), chunk):
        await asyncio.gather(*(store.enqueue("User", user_id, lane) for user_id in ids[start : start + chunk]))


def _revocations(known: dict[str, Any], desired: DesiredUser, mode: str) -> list[str]:
    """What a sync of this user would take away in a target, compared with what it holds now."""
    if not desired.exists:
        return ["delete"]
    applied = known.get("applied") or {}
    kinds = []
    if applied.get("enabled", True) and (desired.account is None or not desired.account.enabled):
        kinds.append("disable")
    if desired.account is None:
        wanted_groups: set[str] = set() if mode == "strip_groups" else set(known.get("group_names") or {})
    else:
        wanted_groups = set(desired.groups)
    if set(known.get("groups") or {}) - wanted_groups:
        kinds.append("remove-membership")
    if set(known.get("projects") or {}) - set(desired.projects if desired.account else {}):
        kinds.append("remove-project")
    return kinds


async def _converge(
    current: dict[str, str],
    wanted: dict[str, str],
    remove: Callable[[str], Awaitable[None]],
    resolve: Callable[[str, str], Awaitable[str]],
    add: Callable[[str], Awaitable[None]],
) -> None:
    """Bring a membership map (key → target id) to `wanted` (key → name), revocations first."""
    for key in [k for k in current if k not in wanted]:
        await remove(current.pop(key))
    for key, name in wanted.items():
        if key not in current:
            target_id = await resolve(key, name)
            await add(target_id)
            current[key] = target_id

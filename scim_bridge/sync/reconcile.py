"""`scim-bridge reconcile [--apply]`: list every target, compare it with what the directory and the
policy want, report the drift, and repair it when told to.

Drift is whatever a person changed by hand in a target: a role raised, a user added to a group, a
grant deleted, an account nobody provisioned. Repairs reuse the sync engine instead of a second
set of rules: the reconciler writes what it *found* into the ID map (the engine's "last known
target state") and runs the engine for that resource, which then converges it exactly as it
converges any change. Grants are re-applied by the access sync.

Ownership: the bridge repairs only accounts it manages (in its ID map) and, for orphans, those
the policy's `reconcile` section says it owns (email domains, a group prefix). The rest is
reported, never touched. The bridge's own service account is never touched.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from ..store import Store
from ..targets.base import Gone, TargetAccount
from .access_sync import AccessSync
from .desired import NOT_FROM_ANY_RULE
from .engine import SyncEngine
from .idmap import IdMap
from .policy import Policy

log = logging.getLogger("scim_bridge.sync")


@dataclass(frozen=True)
class Drift:
    target: str
    kind: str  # missing-account, unlinked-account, wrong-role, wrong-enabled, extra-member, missing-member,
    #            orphan, missing-folder, missing-collection, missing-grant, extra-grant, wrong-grant,
    #            extra-project-member, missing-project-member, missing-content-grant, direct-grant,
    #            wrong-group-roles
    subject: str  # email, group, folder or collection
    detail: str = ""
    repair: str = ""  # what --apply does ("" = nothing: reported only)

    def __str__(self) -> str:
        tail = f"  → {self.repair}" if self.repair else "  (report only)"
        return f"{self.target:10} {self.kind:22} {self.subject}{'  ' + self.detail if self.detail else ''}{tail}"


class Reconciler:
    def __init__(
        self, store: Store, policy: Policy, targets: dict[str, Any], progress: Callable[[str], None] | None = None
    ) -> None:
        self.store, self.policy, self.targets = store, policy, targets
        self.engine = SyncEngine(store, policy, targets)
        self.idmap = IdMap(store)
        self.progress = progress or (lambda message: None)

    async def run(self, apply: bool = False) -> list[Drift]:
        """One pass over every target. Its target calls, and one entry with the whole report, go to
        the audit trail under one correlation id (`reconcile-…`), so a repair can be traced."""
        from ..audit.context import CORRELATION_ID, SYNC_SUBJECT
        from ..audit.trail import AuditTrail
        from ..targets.http import CALL_OBSERVER

        correlation = f"reconcile-{secrets.token_hex(6)}"
        trail = AuditTrail(self.store)
        CORRELATION_ID.set(correlation)
        SYNC_SUBJECT.set(("Reconcile", correlation))
        CALL_OBSERVER.set(trail.record_target_call)
        directory = await self._directory()
        drift: list[Drift] = []
        for name, target in self.targets.items():
            found = await self._target(name, target, directory, apply)
            drift += found
            self.progress(f"{name}: {len(found)} difference(s)")
        report = {"applied": apply, "drift": [asdict(d) for d in drift]}
        await self.store.kv_put(
            "reconcile", "last", orjson.dumps({**report, "correlation": correlation, "time": time.time()})
        )
        await self.store.audit_append(
            [orjson.dumps({"kind": "reconcile", "correlation": correlation, **report}, option=orjson.OPT_SORT_KEYS)]
        )
        await trail.flush()
        return drift

    async def _directory(self) -> dict[str, Any]:
        groups = {}
        async for record in self.store.scan("Group"):
            groups[record.id] = orjson.loads(record.body)
        member_of: dict[str, dict[str, str]] = {}
        for gid, group in groups.items():
            for member in group.get("members") or []:
                member_of.setdefault(member["value"], {})[gid] = group.get("displayName", "")
        users = {}
        async for record in self.store.scan("User"):
            users[record.id] = orjson.loads(record.body)
        self.progress(f"directory: {len(users)} users, {len(groups)} groups")
        return {"users": users, "member_of": member_of}

    async def _target(self, name: str, target: Any, directory: dict[str, Any], apply: bool) -> list[Drift]:
        entries = dict(await self.idmap.entries(name))
        managed = {
            str(e["id"]): (key.split("/", 1)[1], e.get("name", ""))
            for key, e in entries.items()
            if key.startswith("Group/") and e.get("id")
        }
        accounts = await target.list_accounts()
        self.progress(f"{name}: {len(accounts)} accounts listed")
        await self._memberships(name, target, accounts, managed)
        teams = await self._project_teams(name, target, entries)
        by_id = {a.id: a for a in accounts}
        by_email = {a.email.lower(): a for a in accounts if a.email}
        own_email = target.service_account_email or ""
        drift: list[Drift] = []
        seen: set[str] = set()
        to_sync: set[str] = set()
        for scim_id, document in directory["users"].items():
            desired = self.engine.desired_user(name, document, directory["member_of"].get(scim_id, {}))
            account_wanted = desired.account
            entry = entries.get(f"User/{scim_id}")
            email = account_wanted.email if account_wanted else document.get("userName", "")
            account = by_id.get(str(entry.get("id"))) if entry and entry.get("id") else None
            account = account or by_email.get(email.lower())
            if account is not None:
                seen.add(account.id)
            if account_wanted is None:
                continue
            if account is None:
                if account_wanted.enabled:
                    drift.append(
                        Drift(
                            name,
                            "missing-account",
                            email,
                            "in the directory, not in the target",
                            "create (or adopt) it",
                        )
                    )
                    if apply:
                        await self.idmap.forget(name, "User", scim_id)
                        to_sync.add(scim_id)
                continue
            if email.lower() == own_email.lower():
                continue
            found = self._account_drift(name, email, account, desired, entry, managed)
            found += _project_drift(name, email, account.id, desired, teams)
            drift += found
            if found and apply:
                await self._record_found(name, scim_id, account, entry, managed, teams)
                to_sync.add(scim_id)
        formerly = {
            str(e["id"]): key.split("/", 1)[1] for key, e in entries.items() if key.startswith("User/") and e.get("id")
        }
        for account in accounts:  # accounts the directory does not know
            if account.id in seen or (own_email and account.email.lower() == own_email.lower()):
                continue
            if not account.enabled:
                continue  # disabled orphans are harmless: reviews list them
            if account.id in formerly:  # the bridge managed it; the directory deleted it: deprovision again
                drift.append(
                    Drift(
                        name,
                        "orphan",
                        account.email,
                        "enabled, deleted in the directory (managed)",
                        f"deprovision ({self.policy.deprovision})",
                    )
                )
                if apply:
                    await self._record_found(
                        name, formerly[account.id], account, entries.get(f"User/{formerly[account.id]}"), managed, teams
                    )
                    to_sync.add(formerly[account.id])
                continue
            owner = self._owned(account, managed)
            drift.append(
                Drift(
                    name,
                    "orphan",
                    account.email or account.id,
                    f"enabled, no directory user ({owner or 'not owned'})",
                    "disable" if owner and self.policy.reconcile.orphans == "disable" else "",
                )
            )
            if apply and owner and self.policy.reconcile.orphans == "disable":
                await target.disable_user(account.id, account.email)
        for count, scim_id in enumerate(sorted(to_sync), 1):  # the engine repairs, exactly as it syncs
            await self.engine.sync_user(scim_id)
            if count % 100 == 0:
                self.progress(f"{name}: repaired {count}/{len(to_sync)} users")
        managed_users = {str(e["id"]) for key, e in entries.items() if key.startswith("User/") and e.get("id")}
        drift += await self._grants(name, apply, accounts, managed_users)
        return drift

    def _account_drift(
        self,
        name: str,
        email: str,
        account: TargetAccount,
        desired: Any,
        entry: dict[str, Any] | None,
        managed: dict[str, tuple[str, str]],
    ) -> list[Drift]:
        wanted = desired.account
        drift: list[Drift] = []
        if not entry or str(entry.get("id")) != account.id:
            drift.append(
                Drift(name, "unlinked-account", email, f"target id {account.id} not in the ID map", "adopt it")
            )
        if account.role != wanted.role:
            drift.append(
                Drift(name, "wrong-role", email, f"{account.role} (directory: {wanted.role})", f"set {wanted.role}")
            )
        if account.enabled != wanted.enabled:
            drift.append(
                Drift(
                    name,
                    "wrong-enabled",
                    email,
                    f"{'enabled' if account.enabled else 'disabled'} "
                    f"(directory: {'enabled' if wanted.enabled else 'disabled'})",
                    "enable" if wanted.enabled else "disable",
                )
            )
        expected = {managed_id for managed_id, (key, _) in managed.items() if key in desired.groups}
        actual = {g for g in account.groups if g in managed}
        for group_id in sorted(actual - expected):
            drift.append(Drift(name, "extra-member", email, f"in {managed[group_id][1]}", "remove"))
        for group_id in sorted(expected - actual):
            drift.append(Drift(name, "missing-member", email, f"not in {managed[group_id][1]}", "add"))
        return drift

    async def _record_found(
        self,
        name: str,
        scim_id: str,
        account: TargetAccount,
        entry: dict[str, Any] | None,
        managed: dict[str, tuple[str, str]],
        teams: dict[str, tuple[str, str, set[str]]] | None = None,
    ) -> None:
        """Write what the target really holds as the engine's last known state, so its next run
        converges exactly the difference."""
        applied = dict((entry or {}).get("applied") or {})
        applied.update({"role": account.role, "enabled": account.enabled})
        groups = {managed[g][0]: g for g in account.groups if g in managed}
        found = {**(entry or {}), "id": account.id, "applied": applied, "groups": groups, "status": "drift"}
        if teams:  # the projects it is really in: the engine then adds or removes exactly the difference
            found["projects"] = {key: pid for key, (pid, _, members) in teams.items() if account.id in members}
        await self.idmap.put(name, "User", scim_id, found)

    async def _project_teams(
        self, name: str, target: Any, entries: dict[str, dict[str, Any]]
    ) -> dict[str, tuple[str, str, set[str]]]:
        """scim group id → (project id, name, member ids) for each project the bridge made."""
        access = target.projects
        if access is None:
            return {}
        teams: dict[str, tuple[str, str, set[str]]] = {}
        for key, entry in entries.items():
            if key.startswith("Project/") and entry.get("id"):
                try:
                    members = await access.project_members(str(entry["id"]))
                except Gone:  # deleted by hand: its members show as missing, the engine re-makes it
                    members = set()
                teams[key.split("/", 1)[1]] = (str(entry["id"]), str(entry.get("name", "")), members)
        return teams

    async def _memberships(
        self, name: str, target: Any, accounts: list[TargetAccount], managed: dict[str, tuple[str, str]]
    ) -> None:
        """Fill each account's groups (managed groups only) when the listing does not carry them."""
        if target.listing_carries_groups:
            return  # the listing already carries each account's groups
        by_id = {a.id: a for a in accounts}
        for a in accounts:
            a.groups = []
        for count, group_id in enumerate(managed, 1):
            for member in await target.group_members(group_id):
                if member in by_id:
                    by_id[member].groups.append(group_id)
            if count % 100 == 0:
                self.progress(f"{name}: read {count}/{len(managed)} groups")

    def _owned(self, account: TargetAccount, managed: dict[str, tuple[str, str]]) -> str | None:
        config = self.policy.reconcile
        domain = account.email.rsplit("@", 1)[-1].lower() if "@" in account.email else ""
        if domain and domain in {d.lower() for d in config.owned_email_domains}:
            return f"owned: email domain {domain}"
        prefix = config.owned_group_prefix
        if prefix and any(managed.get(g, ("", ""))[1].startswith(prefix) for g in account.groups):
            return f"owned: member of a {prefix}* group"
        return None

    async def _grants(
        self, name: str, apply: bool, accounts: list[TargetAccount], managed_users: set[str]
    ) -> list[Drift]:
        """Group grants against the policy (the grants run, dry), and grants made to one account on
        what the policy governs: no rule gives those (the model grants to groups only), so an
        account the bridge manages loses them on --apply; any other is reported."""
        access = AccessSync(self.store, self.policy, {name: self.targets[name]})
        access.dry_run = True
        await access.sync()
        drift = [
            Drift(t, kind, resource, detail, "re-apply the policy's grants")
            for t, kind, resource, detail in access.drift
        ]
        emails = {a.id: a.email for a in accounts}
        own = (self.targets[name].service_account_email or "").lower()
        strip: set[str] = set()
        for target, _, resource, kind, principal, rights in access.direct:
            who = emails.get(principal, principal) if kind == "user" else f"{kind} {principal}"
            owned = kind == "user" and principal in managed_users and emails.get(principal, "").lower() != own
            if owned:
                strip.add(principal)
            drift.append(
                Drift(
                    target,
                    "direct-grant",
                    resource,
                    f"{', '.join(r.rsplit('::', 1)[-1] for r in rights)} to {who} ({NOT_FROM_ANY_RULE})",
                    "remove it" if owned else "",
                )
            )
        if drift and apply:  # the engine's grants run repairs, as it applies any grant
            self.engine.access.strip_direct = strip
            try:
                await self.engine.sync_access()
            finally:
                self.engine.access.strip_direct = set()
        return drift


def _project_drift(
    name: str, email: str, account_id: str, desired: Any, teams: dict[str, tuple[str, str, set[str]]]
) -> list[Drift]:
    """Project members are users (research/iconik.md §5.2): each directory member of a project
    team must be in its project, and nobody the bridge manages may be in one otherwise."""
    wanted = set(desired.projects) if desired.account else set()
    drift: list[Drift] = []
    for key, (_, project, members) in sorted(teams.items(), key=lambda item: item[1][1]):
        if key in wanted and account_id not in members:
            drift.append(Drift(name, "missing-project-member", email, f"not in project {project}", "add"))
        elif key not in wanted and account_id in members:
            drift.append(Drift(name, "extra-project-member", email, f"in project {project}", "remove"))
    return drift

"""Access review: who holds what in each target, why, and what nobody is accountable for.

`build_review` reads three things and changes nothing:

- the directory (the store): users, groups, who is in which group;
- the targets as they are now: every account (role, enabled, groups, last login), the roles on each
  governed Cloudinary folder, the group ACLs on each iconik collection the bridge resolved, the
  members of each iconik project the bridge made;
- the policy: why a grant exists (which rule, through which group), and what each user should hold.

A review shows what the targets really hold, not what the bridge believes: the ID map is used only
to link an account to its directory user and to name the groups, folders, collections and projects
the bridge manages. Accounts are listed the way reconciliation lists them (sync/reconcile.py), and a
user's expected state is the desired-access model (sync/desired.py) the sync engine applies, shown
beside what the target holds (`UserAccess.desired`, every entry with its rule, directory fact and
guardrail verdict), so the "differs" flag and the reconciler never disagree about what "desired"
means. A project member no rule accounts for (added in iconik) says so, rather than the team's rule.

Sections (renderers in audit/review_report.py):

    users      one row per directory user per target: the account, its role, groups, folders,
               collections and projects (each with the rule and group behind it), last login, last
               activity, external status, and what differs from the desired state
    resources  per folder / collection / project: who reaches it, with which rights, through which
               group, by which rule (or "not in the policy")
    orphans    target accounts no directory user accounts for (the service account excepted)
    dormant    enabled accounts without a login for `dormant_days` days, or never
    external   external users, the rule that makes them external, and their access expiry

An ACL granted on an iconik collection to one account is listed as a direct grant (no rule gives
one). Folder-scoped moderation (the custom policies of `access.reviewers` rules with folders) is a
`moderation` resource per policy, with its rule (targets/cloudinary_moderation.py). Not covered:
Cloudinary collections (no public API lists their grants, research §3.5) and the global moderation
role of reviewer groups (one role, shown by `/api/v1/reviewers`).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from ..store import Store
from ..sync.access import expired as access_expired
from ..sync.access import expiry_of
from ..sync.access_sync import AccessSync, Grant, policy_grants
from ..sync.desired import NOT_FROM_ANY_RULE, PROJECT, AccessModel, TargetAccess
from ..sync.explain import _role_reason
from ..sync.idmap import IdMap
from ..sync.policy import Policy, UserFacts
from ..sync.reconcile import Reconciler
from ..targets.base import Gone, TargetAccount
from ..targets.registry import TARGETS
from .activity import DAYS, day_namespace, instant, iso

NOT_IN_POLICY = "not in the policy (granted outside the bridge)"


@dataclass
class Reach:
    """One thing a person reaches in a target, and why."""

    resource: str  # folder path, collection title or project name
    rights: list[str]  # folder roles, collection permissions, or ["member"]
    via: str  # the target group that carries it ("direct" for a grant to the account itself)
    rule: str  # the policy rule, or NOT_IN_POLICY

    def __str__(self) -> str:
        return f"{self.resource}: {', '.join(self.rights)} (via {self.via}; {self.rule})"


@dataclass
class UserAccess:
    scim_id: str
    user_name: str
    display_name: str
    directory_active: bool
    external: bool
    expires: str | None
    target: str
    account_id: str | None  # None: no account in this target
    enabled: bool | None
    role: str | None
    role_rule: str
    groups: list[str]
    folders: list[Reach] = field(default_factory=list)
    collections: list[Reach] = field(default_factory=list)
    projects: list[Reach] = field(default_factory=list)
    last_login: str | None = None
    last_activity: str | None = None
    desired_role: str | None = None
    desired_enabled: bool | None = None
    desired: list[dict[str, Any]] = field(default_factory=list)  # the model's entries: rule, fact, guardrail
    differences: list[str] = field(default_factory=list)  # empty: the target holds what the policy wants

    @property
    def differs(self) -> bool:
        return bool(self.differences)


@dataclass
class Reacher:
    account_id: str
    email: str
    scim_id: str | None  # None: an account no directory user accounts for
    user_name: str | None
    rights: list[str]
    via: str
    rule: str


@dataclass
class Resource:
    target: str
    kind: str  # folder, collection, project
    name: str
    id: str | None
    grants: list[dict[str, Any]] = field(default_factory=list)  # principal, rights, rule, members
    reachers: list[Reacher] = field(default_factory=list)  # enabled accounts only
    note: str = ""  # e.g. "not created yet", "deleted in the target"


@dataclass
class Orphan:
    target: str
    account_id: str
    email: str
    role: str
    enabled: bool
    groups: list[str]
    last_login: str | None
    note: str


@dataclass
class Dormant:
    target: str
    account_id: str
    email: str
    scim_id: str | None
    user_name: str | None
    last_login: str | None
    days_since_login: int | None  # None: never logged in


@dataclass
class External:
    scim_id: str
    user_name: str
    display_name: str
    directory_active: bool
    matched: list[str]  # the guardrails.external rules that make the user external
    expires: str | None
    expired: bool
    days_left: int | None
    accounts: dict[str, str]  # target → enabled | disabled | none


@dataclass
class Review:
    generated: str
    policy_source: str
    policy_digest: str
    dormant_days: int
    summary: dict[str, Any]
    users: list[UserAccess]
    resources: list[Resource]
    orphans: list[Orphan]
    dormant: list[Dormant]
    external: list[External]


def policy_digest(policy: Policy, policy_file: str | Path | None) -> tuple[str, str]:
    """(source, "sha256:…") of the policy file a reviewer can compare with the one in version
    control; without a file, of the policy as loaded (canonical JSON)."""
    if policy_file is not None:
        return str(policy_file), "sha256:" + hashlib.sha256(Path(policy_file).read_bytes()).hexdigest()
    canonical = orjson.dumps(policy.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return "(policy as loaded, canonical JSON)", "sha256:" + hashlib.sha256(canonical).hexdigest()


async def build_review(
    store: Store,
    policy: Policy,
    targets: dict[str, Any],
    dormant_days: int = 90,
    progress: Callable[[str], None] | None = None,
    *,
    policy_file: str | Path | None = None,
    now: datetime | None = None,
) -> Review:
    """Read the directory, every target and the policy; return the review (nothing is changed)."""
    return await _ReviewBuilder(store, policy, targets, dormant_days, progress, now).build(policy_file)


@dataclass
class _TargetView:
    """One target as listed now, with the links the review needs."""

    accounts: list[TargetAccount]
    by_id: dict[str, TargetAccount]
    group_names: dict[str, str]  # managed target group id → name
    scim_of: dict[str, str]  # account id → SCIM id of its directory user
    account_of: dict[str, TargetAccount]  # SCIM id → account
    formerly: dict[str, str]  # account id → SCIM id, for accounts the ID map links to a deleted user
    own_email: str


class _ReviewBuilder:
    def __init__(
        self,
        store: Store,
        policy: Policy,
        targets: dict[str, Any],
        dormant_days: int,
        progress: Callable[[str], None] | None,
        now: datetime | None,
    ) -> None:
        self.store, self.policy, self.targets = store, policy, targets
        self.dormant_days = dormant_days
        self.say = progress or (lambda message: None)
        self.now = now or datetime.now(UTC)
        # The reconciler's listing: the directory, and each account with its managed groups.
        self.reconciler = Reconciler(store, policy, targets, self.say)
        self.engine = self.reconciler.engine
        self.access = AccessSync(store, policy, {})
        self.idmap = IdMap(store)
        self.model = AccessModel(policy)  # what each person should hold: the model sync applies
        self.desired: dict[tuple[str, str], TargetAccess] = {}  # (target, SCIM id) → the model's view

    async def build(self, policy_file: str | Path | None) -> Review:
        directory = await self.reconciler._directory()
        users, member_of = directory["users"], directory["member_of"]
        self.user_names = {scim_id: document.get("userName", "") for scim_id, document in users.items()}
        derived = [n for name in self.targets for n in await self.access.derived_names(name)]
        self.grants = policy_grants(self.policy, list(dict.fromkeys(derived)))
        activity = await self._last_activity()
        rows: list[UserAccess] = []
        resources: list[Resource] = []
        orphans: list[Orphan] = []
        dormant: list[Dormant] = []
        per_target: dict[str, dict[str, Any]] = {}
        views: dict[str, _TargetView] = {}
        for name, target in self.targets.items():
            view = views[name] = await self._view(name, target, users, member_of)
            found = await self._resources(name, target, view)
            resources += found
            reach = _reach_by_account(found)
            target_rows = [
                self._user_row(name, scim_id, document, member_of.get(scim_id, {}), view, reach, activity)
                for scim_id, document in users.items()
            ]
            rows += target_rows
            target_orphans = self._orphans(name, view)
            orphans += target_orphans
            target_dormant = self._dormant(name, view, users)
            dormant += target_dormant
            enabled = sum(a.enabled for a in view.accounts)
            per_target[name] = {
                "accounts": len(view.accounts),
                "enabled": enabled,
                "disabled": len(view.accounts) - enabled,
                "linked": len(view.account_of),
                "orphans": len(target_orphans),
                "service_accounts": sum(1 for a in view.accounts if self._is_service(a, view)),
                "dormant": len(target_dormant),
                "users_differing": sum(r.differs for r in target_rows),
                **{f"{kind}s": sum(r.kind == kind for r in found) for kind in ("folder", "collection", "project")},
                "reach": sum(len(r.reachers) for r in found),
            }
            self.say(
                f"{name}: {len(view.accounts)} accounts, {len(found)} resources, {len(target_orphans)} orphans, "
                f"{len(target_dormant)} dormant"
            )
        external = self._external(users, member_of, views)
        source, digest = policy_digest(self.policy, policy_file)
        summary = {
            "directory": {
                "users": len(users),
                "active": sum(d.get("active", True) is not False for d in users.values()),
                "groups": await self.store.count("Group"),
                "external": len(external),
            },
            "targets": per_target,
            "sections": {
                "users": len(rows),
                "users_differing": sum(r.differs for r in rows),
                "resources": len(resources),
                "orphans": len(orphans),
                "dormant": len(dormant),
                "external": len(external),
                "expired": sum(e.expired for e in external),
            },
        }
        return Review(
            iso(self.now), source, digest, self.dormant_days, summary, rows, resources, orphans, dormant, external
        )

    # listing -------------------------------------------------------------------------------------
    async def _view(
        self, name: str, target: Any, users: dict[str, Any], member_of: dict[str, dict[str, str]]
    ) -> _TargetView:
        entries = dict(await self.idmap.entries(name))
        managed = {
            str(e["id"]): (key.split("/", 1)[1], e.get("name", ""))
            for key, e in entries.items()
            if key.startswith("Group/") and e.get("id")
        }
        accounts = await target.list_accounts()
        self.say(f"{name}: {len(accounts)} accounts listed")
        await self.reconciler._memberships(name, target, accounts, managed)
        by_id = {a.id: a for a in accounts}
        by_email = {a.email.lower(): a for a in accounts if a.email}
        scim_of: dict[str, str] = {}
        account_of: dict[str, TargetAccount] = {}
        for scim_id, document in users.items():  # linked as reconciliation links them: ID map, else email
            desired = self.desired[(name, scim_id)] = self.model.for_target(name, document, member_of.get(scim_id, {}))
            email = desired.account.email if desired.account else document.get("userName", "")
            entry = entries.get(f"User/{scim_id}") or {}
            account = by_id.get(str(entry.get("id"))) if entry.get("id") else None
            account = account or by_email.get(email.lower())
            if account is not None and account.id not in scim_of:
                scim_of[account.id] = scim_id
                account_of[scim_id] = account
        formerly = {
            str(e["id"]): key.split("/", 1)[1]
            for key, e in entries.items()
            if key.startswith("User/") and e.get("id") and key.split("/", 1)[1] not in users
        }
        own = target.service_account_email or ""
        return _TargetView(
            accounts, by_id, {gid: gname for gid, (_, gname) in managed.items()}, scim_of, account_of, formerly, own
        )

    def _is_service(self, account: TargetAccount, view: _TargetView) -> bool:
        return bool(view.own_email) and account.email.lower() == view.own_email.lower()

    async def _last_activity(self) -> dict[tuple[str, str], str]:
        """(SCIM id, target) → time of the latest event that person caused there (webhook activity)."""
        latest: dict[tuple[str, str], str] = {}
        for day, _ in await self.store.kv_items(DAYS):
            for _, raw in await self.store.kv_items(day_namespace(day)):
                record = orjson.loads(raw)
                scim_id = (record.get("actor") or {}).get("scim_id")
                if not scim_id or not record.get("time"):
                    continue
                key = (scim_id, record.get("source", ""))
                if record["time"] > latest.get(key, ""):
                    latest[key] = record["time"]
        return latest

    # resources -----------------------------------------------------------------------------------
    async def _resources(self, name: str, target: Any, view: _TargetView) -> list[Resource]:
        found: list[Resource] = []
        entry = TARGETS.get(name)
        applier = entry.grants_applier(self.access, self.policy.access.section(name)) if entry else None
        for held in await applier.held(target) if applier is not None else []:
            resource = Resource(name, held.kind, held.name, held.id)
            found.append(resource)
            if resource.id is None:
                resource.note = held.note or "not resolved yet: the bridge has not applied the policy's grants"
                continue
            if held.note:
                resource.note = held.note  # "deleted in …" (nothing listed), "disabled" (its grant still shown)
                if not held.grants:
                    continue
            for grant in held.grants:
                rights = sorted(r.rsplit("::", 1)[-1] for r in grant.rights)
                if grant.principal == "apiKey":  # an agency's own key (policy agency_keys) or one granted by hand
                    resource.grants.append(
                        {
                            "principal": f"API key {grant.principal_id}"
                            + (f" of {grant.owner}" if grant.owner else ""),
                            "rights": rights,
                            "rule": grant.rule or NOT_IN_POLICY,
                            "members": 0,
                        }
                    )
                    continue
                if held.kind == "moderation":  # a reviewer rule's custom policy names its rule itself
                    given: Callable[[str], str] = functools.partial(_given_by, grant.rule or NOT_IN_POLICY)
                else:
                    rule_of = self._roles_rule if held.rights_add_up else self._acl_rule
                    given = functools.partial(rule_of, name, held.name, held=grant.rights)
                await self._grant(resource, view, target, grant.principal, grant.principal_id, rights, given)
        if target.projects is not None:
            found += await self._projects(name, target.projects, view)
        return found

    async def _projects(self, name: str, access: Any, view: _TargetView) -> list[Resource]:
        found = []
        for key, entry in await self.idmap.entries(name):
            if not key.startswith("Project/") or not entry.get("id"):
                continue
            resource = Resource(name, "project", entry.get("name", ""), str(entry["id"]))
            found.append(resource)
            record = await self.store.get("Group", key.split("/", 1)[1])
            group_name = orjson.loads(record.body).get("displayName", "") if record else None
            if group_name is None:
                rule = "its directory group is gone"
            elif self.policy.access.section(name).project_name(group_name):
                rule = f"access.{name}.projects (directory group {group_name!r})"
            else:
                rule = f"directory group {group_name!r} is no longer a project group in the policy"
            try:
                members = await access.project_members(resource.id)
            except Gone:
                resource.note = f"deleted in {name}"
                continue
            resource.grants.append(
                {
                    "principal": f"project team {group_name or '?'}",
                    "rights": ["member"],
                    "rule": rule,
                    "members": len(members),
                }
            )
            group_key = key.split("/", 1)[1]
            for account_id in sorted(members):
                account = view.by_id.get(account_id)
                if account is None or account.enabled:
                    # The true reason per member: the model's project entry, or none (added in iconik).
                    desired = self.desired.get((name, view.scim_of.get(account_id, "")))
                    why = rule if desired is not None and group_key in desired.projects else NOT_FROM_ANY_RULE
                    resource.reachers.append(self._reacher(view, account_id, account, ["member"], "project team", why))
        return found

    async def _grant(
        self,
        resource: Resource,
        view: _TargetView,
        target: Any,
        kind: str,
        principal_id: str,
        rights: list[str],
        rule_of: Callable[[str], str],
    ) -> None:
        if kind != "group":  # a role given to one account: no group, and never by the bridge
            resource.grants.append(
                {"principal": f"{kind} {principal_id}", "rights": rights, "rule": NOT_IN_POLICY, "members": 1}
            )
            account = view.by_id.get(principal_id)
            if account is None or account.enabled:
                resource.reachers.append(self._reacher(view, principal_id, account, rights, "direct", NOT_IN_POLICY))
            return
        group_name = view.group_names.get(principal_id)
        rule = rule_of(group_name) if group_name else NOT_IN_POLICY
        if group_name is not None:
            members = [a for a in view.accounts if principal_id in a.groups]
        elif not target.listing_carries_groups:  # the listing has only managed groups' members: ask
            ids = set(await target.group_members(principal_id))
            members = [a for a in view.accounts if a.id in ids]
        else:  # the listing carries every group of every account
            members = [a for a in view.accounts if principal_id in a.groups]
        via = group_name or f"group {principal_id} (not managed by the bridge)"
        resource.grants.append({"principal": f"group {via}", "rights": rights, "rule": rule, "members": len(members)})
        for account in members:
            if account.enabled:
                resource.reachers.append(self._reacher(view, account.id, account, rights, via, rule))

    def _reacher(
        self, view: _TargetView, account_id: str, account: TargetAccount | None, rights: list[str], via: str, rule: str
    ) -> Reacher:
        scim_id = view.scim_of.get(account_id)
        return Reacher(
            account_id, account.email if account else "", scim_id, self.user_names.get(scim_id or ""), rights, via, rule
        )

    def _rules(self, target: str, resource: str, group: str) -> list[Grant]:
        return [
            g
            for g in self.grants
            if g.target == target and g.resource == resource and self.access.target_name(g.group) == group
        ]

    def _roles_rule(self, target: str, resource: str, group: str, held: set[str]) -> str:
        """The rules giving `group` each role it holds on `resource` (roles add up across rules)."""
        rules = self._rules(target, resource, group)
        found = [next((g.rule for g in rules if role in g.rights), None) for role in sorted(held)]
        if all(found):
            return "; ".join(sorted(set(filter(None, found))))
        if rules:
            wanted = ", ".join(r.rsplit("::", 1)[-1] for g in rules for r in g.rights)
            return f"{rules[0].rule} gives {wanted}, not this role"
        return NOT_IN_POLICY

    def _acl_rule(self, target: str, resource: str, group: str, held: set[str]) -> str:
        """The rule giving `group` exactly the ACL it holds on `resource` (one rule, the whole set)."""
        rules = self._rules(target, resource, group)
        exact = next((g for g in rules if set(g.rights) == set(held)), None)
        if exact:
            return exact.rule
        if rules:
            return f"{rules[0].rule} gives {', '.join(rules[0].rights)}, not these permissions"
        return NOT_IN_POLICY

    # users ---------------------------------------------------------------------------------------
    def _user_row(
        self,
        name: str,
        scim_id: str,
        document: dict[str, Any],
        groups: dict[str, str],
        view: _TargetView,
        reach: dict[str, dict[str, list[Reach]]],
        activity: dict[tuple[str, str], str],
    ) -> UserAccess:
        facts = UserFacts.of(document, sorted(groups.values()))
        model = self.desired.get((name, scim_id)) or self.model.for_target(name, document, groups, facts)
        desired = model.desired_user()
        external = self.policy.is_external(facts)
        expiry = expiry_of(document, self.policy.access.external.expiry_attribute) if external else None
        account = view.account_of.get(scim_id)
        row = UserAccess(
            scim_id,
            document.get("userName", ""),
            document.get("displayName") or "",
            document.get("active", True) is not False,
            external,
            iso(expiry) if expiry else None,
            name,
            account.id if account else None,
            account.enabled if account else None,
            account.role if account else None,
            _role_reason(self.policy, name, facts),
            [],
            last_activity=activity.get((scim_id, name)),
            desired_role=desired.account.role if desired.account else None,
            desired_enabled=desired.account.enabled if desired.account else None,
            desired=[e.as_json() for e in model.entries if e.kind not in ("account",)],
        )
        wanted = desired.account
        if account is None:
            if wanted is not None and wanted.enabled:
                row.differences.append("no account (the directory wants an enabled one)")
            return row
        moment = instant(account.last_login)
        row.last_login = iso(moment) if moment else None
        row.groups = sorted(view.group_names.get(g, f"{g} (not managed)") for g in account.groups)
        mine = reach.get(account.id, {})
        row.folders, row.collections, row.projects = (
            mine.get("folder", []),
            mine.get("collection", []),
            mine.get("project", []),
        )
        if wanted is None:
            return row
        if account.role != wanted.role:
            row.differences.append(f"role {account.role}, the policy gives {wanted.role}")
        if account.enabled != wanted.enabled:
            row.differences.append(
                f"{'enabled' if account.enabled else 'disabled'}, the directory says "
                f"{'enabled' if wanted.enabled else 'disabled'}"
            )
        actual = {view.group_names[g] for g in account.groups if g in view.group_names}
        row.differences += [f"in group {g}, not wanted" for g in sorted(actual - set(desired.groups.values()))]
        row.differences += [f"not in group {g}" for g in sorted(set(desired.groups.values()) - actual)]
        if not wanted.enabled:
            return row
        want = {(resource, right) for kind, resource, right in model.reach() if kind != PROJECT}
        have = {(x.resource, r) for x in [*row.folders, *row.collections] for r in x.rights}
        row.differences += [f"reaches {res} ({right}) without a policy grant" for res, right in sorted(have - want)]
        row.differences += [f"does not reach {res} ({right})" for res, right in sorted(want - have)]
        projects = {x.resource for x in row.projects}
        row.differences += [
            f"member of project {p}, not wanted" for p in sorted(projects - set(desired.projects.values()))
        ]
        row.differences += [f"not a member of project {p}" for p in sorted(set(desired.projects.values()) - projects)]
        return row

    # orphans, dormant, external ------------------------------------------------------------------
    def _orphans(self, name: str, view: _TargetView) -> list[Orphan]:
        found = []
        for account in view.accounts:
            if account.id in view.scim_of or self._is_service(account, view):
                continue
            note = (
                "its directory user was deleted (the bridge managed it)"
                if account.id in view.formerly
                else "no directory user"
            )
            moment = instant(account.last_login)
            found.append(
                Orphan(
                    name,
                    account.id,
                    account.email,
                    account.role,
                    account.enabled,
                    sorted(view.group_names.get(g, f"{g} (not managed)") for g in account.groups),
                    iso(moment) if moment else None,
                    note,
                )
            )
        return found

    def _dormant(self, name: str, view: _TargetView, users: dict[str, Any]) -> list[Dormant]:
        threshold = self.now - timedelta(days=self.dormant_days)
        found = []
        for account in view.accounts:
            if not account.enabled or self._is_service(account, view):
                continue
            moment = instant(account.last_login)
            if moment is not None and moment >= threshold:
                continue
            scim_id = view.scim_of.get(account.id)
            found.append(
                Dormant(
                    name,
                    account.id,
                    account.email,
                    scim_id,
                    users[scim_id].get("userName") if scim_id else None,
                    iso(moment) if moment else None,
                    (self.now - moment).days if moment else None,
                )
            )
        return found

    def _external(
        self, users: dict[str, Any], member_of: dict[str, dict[str, str]], views: dict[str, _TargetView]
    ) -> list[External]:
        attribute = self.policy.access.external.expiry_attribute
        found = []
        for scim_id, document in users.items():
            facts = UserFacts.of(document, sorted(member_of.get(scim_id, {}).values()))
            matched = [
                f"guardrails.external[{i}]" for i, m in enumerate(self.policy.guardrails.external) if m.matches(facts)
            ]
            if not self.policy.guardrails.internal_domain(facts):  # default deny: the domain is not listed
                matched.append("guardrails.internal_email_domains")
            if not matched:
                continue
            expiry = expiry_of(document, attribute)
            accounts = {}
            for name, view in views.items():
                account = view.account_of.get(scim_id)
                accounts[name] = "none" if account is None else "enabled" if account.enabled else "disabled"
            found.append(
                External(
                    scim_id,
                    document.get("userName", ""),
                    document.get("displayName") or "",
                    document.get("active", True) is not False,
                    matched,
                    iso(expiry) if expiry else None,
                    access_expired(document, attribute, self.now),
                    (expiry - self.now).days if expiry else None,
                    accounts,
                )
            )
        return sorted(found, key=lambda e: e.user_name)


def _given_by(rule: str, group: str) -> str:
    return rule


def _reach_by_account(resources: list[Resource]) -> dict[str, dict[str, list[Reach]]]:
    """account id → kind → what it reaches: the users section is the resources section inverted."""
    reach: dict[str, dict[str, list[Reach]]] = {}
    for resource in resources:
        for r in resource.reachers:
            reach.setdefault(r.account_id, {}).setdefault(resource.kind, []).append(
                Reach(resource.name, r.rights, r.via, r.rule)
            )
    return reach

"""Apply the policy's `access:` grants to the targets, each by its registry entry's grants applier
(targets/<name>_grants.py: folders and folder roles, collections and ACLs…), handed this run as its
`GrantsRun` (targets/capabilities.py). Level-triggered like the rest: one queue entry
("Access", "grants") recomputes every grant from the policy and the groups the bridge manages,
reads what each folder or collection holds, and adds or removes the difference. It runs at start,
and again whenever the bridge creates, renames or deletes a target group.

Only principals the bridge manages (the groups in its ID map) are ever changed: a role someone
granted by hand to another group or user stays (drift reports show it; reconciliation decides).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import orjson

from ..audit.context import remember
from ..scim.filters import fold
from ..store import Store
from ..targets.registry import TARGETS
from .access import expired
from .access import match_template as match_template  # guardrails and web/api_v1.py import it from here
from .idmap import IdMap
from .policy import Policy

ACCESS = "access"  # kv namespace: resolved folder / collection ids and the grants last applied


@dataclass(frozen=True)
class Grant:
    target: str
    resource: str  # folder path or collection title
    group: str  # the grant's group name as the policy says it
    rights: tuple[str, ...]  # role ids (Cloudinary) or permissions (iconik)
    rule: str  # where it comes from, for explain


def policy_grants(policy: Policy, derived_names: list[str]) -> list[Grant]:
    """Every grant the policy makes, with workspace and per-attribute folder templates filled for the
    derived groups that exist."""
    grants: list[Grant] = []
    for target, section in policy.access.sections().items():  # folders, collections: fixed resources
        grants += [Grant(target, g.resource, g.group, g.rights, g.rule) for g in section.resource_grants()]
    for target, section in policy.access.sections().items():  # workspaces, per-attribute folders: templating
        for name in derived_names:
            grants += [Grant(target, g.resource, g.group, g.rights, g.rule) for g in section.templated_rules(name)]
    return grants


class AccessSync:
    def __init__(self, store: Store, policy: Policy, targets: dict[str, Any]) -> None:
        self.store = store
        self.policy = policy
        self.targets = targets
        self.idmap = IdMap(store)
        self.rerun = False  # set when a run found something gone and must run again
        # Reconciliation's dry run: differences are recorded (target, kind, resource, detail), not applied.
        self.dry_run = False
        self.drift: list[tuple[str, str, str, str]] = []
        # Grants to one account (or a key) rather than a group, on what the policy governs: no rule
        # gives those (access goes to groups). A dry run records them (target, kind, resource,
        # principal type, principal id, rights); a run removes those of the accounts in `strip_direct`
        # (reconcile --apply names the accounts the bridge manages).
        self.direct: list[tuple[str, str, str, str, str, list[str]]] = []
        self.strip_direct: set[str] = set()

    async def managed_groups(self, target: str) -> dict[str, str]:
        """Target group name → target id, for every group the bridge manages in `target`."""
        managed = {
            entry["name"]: str(entry["id"])
            for key, entry in await self.idmap.group_entries(target)
            if key.startswith("Group/") and entry.get("id") and entry.get("name")
        }
        for name, group_id in managed.items():  # target calls say their intent by name (audit trail)
            remember(target, group_id, name)
        return managed

    def concerns(self, group_name: str) -> bool:
        """Whether a target group of this name takes part in any grant (so its creation or deletion
        needs a grants run); during a 2,000-group load most groups do not."""
        names = {self.target_name(g.group) for g in policy_grants(self.policy, [])}
        names |= {self.target_name(r.group) for r in self.policy.access.reviewers}
        names |= {
            self.target_name(g) for section in self.policy.access.sections().values() for g in section.grant_groups()
        }
        return group_name in names or any(
            match_template(template, group_name) is not None for template in self.policy.access.workspace_groups()
        )

    def target_name(self, group: str) -> str:
        """The target group a grant's `group` names: a mirrored directory group, or a derived one."""
        return self.policy.groups.mirrored_name(group) or group

    async def derived_names(self, target: str) -> list[str]:
        return [
            key.split(":", 1)[1]
            for key, entry in [
                (k.split("/", 1)[1], v) for k, v in await self.idmap.group_entries(target) if k.startswith("Group/")
            ]
            if key.startswith("derived:") and entry.get("id")
        ]

    async def sync(self, skip: Collection[str] = ()) -> None:
        """Every grant, in every target but those in `skip` (quarantined: sync/quarantine.py), each
        by its registry entry's grants applier (a target without one takes no grants)."""
        for name, entry in TARGETS.items():
            if name not in self.targets or name in skip:
                continue
            applier = entry.grants_applier(self, self.policy.access.section(name))
            if applier is not None:
                await applier.apply(self.targets[name])

    async def group_has_active_member(self, display_name: str) -> bool:
        ids = await self.store.lookup("Group", "displayname", fold(display_name))
        record = await self.store.get("Group", ids[0]) if ids else None
        if record is None:
            return False
        members = [m["value"] for m in orjson.loads(record.body).get("members") or []]
        attribute = self.policy.access.external.expiry_attribute
        for user in await self.store.get_many("User", members):
            document = orjson.loads(user.body)
            if document.get("active", True) is not False and not expired(document, attribute):
                return True
        return False

    # what a target's grants applier asks of the run (GrantsRun: targets/capabilities.py) ---------
    @property
    def reviewers(self) -> list[Any]:
        return list(self.policy.access.reviewers)

    def grants(self, target: str, derived_names: list[str]) -> list[Grant]:
        """The policy's grants in `target`, templates filled for the derived groups that exist."""
        return [g for g in policy_grants(self.policy, derived_names) if g.target == target]

    async def kv_get(self, key: str) -> bytes | None:
        return await self.store.kv_get(ACCESS, key)

    async def kv_put(self, key: str, value: bytes) -> None:
        await self.store.kv_put(ACCESS, key, value)

    async def kv_delete(self, key: str) -> None:
        await self.store.kv_delete(ACCESS, key)


async def governed_content_added(store: Store, policy: Policy, payload: dict[str, Any]) -> bool:
    """Whether a webhook delivery says content arrived below a resource whose grants apply to its
    contents (each target's applier knows its own payloads): then the grants must run again at
    once, rather than at the next `regrant_every` pass."""
    run = AccessSync(store, policy, {})
    for name, entry in TARGETS.items():
        applier = entry.grants_applier(run, policy.access.section(name))
        if applier is not None and await applier.content_added(payload):
            return True
    return False

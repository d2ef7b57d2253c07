"""Reviewer routing: new content in a collection a reviewer rule governs gets an approval request
naming the rule's current reviewers, once.

A target's webhook receiver says which content arrived (`WebhookReceiver.arrivals`); web/webhooks.py
queues one ("Approval", "<target>/<object_type>/<object_id>") entry per object, and the worker
calls `ApprovalRouting.route` on it. Level-triggered like the rest: the entry names the object,
never what happened to it, and routing reads where the object sits from the target:

1. the collections holding it, each with its ancestors' titles (`ApprovalRequests.lineage`);
2. the reviewer rules that govern one of them, as the access model sees it: the rule's globs
   (`access.reviewers[].collections`, no glob: everywhere) match the collection's own title, or
   the title of an ancestor whose grants reach its contents (`apply_to_contents`);
3. the reviewers: active direct members of each rule's directory group with an account in the
   target (sync/reviewers.py, the same computation as GET /api/v1/reviewers): one who left is not
   asked;
4. one request naming them all, unless the target already holds one for the object (a webhook
   repeated, a crash after the request, someone asked by hand): then nothing is requested again.

Each outcome is one audit entry (audit/approvals.py); the one last written per object is kept in
the kv namespace APPROVALS, so a repeated delivery neither asks twice nor writes twice. Content no
rule governs costs the reads and nothing else.

Missed webhooks: every grants run (at start, on group changes, every `regrant_seconds` when
`apply_to_contents` is set) queues a sweep ("<target>/*") that lists the governed collections'
assets and routes those made since the first sweep that have no outcome yet.

Does not: withdraw or edit a request when reviewers change later (the request stands as made).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from ..audit.approvals import record_routing
from ..audit.context import label
from ..store import STANDARD_LANE, Store
from ..targets.base import Target
from ..targets.capabilities import ContentArrival
from .policy import Policy, section_model
from .reviewers import matches, reviewer_group

log = logging.getLogger("scim_bridge.sync")

APPROVAL_ENTRY = "Approval"  # queue resource type; the id is "<target>/<object_type>/<object_id>"
APPROVALS = "approval-requests"  # kv: that id → the outcome last recorded for it (JSON)
SWEEP = "*"  # the entry id "<target>/*": sweep the target's governed collections (missed webhooks)
SINCE = "since"  # kv "<target>/since": content made before the first sweep is not new


def _instant(text: str) -> datetime | None:
    try:
        found = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def entry_id(target: str, arrival: ContentArrival) -> str:
    return f"{target}/{arrival.object_type}/{arrival.object_id}"


async def queue_arrivals(store: Store, policy: Policy, target: str, arrivals: list[ContentArrival]) -> int:
    """Queue routing for each arrival, when the policy has reviewer rules and the target approvals."""
    if not arrivals or not policy.access.reviewers or not section_model(target).APPROVAL_REQUEST:
        return 0
    for arrival in arrivals:
        await store.enqueue(APPROVAL_ENTRY, entry_id(target, arrival), STANDARD_LANE)
    return len(arrivals)


class ApprovalRouting:
    def __init__(self, store: Store, policy: Policy, targets: dict[str, Target]) -> None:
        self.store = store
        self.policy = policy
        self.targets = targets
        # One routing per object at a time in this process: the asset's create and its add to a
        # collection arrive together, and both must not see "no request yet" and ask.
        self._locks: dict[str, asyncio.Lock] = {}

    async def route(self, key: str) -> str:
        """Route one object; returns the outcome (requested, already-requested, no-reviewers,
        not-governed, off)."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                return await self._route(key)
        finally:
            if not lock.locked():
                self._locks.pop(key, None)

    async def _route(self, key: str) -> str:
        name, _, rest = key.partition("/")
        object_type, _, object_id = rest.partition("/")
        target = self.targets.get(name)
        client = target.approvals if target is not None else None
        if client is None:
            return "off"
        if rest == SWEEP:
            await self.sweep(name)
            return "swept"
        if not object_id:
            return "off"
        raw = await self.store.kv_get(APPROVALS, key)
        before: dict[str, Any] = orjson.loads(raw) if raw else {}
        if before.get("state") in ("requested", "already-requested"):
            return "already-requested"  # asked once: a repeated delivery asks nobody again
        governing = await self._governing(name, object_type, object_id)
        if not governing:
            return "not-governed"
        rules = [f"access.reviewers[{i}]" for i in sorted(governing)]
        collections = sorted(set(governing.values()))
        reviewers: dict[str, dict[str, Any]] = {}  # target id → the reviewer
        for index in sorted(governing):
            answer = await reviewer_group(
                self.store, self.policy, name, index, self.policy.access.reviewers[index].group
            )
            for member in answer["members"]:
                if member.get("targetId"):  # no account in the target (not synced yet): cannot be asked
                    reviewers.setdefault(
                        str(member["targetId"]),
                        {"id": member["id"], "userName": member["userName"], "targetId": str(member["targetId"])},
                    )
        what = label(name, object_id, object_type.rstrip("s"))
        resource = {"type": object_type, "id": object_id, "name": what}
        facts: dict[str, Any] = {"rules": rules, "resource": resource, "collections": collections}
        if not reviewers:
            if before.get("state") != "no-reviewers" or before.get("rules") != rules:
                detail = (
                    f"nobody to ask to approve {what} in {', '.join(collections)}: {', '.join(rules)} has no reviewers"
                )
                await record_routing(self.store, name, "no-reviewers", reviewers=[], detail=detail, **facts)
                await self._remember(key, "no-reviewers", rules, [])
            return "no-reviewers"
        asked = sorted(reviewers.values(), key=lambda r: str(r["userName"]))
        if await client.approval_request(object_type, object_id) is not None:
            detail = f"{what} in {', '.join(collections)} already has an approval request: not asked again"
            await record_routing(self.store, name, "already-requested", reviewers=[], detail=detail, **facts)
            await self._remember(key, "already-requested", rules, [])
            return "already-requested"
        people = ", ".join(str(r["userName"]) for r in asked)
        words = f"ask {people} to approve {what} in {', '.join(collections)} ({', '.join(rules)})"
        await client.request_approval(object_type, object_id, list(reviewers), words)
        await self._remember(key, "requested", rules, sorted(reviewers))
        await record_routing(self.store, name, "requested", reviewers=asked, detail=words, **facts)
        return "requested"

    async def _governing(self, target: str, object_type: str, object_id: str) -> dict[int, str]:
        """Reviewer rule index → the governed collection (its title) the object sits in."""
        client = self.targets[target].approvals
        assert client is not None
        found: dict[int, str] = {}
        for collection_id in await client.containers(object_type, object_id):
            lineage = await client.lineage(collection_id)
            for index, where in self._rules_over(target, lineage).items():
                found.setdefault(index, where)
        return found

    def _rules_over(self, target: str, lineage: list[str]) -> dict[int, str]:
        """The rules governing a collection (its title, then its ancestors' up to the root): its own
        title matches a rule's globs, or an ancestor's whose grants reach their contents does."""
        if not lineage:
            return {}  # gone meanwhile
        reaching = self.policy.access.section(target).governs_contents()
        scope = section_model(target).REVIEW_SCOPE
        titles = [lineage[0], *(t for t in lineage[1:] if t in reaching)]
        found: dict[int, str] = {}
        for index, rule in enumerate(self.policy.access.reviewers):
            globs = rule.folders if scope == "folder" else rule.collections
            hit = next((title for title in titles if matches(globs, title)), None)
            if hit is not None:
                found[index] = hit
        return found

    async def queue_sweeps(self) -> None:
        """After a grants run (at start, on group changes, every `regrant_seconds`): a sweep per
        target with approvals, for content whose webhook was missed."""
        if not self.policy.access.reviewers:
            return
        for name, target in self.targets.items():
            if target.approvals is not None and section_model(name).APPROVAL_REQUEST:
                await self.store.enqueue(APPROVAL_ENTRY, f"{name}/{SWEEP}", STANDARD_LANE)

    async def sweep(self, name: str) -> int:
        """Route every asset in a governed collection made since routing first swept this target and
        not routed yet; returns how many. The first sweep only sets that point in time: what the
        collections held before the bridge routed is not new content (no flood of requests for a
        back catalogue). An asset whose routing found nobody to ask is not tried again here."""
        client = self.targets[name].approvals
        assert client is not None
        raw = await self.store.kv_get(APPROVALS, f"{name}/{SINCE}")
        if raw is None:
            await self.store.kv_put(APPROVALS, f"{name}/{SINCE}", datetime.now(UTC).isoformat().encode())
            return 0
        since = _instant(raw.decode()) or datetime.now(UTC)
        listing = await client.collections()
        titles = {collection_id: title for collection_id, title, _ in listing}
        routed = 0
        for collection_id, title, parents in listing:
            if not self._rules_over(name, [title, *(titles.get(p, "") for p in reversed(parents))]):
                continue
            for asset_id, created in await client.assets_in(collection_id):
                when = _instant(created)
                key = f"{name}/assets/{asset_id}"
                if (when is not None and when < since) or await self.store.kv_get(APPROVALS, key) is not None:
                    continue
                await self.route(key)
                routed += 1
        if routed:
            log.info("approvals: the sweep routed %d asset(s) in %s no webhook announced", routed, name)
        return routed

    async def _remember(self, key: str, state: str, rules: list[str], asked: list[str]) -> None:
        body = {"state": state, "rules": rules, "asked": asked}
        await self.store.kv_put(APPROVALS, key, orjson.dumps(body))

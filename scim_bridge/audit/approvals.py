"""Reviewer routing in the audit trail: one `kind: "approval"` entry each time the bridge asks the
reviewers of a rule to approve new content, finds it already asked, or has nobody to ask.

    {"kind": "approval", "correlation", "target", "state": "requested" | "already-requested" | "no-reviewers",
     "rules": the reviewer rules that govern it (["access.reviewers[0]"]),
     "resource": {"type": "assets", "id", "name"?}, "collections": the governed collections it sits in,
     "reviewers": [{"id": SCIM id, "userName", "targetId"}] (who was asked; [] when nobody could be),
     "detail": in words}

Written by sync/approvals.py once per outcome (the outcome last written is kept in the store's kv),
as audit/decisions.py writes guardrail decisions: the target calls themselves are `kind: "target"`
entries whose intent names the rule and the reviewers. Never raises: a store outage is logged.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from ..store import Store, StoreUnavailable
from .context import CORRELATION_ID

log = logging.getLogger("scim_bridge.audit")


async def record_routing(store: Store, target: str, state: str, **fields: Any) -> None:
    entry = {"kind": "approval", "correlation": CORRELATION_ID.get(), "target": target, "state": state, **fields}
    try:
        await store.audit_append([orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)])
    except StoreUnavailable:
        log.warning("approval routing of %s not recorded: store down", fields.get("resource"))

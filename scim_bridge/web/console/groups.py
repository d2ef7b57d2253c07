"""Groups: the directory's groups, and one group's members and what it grants in each target."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ...sync.access_sync import policy_grants
from ...sync.status import resource_status
from .guard import page
from .people import summary, targets_of
from .render import render
from .session import Session


async def groups(request: Request, session: Session) -> Response:
    text = request.query_params.get("q", "").strip().lower()
    found = []
    async for record in request.app.state.store.scan("Group"):
        document = orjson.loads(record.body)
        name = document.get("displayName", "")
        if not text or text in name.lower():
            found.append({"id": record.id, "name": name, "members": len(document.get("members") or [])})
    return render(request, "groups.html", session, title="Groups", groups=found, q=request.query_params.get("q", ""))


def _grants(request: Request, name: str) -> tuple[str | None, list[dict[str, Any]]]:
    """(the group's name in the targets, or None when not mirrored; the grants the policy gives it)."""
    sync = request.app.state.sync
    if sync is None:
        return None, []
    policy = sync.engine.policy
    mirrored = policy.groups.mirrored_name(name)
    names = {name, mirrored} - {None}
    grants = [
        {
            "target": g.target,
            "resource": g.resource,
            "rights": ", ".join(r.rsplit("::", 1)[-1] for r in g.rights),
            "rule": g.rule,
        }
        for g in policy_grants(policy, sorted(n for n in names if n))
        if (policy.groups.mirrored_name(g.group) or g.group) in names or g.group in names
    ]
    return mirrored, grants


async def group(request: Request, session: Session) -> Response:
    store, scim_id = request.app.state.store, request.path_params["id"]
    record = await store.get("Group", scim_id)
    if record is None:
        return render(request, "error.html", session, 404, title="Not found", message="no such group in the directory")
    document = orjson.loads(record.body)
    ids = [m["value"] for m in document.get("members") or [] if m.get("value")]
    members = sorted(
        (summary(orjson.loads(r.body)) for r in await store.get_many("User", ids)), key=lambda p: p["name"] or ""
    )
    name = document.get("displayName", "")
    mirrored, grants = _grants(request, name)
    modified = (document.get("meta") or {}).get("lastModified")
    states = await resource_status(store, targets_of(request), "Group", scim_id, modified)
    return render(
        request,
        "group.html",
        session,
        title=name,
        group={"id": scim_id, "name": name},
        members=members,
        mirrored=mirrored,
        grants=grants,
        states=states,
    )


ROUTES = [
    ("/console/groups", page(groups), ["GET"]),
    ("/console/groups/{id}", page(group), ["GET"]),
]

"""People: search the directory, and one person's page (record, each target's account and grants
with the rule behind each, sync state, timeline) with Provision now and Explain."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ...audit.timeline import person_timeline
from ...sync.explain import explain, find_user
from ...sync.provision import Provisioner, ProvisionError
from ...sync.status import resource_status
from .guard import page
from .render import render
from .session import Session

MAX_RESULTS = 50
TIMELINE = 40  # newest entries of the audit trail and of target activity on a person's page
SYNC_STATES = ("synced", "pending", "partial", "failed", "not-provisioned")


def targets_of(request: Request) -> list[str]:
    sync = request.app.state.sync
    return list(sync.engine.targets) if sync is not None else []


def summary(document: dict[str, Any]) -> dict[str, Any]:
    name = document.get("name") or {}
    emails = [e.get("value") for e in document.get("emails") or [] if e.get("value")]
    return {
        "id": document.get("id"),
        "userName": document.get("userName"),
        "name": document.get("displayName")
        or name.get("formatted")
        or " ".join(p for p in (name.get("givenName"), name.get("familyName")) if p),
        "email": emails[0] if emails else document.get("userName"),
        "active": document.get("active", True) is not False,
    }


def _matches(person: dict[str, Any], text: str, status: str) -> bool:
    if status == "active" and not person["active"] or status == "inactive" and person["active"]:
        return False
    haystack = " ".join(str(person[k] or "") for k in ("userName", "name", "email")).lower()
    return not text or text in haystack


async def search(request: Request, session: Session) -> Response:
    params = request.query_params
    text, status, sync_state = params.get("q", "").strip().lower(), params.get("status", ""), params.get("sync", "")
    store, targets = request.app.state.store, targets_of(request)
    found: list[dict[str, Any]] = []
    more = False
    async for record in store.scan("User"):
        document = orjson.loads(record.body)
        person = summary(document)
        if not _matches(person, text, status):
            continue
        modified = (document.get("meta") or {}).get("lastModified")
        states = await resource_status(store, targets, "User", record.id, modified)
        person["states"] = {name: state["state"] for name, state in states.items()}
        if sync_state and sync_state not in person["states"].values():
            continue
        if len(found) == MAX_RESULTS:
            more = True
            break
        found.append(person)
    return render(
        request,
        "people.html",
        session,
        title="People",
        people=found,
        more=more,
        q=params.get("q", ""),
        status_filter=status,
        sync_state=sync_state,
        sync_states=SYNC_STATES,
        targets=targets,
    )


async def _timeline(request: Request, scim_id: str) -> list[dict[str, Any]]:
    """The person's newest audit entries and target activity, newest first: the same timeline as
    GET /admin/api/people/{id}/timeline and `audit export --person` (audit/timeline.py)."""
    entries = await person_timeline(
        request.app.state.store,
        scim_id,
        limit=TIMELINE,
        trail=request.app.state.audit,
        activity=request.app.state.webhooks.activity,
    )
    return [
        {
            "time": e.time,
            "source": "audit" if e.source == "audit" else f"{e.target or 'target'} activity",
            "what": e.summary,
            "correlation": e.correlation,
        }
        for e in reversed(entries)
    ]


async def person_context(request: Request, scim_id: str) -> dict[str, Any] | None:
    store, sync = request.app.state.store, request.app.state.sync
    record = await find_user(store, scim_id)
    if record is None:
        return None
    document = orjson.loads(record.body)
    _, group_ids = await store.get_with_referrers("User", record.id, "Group", "members.value")
    groups = [
        {"id": g.id, "name": orjson.loads(g.body).get("displayName", "")}
        for g in await store.get_many("Group", group_ids)
    ]
    modified = (document.get("meta") or {}).get("lastModified")
    states = await resource_status(store, targets_of(request), "User", record.id, modified)
    grants: dict[str, list[dict[str, str]]] = {}
    if sync is not None:
        explanation = await explain(store, sync.engine.policy, record.id)
        if explanation is not None:
            grants = explanation.as_json()["targets"]
    enterprise = document.get("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User") or {}
    return {
        "person": summary(document),
        "document": document,
        "enterprise": enterprise,
        "groups": sorted(groups, key=lambda g: g["name"]),
        "states": states,
        "grants": grants,
        "timeline": await _timeline(request, record.id),
    }


async def person(request: Request, session: Session) -> Response:
    context = await person_context(request, request.path_params["id"])
    if context is None:
        return render(request, "error.html", session, 404, title="Not found", message="no such person in the directory")
    return render(
        request, "person.html", session, title=context["person"]["name"] or context["person"]["userName"], **context
    )


async def explain_view(request: Request, session: Session) -> Response:
    sync = request.app.state.sync
    found = await explain(request.app.state.store, sync.engine.policy, request.path_params["id"]) if sync else None
    lines = found.lines() if found is not None else ["no sync policy runs here, or no such person"]
    template = "explain_part.html" if request.headers.get("hx-request") else "explain.html"
    return render(request, template, session, title="Explain", lines=lines)


async def provision(request: Request, session: Session) -> Response:
    sync, scim_id = request.app.state.sync, request.path_params["id"]
    context = await person_context(request, scim_id)
    if context is None:
        return render(request, "error.html", session, 404, title="Not found", message="no such person in the directory")
    result, error = None, None
    if sync is None:
        error = "no sync policy runs here: nothing can be provisioned"
    else:
        try:
            result = await Provisioner(sync.engine).user(scim_id)
        except ProvisionError as failure:
            error = failure.message
        context = await person_context(request, scim_id) or context  # the state after the pass
    return render(request, "person.html", session, title="Provisioned", provisioned=result, error=error, **context)


ROUTES = [
    ("/console/people", page(search), ["GET"]),
    ("/console/people/{id}", page(person), ["GET"]),
    ("/console/people/{id}/explain", page(explain_view), ["GET"]),
    ("/console/people/{id}/provision", page(provision, operator=True), ["POST"]),
]

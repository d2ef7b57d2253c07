"""Held changes of the deprovision brake (sync/brake.py): approve or reject (operators only)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ...sync.brake import DecisionError
from .guard import form, page
from .letters import _names
from .render import render
from .session import Session


async def held_page(
    request: Request, session: Session, message: str | None = None, error: str | None = None
) -> Response:
    sync = request.app.state.sync
    items, brake = [], {}
    if sync is not None:
        brake = (await sync.engine.brake.status())["targets"]
        found = await sync.engine.brake.held()
        names = await _names(request, sorted({item.key for item in found}))
        items = [{**item.as_dict(), "key": item.key, "name": names.get(item.key)} for item in found]
    return render(
        request,
        "held.html",
        session,
        title="Held changes",
        items=items,
        brake=brake,
        message=message,
        error=error,
        sync=sync is not None,
    )


async def held(request: Request, session: Session) -> Response:
    return await held_page(request, session)


def _decide(action: str):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request, session: Session) -> Response:
        sync = request.app.state.sync
        if sync is None:
            return await held_page(request, session, error="no sync policy runs here: nothing is held")
        data = await form(request)
        key, target = data.get("key"), data.get("target")
        brake = sync.engine.brake
        decide = brake.approve if action == "approve" else brake.reject
        try:
            count = await decide(
                f"console:{session.name}",
                target if isinstance(target, str) and target else None,
                [key] if isinstance(key, str) and key else None,
            )
        except DecisionError as problem:
            return await held_page(request, session, error=str(problem))
        done = "approved" if action == "approve" else "rejected"
        return await held_page(request, session, message=f"{done} {count} change(s)")

    return endpoint


ROUTES = [
    ("/console/held", page(held), ["GET"]),
    ("/console/held/approve", page(_decide("approve"), operator=True), ["POST"]),
    ("/console/held/reject", page(_decide("reject"), operator=True), ["POST"]),
]

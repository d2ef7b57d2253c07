"""Dead letters: what the sync engine gave up on, and their replay (operators only)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ...store import STANDARD_LANE
from ...sync.idmap import DEAD_LETTERS, IdMap
from .guard import form, page
from .render import render
from .session import Session


async def _names(request: Request, keys: list[str]) -> dict[str, str]:
    store, names = request.app.state.store, {}
    for key in keys:
        resource_type, scim_id = key.split("/", 1)
        record = await store.get(resource_type, scim_id)
        if record is not None:
            document = orjson.loads(record.body)
            names[key] = document.get("displayName") or document.get("userName") or scim_id
    return names


async def letters_page(request: Request, session: Session, message: str | None = None) -> Response:
    letters = await IdMap(request.app.state.store).dead_letters()
    letters.sort(key=lambda kv: kv[1].get("time", 0), reverse=True)
    names = await _names(request, [key for key, _ in letters])
    rows = [
        {"key": key, "type": key.split("/", 1)[0], "id": key.split("/", 1)[1], "name": names.get(key), **value}
        for key, value in letters
    ]
    return render(request, "letters.html", session, title="Dead letters", letters=rows, message=message)


async def letters(request: Request, session: Session) -> Response:
    return await letters_page(request, session)


async def replay(request: Request, session: Session) -> Response:
    """One letter (`key`), or all of them: requeued in the standard lane, like `scim-bridge replay`."""
    store = request.app.state.store
    key = (await form(request)).get("key")
    if isinstance(key, str) and key:
        if await store.kv_get(DEAD_LETTERS, key) is None or "/" not in key:
            return await letters_page(request, session, f"{key} is no longer a dead letter")
        resource_type, scim_id = key.split("/", 1)
        await store.enqueue(resource_type, scim_id, STANDARD_LANE)
        await store.kv_delete(DEAD_LETTERS, key)
        return await letters_page(request, session, f"requeued {key}")
    count = await IdMap(store).replay()
    return await letters_page(request, session, f"requeued {count} dead letter(s)")


ROUTES = [
    ("/console/dead-letters", page(letters), ["GET"]),
    ("/console/dead-letters/replay", page(replay, operator=True), ["POST"]),
]

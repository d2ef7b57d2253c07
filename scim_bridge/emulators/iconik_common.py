"""What every iconik emulator service shares: the error exception, the page/per_page envelope, the
scroll cursor, JSON bodies, timestamps, 404 lookups and the collection tree.

Kept apart from iconik.py so the service modules (iconik_acls, iconik_assets, …) can import it while
iconik.py imports them.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request

if TYPE_CHECKING:
    from .iconik import IconikState, IconikSwitches

PERMISSIONS = ("read", "write", "delete", "change-acl")  # research/iconik.md §3.2, BulkACLsObjectSchema


class Refusal(Exception):
    """Answered as `{"errors": errors}` with `status` (a list, or field → messages)."""

    def __init__(self, errors: list[str] | dict[str, list[str]], status: int) -> None:
        super().__init__(str(errors))
        self.errors, self.status = errors, status


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def new_id() -> str:
    return str(uuid.uuid4())


def find(kind: str, table: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
    if key not in table:
        raise Refusal([f"{kind} does not exist"], 404)
    return table[key]


async def json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise Refusal(["Invalid JSON"], 400) from None
    if not isinstance(body, dict):
        raise Refusal(["Invalid JSON"], 400)
    return body


def paged(request: Request, objects: list[dict[str, Any]], switches: IconikSwitches) -> dict[str, Any]:
    try:
        page = int(request.query_params.get("page", 1))
        per_page = int(request.query_params.get("per_page", 10))
    except ValueError:
        raise Refusal({"page": ["Not a valid integer."]}, 400) from None
    if per_page > 100:
        if switches.per_page_over_max == "reject":
            raise Refusal({"per_page": ["Must be between 1 and 100."]}, 400)
        per_page = 100
    if page < 1 or per_page < 1:
        raise Refusal({"page": ["Must be greater than or equal to 1."]}, 400)
    total = len(objects)
    pages = max(1, math.ceil(total / per_page))
    if page > pages and switches.page_past_end_404:
        raise Refusal(["Requested page does not exist"], 404)

    def url(number: int) -> str:  # host-relative, as live responses give it (research/iconik.md §1.3)
        params = {k: v for k, v in request.query_params.items() if k not in ("page", "per_page")}
        return f"{request.url.path}?{urlencode({**params, 'page': number, 'per_page': per_page})}"

    envelope: dict[str, Any] = {
        "objects": objects[(page - 1) * per_page : page * per_page],
        "page": page,
        "pages": pages,
        "per_page": per_page,
        "total": total,
        "facets": {},
        "first_url": url(1),
        "last_url": url(pages),
    }
    if page < pages:
        envelope["next_url"] = url(page + 1)
    if page > 1:
        envelope["prev_url"] = url(page - 1)
    return envelope


class Scrolls:
    """`scroll=true` then `scroll_id=…` (collections, projects; research/iconik.md §1.3 style 2).

    The cursor holds the matching objects as they were on the first call, like a search-engine scroll
    context. How long a real scroll_id lives and what the last batch looks like: UNCONFIRMED (here:
    until exhausted, then an empty `objects` list).
    """

    def __init__(self) -> None:
        self.cursors: dict[str, tuple[list[dict[str, Any]], int]] = {}

    def answer(self, request: Request, objects: list[dict[str, Any]], switches: IconikSwitches) -> dict[str, Any]:
        q = request.query_params
        if q.get("scroll_id"):
            if q["scroll_id"] not in self.cursors:
                raise Refusal({"scroll_id": ["Invalid scroll_id"]}, 400)
            remaining, per_page = self.cursors.pop(q["scroll_id"])
        elif q.get("scroll", "").lower() == "true":
            per_page = min(int(q.get("per_page", 10)), 100)
            remaining = objects
        else:
            return paged(request, objects, switches)
        batch, rest = remaining[:per_page], remaining[per_page:]
        scroll_id = new_id()
        self.cursors[scroll_id] = (rest, per_page)
        return {"objects": batch, "per_page": per_page, "total": len(batch) + len(rest), "scroll_id": scroll_id}


# The collection tree: only parent_id is stored; ancestry is derived so a move updates everything below.
def ancestors(state: IconikState, collection_id: str) -> list[str]:
    """Ancestor ids, the root first."""
    chain: list[str] = []
    parent = state.collections.get(collection_id, {}).get("parent_id")
    while parent and parent in state.collections and parent not in chain:
        chain.insert(0, parent)
        parent = state.collections[parent].get("parent_id")
    return chain


def descendants(state: IconikState, collection_id: str) -> list[str]:
    found: list[str] = []
    frontier = [collection_id]
    while frontier:
        current = frontier.pop()
        children = [c["id"] for c in state.collections.values() if c.get("parent_id") == current]
        found += [c for c in children if c not in found]
        frontier += children
    return found


def token_user(state: IconikState) -> dict[str, Any]:
    return state.users[state.token_user_id]

"""What an indexed filter reads from the store: the index, then its matches with their groups in
one read (store.get_many_with_referrers), not one more read per User for its groups; the page is
the same as it was (groups with display names and $ref), on both stores."""

from __future__ import annotations

from typing import Any

import orjson

from scim_bridge.scim.listing import CursorCodec, Lister, Query
from scim_bridge.scim.resources import ResourceService
from scim_bridge.scim.schemas import USER
from scim_bridge.store import Store, Write

BASE = "https://bridge.example/scim/v2"


class Counting:
    """The store, with the name of every read the lister makes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, name)
        if name.startswith("_") or not callable(method):
            return method

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return method(*args, **kwargs)

        return counted


def _user(id: str, name: str) -> Write:
    body = orjson.dumps({"schemas": [USER.core_schema], "id": id, "userName": name, "meta": {"resourceType": "User"}})
    return Write("User", id, body, [("username", name)], [("username", name)])


async def test_an_indexed_filter_reads_its_users_groups_with_them(store: Store) -> None:
    for id, name in (("u1", "ada"), ("u2", "bob"), ("u3", "cy")):
        await store.create(_user(id, name))
    members = [("members.value", "u1"), ("members.value", "u3")]
    await store.create(Write("Group", "g1", orjson.dumps({"id": "g1", "displayName": "Eng"}), members, []))
    counting = Counting(store)
    lister = Lister(ResourceService(counting), CursorCodec(b"k" * 32))  # type: ignore[arg-type]

    page = await lister.list(USER, Query(filter='userName eq "ada" or userName eq "bob" or userName eq "cy"'), BASE)

    eng = {"value": "g1", "$ref": f"{BASE}/Groups/g1", "display": "Eng", "type": "direct"}
    assert page["totalResults"] == 3
    assert [(r["id"], r.get("groups")) for r in page["Resources"]] == [("u1", [eng]), ("u2", None), ("u3", [eng])]
    # three index reads (one per term), the matches with their groups, the group's name: no read per User
    assert counting.calls == ["lookup", "lookup", "lookup", "get_many_with_referrers", "get_many"]


async def test_an_indexed_filter_without_groups_in_its_answer_reads_no_groups(store: Store) -> None:
    await store.create(_user("u1", "ada"))
    counting = Counting(store)
    lister = Lister(ResourceService(counting), CursorCodec(b"k" * 32))  # type: ignore[arg-type]
    page = await lister.list(USER, Query(filter='userName eq "ada"', attributes="userName"), BASE)
    assert page["Resources"] == [{"schemas": [USER.core_schema], "id": "u1", "userName": "ada"}]
    assert counting.calls == ["lookup", "get_many"]

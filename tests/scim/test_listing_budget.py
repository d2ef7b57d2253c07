"""What one list request may cost (issue 10, item 8): scanning filters are bounded, root
`/.search` pages like the per-type lists. Each test has a bridge of its own on a fresh store,
so totals are exact."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.live import LiveBridge
from tests.scim.conftest import new_group, new_user

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"


@pytest.fixture
def small_budget(bridge_store_url: str) -> Iterator[httpx.Client]:
    """A bridge whose filter budget is 50 comparisons × resources, holding 10 users."""
    with LiveBridge(bridge_store_url, max_filter_cost=50) as live, live.client() as client:
        for _ in range(10):
            new_user(client, title="Editor")
        yield client


@pytest.fixture
def fresh(bridge_store_url: str) -> Iterator[httpx.Client]:
    with LiveBridge(bridge_store_url) as live, live.client() as client:
        yield client


def any_of(attribute: str, values: list[str]) -> str:
    return " or ".join(f'{attribute} eq "{value}"' for value in values)


def test_a_scanning_filter_past_the_budget_is_refused_as_too_many(small_budget: httpx.Client) -> None:
    costly = any_of("title", [f"t{i}" for i in range(6)])  # 6 comparisons × 10 users = 60 > 50
    for response in (
        small_budget.get("/Users", params={"filter": costly}),
        small_budget.get("/Users", params={"filter": costly, "cursor": ""}),
        small_budget.post("/Users/.search", json={"schemas": [SEARCH], "filter": costly}),
        small_budget.post("/.search", json={"schemas": [SEARCH], "filter": costly}),
    ):
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["scimType"] == "tooMany" and "SCIM_BRIDGE_MAX_FILTER_COST" in body["detail"]
    within = any_of("title", ["Editor", "x", "y", "z"])  # 40 ≤ 50
    assert small_budget.get("/Users", params={"filter": within}).json()["totalResults"] == 10


def test_an_indexed_filter_is_never_limited_by_the_budget(small_budget: httpx.Client) -> None:
    users = small_budget.get("/Users").json()["Resources"]
    names = [u["userName"] for u in users[:3]] + [f"n{i}@x.io" for i in range(129)]
    by_name = small_budget.get("/Users", params={"filter": any_of("userName", names)})
    assert by_name.status_code == 200, by_name.text
    assert sorted(r["id"] for r in by_name.json()["Resources"]) == sorted(u["id"] for u in users[:3])
    ids = [u["id"] for u in users[:2]] + [f"m{i}" for i in range(60)]
    by_id = small_budget.get("/Users", params={"filter": any_of("id", ids)})
    assert by_id.status_code == 200, by_id.text
    assert sorted(r["id"] for r in by_id.json()["Resources"]) == sorted(u["id"] for u in users[:2])


def test_a_long_scan_leaves_the_server_answering_others(fresh: httpx.Client) -> None:
    for _ in range(300):
        new_user(fresh)
    costly = any_of("title", [f"t{i}" for i in range(120)])
    waits: list[float] = []
    done = threading.Event()

    def health() -> None:
        with httpx.Client(base_url=str(fresh.base_url).rstrip("/").removesuffix("/scim/v2")) as other:
            while not done.is_set():
                started = time.monotonic()
                assert other.get("/health").status_code == 200
                waits.append(time.monotonic() - started)

    probe = threading.Thread(target=health)
    probe.start()
    try:
        for _ in range(5):
            assert fresh.get("/Users", params={"filter": costly, "count": "0"}).status_code == 200
    finally:
        done.set()
        probe.join()
    assert waits and max(waits) < 0.5, max(waits)


def page(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = client.post("/.search", json={"schemas": [SEARCH], **fields})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_root_search_pages_through_users_then_groups(fresh: httpx.Client) -> None:
    users = [new_user(fresh)["id"] for _ in range(3)]
    groups = [new_group(fresh)["id"] for _ in range(2)]
    first = page(fresh, count=2)
    assert (first["totalResults"], first["startIndex"], first["itemsPerPage"]) == (5, 1, 2)
    assert [r["id"] for r in first["Resources"]] == users[:2]
    middle = page(fresh, startIndex=3, count=2)
    assert [r["id"] for r in middle["Resources"]] == [users[2], groups[0]]
    last = page(fresh, startIndex=5, count=10)
    assert [r["id"] for r in last["Resources"]] == [groups[1]]
    assert page(fresh, startIndex=6)["Resources"] == []
    only_count = page(fresh, count=0)
    assert (only_count["totalResults"], only_count["Resources"]) == (5, [])
    filtered = page(fresh, filter="displayName pr", attributes=["displayName"])
    assert [r["id"] for r in filtered["Resources"]] == groups


def test_root_search_has_a_default_and_a_maximum_page_size(fresh: httpx.Client) -> None:
    for _ in range(3):
        new_group(fresh)
    assert page(fresh)["itemsPerPage"] == 3  # default 100
    assert page(fresh, count=10**9)["itemsPerPage"] == 3  # clamped to the maximum, not refused
    refused = fresh.post("/.search", json={"schemas": [SEARCH], "cursor": ""})
    assert refused.status_code == 400 and refused.json()["scimType"] == "invalidValue"

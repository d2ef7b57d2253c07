"""Generated reads on both stores: filters, list parameters, SearchRequest bodies, routes and
discovery. Nothing here writes, so the directory each module's bridge holds stays fixed and an
answer can be compared with another (a filter and its negation cover every resource once)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, seed
from hypothesis import strategies as st

from tests.fuzz.harness import DIRECTORY_USERS, SEED, Fuzzer, FuzzFailure, fuzz_settings
from tests.fuzz.strategies import FILTERS, LIST_PARAMS, ODD_TEXT, SEARCH, SEARCH_BODIES

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]


def total(response: Any) -> int:
    return int(response.json()["totalResults"])


def test_generated_filters_get_the_same_scim_answer_on_every_list_endpoint(fuzzer: Fuzzer) -> None:
    everyone = len(DIRECTORY_USERS)

    @seed(SEED)
    @fuzz_settings(220)
    @given(st.lists(FILTERS, min_size=1, max_size=6))
    def run(filters: list[str]) -> None:
        for expression in filters:
            users = fuzzer.send("GET", "/Users", params={"filter": expression})
            groups = fuzzer.send("GET", "/Groups", params={"filter": expression, "count": "5"})
            search = fuzzer.send("POST", "/Users/.search", json={"schemas": [SEARCH], "filter": expression})
            fuzzer.send("POST", "/Groups/.search", json={"schemas": [SEARCH], "filter": expression, "count": 2})
            root = fuzzer.send("POST", "/.search", json={"schemas": [SEARCH], "filter": expression, "count": 3})
            if (users.status_code == 200) != (search.status_code == 200):
                raise FuzzFailure(f"GET and POST .search disagree on {expression!r}: {users.text} / {search.text}")
            if users.status_code != 200:
                continue
            if total(search) != total(users):
                raise FuzzFailure(f"GET and POST .search count differently for {expression!r}")
            negated = fuzzer.send("GET", "/Users", params={"filter": f"not ({expression})", "count": "0"})
            if negated.status_code == 200 and total(users) + total(negated) != everyone:
                raise FuzzFailure(
                    f"{expression!r} matches {total(users)} users and its negation {total(negated)}, of {everyone}"
                )
            if groups.status_code == 200 and root.status_code == 200 and total(root) < total(users):
                raise FuzzFailure(f"root /.search finds fewer than /Users for {expression!r}")

    run()


def test_generated_list_parameters_page_within_the_limits(fuzzer: Fuzzer) -> None:
    @seed(SEED + 1)
    @fuzz_settings(300)
    @given(st.lists(LIST_PARAMS, min_size=1, max_size=6))
    def run(cases: list[dict[str, str]]) -> None:
        for params in cases:
            for endpoint in ("/Users", "/Groups"):
                response = fuzzer.send("GET", endpoint, params=params)
                if response.status_code != 200:
                    continue
                page = response.json()
                if page["itemsPerPage"] != len(page["Resources"]) or page["itemsPerPage"] > 1000:
                    raise FuzzFailure(f"itemsPerPage does not count Resources for {params!r}: {response.text[:300]}")
                if "startIndex" in page and page["startIndex"] < 1:
                    raise FuzzFailure(f"startIndex below 1 for {params!r}")

    run()


def test_generated_search_requests_get_a_scim_answer(fuzzer: Fuzzer) -> None:
    @seed(SEED + 2)
    @fuzz_settings(250)
    @given(st.lists(SEARCH_BODIES, min_size=1, max_size=4))
    def run(bodies: list[dict[str, Any]]) -> None:
        for body in bodies:
            for path in ("/Users/.search", "/Groups/.search", "/.search"):
                fuzzer.send("POST", path, json=body)

    run()


def test_escaped_surrogates_and_huge_numbers_in_search_bodies_get_a_scim_answer(fuzzer: Fuzzer) -> None:
    """Bytes no JSON encoder writes: what orjson refuses must be 400 invalidSyntax, never a 500."""
    fragments = st.sampled_from(
        ['"\\ud800"', '"\\udfff"', '"x\\ud83d"', "1e400", "-1e400", str(2**70), str(-(2**64)), "1e300", '"²"', "[]"]
    )

    @seed(SEED + 3)
    @fuzz_settings(150)
    @given(st.lists(st.tuples(st.sampled_from(["filter", "count", "startIndex", "cursor", "sortBy"]), fragments)))
    def run(members: list[tuple[str, str]]) -> None:
        inner = "".join(f',"{name}":{value}' for name, value in members)
        raw = f'{{"schemas":["{SEARCH}"]{inner}}}'.encode()
        for path in ("/Users/.search", "/.search"):
            fuzzer.send("POST", path, content=raw, headers={"Content-Type": "application/scim+json"})

    run()


SEGMENTS = st.one_of(
    st.sampled_from(
        [
            "Users",
            "Groups",
            ".search",
            "Bulk",
            "Me",
            "ServiceProviderConfig",
            "ResourceTypes",
            "Schemas",
            "User",
            "Group",
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "openapi.json",
            "..",
            "%",
            "%ZZ",
            "%00",
            "%ED%A0%80",
            "",
        ]
    ),
    ODD_TEXT.map(lambda text: quote(text, safe="")),
)


def test_generated_paths_and_methods_get_a_scim_answer(fuzzer: Fuzzer) -> None:
    @seed(SEED + 4)
    @fuzz_settings(250)
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]), st.lists(SEGMENTS, max_size=3)
            ),
            min_size=1,
            max_size=6,
        )
    )
    def run(requests: list[tuple[str, list[str]]]) -> None:
        for method, segments in requests:
            path = "/" + "/".join(segments)
            fuzzer.send(method, path, content=b"{}" if method in ("POST", "PUT", "PATCH") else None)

    run()


def test_discovery_answers_every_listed_resource_type_and_schema(fuzzer: Fuzzer) -> None:
    for listing, key in (("/ResourceTypes", "id"), ("/Schemas", "id")):
        for resource in fuzzer.send("GET", listing).json()["Resources"]:
            for spelling in (resource[key], resource[key].lower(), resource[key].upper()):
                fuzzer.send("GET", f"{listing}/{quote(spelling, safe=':')}")

"""Generated writes on both stores: a 2xx write reads back as its answer said, a refused one
leaves nothing behind (no resource created, none changed), whatever the body, PATCH operations,
Bulk references or validators (RFC 7644 §3.3, §3.5, §3.7, §3.14; RFC 7232 §3)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given, seed
from hypothesis import strategies as st

from tests.fuzz.harness import SEED, Fuzzer, FuzzFailure, fuzz_settings
from tests.fuzz.strategies import (
    CORE_USER,
    ENTERPRISE,
    ETAG_BYTES,
    HEADER_SAFE_MEMBER_VALUES,
    JSON,
    MEMBER_VALUES,
    ODD_TEXT,
    PATCH_OP,
    PATCH_OPERATIONS,
    bulk_bodies,
)

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def new_user(fuzzer: Fuzzer) -> dict[str, Any]:
    body = {"schemas": [CORE_USER], "userName": f"fuzz-{uuid.uuid4().hex[:12]}@example.com", "title": "t"}
    response = fuzzer.send("POST", "/Users", json=body, generated=False)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def new_group(fuzzer: Fuzzer, members: list[str]) -> dict[str, Any]:
    body = {
        "schemas": [GROUP],
        "displayName": f"fuzz-{uuid.uuid4().hex[:12]}",
        "members": [{"value": m} for m in members],
    }
    response = fuzzer.send("POST", "/Groups", json=body, generated=False)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def stored(fuzzer: Fuzzer, location: str) -> dict[str, Any] | None:
    response = fuzzer.read(location)
    return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]


def path_of(document: dict[str, Any]) -> str:
    kind = "/Users" if CORE_USER in document.get("schemas", []) else "/Groups"
    return f"{kind}/{document['id']}"


def expect_written(fuzzer: Fuzzer, response: Any, before: dict[str, Any] | None, what: str) -> dict[str, Any] | None:
    """After a write: 2xx with a body reads back equal; an error leaves the resource as it was."""
    if response.status_code in (200, 201):
        answer = response.json()
        now = stored(fuzzer, path_of(answer))
        if now != answer:
            raise FuzzFailure(f"{what}: answered {response.text[:600]}\n  but reads back {now}")
        return now
    if response.status_code == 204:
        return stored(fuzzer, path_of(before)) if before else None
    if before is not None:
        now = stored(fuzzer, path_of(before))
        if now != before:
            raise FuzzFailure(
                f"{what}: refused with {response.status_code} {response.text[:300]}\n  yet changed to {now}"
            )
    return before


def test_generated_patches_read_back_as_answered_or_change_nothing(fuzzer: Fuzzer) -> None:
    @seed(SEED + 10)
    @fuzz_settings(120)
    @given(st.lists(PATCH_OPERATIONS, min_size=1, max_size=5))
    def run(patches: list[list[dict[str, Any]]]) -> None:
        user: dict[str, Any] | None = new_user(fuzzer)
        for operations in patches:
            assert user is not None
            body = {"schemas": [PATCH_OP], "Operations": operations}
            response = fuzzer.send("PATCH", path_of(user), json=body)
            user = expect_written(fuzzer, response, user, f"PATCH {operations!r}")
            if user is None:
                return

    run()


USER_BODIES = st.fixed_dictionaries(
    {
        "schemas": st.one_of(
            st.just([CORE_USER]), st.just([CORE_USER, ENTERPRISE]), st.lists(st.sampled_from([CORE_USER, "x"]))
        ),
        "userName": st.one_of(ODD_TEXT, st.builds(lambda: f"gen-{uuid.uuid4().hex[:12]}@example.com"), JSON),
    },
    optional={
        "name": st.one_of(st.fixed_dictionaries({}, optional={"givenName": ODD_TEXT, "familyName": ODD_TEXT}), JSON),
        "title": st.one_of(ODD_TEXT, JSON),
        "active": st.one_of(st.booleans(), st.sampled_from(["true", "False", "yes"]), JSON),
        "emails": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {"value": ODD_TEXT}, optional={"primary": st.booleans(), "type": st.sampled_from(["work", "x"])}
                ),
                max_size=3,
            ),
            JSON,
        ),
        "externalId": st.one_of(ODD_TEXT, JSON),
        ENTERPRISE: st.one_of(
            st.fixed_dictionaries(
                {}, optional={"department": ODD_TEXT, "manager": st.fixed_dictionaries({"value": ODD_TEXT})}
            ),
            JSON,
        ),
        "id": ODD_TEXT,
        "meta": JSON,
        "groups": JSON,
        "password": ODD_TEXT,
        "urn:example:custom:1.0:User": JSON,
    },
)


def test_generated_users_read_back_as_created_or_replaced_or_leave_nothing(fuzzer: Fuzzer) -> None:
    @seed(SEED + 11)
    @fuzz_settings(150)
    @given(st.lists(USER_BODIES, min_size=1, max_size=3), USER_BODIES)
    def run(bodies: list[dict[str, Any]], replacement: dict[str, Any]) -> None:
        for body in bodies:
            before = fuzzer.totals()
            response = fuzzer.send("POST", "/Users", json=body)
            if response.status_code == 201:
                created = expect_written(fuzzer, response, None, f"POST {body!r}")
                assert created is not None
                replaced = fuzzer.send("PUT", path_of(created), json=replacement)
                expect_written(fuzzer, replaced, created, f"PUT {replacement!r}")
            elif fuzzer.totals() != before:
                raise FuzzFailure(f"POST {body!r} was refused ({response.status_code}) yet a resource appeared")

    run()


def bulk_requests_answer_per_operation_or_leave_nothing(fuzzer: Fuzzer, any_version: bool, offset: int) -> None:
    users = [new_user(fuzzer)["id"] for _ in range(3)]

    @seed(SEED + offset)
    @fuzz_settings(150)
    @given(bulk_bodies(users, any_version))
    def run(body: dict[str, Any]) -> None:
        before = fuzzer.totals()
        response = fuzzer.send("POST", "/Bulk", json=body)
        if response.status_code != 200:
            if fuzzer.totals() != before:
                raise FuzzFailure(f"Bulk refused with {response.status_code} yet resources changed: {body!r}")
            return
        answers = response.json().get("Operations")
        if not isinstance(answers, list):
            raise FuzzFailure(f"Bulk 200 without Operations: {response.text[:300]}")
        for answer in answers:
            status = str(answer.get("status", ""))
            if not (status.isdigit() and len(status) == 3) or status.startswith("5"):
                raise FuzzFailure(f"Bulk operation answered status {status!r}: {answer!r}\n  body: {body!r}")
            if status in ("200", "201") and answer.get("location"):
                path = "/" + answer["location"].split("/scim/v2/", 1)[-1]
                fuzzer.read(path)  # held to the invariants; a later operation may have deleted it

    run()


def test_generated_bulk_requests_answer_per_operation_or_leave_nothing(fuzzer: Fuzzer) -> None:
    bulk_requests_answer_per_operation_or_leave_nothing(fuzzer, any_version=False, offset=12)


def test_generated_bulk_requests_with_versions_of_any_json_type_answer_per_operation(fuzzer: Fuzzer) -> None:
    bulk_requests_answer_per_operation_or_leave_nothing(fuzzer, any_version=True, offset=17)


def test_generated_validators_guard_writes_as_rfc_7232_says(fuzzer: Fuzzer) -> None:
    @seed(SEED + 13)
    @fuzz_settings(120)
    @given(st.lists(st.tuples(st.sampled_from(["GET", "PUT", "PATCH", "DELETE"]), ETAG_BYTES), min_size=1, max_size=5))
    def run(requests: list[tuple[str, bytes]]) -> None:
        user: dict[str, Any] | None = new_user(fuzzer)
        for method, tag in requests:
            if user is None:
                return
            path = path_of(user)
            version = user["meta"]["version"]  # W/"n"
            tags = [t.strip() for t in tag.decode("latin-1").split(",")]
            # Weak comparison (RFC 7232 §2.3.2); the bridge also takes a bare or unquoted version.
            wanted = version.removeprefix("W/").strip('"')
            matches = "*" in tags or any(t.strip().removeprefix("W/").strip().strip('"') == wanted for t in tags)
            if method == "GET":
                response = fuzzer.send("GET", path, headers={"If-None-Match": tag})
                if response.status_code == 304 and not matches:
                    raise FuzzFailure(f"If-None-Match {tag!r} answered 304 though {version} does not match")
                if response.status_code == 200 and matches:
                    raise FuzzFailure(f"If-None-Match {tag!r} matches {version} but the resource came back")
                continue
            if method == "PUT":
                body = {"schemas": [CORE_USER], "userName": user["userName"], "title": uuid.uuid4().hex}
                response = fuzzer.send("PUT", path, json=body, headers={"If-Match": tag})
            elif method == "PATCH":
                operation = {"op": "replace", "path": "title", "value": uuid.uuid4().hex}
                response = fuzzer.send(
                    "PATCH", path, json={"schemas": [PATCH_OP], "Operations": [operation]}, headers={"If-Match": tag}
                )
            else:
                response = fuzzer.send("DELETE", path, headers={"If-Match": tag})
            if response.status_code < 300 and not matches:
                raise FuzzFailure(f"{method} with If-Match {tag!r} succeeded though {version} does not match")
            if response.status_code == 412 and matches:
                raise FuzzFailure(f"{method} with If-Match {tag!r} refused though {version} matches")
            user = expect_written(fuzzer, response, user, f"{method} If-Match {tag!r}")
            if method == "DELETE" and response.status_code == 204:
                user = None

    run()


def member_values_get_a_scim_answer(fuzzer: Fuzzer, values: st.SearchStrategy[str], offset: int) -> None:
    user = new_user(fuzzer)["id"]

    @seed(SEED + offset)
    @fuzz_settings(100)
    @given(st.lists(values, max_size=4), st.lists(values, min_size=1, max_size=3))
    def run(initial: list[str], added: list[str]) -> None:
        before = fuzzer.totals()
        body = {"schemas": [GROUP], "displayName": f"m-{uuid.uuid4().hex}", "members": [{"value": v} for v in initial]}
        response = fuzzer.send("POST", "/Groups", json=body)
        if response.status_code != 201:
            if fuzzer.totals() != before:
                raise FuzzFailure(f"POST /Groups refused yet a group appeared: {body!r}")
            return
        group = expect_written(fuzzer, response, None, f"POST /Groups {body!r}")
        assert group is not None
        operation = {"op": "add", "path": "members", "value": [{"value": v} for v in [*added, user]]}
        patched = fuzzer.send("PATCH", path_of(group), json={"schemas": [PATCH_OP], "Operations": [operation]})
        expect_written(fuzzer, patched, group, f"PATCH members {added!r}")

    run()


def test_generated_member_values_a_header_can_carry_get_a_scim_answer(fuzzer: Fuzzer) -> None:
    member_values_get_a_scim_answer(fuzzer, HEADER_SAFE_MEMBER_VALUES, 14)


def test_generated_member_values_with_any_text_get_a_scim_answer(fuzzer: Fuzzer) -> None:
    member_values_get_a_scim_answer(fuzzer, MEMBER_VALUES, 16)


RAW_BODIES = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(
        [
            b"",
            b"\xef\xbb\xbf{}",
            b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "\\ud800"}',
            b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": 1e400}',
            b'{"a": 1, "a": 2}',
            b"null",
            b'"text"',
            b"\xff\xfe{\x00}\x00",
        ]
    ),
    st.integers(min_value=1000, max_value=9000).map(lambda depth: b"[" * depth + b"]" * depth),
    JSON.map(lambda value: json.dumps(value).encode()),
)


def test_generated_bodies_of_any_bytes_are_refused_cleanly(fuzzer: Fuzzer) -> None:
    target = new_user(fuzzer)

    @seed(SEED + 15)
    @fuzz_settings(120)
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["/Users", "/Groups", "/Bulk", "/.search", "/Users/.search", "USER", "GROUP"]),
                RAW_BODIES,
                st.sampled_from(
                    ["application/scim+json", "application/json", "text/plain", "", "application/json; charset=latin-1"]
                ),
            ),
            min_size=1,
            max_size=5,
        )
    )
    def run(requests: list[tuple[str, bytes, str]]) -> None:
        for path, body, content_type in requests:
            headers = {"Content-Type": content_type} if content_type else {}
            if path in ("USER", "GROUP"):
                response = fuzzer.send(
                    "PUT" if path == "USER" else "PATCH", path_of(target), content=body, headers=headers
                )
                expect_written(fuzzer, response, target if path == "USER" else None, f"raw {body[:80]!r}")
                continue
            fuzzer.send("POST", path, content=body, headers=headers)

    run()

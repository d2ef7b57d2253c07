"""Parallel writes to one resource all apply (issue 10 §3; RFC 7644 §3.14: 412 only for the
client's own If-Match), on both stores and across two bridges sharing one store."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.live import LiveBridge
from tests.scim.conftest import ENTERPRISE, GROUP, USER, new_group, new_user, patch_ops, unique

PARALLEL = 50
_SINGLE = ["title", "nickName", "displayName", "externalId", "userType", "preferredLanguage", "locale", "timezone"]
_ENTERPRISE = ["department", "division", "costCenter", "organization", "employeeNumber"]


def _in_parallel(count: int, call: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(call, range(count)))


def _operation(index: int) -> dict[str, Any]:
    """A different change for each of the 50 requests: an attribute, an email or a phone."""
    if index < len(_SINGLE):
        return {"op": "replace", "path": _SINGLE[index], "value": f"value-{index}"}
    if index < len(_SINGLE) + len(_ENTERPRISE):
        return {"op": "add", "path": f"{ENTERPRISE}:{_ENTERPRISE[index - len(_SINGLE)]}", "value": f"value-{index}"}
    if index % 2:
        return {"op": "add", "path": "emails", "value": [{"value": f"mail-{index}@example.com", "type": "other"}]}
    return {"op": "add", "path": "phoneNumbers", "value": [{"value": f"+1 555 {index:04d}", "type": "other"}]}


def _assert_every_change_applied(user: dict[str, Any]) -> None:
    for index, name in enumerate(_SINGLE):
        assert user.get(name) == f"value-{index}", name
    for offset, name in enumerate(_ENTERPRISE):
        assert user[ENTERPRISE].get(name) == f"value-{len(_SINGLE) + offset}", name
    emails = {e["value"] for e in user.get("emails", [])}
    phones = {p["value"] for p in user.get("phoneNumbers", [])}
    for index in range(len(_SINGLE) + len(_ENTERPRISE), PARALLEL):
        if index % 2:
            assert f"mail-{index}@example.com" in emails
        else:
            assert f"+1 555 {index:04d}" in phones


def _patch_in_parallel(clients: list[httpx.Client], user_id: str) -> list[httpx.Response]:
    return _in_parallel(
        PARALLEL,
        lambda i: clients[i % len(clients)].patch(f"/Users/{user_id}", json=patch_ops(_operation(i))),
    )


def test_fifty_parallel_patches_to_one_user_all_apply(scim: httpx.Client) -> None:
    user = new_user(scim)
    responses = _patch_in_parallel([scim], user["id"])
    assert [r.status_code for r in responses] == [200] * PARALLEL, {r.status_code: r.text for r in responses}
    stored = scim.get(f"/Users/{user['id']}")
    _assert_every_change_applied(stored.json())
    assert stored.headers["etag"] == f'W/"{1 + PARALLEL}"'  # one version per change, none lost


def test_fifty_parallel_member_adds_to_one_group_all_apply(scim: httpx.Client) -> None:
    users = [new_user(scim)["id"] for _ in range(PARALLEL)]
    group = new_group(scim)
    responses = _in_parallel(
        PARALLEL,
        lambda i: scim.patch(
            f"/Groups/{group['id']}", json=patch_ops({"op": "add", "path": "members", "value": [{"value": users[i]}]})
        ),
    )
    assert [r.status_code for r in responses] == [200] * PARALLEL, {r.status_code: r.text for r in responses}
    members = {m["value"] for m in scim.get(f"/Groups/{group['id']}").json()["members"]}
    assert members == set(users)


def test_parallel_puts_without_if_match_all_succeed_and_one_of_them_is_kept(scim: httpx.Client) -> None:
    user = new_user(scim)
    titles = [f"title-{i}" for i in range(20)]
    responses = _in_parallel(
        len(titles),
        lambda i: scim.put(
            f"/Users/{user['id']}", json={"schemas": [USER], "userName": user["userName"], "title": titles[i]}
        ),
    )
    assert [r.status_code for r in responses] == [200] * len(titles)
    stored = scim.get(f"/Users/{user['id']}")
    assert stored.json()["title"] in titles and stored.headers["etag"] == f'W/"{1 + len(titles)}"'


def test_a_stale_if_match_is_still_412_and_changes_nothing(scim: httpx.Client) -> None:
    user = new_user(scim)
    stale = scim.get(f"/Users/{user['id']}").headers["etag"]
    first = scim.patch(f"/Users/{user['id']}", json=patch_ops({"op": "replace", "path": "title", "value": "a"}))
    assert first.is_success
    for response in (
        scim.patch(
            f"/Users/{user['id']}",
            json=patch_ops({"op": "replace", "path": "title", "value": "b"}),
            headers={"If-Match": stale},
        ),
        scim.put(
            f"/Users/{user['id']}",
            json={"schemas": [USER], "userName": user["userName"], "title": "c"},
            headers={"If-Match": stale},
        ),
        scim.delete(f"/Users/{user['id']}", headers={"If-Match": stale}),
    ):
        assert response.status_code == 412, response.text
    assert scim.get(f"/Users/{user['id']}").json()["title"] == "a"


def test_parallel_deletes_and_patches_of_one_group_never_answer_412(scim: httpx.Client) -> None:
    user = new_user(scim)
    group = new_group(scim, [user["id"]])

    def call(index: int) -> httpx.Response:
        if index == 10:
            return scim.delete(f"/Groups/{group['id']}")
        return scim.patch(
            f"/Groups/{group['id']}", json=patch_ops({"op": "replace", "path": "externalId", "value": f"x{index}"})
        )

    statuses = {r.status_code for r in _in_parallel(20, call)}
    assert statuses <= {200, 204, 404} and 204 in statuses
    assert scim.get(f"/Groups/{group['id']}").status_code == 404


def test_two_bridges_on_one_store_apply_every_parallel_patch(bridge: LiveBridge) -> None:
    # Two replicas do not share the in-process lock: their conflicts are re-read and re-applied.
    with (
        LiveBridge(bridge.settings.store) as other,
        bridge.client() as first,
        other.client() as second,
    ):
        user = new_user(first)
        responses = _patch_in_parallel([first, second], user["id"])
        assert [r.status_code for r in responses] == [200] * PARALLEL, {r.status_code: r.text for r in responses}
        _assert_every_change_applied(second.get(f"/Users/{user['id']}").json())
        group = second.post("/Groups", json={"schemas": [GROUP], "displayName": unique("group")}).json()
        users = [new_user(first)["id"] for _ in range(20)]
        clients = [first, second]
        added = _in_parallel(
            20,
            lambda i: clients[i % 2].patch(
                f"/Groups/{group['id']}",
                json=patch_ops({"op": "add", "path": "members", "value": [{"value": users[i]}]}),
            ),
        )
        assert [r.status_code for r in added] == [200] * 20
        assert {m["value"] for m in first.get(f"/Groups/{group['id']}").json()["members"]} == set(users)

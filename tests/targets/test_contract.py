"""The Target contract: what every translator promises the sync engine, checked against each
target's emulator over real HTTP (one suite, every registered target, like tests/store/test_contract.py
for the stores).

A new target passes this suite by adding a Harness (tests/targets/harness.py); nothing here names
a target.
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from scim_bridge.targets.base import (
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    PermanentError,
    RetryableError,
    TargetError,
    Throttled,
    Unavailable,
)
from scim_bridge.targets.capabilities import Capability
from tests.targets.harness import SERVICE_EMAIL, Harness

# -- accounts: create-or-adopt ------------------------------------------------------------------


async def test_a_second_create_with_the_same_email_adopts_the_account_instead_of_duplicating_it(
    harness: Harness,
) -> None:
    first = await harness.target.ensure_user(harness.user(1), None)
    again = await harness.target.ensure_user(harness.user("CONTRACT1@example.com"), None)
    assert first.created and not again.created
    assert again.id == first.id
    assert harness.accounts_with("contract1@example.com") == [first.id]


async def test_an_account_made_by_hand_is_adopted_and_its_fields_brought_in_line(harness: Harness) -> None:
    made = await harness.target.ensure_user(harness.user(2, enabled=False), None)  # "by hand", disabled
    adopted = await harness.target.ensure_user(harness.user(2), None)
    assert adopted.id == made.id and not adopted.created
    assert harness.account(made.id) == {"email": "contract2@example.com", "enabled": True}


async def test_a_create_whose_answer_was_lost_is_read_back_not_made_twice(harness: Harness) -> None:
    harness.wire.lose.append(("POST", re.compile(r"/users/?$")))
    ensured = await harness.target.ensure_user(harness.user(3), None)
    assert len(harness.wire.sent("POST", r"/users/?$")) == 1, "the create was sent again instead of read back"
    assert harness.accounts_with("contract3@example.com") == [ensured.id]


async def test_an_account_deleted_behind_the_bridge_s_back_is_made_again(harness: Harness) -> None:
    first = await harness.target.ensure_user(harness.user(4), None)
    await harness.target.delete_user(first.id)
    again = await harness.target.ensure_user(harness.user(4), first.id)  # the ID map still names it
    assert again.id != first.id and harness.accounts_with("contract4@example.com") == [again.id]


# -- accounts: disable, enable, delete ----------------------------------------------------------


async def test_an_account_is_disabled_and_enabled_again(harness: Harness) -> None:
    ensured = await harness.target.ensure_user(harness.user(5), None)
    await harness.target.ensure_user(harness.user(5, enabled=False), ensured.id)
    assert harness.account(ensured.id) == {"email": "contract5@example.com", "enabled": False}
    await harness.target.ensure_user(harness.user(5), ensured.id)
    assert harness.account(ensured.id) == {"email": "contract5@example.com", "enabled": True}
    await harness.target.disable_user(ensured.id, "contract5@example.com")
    assert harness.account(ensured.id) == {"email": "contract5@example.com", "enabled": False}


async def test_deleting_an_account_twice_is_fine(harness: Harness) -> None:
    ensured = await harness.target.ensure_user(harness.user(6), None)
    await harness.target.delete_user(ensured.id)
    await harness.target.delete_user(ensured.id)
    assert harness.account(ensured.id) is None


async def test_deleting_an_account_the_target_never_had_is_fine(harness: Harness) -> None:
    await harness.target.delete_user("0123456789abcdef0123456789abcd")
    await harness.target.delete_user("00000000-0000-4000-8000-000000000000")


async def test_disabling_an_account_that_is_gone_is_fine(harness: Harness) -> None:
    ensured = await harness.target.ensure_user(harness.user(7), None)
    await harness.target.delete_user(ensured.id)
    await harness.target.disable_user(ensured.id, "contract7@example.com")
    assert harness.account(ensured.id) is None


async def test_a_delete_whose_answer_was_lost_is_retried_and_the_account_is_gone(harness: Harness) -> None:
    ensured = await harness.target.ensure_user(harness.user(8), None)
    harness.wire.lose.append(("DELETE", re.compile(r"/users/[^/]+/?$")))
    await harness.target.delete_user(ensured.id)
    assert harness.account(ensured.id) is None


async def test_every_account_is_listed_past_the_first_page(harness: Harness) -> None:
    made = {harness.make_by_hand(f"hand{n}@example.com") for n in range(230)}
    listed = {a.id for a in await harness.target.list_accounts()}
    assert made <= listed and len(listed) == len(made) + 1  # and the service account
    assert {a.id for a in await harness.target.list_users()} == listed


async def test_the_service_account_is_never_disabled_deleted_nor_given_another_role(harness: Harness) -> None:
    own = harness.service_account_id()
    role_before = harness.role_of(own)
    assert harness.target.service_account_email == SERVICE_EMAIL
    service = harness.user(SERVICE_EMAIL, enabled=False)
    adopted = await harness.target.ensure_user(service, None)  # adopted while the directory says inactive
    await harness.target.ensure_user(service, own)
    await harness.target.disable_user(own, SERVICE_EMAIL)
    await harness.target.delete_user(own)
    assert adopted.id == own
    assert harness.account(own) == {"email": SERVICE_EMAIL, "enabled": True}
    assert harness.role_of(own) == role_before, "the bridge's own account was given another role"
    assert await harness.target.list_accounts()  # and the bridge is not locked out


# -- groups and membership ------------------------------------------------------------------------


async def test_a_group_is_created_once_renamed_in_place_and_adopted_by_its_new_name(harness: Harness) -> None:
    group = await harness.target.ensure_group("Contract Team", None, "scim-group-1")
    assert await harness.target.ensure_group("Contract Team", None, "scim-group-1") == group
    assert await harness.target.ensure_group("Contract Crew", group, "scim-group-1") == group
    assert harness.group_name(group) == "Contract Crew"
    assert await harness.target.ensure_group("Contract Crew", None, "scim-group-1") == group  # ID map lost
    assert harness.groups_named("Contract Crew") == [group] and harness.groups_named("Contract Team") == []


async def test_a_group_whose_create_answer_was_lost_is_read_back_not_made_twice(harness: Harness) -> None:
    harness.wire.lose.append(("POST", re.compile(r"/(user_)?groups/?$")))
    group = await harness.target.ensure_group("Contract Lost", None, "scim-group-2")
    assert harness.groups_named("Contract Lost") == [group]


async def test_deleting_a_group_twice_or_one_never_made_is_fine(harness: Harness) -> None:
    group = await harness.target.ensure_group("Contract Gone", None, "scim-group-3")
    await harness.target.delete_group(group)
    await harness.target.delete_group(group)
    assert harness.group_name(group) is None
    made_again = await harness.target.ensure_group("Contract Gone", group, "scim-group-3")  # the ID map is stale
    assert made_again != group and harness.groups_named("Contract Gone") == [made_again]


async def test_set_members_leaves_exactly_the_wanted_members(harness: Harness) -> None:
    group = await harness.target.ensure_group("Contract Set", None, "scim-group-4")
    a, b, c = [(await harness.target.ensure_user(harness.user(n), None)).id for n in (10, 11, 12)]
    await harness.target.set_members(group, {a, b})
    assert harness.members(group) == {a, b}
    await harness.target.set_members(group, {b, c})
    assert harness.members(group) == {b, c}
    assert set(await harness.target.group_members(group)) == {b, c}
    await harness.target.set_members(group, set())
    assert harness.members(group) == set()


async def test_a_membership_add_whose_answer_was_lost_is_retried_once_applied(harness: Harness) -> None:
    group = await harness.target.ensure_group("Contract Retried", None, "scim-group-10")
    user = (await harness.target.ensure_user(harness.user(19), None)).id
    harness.wire.lose.append(("POST", re.compile(r"groups/[^/]+/users/[^/]+/?$")))
    await harness.target.add_member(group, user)
    assert harness.members(group) == {user}


async def test_adding_a_member_twice_keeps_one_membership(harness: Harness) -> None:
    group = await harness.target.ensure_group("Contract Twice", None, "scim-group-5")
    user = (await harness.target.ensure_user(harness.user(13), None)).id
    await harness.target.add_member(group, user)
    await harness.target.add_member(group, user)
    assert harness.members(group) == {user}


async def test_removing_a_non_member_or_from_a_deleted_group_is_fine(harness: Harness) -> None:
    group = await harness.target.ensure_group("Contract Remove", None, "scim-group-6")
    user = (await harness.target.ensure_user(harness.user(14), None)).id
    await harness.target.remove_member(group, user)
    await harness.target.delete_group(group)
    await harness.target.remove_member(group, user)
    assert harness.account(user) is not None


async def test_the_listing_carries_groups_as_the_translator_declares(harness: Harness) -> None:
    group = await harness.target.ensure_group("Contract Listed", None, "scim-group-7")
    user = (await harness.target.ensure_user(harness.user(15), None)).id
    await harness.target.add_member(group, user)
    listed = {a.id: a for a in await harness.target.list_users()}
    assert listed[user].email == "contract15@example.com" and listed[user].enabled
    assert listed[user].groups == [group]
    if harness.target.listing_carries_groups:
        assert {a.id: a.groups for a in await harness.target.list_accounts()}[user] == [group]
    assert await harness.target.group_members(group) == [user]


async def test_an_account_s_last_login_is_listed_when_the_target_offers_it(harness: Harness) -> None:
    user = (await harness.target.ensure_user(harness.user(16), None)).id
    harness.set_last_login(user, "2026-11-30T08:15:00Z")
    listed = {a.id: a for a in await harness.target.list_accounts()}
    if Capability.LAST_LOGIN in harness.target.capabilities:
        assert listed[user].last_login == "2026-11-30T08:15:00Z"
    else:
        assert listed[user].last_login is None


# -- failures become typed errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, Invalid),
        (401, Forbidden),
        (403, Forbidden),
        (404, Gone),
        (409, Conflict),
        (500, Unavailable),
        (503, Unavailable),
    ],
)
async def test_an_http_failure_becomes_its_typed_error(harness: Harness, status: int, error: type[TargetError]) -> None:
    harness.set_faults(error_rate=1.0, error_status=status)
    with pytest.raises(error) as raised:
        await harness.target.list_accounts()
    assert raised.value.status == status
    assert isinstance(raised.value, RetryableError if status >= 500 else PermanentError)


async def test_a_dropped_connection_is_a_retryable_unavailable(harness: Harness) -> None:
    harness.set_faults(drop_rate=1.0)
    with pytest.raises(Unavailable):
        await harness.target.list_accounts()
    assert len(harness.wire.sent("GET", r"/users/?$")) == 3, "a read is retried in place, a few times"


async def test_a_membership_change_on_a_deleted_account_is_permanent_not_retried(harness: Harness) -> None:
    group = await harness.target.ensure_group("Contract Deleted", None, "scim-group-8")
    user = (await harness.target.ensure_user(harness.user(17), None)).id
    await harness.target.delete_user(user)
    with pytest.raises(Gone):
        await harness.target.add_member(group, user)


async def test_a_throttled_call_waits_as_long_as_the_target_says_then_succeeds(harness: Harness) -> None:
    harness.set_faults(storm_seconds=1)
    accounts = await harness.target.list_accounts()
    assert any(a.email == SERVICE_EMAIL for a in accounts)
    exchanges = [e for e in harness.wire.exchanges if e.method == "GET"]
    throttled = [e for e in exchanges if e.status in (420, 429)]
    assert throttled, "the storm did not throttle anything"
    for answer, following in zip(exchanges, exchanges[1:], strict=False):
        if answer.status in (420, 429):
            assert answer.wait is not None
            waited = following.arrived - answer.arrived
            assert waited >= answer.wait - 0.05, f"retried after {waited:.2f}s, the target said {answer.wait:.2f}s"
    assert exchanges[-1].status == 200


async def test_a_long_throttle_is_raised_with_its_wait_and_the_next_call_still_honours_it(harness: Harness) -> None:
    harness.set_faults(storm_seconds=6)
    started = time.monotonic()
    with pytest.raises(Throttled) as raised:
        await harness.target.list_accounts()
    assert time.monotonic() - started < 1.0, "a long wait goes back to the engine, not slept here"
    wait = raised.value.retry_after
    assert wait is not None and 3.0 < wait <= 6.0
    assert len(harness.wire.exchanges) == 1
    harness.set_faults(storm_until=0)  # the target would answer now; the translator still waits as told
    await harness.target.list_accounts()
    assert time.monotonic() - started >= wait - 0.1


async def test_every_failure_the_engine_sees_is_a_target_error(harness: Harness) -> None:
    """The engine decides by type: nothing else escapes a translator (no httpx error, no KeyError)."""
    harness.set_faults(error_rate=1.0, error_status=502)
    operations = [
        harness.target.ensure_user(harness.user(18), None),
        harness.target.ensure_group("Contract Errors", None, "scim-group-9"),
        harness.target.delete_user("0123456789abcdef0123456789abcd"),
        harness.target.list_users(),
    ]
    for outcome in await asyncio.gather(*operations, return_exceptions=True):
        assert isinstance(outcome, TargetError), repr(outcome)

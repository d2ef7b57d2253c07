"""Translators against the emulators over real HTTP: a burst of joiners costs one call per
account, not two, and adoption still never makes a duplicate."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest

from scim_bridge.emulators import cloudinary, iconik
from scim_bridge.targets.adoption import AdoptionIndex
from scim_bridge.targets.base import TargetUser
from scim_bridge.targets.cloudinary import CloudinaryConfig, CloudinaryTarget
from scim_bridge.targets.iconik import IconikConfig, IconikTarget
from tests.emulators.live import LiveApp


def joiner(n: int, enabled: bool = True, role: str = "media_library_user") -> TargetUser:
    return TargetUser(
        email=f"joiner{n}@example.com",
        first_name=f"J{n}",
        last_name="Oiner",
        display_name=f"J{n} Oiner",
        role=role,
        enabled=enabled,
    )


@pytest.fixture
def cld() -> Iterator[tuple[cloudinary.CloudinaryState, str]]:
    state = cloudinary.CloudinaryState()
    with LiveApp(cloudinary.build(state)) as live:
        yield state, live.url


@pytest.fixture
def ico() -> Iterator[tuple[iconik.IconikState, str]]:
    state = iconik.IconikState()
    with LiveApp(iconik.build(state)) as live:
        yield state, live.url


def calls(state: cloudinary.CloudinaryState | iconik.IconikState, method: str, suffix: str) -> int:
    return sum(1 for c in state.calls if c["method"] == method and c["path"].endswith(suffix))


def test_cloudinary_burst_of_joiners_uses_one_snapshot_and_adopts_existing_accounts(cld: tuple) -> None:
    state, url = cld
    existing = {
        "id": "handmade1",
        "name": "Made by hand",
        "email": "JOINER7@example.com",
        "role": "admin",
        "enabled": True,
        "pending": False,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "all_sub_accounts": True,
        "sub_account_ids": [],
    }
    state.users[existing["id"]] = existing

    async def run() -> list[str]:
        target = CloudinaryTarget(CloudinaryConfig(url, state.account_id, state.key, state.secret, rate=1000))
        target.adoption.after_lookups = 5
        try:
            ids = [(await target.ensure_user(joiner(n), None)).id for n in range(60)]
            # an account made by hand after the snapshot: the create is refused, then it is adopted
            late = {**existing, "id": "handmade2", "email": "joiner60@example.com"}
            state.users[late["id"]] = late
            ensured = await target.ensure_user(joiner(60), None)
            assert ensured.id == "handmade2" and not ensured.created
            assert target.adoption.loads == 1
            return ids
        finally:
            await target.close()

    ids = asyncio.run(run())
    assert ids[7] == "handmade1"  # adopted, case-insensitively, and its fields brought in line
    assert state.users["handmade1"]["role"] == "media_library_user"
    emails = [u["email"].lower() for u in state.users.values()]
    assert len(emails) == len(set(emails)) == 61  # 59 created, 2 adopted; no duplicate
    lookups = calls(state, "GET", "/users")  # per-email lookups and snapshot pages alike
    creates = calls(state, "POST", "/users")
    assert creates == 60  # 59 new joiners + one refused create for the late hand-made account
    assert lookups <= 7, f"{lookups} reads for 61 joiners: the snapshot should have replaced the lookups"


def test_iconik_joiner_is_created_in_its_groups_in_one_call(ico: tuple) -> None:
    state, url = ico

    async def run() -> None:
        target = IconikTarget(IconikConfig(url, state.app_id, state.auth_token, rate=1000))
        target.adoption.after_lookups = 1
        try:
            group = await target.ensure_group("Marketing", None, "scim-group-1")
            ensured = await target.ensure_user(joiner(1, role="STANDARD"), None, (group,))
            assert ensured.created and ensured.joined == {group}
            assert state.users[ensured.id]["groups"] == [group]
            # adopting an account never touches its groups: they are not the bridge's to set
            again = await target.ensure_user(joiner(1, role="STANDARD"), None, (group,))
            assert again.id == ensured.id and not again.created and again.joined == frozenset()
        finally:
            await target.close()

    asyncio.run(run())
    assert calls(state, "POST", "/users/") == 1
    assert not any(c["method"] == "POST" and re.search(r"/groups/[^/]+/users/", c["path"]) for c in state.calls)


class Clock:
    """The snapshot's clock, moved by hand: its age without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_joiners_that_outlive_the_snapshot_make_no_lookups_it_is_renewed_ahead(cld: tuple) -> None:
    """A long initial load keeps its snapshot: renewed in the background before it expires, so the
    joiners after its ttl neither look each account up again nor all wait for a fresh listing."""
    state, url = cld
    clock = Clock()

    async def run() -> None:
        target = CloudinaryTarget(CloudinaryConfig(url, state.account_id, state.key, state.secret, rate=1000))
        target.adoption.after_lookups, target.adoption.ttl, target.adoption.clock = 5, 100.0, clock
        try:
            for n in range(20):  # 4 lookups, then the first snapshot
                await target.ensure_user(joiner(n), None)
            assert target.adoption.loads == 1
            clock.now += 80  # most of its life gone, joiners still coming
            await target.ensure_user(joiner(20), None)
            clock.now += 30  # past the first snapshot's ttl
            for n in range(21, 40):
                await target.ensure_user(joiner(n), None)
            assert target.adoption.loads == 2
        finally:
            await target.close()

    asyncio.run(run())
    lookups = sum(1 for c in state.calls if c["method"] == "GET" and c["path"].endswith("/users"))
    pages = 1 + 1  # the first snapshot (empty account list) and its renewal (21 accounts: one page)
    assert lookups == 4 + pages, f"{lookups} reads: joiners after the ttl looked their accounts up again"
    emails = [u["email"] for u in state.users.values()]
    assert len(emails) == len(set(emails)) == 40


def test_accounts_created_while_the_snapshot_is_renewed_are_in_the_renewed_one() -> None:
    """A page listed before a create lacks it: the renewal replays what the bridge created (and
    forgot) meanwhile, so a second create of that email is not tried from the new snapshot."""
    listing, release = {"early@example.com": "1"}, asyncio.Event()

    async def load() -> dict[str, str]:
        await release.wait()  # the listing is under way: its pages were read before the creates
        return dict(listing)

    async def run() -> dict[str, str | None]:
        clock = Clock()
        index = AdoptionIndex(load, after_lookups=1, ttl=100.0, clock=clock)
        release.set()
        await index.known("early@example.com")  # the first snapshot
        release.clear()
        clock.now += 90
        assert await index.known("x@example.com") == (True, None)  # answers at once; renewal started
        index.created("Late@example.com", "2")  # created while the renewal lists
        index.forget("early@example.com")  # gone since (deleted by hand), though the listing has it
        release.set()
        clock.now += 20  # past the first snapshot's ttl: the renewed one answers
        answers = {e: (await index.known(e))[1] for e in ("late@example.com", "early@example.com")}
        assert index.loads == 2
        await index.close()
        return answers

    assert asyncio.run(run()) == {"late@example.com": "2", "early@example.com": None}

"""Fixtures of the fuzz tests: a live bridge per store (module-scoped) with a small directory
in it, a counting client, and the seed printed at the start and beside every failure."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from typing import Any

import pytest
import redis

from tests.fuzz.harness import DIRECTORY_USERS, GROUP, REPLAY, SEED, TALLY, USER, Fuzzer, announce
from tests.live import LiveBridge


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    TALLY.tests_run = 0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[Any]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed:
        report.sections.append(("fuzz seed", f"seed {SEED}; replay with {REPLAY}"))
    return report


@pytest.fixture(scope="session", autouse=True)
def _announce_seed(request: pytest.FixtureRequest) -> None:
    TALLY.started = time.monotonic()
    announce(request.config, f"\nfuzz seed {SEED} (replay: {REPLAY})")


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def fuzz_bridge(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBridge]:
    """A bridge per module and store, holding DIRECTORY_USERS and two groups."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/bridge.db"
    else:
        url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(url).flushdb()
    with LiveBridge(url) as live:
        with live.client() as client:
            ids = []
            for user in DIRECTORY_USERS:
                body = {"schemas": [USER], **user}
                response = client.post("/Users", json=body)
                assert response.status_code == 201, response.text
                ids.append(response.json()["id"])
            for name, members in (("Editors", ids[:2]), ("Ünïcode ✓", ids[2:])):
                body = {"schemas": [GROUP], "displayName": name, "members": [{"value": m} for m in members]}
                assert client.post("/Groups", json=body).status_code == 201
        yield live


@pytest.fixture(scope="module")
def fuzzer(fuzz_bridge: LiveBridge) -> Iterator[Fuzzer]:
    client = Fuzzer(fuzz_bridge)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _count_tests() -> Iterator[None]:
    yield
    TALLY.tests_run += 1

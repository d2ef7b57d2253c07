from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from scim_bridge.store import Store
from scim_bridge.store.redis import RedisStore
from scim_bridge.store.sqlite import SqliteStore
from tests.redis_server import HOW_TO_GET_REDIS, RedisServer


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis database the tests own: a throwaway server on a free port (never someone's 6379),
    or SCIM_BRIDGE_TEST_REDIS_URL naming a database the tests may empty. No Redis is a failure,
    never a skip: half of the storage contract would silently go untested."""
    configured = os.environ.get("SCIM_BRIDGE_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    server: RedisServer | None = None
    try:
        server = RedisServer().start()
    except RuntimeError as error:
        problem = str(error)
    if server is None:  # failed outside the except block, so the message is printed once
        pytest.fail(problem if HOW_TO_GET_REDIS in problem else f"{problem}\n{HOW_TO_GET_REDIS}", pytrace=False)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An opened, empty store of each kind."""
    opened: Store
    if request.param == "sqlite":
        opened = SqliteStore(f"sqlite:///{tmp_path}/store.db")
    else:
        url = request.getfixturevalue("redis_url")
        with redis.Redis.from_url(url) as admin:
            admin.flushdb()  # our throwaway server (or the database SCIM_BRIDGE_TEST_REDIS_URL offers)
        opened = RedisStore(url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(params=["sqlite", "redis"])
def bridge_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store URL for a live bridge: a SQLite file, then the tests' own Redis (emptied)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/bridge.db"
    url: str = request.getfixturevalue("redis_url")
    redis.Redis.from_url(url).flushdb()
    return url

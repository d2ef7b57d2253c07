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
    """A Redis database the tests own: a throwaway server, or SCIM_BRIDGE_TEST_REDIS_URL."""
    configured = os.environ.get("SCIM_BRIDGE_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    try:
        server = RedisServer().start()
    except RuntimeError as error:
        pytest.fail(f"{error}\n{HOW_TO_GET_REDIS}", pytrace=False)
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
        redis.Redis.from_url(url).flushdb()
        opened = RedisStore(url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()

"""Redis down: StoreUnavailable (never a raw redis error), 503 over HTTP, and recovery by itself."""

from __future__ import annotations

import httpx
import pytest

from scim_bridge.store import StoreUnavailable, Write
from scim_bridge.store.redis import RedisStore
from tests.live import LiveBridge
from tests.redis_server import RedisServer


async def test_store_raises_unavailable_and_recovers() -> None:
    server = RedisServer().start()
    store = RedisStore(server.url)
    await store.open()
    try:
        await store.create(Write("User", "u1", b"{}", [], [("username", "a")]))
        server.stop()
        with pytest.raises(StoreUnavailable):
            await store.get("User", "u1")
        with pytest.raises(StoreUnavailable):
            await store.create(Write("User", "u2", b"{}"))
        server.start()  # same port, empty (no persistence): the store works again by itself
        assert await store.get("User", "u1") is None
        await store.create(Write("User", "u2", b"{}"))
        assert await store.count("User") == 1
    finally:
        await store.close()
        server.stop()


def test_scim_answers_503_while_redis_is_down_then_recovers() -> None:
    server = RedisServer().start()
    try:
        with LiveBridge(server.url) as bridge, bridge.client() as client:
            body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "outage@example.com"}
            assert client.post("/Users", json=body).status_code == 201
            server.stop()
            for response in (client.get("/Users"), client.post("/Users", json=body)):
                assert response.status_code == 503 and response.headers["retry-after"] == "5"
                assert response.json()["status"] == "503"
            assert httpx.get(f"{bridge.root}/health").status_code == 503
            server.start()
            assert client.post("/Users", json=body).status_code == 201
            assert httpx.get(f"{bridge.root}/health").status_code == 200
    finally:
        server.stop()

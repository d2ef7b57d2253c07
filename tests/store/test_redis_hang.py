"""A hung Redis (SIGSTOP: the server holds the connection and answers nothing) during a POST:
the answer is the truth (redis_fence.py). A short hang ends in 201; a long one in 503 for a
write that then never lands, so the client's retry is a 201 with no 409 and no duplicate."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from scim_bridge.store.redis_fence import SEND_TIMEOUT, WRITE_BUDGET
from tests.live import LiveBridge
from tests.redis_server import RedisServer
from tests.scim.conftest import USER, unique


@contextmanager
def _hung(server: RedisServer, seconds: float) -> Iterator[None]:
    """Redis stopped now and resumed `seconds` later (whatever happens in between)."""
    assert server.process is not None
    pid = server.process.pid
    os.kill(pid, signal.SIGSTOP)
    resume = threading.Timer(seconds, os.kill, (pid, signal.SIGCONT))
    resume.start()
    try:
        yield
    finally:
        resume.join()


def _users_named(client: httpx.Client, name: str) -> list[str]:
    found = client.get("/Users", params={"filter": f'userName eq "{name}"'})
    assert found.status_code == 200, found.text
    return [r["id"] for r in found.json()["Resources"]]


def test_a_post_during_a_long_hang_is_503_and_its_retry_is_201_with_one_user() -> None:
    server = RedisServer().start()
    try:
        with LiveBridge(server.url) as bridge, bridge.client() as client:
            name = unique()
            body = {"schemas": [USER], "userName": name}
            assert client.post("/Users", json={"schemas": [USER], "userName": unique()}).status_code == 201
            with _hung(server, WRITE_BUDGET + 3):
                started = time.monotonic()
                response = client.post("/Users", json=body, timeout=30)
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"] and "not applied" in response.json()["detail"]
                assert time.monotonic() - started < WRITE_BUDGET + 2
            time.sleep(0.5)  # Redis has run whatever it held: a late write is refused, not applied
            assert _users_named(client, name) == []
            retry = client.post("/Users", json=body)
            assert retry.status_code == 201, retry.text
            assert _users_named(client, name) == [retry.json()["id"]]
    finally:
        server.stop()


def test_a_post_during_a_hang_shorter_than_the_budget_answers_201_for_the_one_user_it_made() -> None:
    server = RedisServer().start()
    try:
        with LiveBridge(server.url) as bridge, bridge.client() as client:
            name = unique()
            assert client.post("/Users", json={"schemas": [USER], "userName": unique()}).status_code == 201
            with _hung(server, SEND_TIMEOUT + 1.5):  # past the first send's timeout
                response = client.post("/Users", json={"schemas": [USER], "userName": name}, timeout=30)
            assert response.status_code == 201, response.text
            assert _users_named(client, name) == [response.json()["id"]]
            again = client.post("/Users", json={"schemas": [USER], "userName": name})
            assert again.status_code == 409  # it exists, and the client was told so the first time
    finally:
        server.stop()


def test_a_patch_during_a_hang_shorter_than_the_budget_applies_once() -> None:
    server = RedisServer().start()
    try:
        with LiveBridge(server.url) as bridge, bridge.client() as client:
            user = client.post("/Users", json={"schemas": [USER], "userName": unique()}).json()
            patch = {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "emails", "value": [{"value": "hang@example.com"}]}],
            }
            with _hung(server, SEND_TIMEOUT + 1):
                # the read before the write is what hangs here; either way the answer is the truth
                response = client.patch(f"/Users/{user['id']}", json=patch, timeout=30)
            stored = client.get(f"/Users/{user['id']}")
            emails = [e["value"] for e in stored.json().get("emails", [])]
            if response.status_code == 200:
                assert emails == ["hang@example.com"] and stored.headers["etag"] == 'W/"2"'
            else:
                assert response.status_code == 503 and emails == []
    finally:
        server.stop()

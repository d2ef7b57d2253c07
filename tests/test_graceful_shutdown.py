"""SIGTERM, as Kubernetes sends it: the bridge turns not-ready at once while it still answers, lets
a request in flight finish with its 2xx, hands its unfinished sync work back to the queue so
another replica takes it now (not when the lease expires), and exits 0."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml

from scim_bridge.store.redis import RedisStore
from tests.live import free_port
from tests.redis_server import RedisServer
from tests.test_redaction import USER

TOKEN = "shutdown-token-Zq130"


def serve(tmp_path: Path, store: str, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "scim_bridge", "serve", "--store", store, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "bridge.log").open("wb"),
        env={**os.environ, "SCIM_BRIDGE_TOKENS": TOKEN, "SCIM_BRIDGE_LAST_LOGIN_POLL_SECONDS": "0", **env},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health/ready").status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return process, base


def test_sigterm_drains_then_lets_a_slow_request_finish_and_exits_0(tmp_path: Path) -> None:
    process, base = serve(
        tmp_path,
        f"sqlite:///{tmp_path}/drain.db",
        SCIM_BRIDGE_DRAIN_SECONDS="1.5",
        SCIM_BRIDGE_SHUTDOWN_GRACE_SECONDS="10",
    )
    body = json.dumps({"schemas": [USER], "userName": "slow@example.com"}).encode()
    sent_first = threading.Event()
    answer: dict[str, Any] = {}

    def slow_body() -> Iterator[bytes]:  # an upload still arriving when SIGTERM comes
        yield body[:10]
        sent_first.set()
        time.sleep(3.0)
        yield body[10:]

    def slow_request() -> None:
        try:
            answer["response"] = httpx.post(
                f"{base}/scim/v2/Users",
                content=slow_body(),
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"},
                timeout=20,
            )
        except Exception as error:  # reported by the assertion below
            answer["error"] = error

    try:
        client = threading.Thread(target=slow_request)
        client.start()
        assert sent_first.wait(5)
        time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        draining = httpx.get(f"{base}/health/ready")  # still answering, but not ready
        assert draining.status_code == 503 and draining.json()["failed"] == ["draining"]
        assert httpx.get(f"{base}/health/live").status_code == 200
        client.join(20)
        assert "error" not in answer, answer.get("error")
        assert answer["response"].status_code == 201, answer["response"].text
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert "draining" in (tmp_path / "bridge.log").read_text()


def test_a_stopping_bridge_hands_its_leased_entries_back_at_once(tmp_path: Path) -> None:
    """A target that never answers keeps the worker busy; after SIGTERM the entry is claimable by
    another bridge right away, though its 60 s lease has barely begun."""
    black_hole = socket.socket()  # accepts connections (the backlog) and never answers
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(64)
    (tmp_path / "iconik.json").write_text(json.dumps({"app_id": "app", "auth_token": "t", "webhook_secret": "w"}))
    policy = {
        "targets": {
            "cloudinary": {"enabled": False},
            "iconik": {
                "enabled": True,
                "base_url": f"http://127.0.0.1:{black_hole.getsockname()[1]}",
                "credentials_file": str(tmp_path / "iconik.json"),
            },
        }
    }
    (tmp_path / "policy.yml").write_text(yaml.safe_dump(policy))
    server = RedisServer().start()
    process, base = serve(
        tmp_path,
        server.url,
        SCIM_BRIDGE_POLICY=str(tmp_path / "policy.yml"),
        SCIM_BRIDGE_SYNC_LEASE_SECONDS="60",
        SCIM_BRIDGE_DRAIN_SECONDS="0.5",
        SCIM_BRIDGE_SHUTDOWN_GRACE_SECONDS="1",
    )
    raw = redis.Redis(port=server.port)
    try:
        created = httpx.post(
            f"{base}/scim/v2/Users",
            json={"schemas": [USER], "userName": "leased@example.com"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert created.status_code == 201, created.text
        key = f"User/{created.json()['id']}"
        deadline = time.monotonic() + 10
        while raw.zscore("sb:q:leases", key) is None:  # the bridge's worker holds it, stuck on the target
            assert time.monotonic() < deadline, "the worker never claimed the entry"
            time.sleep(0.05)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert time.monotonic() - signalled < 10  # drain + grace, not the lease

        async def claim_as_another_bridge() -> list[str]:
            store = RedisStore(server.url)
            await store.open()
            try:
                return [f"{e.resource_type}/{e.id}" for e in await store.claim("other-bridge", limit=50)]
            finally:
                await store.close()

        claimed = asyncio.run(claim_as_another_bridge())
        assert key in claimed
        assert "handed back" in (tmp_path / "bridge.log").read_text()
    finally:
        if process.poll() is None:
            process.kill()
        raw.close()
        server.stop()
        black_hole.close()

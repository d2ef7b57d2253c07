"""/health/live and /health/ready over real HTTP, as a Kubernetes kubelet calls them: no
credentials, live 200 while the process answers, ready 503 naming the check that failed."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml

from tests.live import LiveBridge
from tests.redis_server import RedisServer


def test_live_and_ready_need_no_credentials_and_ready_fails_while_redis_is_down() -> None:
    server = RedisServer().start()
    try:
        with LiveBridge(server.url) as bridge:
            assert httpx.get(f"{bridge.root}/health/live").json() == {"status": "ok"}
            ready = httpx.get(f"{bridge.root}/health/ready")
            assert ready.status_code == 200 and ready.json()["status"] == "ready"
            assert ready.json()["checks"]["store"] == "ok"
            server.stop()
            assert httpx.get(f"{bridge.root}/health/live").status_code == 200  # a restart would not help
            down = httpx.get(f"{bridge.root}/health/ready")
            assert down.status_code == 503 and down.headers["retry-after"] == "5"
            assert down.json()["failed"] == ["store"] and down.json()["checks"]["store"] == "unavailable"
            server.start()
            assert httpx.get(f"{bridge.root}/health/ready").status_code == 200  # back by itself
    finally:
        server.stop()


def test_ready_reports_the_policy_and_running_workers(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(yaml.safe_dump({"targets": {"cloudinary": {"enabled": False}, "iconik": {"enabled": False}}}))
    with LiveBridge(f"sqlite:///{tmp_path}/ready.db", policy=policy) as bridge:
        ready = httpx.get(f"{bridge.root}/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"draining": "ok", "store": "ok", "policy": "ok", "workers": "ok"}
    with LiveBridge(f"sqlite:///{tmp_path}/scim-only.db", policy=policy, sync_workers=0) as bridge:
        ready = httpx.get(f"{bridge.root}/health/ready")  # a SCIM-only replica is ready by choice
        assert ready.status_code == 200 and ready.json()["checks"]["workers"].startswith("off")

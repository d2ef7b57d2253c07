"""A bridge served by uvicorn on a free loopback port, for tests over a real HTTP stack."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import httpx
import uvicorn

from scim_bridge.app import create_app
from scim_bridge.config import Settings
from scim_bridge.web.server import server_config

TOKEN = "test-token-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveBridge:
    def __init__(self, store_url: str, **settings: Any) -> None:
        self.port = free_port()
        settings.setdefault("tokens", [TOKEN])
        self.settings = Settings(store=store_url, host="127.0.0.1", port=self.port, **settings)
        self.app = create_app(self.settings)
        # served as `scim-bridge serve` serves it: the same protocol, limits and deadlines
        self.server = uvicorn.Server(server_config(self.app, self.settings, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.root = f"http://127.0.0.1:{self.port}"
        self.base = f"{self.root}/scim/v2"

    def _run(self) -> None:
        asyncio.run(self.server.serve())

    def __enter__(self) -> LiveBridge:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the bridge did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def client(self, token: str | None = TOKEN, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kwargs.pop("headers", {}))
        return httpx.Client(base_url=self.base, headers=headers, timeout=10, **kwargs)

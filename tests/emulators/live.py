"""Serve an emulator with uvicorn on a free loopback port (real HTTP, like the bridge sees it)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn

from tests.live import free_port


class LiveApp:
    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.app = app
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="critical", lifespan="off")
        )
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveApp:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("emulator did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve_iconik(switches: Any = None) -> Iterator[tuple[httpx.Client, Any]]:
    """An iconik emulator over real HTTP and a client already holding its App-ID and Auth-Token."""
    from scim_bridge.emulators import iconik

    state = iconik.IconikState()
    with (
        LiveApp(iconik.build(state, switches)) as live,
        httpx.Client(
            base_url=f"{live.url}/API", timeout=10, headers={"App-ID": state.app_id, "Auth-Token": state.auth_token}
        ) as client,
    ):
        yield client, state

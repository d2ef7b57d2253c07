"""Throwaway redis-server processes for the tests: our own port, no persistence, no shared data."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time

import redis

from tests.live import free_port

HOW_TO_GET_REDIS = (
    "Redis is required for the tests: install it (apt-get install redis-server, brew install redis) "
    "or set SCIM_BRIDGE_TEST_REDIS_URL=redis://host:port/db naming a database the tests may empty"
)


class RedisServer:
    def __init__(self, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(HOW_TO_GET_REDIS)
        self.binary = binary
        self.port = port or free_port()
        self.directory = tempfile.mkdtemp(prefix="scim-bridge-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.directory,
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

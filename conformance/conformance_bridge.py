"""Start and stop a real `scim-bridge serve` process for the conformance checkers.

Shared by conformance/run and by conformance/test_okta_spec.py when that file runs on its own.
Standard library only, so that it imports under any interpreter.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(root: str) -> bool:
    try:
        with urllib.request.urlopen(f"{root}/health", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


class BridgeProcess:
    """`python -m scim_bridge serve --host 127.0.0.1 --port <free>` on an empty SQLite store in workdir.

    Inherited SCIM_BRIDGE_* variables are dropped, so the checkers always see the defaults; the
    bridge's log goes to workdir/bridge.log and every request it answers (secrets redacted, with
    the response status) to workdir/capture.jsonl.
    """

    def __init__(self, workdir: Path, python: str | None = None, startup_timeout: float = 30.0) -> None:
        self.workdir = Path(workdir)
        self.python = python or sys.executable
        self.startup_timeout = startup_timeout
        self.token = "conformance-" + secrets.token_hex(12)
        self.log_path = self.workdir / "bridge.log"
        self.capture_path = self.workdir / "capture.jsonl"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.root = ""
        self.base_url = ""

    def __enter__(self) -> BridgeProcess:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        # Binding a probe socket and releasing it leaves a small race with other processes;
        # if the bridge dies before it answers /health, try again on another port.
        for attempt in range(3):
            if self._start_once(self.workdir / f"conformance-{attempt}.db"):
                return
        raise RuntimeError("the bridge did not start; its log:\n" + self.log_tail(60))

    def _start_once(self, database: Path) -> bool:
        port = free_port()
        env = {key: value for key, value in os.environ.items() if not key.startswith("SCIM_BRIDGE_")}
        env.update(
            {
                "SCIM_BRIDGE_TOKENS": self.token,
                "SCIM_BRIDGE_STORE": f"sqlite:///{database}",
                "SCIM_BRIDGE_LOG_LEVEL": "warning",
                "SCIM_BRIDGE_CAPTURE": str(self.capture_path),
                "PYTHONUNBUFFERED": "1",
            }
        )
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [self.python, "-m", "scim_bridge", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.root = f"http://127.0.0.1:{port}"
        self.base_url = f"{self.root}/scim/v2"
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._close_log()
                return False
            if _healthy(self.root):
                return True
            time.sleep(0.05)
        self.stop()
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

"""The CLI's long commands show progress on a terminal and stay quiet when piped."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import pty
import subprocess
import sys
from pathlib import Path

from scim_bridge.store.sqlite import SqliteStore


def _store_with_entries(tmp_path: Path, count: int) -> str:
    url = f"sqlite:///{tmp_path}/progress.db"

    async def fill() -> None:
        store = SqliteStore(url)
        await store.open()
        await store.audit_append([b'{"kind":"scim","operation":"create"}'] * count)
        await store.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # Playwright's sync API may hold this thread's loop
        pool.submit(asyncio.run, fill()).result()
    return url


def _run(args: list[str], stderr_on_terminal: bool) -> tuple[subprocess.CompletedProcess[bytes], bytes]:
    env = {k: v for k, v in os.environ.items() if k != "SCIM_BRIDGE_PROGRESS"}
    if not stderr_on_terminal:
        run = subprocess.run([sys.executable, "-m", "scim_bridge", *args], capture_output=True, timeout=60, env=env)
        return run, run.stderr
    leader, follower = pty.openpty()
    try:
        run = subprocess.run(
            [sys.executable, "-m", "scim_bridge", *args], stdout=subprocess.PIPE, stderr=follower, timeout=60, env=env
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
    return run, b"".join(chunks)


def test_audit_export_and_replay_show_progress_on_a_terminal_only(tmp_path: Path) -> None:
    url = _store_with_entries(tmp_path, 30)
    export = ["audit", "export", "--store", url, "--format", "jsonl", "--output", str(tmp_path / "out.jsonl")]
    piped, errors = _run(export, stderr_on_terminal=False)
    assert piped.returncode == 0 and errors == b""  # nothing but the result, which went to the file
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 30
    shown, terminal = _run(export, stderr_on_terminal=True)
    assert shown.returncode == 0
    assert b"audit export: 1 entries" in terminal and terminal.endswith(b"\r\x1b[K")  # drawn, then cleared

    replay = ["replay", "--store", url]
    piped, errors = _run(replay, stderr_on_terminal=False)
    assert piped.stdout == b"requeued 0 dead letter(s)\n" and errors == b""
    shown, terminal = _run(replay, stderr_on_terminal=True)
    assert b"replay: requeueing the dead letters" in terminal and shown.stdout == b"requeued 0 dead letter(s)\n"

"""kill -9 of the bridge at random moments during a load, then a restart: every change arrives,
once (no duplicate target accounts), because writes are durable before their 2xx and claimed
work returns when its lease expires."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from scim_bridge.emulators import cloudinary, iconik
from tests.emulators.live import LiveApp
from tests.live import free_port
from tests.scim.conftest import USER
from tests.sync.emulated_policy import emulated_policy

TOKEN = "crash-test-token"
USERS = 300


def start_bridge(store: str, policy: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SCIM_BRIDGE_TOKENS": TOKEN,
        "SCIM_BRIDGE_POLICY": str(policy),
        "SCIM_BRIDGE_SYNC_LEASE_SECONDS": "2",
        "SCIM_BRIDGE_LOG_LEVEL": "error",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "scim_bridge", "serve", "--port", str(port), "--store", store],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30  # a loaded 2-core CI machine can take seconds to import and open the store
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("bridge did not start")


@pytest.mark.slow  # 20-50 s per backend
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_kill_9_during_load_loses_nothing_and_duplicates_nothing(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    rng = random.Random(7)
    cld_state, ico_state = cloudinary.CloudinaryState(), iconik.IconikState()
    with LiveApp(cloudinary.build(cld_state)) as cld, LiveApp(iconik.build(ico_state)) as ico:
        policy = emulated_policy(tmp_path, cld_state, cld.url, ico_state, ico.url, derived_groups=["dept-{department}"])
        if backend == "sqlite":
            store = f"sqlite:///{tmp_path}/crash.db"
        else:
            store = request.getfixturevalue("redis_url")
            redis.Redis.from_url(store).flushdb()
        port = free_port()
        acknowledged: list[str] = []
        bridge = start_bridge(store, policy, port)
        try:
            i = 0
            while i < USERS:
                try:
                    response = httpx.post(
                        f"http://127.0.0.1:{port}/scim/v2/Users",
                        timeout=5,
                        headers={"Authorization": f"Bearer {TOKEN}"},
                        json={
                            "schemas": [USER],
                            "userName": f"crash{i}@example.com",
                            "emails": [{"value": f"crash{i}@example.com", "primary": True}],
                        },
                    )
                    if response.status_code == 201:
                        acknowledged.append(f"crash{i}@example.com")
                    i += 1
                except httpx.TransportError:
                    pass  # the bridge is down: the IdP retries the same user, as Entra and Okta do
                if rng.random() < 0.02:  # kill -9 at a random moment, then restart
                    bridge.send_signal(signal.SIGKILL)
                    bridge.wait()
                    bridge = start_bridge(store, policy, port)
            deadline = time.monotonic() + 180
            while True:
                cld_emails = [u["email"] for u in list(cld_state.users.values())]
                ico_emails = [u["email"] for u in list(ico_state.users.values()) if u["id"] != ico_state.token_user_id]
                if len(cld_emails) >= len(acknowledged) and len(ico_emails) >= len(acknowledged):
                    break
                assert time.monotonic() < deadline, (
                    f"lost changes: {len(cld_emails)}, {len(ico_emails)} of {len(acknowledged)}"
                )
                time.sleep(0.2)
            time.sleep(3)  # past the lease: any re-claimed work has run again
            cld_emails = [u["email"] for u in cld_state.users.values()]
            ico_emails = [u["email"] for u in ico_state.users.values() if u["id"] != ico_state.token_user_id]
            assert sorted(cld_emails) == sorted(set(cld_emails)) and sorted(ico_emails) == sorted(set(ico_emails))
            assert set(acknowledged) <= set(cld_emails) and set(acknowledged) <= set(ico_emails)
        finally:
            bridge.send_signal(signal.SIGKILL)
            bridge.wait()

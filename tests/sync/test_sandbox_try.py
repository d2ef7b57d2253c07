"""The sandbox as a place to try a policy: it says which store and policy file it runs on, runs an
edited policy (--policy) on a kept store (--store), has both webhook receivers on, and its
emulators' state shows names beside ids. The sandbox runs as a subprocess on a free port, on both
stores, and the test reads what it prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.live import free_port

SAMPLE_POLICY = (resources.files("scim_bridge.sandbox") / "policy.yml").read_text()


@pytest.fixture(params=["sqlite", "redis"])
def kept_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/kept.db"
    url: str = request.getfixturevalue("redis_url")
    redis.Redis.from_url(url).flushdb()
    return url


class Sandbox:
    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "scim_bridge", "sandbox", "--port", str(self.port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=os.environ.copy(),
        )
        self.printed: dict[str, str] = {}
        assert self.process.stdout is not None
        for _ in range(20):  # the banner is printed at once, before the server starts
            line = self.process.stdout.readline()
            assert line, "the sandbox stopped before its banner"
            name, _, value = line.strip().partition(" ")
            self.printed.setdefault(name, value.strip())
            if line.strip().startswith("sample directory"):
                break
        self.base = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, admin_token: str) -> None:
        deadline = time.monotonic() + 90
        while True:
            try:
                queue = httpx.get(
                    f"{self.base}/admin/api/queue", headers={"Authorization": f"Bearer {admin_token}"}, timeout=5
                ).json()
                if queue["total"] == 0:
                    return
            except (httpx.TransportError, KeyError, ValueError):
                pass
            assert time.monotonic() < deadline, "the sandbox did not finish its load"
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)


@pytest.fixture
def sandboxes() -> Iterator[list[Sandbox]]:
    started: list[Sandbox] = []
    yield started
    for sandbox in started:
        if sandbox.process.poll() is None:
            sandbox.stop()


def state(base_url: str, **params: str) -> dict[str, Any]:
    return dict(httpx.get(f"{base_url}/_emulator/state", params=params, timeout=10).json())


@pytest.mark.slow  # two sandbox runs in subprocesses (~15 s per store)
def test_an_edited_policy_runs_on_a_kept_store_with_webhooks_on(
    kept_store: str, tmp_path: Path, sandboxes: list[Sandbox]
) -> None:
    # a first run fills the store with the sample directory
    first = Sandbox("--store", kept_store, "--credentials-file", str(tmp_path / "first.json"))
    sandboxes.append(first)
    assert first.printed["store"] == kept_store
    access = json.loads((tmp_path / "first.json").read_text())
    scim = {"Authorization": f"Bearer {access['scim']['token']}"}
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{access['scim']['base_url']}/Users", headers=scim).json()["totalResults"] == 37:
                break
        except (httpx.TransportError, KeyError, ValueError):
            pass
        assert time.monotonic() < deadline, "the sample directory was not loaded"
        time.sleep(0.2)
    first.stop()

    # an edited policy: Marketing EMEA's campaign folder moves to campaigns/europe
    edited = tmp_path / "edited.yml"
    edited.write_text(SAMPLE_POLICY.replace("campaigns/emea", "campaigns/europe"))
    second = Sandbox("--store", kept_store, "--policy", str(edited), "--credentials-file", str(tmp_path / "two.json"))
    sandboxes.append(second)
    access = json.loads((tmp_path / "two.json").read_text())
    # it prints the store and the policy file it uses, so the CLI can be pointed at them
    assert second.printed["store"] == kept_store == access["cli"]["store"]
    used = Path(second.printed["policy"].split()[0])
    assert used == Path(access["cli"]["policy"]) and str(edited) in second.printed["policy"]
    assert "campaigns/europe" in used.read_text() and "campaigns/emea" not in used.read_text()
    second.wait_ready(access["admin"]["token"])

    # the kept directory went into this run's (empty) emulators under the edited policy
    cloudinary_url, iconik_url = access["cloudinary"]["base_url"], access["iconik"]["base_url"]
    plain, named = state(cloudinary_url), state(cloudinary_url, names="true")
    assert "by_name" not in plain and len(plain["users"]) == 35
    grants = named["by_name"]["grants"]
    assert grants["group Marketing EMEA"] == {"campaigns/europe": ["contributor"]}
    assert grants["apiKey scim-bridge: Agency - Bright Ideas"] == {"agencies/bright-ideas": ["contributor"]}
    assert set(named["by_name"]["groups"]["Marketing EMEA"]["members"]) >= {"ava.andersen@example.com"}
    assert {k: v for k, v in named.items() if k != "by_name"}.keys() == plain.keys()  # the rest as before
    iconik_named = state(iconik_url, names="true")["by_name"]
    assert iconik_named["acls"]["collections/Region EMEA"]["groups"] == {"region-EMEA": ["read"]}
    assert "region-EMEA" in iconik_named["users"]["ava.andersen@example.com"]["groups"]
    explained = subprocess.run(
        [sys.executable, "-m", "scim_bridge", "explain", "ava.andersen@example.com", "--json"]
        + ["--store", access["cli"]["store"], "--policy", access["cli"]["policy"]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert explained.returncode == 0 and "campaigns/europe" in explained.stdout, explained.stderr

    # both webhook receivers are on, with the secrets the sandbox gave the emulators
    ico = access["iconik"]
    created = httpx.post(
        f"{iconik_url}/API/assets/v1/collections/",
        headers={"App-ID": ico["app_id"], "Auth-Token": ico["auth_token"]},
        json={"title": "Tried in the sandbox"},
    )
    assert created.status_code == 201
    notified = httpx.post(
        access["webhooks"]["cloudinary"]["notify"],
        json={"url": access["webhooks"]["cloudinary"]["url"], "notification_type": "upload"},
        timeout=10,
    )
    assert notified.status_code == 200 and notified.json()["status"] == 200, notified.text
    admin = {"Authorization": f"Bearer {access['admin']['token']}"}

    def sources() -> set[str]:
        records = httpx.get(f"{second.base}/admin/api/activity", headers=admin).json()["records"]
        return {r["source"] for r in records}

    deadline = time.monotonic() + 15
    while sources() != {"cloudinary", "iconik"}:
        assert time.monotonic() < deadline, f"webhook deliveries missing: {sources()}"
        time.sleep(0.2)

"""The command line: bad configuration in one line, credentials, capture mode without secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.live import free_port

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scim_bridge", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_bad_configuration_is_one_clear_line(tmp_path: Path) -> None:
    result = run("serve", "--store", "mysql://nope")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "scim-bridge: configuration error: SCIM_BRIDGE_STORE: Value error, use sqlite:///path.db, "
        "redis://host:port/db, rediss://…, redis+sentinel://host:port[,host:port]/service_name or "
        "redis+cluster://host:port[,host:port]"
    ]
    result = run("serve", "--store", "redis+cluster://127.0.0.1:7000/2")  # a check across settings: one line too
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "scim-bridge: configuration error: SCIM_BRIDGE_STORE: a Redis Cluster has only database 0 (no SELECT)"
    ]
    result = run("serve", env={"SCIM_BRIDGE_PORT": "http"})
    assert result.returncode == 2 and "SCIM_BRIDGE_PORT" in result.stderr and "Traceback" not in result.stderr
    result = run("serve", env={"SCIM_BRIDGE_OAUTH_TOKEN_LIFETIME": "60"})
    assert result.returncode == 2 and "SCIM_BRIDGE_OAUTH_TOKEN_LIFETIME" in result.stderr


def test_credentials_and_capture(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/cli.db"
    token = run("credentials", "--store", store, "create-token", "entra").stdout.strip()
    client = dict(
        line.split("=", 1) for line in run("credentials", "--store", store, "create-client", "otds").stdout.split()
    )
    listing = run("credentials", "--store", store, "list").stdout
    assert "entra" in listing and client["client_id"] in listing and token not in listing

    port, capture = free_port(), tmp_path / "capture.jsonl"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scim_bridge",
            "serve",
            "--store",
            store,
            "--port",
            str(port),
            "--capture",
            str(capture),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "SCIM_BRIDGE_TOKENS": "env-token"},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(f"{base}/health")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        access = httpx.post(
            f"{base}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client["client_id"], client["client_secret"]),
        ).json()["access_token"]
        for credential in (token, access, "env-token"):
            created = httpx.post(
                f"{base}/scim/v2/Users",
                headers={"Authorization": f"Bearer {credential}"},
                json={"schemas": [USER], "userName": f"cap-{credential[-6:]}", "password": "Sup3r-secret!"},
            )
            assert created.status_code == 201, created.text
        assert run("credentials", "--store", store, "revoke", client["client_id"]).returncode == 0
    finally:
        server.terminate()
        server.wait(timeout=10)
    lines = [json.loads(line) for line in capture.read_text().splitlines()]
    posts = [line for line in lines if line["path"] == "/scim/v2/Users"]
    assert len(posts) == 3 and posts[0]["method"] == "POST" and posts[0]["body"]["userName"].startswith("cap-")
    text = capture.read_text()
    for secret in ("Sup3r-secret!", token, access, client["client_secret"], "env-token"):
        assert secret not in text
    assert posts[0]["headers"]["authorization"] == "[redacted]" and posts[0]["body"]["password"] == "[redacted]"

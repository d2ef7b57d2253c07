"""The log lines an operator's collector reads: every line `scim-bridge serve` writes is a JSON object
with the documented fields and no secret (the secret strings of tests/test_redaction.py), and the
text format is there on request."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from scim_bridge.audit.context import CORRELATION_ID, SYNC_SUBJECT
from scim_bridge.logs import JsonFormatter
from scim_bridge.redaction import RedactingFilter, redact_text
from tests.live import free_port
from tests.test_redaction import API_KEY, BASIC_PASSWORD, TOKEN, USER

CLIENT_SECRET = "clientsecret-Zq120"
QUERY_SECRET = "querysecret-Zq121"
PASSWORD = "pw-logs-Zq122"


def serve(tmp_path: Path, **env: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    """`scim-bridge serve` with its stderr in a file (a full pipe would stall it); its base URL."""
    port, log_path = free_port(), tmp_path / "stderr.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "scim_bridge", "serve", "--store", f"sqlite:///{tmp_path}/logs.db", "--port", str(port)],
        stdout=(tmp_path / "stdout.log").open("wb"),
        stderr=log_path.open("wb"),
        env={
            **os.environ,
            "SCIM_BRIDGE_TOKENS": TOKEN,
            "SCIM_BRIDGE_BASIC_USERS": f"otds:{BASIC_PASSWORD}",
            "SCIM_BRIDGE_API_KEYS": API_KEY,
            "SCIM_BRIDGE_ACCESS_LOG": "true",
            "SCIM_BRIDGE_DRAIN_SECONDS": "0",
            "SCIM_BRIDGE_LOG_LEVEL": "debug",
            **env,
        },
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            httpx.get(f"{base}/health/live")
            break
        except httpx.TransportError:
            time.sleep(0.1)
    return process, base, log_path


def traffic(base: str) -> None:
    """A few SCIM requests, a 401 with a wrong Basic password, a 400, and secrets in a query string."""
    with httpx.Client(base_url=f"{base}/scim/v2", headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        created = http.post("/Users", json={"schemas": [USER], "userName": "log@example.com", "password": PASSWORD})
        assert created.status_code == 201
        assert http.get(f"/Users/{created.json()['id']}").status_code == 200
        assert http.get("/Users", params={"filter": f'password eq "{PASSWORD}"'}).status_code in (200, 400)
        assert http.get("/Users", params={"access_token": QUERY_SECRET}).status_code == 200
        assert http.post("/Users", json={"schemas": [USER]}).status_code == 400  # no userName
        assert httpx.get(f"{base}/scim/v2/Users", auth=("otds", "wrong-" + BASIC_PASSWORD)).status_code == 401
        refused = httpx.get(f"{base}/scim/v2/Users", headers={"Authorization": f"Bearer {CLIENT_SECRET}"})
        assert refused.status_code == 401


def stop(process: subprocess.Popen[bytes]) -> int:
    process.terminate()
    return process.wait(timeout=30)


def test_every_line_is_json_with_the_named_fields_and_no_secret(tmp_path: Path) -> None:
    process, base, log_path = serve(tmp_path)  # stderr is a file: json by default
    try:
        traffic(base)
    finally:
        assert stop(process) == 0
    lines = log_path.read_text().splitlines()
    records: list[dict[str, Any]] = [json.loads(line) for line in lines]  # each line parses, or this fails
    assert len(records) >= 10
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys()
        assert record["time"].endswith("Z") and datetime.fromisoformat(record["time"]).tzinfo is not None
    access = [r for r in records if r["logger"] == "scim_bridge.access"]
    statuses = {r["status"] for r in access}
    assert {200, 201, 400, 401} <= statuses
    for record in access:
        assert {"method", "path", "status", "duration_ms", "client", "resource"} <= record.keys()
        assert isinstance(record["duration_ms"], float) and record["client"].startswith("127.0.0.1:")
    scim = [r for r in access if r["path"].startswith("/scim/v2/")]
    assert scim and all(r.get("correlation") for r in scim)  # the X-Request-Id the bridge answered with
    assert any("access_token=[redacted]" in r["path"] for r in access)
    assert any(r["logger"].startswith("uvicorn") for r in records)  # uvicorn's own lines, same format
    assert any("SCIM base URL" in r["message"] for r in records)  # the banner too: no line a parser skips
    text = log_path.read_text() + (tmp_path / "stdout.log").read_text()
    leaked = [s for s in (TOKEN, API_KEY, BASIC_PASSWORD, CLIENT_SECRET, QUERY_SECRET, PASSWORD) if s in text]
    assert leaked == []


def test_text_format_on_request(tmp_path: Path) -> None:
    process, base, log_path = serve(tmp_path, SCIM_BRIDGE_LOG_FORMAT="text")
    try:
        traffic(base)
    finally:
        assert stop(process) == 0
    text = log_path.read_text()
    assert not any(line.startswith("{") for line in text.splitlines())
    assert " INFO scim_bridge.access: 127.0.0.1:" in text and '"GET /scim/v2/Users?access_token=[redacted]' in text
    assert "correlation=" in text and QUERY_SECRET not in text
    assert "SCIM base URL" in (tmp_path / "stdout.log").read_text()  # the banner, for a person


def test_an_exception_is_one_json_line_with_a_redacted_exc() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("tests.structured")
    logger.addHandler(handler)
    token = CORRELATION_ID.set("req-1")
    subject = SYNC_SUBJECT.set(("User", "u-7"))
    try:
        raise RuntimeError(f"iconik refused Authorization: Bearer {TOKEN}")
    except RuntimeError:
        logger.exception("sync of %s crashed", "u-7", extra={"target": "iconik"})
    finally:
        CORRELATION_ID.reset(token)
        SYNC_SUBJECT.reset(subject)
        logger.removeHandler(handler)
    [line] = stream.getvalue().splitlines()
    record = json.loads(line)
    assert (record["level"], record["message"], record["correlation"]) == ("ERROR", "sync of u-7 crashed", "req-1")
    assert (record["resource"], record["target"]) == ("User/u-7", "iconik")
    assert "RuntimeError" in record["exc"] and "[redacted]" in record["exc"] and TOKEN not in line


def test_redacting_a_line_twice_changes_nothing() -> None:
    """The formatter redacts fields the handler's filter already redacted: it must be a no-op."""
    line = (
        f"GET /scim/v2/Users?access_token={QUERY_SECRET}&filter=password%20eq%20%22x%22 Authorization: Bearer {TOKEN}"
    )
    once = redact_text(line)
    assert QUERY_SECRET not in once and redact_text(once) == once


def test_without_configured_credentials_json_logs_carry_no_generated_token_and_scim_stays_closed(
    tmp_path: Path,
) -> None:
    """On a terminal `serve` makes a token for the run and shows it there; in a container (JSON logs
    going to a collector) no secret may be logged, so none is made: stored credentials only."""
    process, base, log_path = serve(
        tmp_path, SCIM_BRIDGE_TOKENS="", SCIM_BRIDGE_BASIC_USERS="", SCIM_BRIDGE_API_KEYS=""
    )
    try:
        assert httpx.get(f"{base}/scim/v2/Users").status_code == 401
        assert httpx.get(f"{base}/scim/v2/Users", headers={"Authorization": "Bearer sbt_guess"}).status_code == 401
    finally:
        assert stop(process) == 0
    output = log_path.read_text() + (tmp_path / "stdout.log").read_text()
    assert "sbt_" not in output
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    assert any("only credentials kept in the store" in line["message"] for line in lines)

"""HTTP hygiene over a real socket: the 413 reaches clients that send the whole body first, header
limits and read deadlines stop slow or endless requests, a client leaving mid-body is an INFO line,
and a Host header nobody trusts never reaches a stored URL or a context token."""

from __future__ import annotations

import base64
import json
import logging
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.live import TOKEN, LiveBridge

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def bridge_logs() -> Iterator[Records]:
    """What the bridge and uvicorn log while the test runs (INFO and up)."""
    handler = Records()
    loggers = [logging.getLogger(name) for name in ("scim_bridge", "uvicorn.error")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def raw_exchange(port: int, payload: bytes, wait: float = 5.0) -> tuple[bytes, float]:
    """Send `payload`, then read until the server closes; the answer and the seconds it took."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(payload)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer, time.monotonic() - started


def test_a_client_sending_12_mb_before_reading_gets_the_413_scim_error(tmp_path: Path) -> None:
    body = json.dumps({"schemas": [USER], "userName": "big", "title": "x" * (12 * 1024 * 1024)}).encode()
    with LiveBridge(f"sqlite:///{tmp_path}/b.db") as bridge:
        request = urllib.request.Request(
            f"{bridge.base}/Users",
            data=body,  # urllib writes all of it, with Connection: close, before it reads a byte
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=20)
        chunked, _ = raw_exchange(
            bridge.port,
            b"POST /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n"
            b"Content-Type: application/scim+json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            + b"".join(b"%x\r\n%s\r\n" % (1 << 20, b"y" * (1 << 20)) for _ in range(6))
            + b"0\r\n\r\n",
            wait=20,
        )
        with bridge.client() as scim:  # and the bridge is fine
            assert scim.get("/Users", params={"filter": 'userName eq "big"'}).json()["totalResults"] == 0
    assert refused.value.code == 413
    error = json.loads(refused.value.read())
    assert error["status"] == "413" and "exceeds the limit" in error["detail"]
    assert chunked.startswith(b"HTTP/1.1 413") and b"exceeds the limit" in chunked


def test_oversized_headers_are_refused_with_431_and_normal_ones_pass(tmp_path: Path) -> None:
    with LiveBridge(f"sqlite:///{tmp_path}/b.db") as bridge:
        head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        too_many, _ = raw_exchange(
            bridge.port, head + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 4000) for i in range(9)) + b"\r\n"
        )
        one_long, _ = raw_exchange(bridge.port, head + b"X-Long: " + b"b" * 9000 + b"\r\n\r\n")
        long_url, _ = raw_exchange(bridge.port, b"GET /health?" + b"c" * 17000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        fine, _ = raw_exchange(
            bridge.port, head + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 4000) for i in range(7)) + b"\r\n"
        )
    assert too_many.startswith(b"HTTP/1.1 431") and b"larger than 32768 bytes" in too_many
    assert one_long.startswith(b"HTTP/1.1 431") and b"longer than 8192 bytes" in one_long
    assert long_url.startswith(b"HTTP/1.1 414")
    assert fine.startswith(b"HTTP/1.1 200")


def test_a_client_trickling_headers_or_never_finishing_its_body_is_cut_off(tmp_path: Path) -> None:
    with LiveBridge(f"sqlite:///{tmp_path}/b.db", header_timeout_seconds=1, body_timeout_seconds=1) as bridge:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", bridge.port), timeout=10) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            trickled = b""
            try:
                for i in range(30):  # a header every 0.2 s: each byte is "activity", none finishes
                    sock.sendall(b"X-Slow-%d: 1\r\n" % i)
                    time.sleep(0.2)
            except OSError:
                pass
            while chunk := sock.recv(65536):
                trickled += chunk
        trickle_seconds = time.monotonic() - started
        stalled, stall_seconds = raw_exchange(
            bridge.port,
            b"POST /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n"
            b'Content-Type: application/scim+json\r\nContent-Length: 1000\r\n\r\n{"schemas":',
        )
    assert trickled.startswith(b"HTTP/1.1 408") and b"headers were not complete after 1 s" in trickled
    assert 0.9 < trickle_seconds < 3
    assert stalled.startswith(b"HTTP/1.1 408") and b"body was not complete after 1 s" in stalled
    assert 0.9 < stall_seconds < 3


def test_a_client_leaving_mid_body_is_one_info_line_without_a_traceback(tmp_path: Path, bridge_logs: Records) -> None:
    with LiveBridge(f"sqlite:///{tmp_path}/b.db") as bridge:
        with socket.create_connection(("127.0.0.1", bridge.port), timeout=5) as sock:
            sock.sendall(
                b"POST /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n"
                b"Content-Type: application/scim+json\r\nContent-Length: 100000\r\n\r\n" + b"{" + b" " * 5000
            )
            time.sleep(0.3)  # the bridge is reading the body when the client goes
        time.sleep(0.5)
        with bridge.client() as scim:
            assert scim.get("/Users").status_code == 200
    gone = [r for r in bridge_logs.records if "disconnected before its request was complete" in r.getMessage()]
    assert [r.levelname for r in gone] == ["INFO"] and "POST /scim/v2/Users" in gone[0].getMessage()
    assert [r.getMessage() for r in bridge_logs.records if r.levelno >= logging.WARNING] == []
    assert not any(r.exc_info for r in bridge_logs.records)


def test_a_host_header_nobody_trusts_never_reaches_another_reader(tmp_path: Path) -> None:
    (tmp_path / "policy.yml").write_text(yaml.safe_dump({"access": {"context": {"region": "{division}"}}}))
    with LiveBridge(f"sqlite:///{tmp_path}/b.db", policy=tmp_path / "policy.yml") as bridge:
        evil = {"Host": "evil.example"}
        with bridge.client() as scim:
            manager = scim.post("/Users", headers=evil, json={"schemas": [USER], "userName": "boss@example.com"})
            enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            user = scim.post(
                "/Users",
                headers=evil,
                json={
                    "schemas": [USER, enterprise],
                    "userName": "ada@example.com",
                    enterprise: {"manager": {"value": manager.json()["id"]}},
                },
            )
            group = scim.post(
                "/Groups",
                headers=evil,
                json={"schemas": [GROUP], "displayName": "Team", "members": [{"value": user.json()["id"]}]},
            )
            bulk = scim.post(
                "/Bulk",
                headers=evil,
                json={
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                    "Operations": [
                        {"method": "POST", "path": "/Users", "bulkId": "b1", "data": {"userName": "bea@example.com"}}
                    ],
                },
            )
            reads = [
                scim.get(f"/Users/{user.json()['id']}"),
                scim.get(f"/Groups/{group.json()['id']}"),
                scim.get("/Users"),
                scim.get("/ServiceProviderConfig", headers=evil),
            ]
        context = bridge.client(headers=evil).get(f"{bridge.root}/api/v1/context/ada@example.com?format=jwt")
    assert [r.status_code for r in (manager, user, group, bulk)] == [201, 201, 201, 200]
    assert all(r.status_code == 200 for r in reads)
    everything = " ".join([user.headers["location"], user.text, group.text, bulk.text, *(r.text for r in reads)])
    assert "evil.example" not in everything
    assert reads[0].json()["meta"]["location"] == f"{bridge.base}/Users/{user.json()['id']}"
    claims = json.loads(base64.urlsafe_b64decode(context.text.split(".")[1] + "=="))
    assert context.status_code == 200 and claims["iss"] == bridge.root


def test_an_allowed_host_is_used_as_it_was_asked(tmp_path: Path) -> None:
    with LiveBridge(f"sqlite:///{tmp_path}/b.db", allowed_hosts=["bridge.example.com", "*.corp.example"]) as bridge:
        with bridge.client() as scim:
            named = scim.post(
                "/Users", headers={"Host": "bridge.example.com"}, json={"schemas": [USER], "userName": "a@x.com"}
            )
            sub = scim.post(
                "/Users", headers={"Host": "scim.corp.example:8443"}, json={"schemas": [USER], "userName": "b@x.com"}
            )
            other = scim.post("/Users", headers={"Host": "evil.example"}, json={"schemas": [USER], "userName": "c@x"})
    assert named.json()["meta"]["location"].startswith("http://bridge.example.com/scim/v2/Users/")
    assert sub.json()["meta"]["location"].startswith("http://scim.corp.example:8443/scim/v2/Users/")
    assert other.json()["meta"]["location"].startswith("http://bridge.example.com/scim/v2/Users/")

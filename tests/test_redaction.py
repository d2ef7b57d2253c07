"""No secret reaches a capture file, a log line or the audit trail: every secret-bearing request
shape sent to `scim-bridge serve` over HTTP, then all three searched for every secret value."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from tests.live import free_port

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"

# Distinctive values: a find of any of them anywhere is a leak.
TOKEN, API_KEY, BASIC_PASSWORD = "tok-Zq81-bearer", "apikey-Zq82", "basicpw-Zq83"
WEBHOOK_SECRET = "whsec-Zq87"


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scim_bridge", *args], capture_output=True, text=True, timeout=60, env=env
    )


def send_every_shape(base: str, client_id: str, client_secret: str) -> list[str]:
    """Each secret-bearing request shape; the secrets it sent."""
    secrets = [TOKEN, API_KEY, BASIC_PASSWORD, WEBHOOK_SECRET, client_secret]
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=base, headers=bearer, timeout=10) as http:
        # headers: the configured API-key header, Basic, Cookie, X-…-Secret / X-…-Token
        extra = {"Cookie": "session=cookie-Zq84", "X-Acme-Secret": "xsecret-Zq85", "X-Acme-Token": "xtoken-Zq86"}
        secrets += ["cookie-Zq84", "xsecret-Zq85", "xtoken-Zq86"]
        assert http.get("/scim/v2/Users", headers={"Authorization": "", "X-Acme-Key": API_KEY}).status_code == 200
        assert http.get("/scim/v2/Users", auth=("otds", BASIC_PASSWORD), headers=extra).status_code == 200
        # passwords in bodies: plain, URN-qualified (any case), PUT, PATCH by path and by value
        created = []
        for i, (key, value) in enumerate(
            [
                ("password", "pw-plain-Zq88"),
                (f"{USER}:password", "pw-urn-Zq89"),
                (f"{USER}:PASSWORD".upper(), "pw-URN-Zq90"),
            ]
        ):
            secrets.append(value)
            answer = http.post("/scim/v2/Users", json={"schemas": [USER], "userName": f"r{i}@example.com", key: value})
            assert answer.status_code in (201, 400), answer.text
            if answer.status_code == 201:
                created.append(answer.json()["id"])
        user = created[0]
        secrets.append("pw-put-Zq91")
        put = {"schemas": [USER], "userName": "r0@example.com", "password": "pw-put-Zq91"}
        assert http.put(f"/scim/v2/Users/{user}", json=put).status_code == 200
        operations = [
            {"op": "replace", "path": "password", "value": "pw-patch-Zq92"},
            {"op": "replace", "path": f"{USER}:password", "value": "pw-patchurn-Zq93"},
            {"op": "replace", "value": {"password": "pw-patchval-Zq94"}},
        ]
        secrets += ["pw-patch-Zq92", "pw-patchurn-Zq93", "pw-patchval-Zq94"]
        for operation in operations:
            answer = http.patch(f"/scim/v2/Users/{user}", json={"schemas": [PATCH], "Operations": [operation]})
            assert answer.status_code == 200, answer.text
        # Bulk: a POST with a password, a PATCH whose data holds it by path and by value
        secrets += ["pw-bulkpost-Zq95", "pw-bulkpath-Zq96", "pw-bulkval-Zq97", "pw-bulkbad-Zq109"]
        bulk = {
            "schemas": [BULK],
            "Operations": [
                {
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": "b1",
                    "data": {"schemas": [USER], "userName": "bulk@example.com", "password": "pw-bulkpost-Zq95"},
                },
                {
                    "method": "PATCH",
                    "path": f"/Users/{user}",
                    "data": {
                        "schemas": [PATCH],
                        "Operations": [
                            {"op": "replace", "path": "password", "value": "pw-bulkpath-Zq96"},
                            {"op": "replace", "value": {"password": "pw-bulkval-Zq97"}},
                        ],
                    },
                },
                {  # refused (no such user): the audit trail records the failed operation
                    "method": "PATCH",
                    "path": "/Users/no-such-user",
                    "data": {
                        "schemas": [PATCH],
                        "Operations": [{"op": "replace", "value": {"password": "pw-bulkbad-Zq109"}}],
                    },
                },
            ],
        }
        assert http.post("/scim/v2/Bulk", json=bulk).status_code == 200
        # a password in a filter: in the query, and in a /.search body
        secrets += ["pw-filter-Zq98", "pw-search-Zq99"]
        http.get("/scim/v2/Users", params={"filter": 'userName eq "x" or password eq "pw-filter-Zq98"'})
        http.post("/scim/v2/Users/.search", json={"schemas": [SEARCH], "filter": 'password eq "pw-search-Zq99"'})
        # secrets in query strings
        query = {
            "access_token": "qs-at-Zq100",
            "client_secret": "qs-cs-Zq101",
            "token": "qs-tok-Zq102",
            "code": "qs-code-Zq103",
            "password": "qs-pw-Zq104",
        }
        secrets += list(query.values())
        http.get("/scim/v2/Users", params=query)
        # /oauth/token: form bodies (a wrong secret, a real one) and a secret in its query
        secrets += ["form-cs-Zq105", "form-code-Zq106", "form-pw-Zq107", "qs-oauth-Zq108"]
        form = {"grant_type": "client_credentials", "client_id": client_id}
        wrong = {**form, "client_secret": "form-cs-Zq105", "code": "form-code-Zq106", "password": "form-pw-Zq107"}
        assert http.post("/oauth/token", data=wrong, headers={"Authorization": ""}).status_code == 401
        issued = http.post(
            "/oauth/token?client_secret=qs-oauth-Zq108",
            data={**form, "client_secret": client_secret},
            headers={"Authorization": ""},
        )
        assert issued.status_code == 200, issued.text
        access = issued.json()["access_token"]
        secrets.append(access)
        assert http.get("/scim/v2/Users", headers={"Authorization": f"Bearer {access}"}).status_code == 200
        # the iconik webhook's shared secret header
        delivery = {"object_type": "assets", "event_type": "create", "object_id": "a1", "user_id": "u1"}
        hooked = http.post(
            "/webhooks/iconik", json=delivery, headers={"Authorization": "", "X-Bridge-Secret": WEBHOOK_SECRET}
        )
        assert hooked.status_code == 200, hooked.text
    return secrets


def test_no_secret_reaches_the_capture_file_the_logs_or_the_audit_trail(tmp_path: Path) -> None:
    store, capture = f"sqlite:///{tmp_path}/leak.db", tmp_path / "capture.jsonl"
    (tmp_path / "iconik.json").write_text(
        json.dumps({"app_id": "app", "auth_token": "iconik-token-Zq110", "webhook_secret": WEBHOOK_SECRET})
    )
    policy = {
        "targets": {
            "cloudinary": {"enabled": False},
            "iconik": {
                "enabled": True,
                "base_url": "http://127.0.0.1:9",
                "credentials_file": str(tmp_path / "iconik.json"),
            },
        }
    }
    (tmp_path / "policy.yml").write_text(yaml.safe_dump(policy))
    env = {
        **os.environ,
        "SCIM_BRIDGE_TOKENS": TOKEN,
        "SCIM_BRIDGE_API_KEYS": API_KEY,
        "SCIM_BRIDGE_API_KEY_HEADER": "X-Acme-Key",
        "SCIM_BRIDGE_BASIC_USERS": f"otds:{BASIC_PASSWORD}",
        "SCIM_BRIDGE_ACCESS_LOG": "true",  # every URL, query string included, is a log line
        "SCIM_BRIDGE_SYNC_WORKERS": "0",
    }
    client = dict(
        line.split("=", 1)
        for line in run("credentials", "--store", store, "create-client", "otds", env=env).stdout.split()
    )
    port, log_file = free_port(), (tmp_path / "bridge.log").open("wb")  # a file: a full pipe would stall it
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
            "--policy",
            str(tmp_path / "policy.yml"),
            "--log-level",
            "debug",
        ],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(f"{base}/health")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        secrets = send_every_shape(base, client["client_id"], client["client_secret"])
    finally:
        server.terminate()
        server.wait(timeout=10)
        log_file.close()
    logs = (tmp_path / "bridge.log").read_text()
    exported = run("audit", "export", "--store", store, env=env)
    assert exported.returncode == 0, exported.stderr
    captured = capture.read_text()
    # Each place holds the requests (so finding nothing means something) …
    assert captured.count("\n") >= 18 and "/webhooks/iconik" in captured and "/oauth/token" in captured
    assert "GET /scim/v2/Users?" in logs and "[redacted]" in logs
    assert exported.stdout.count('"kind"') >= 5 and "refused" in exported.stdout
    # … and none holds a secret, nor the Basic credential's encoded form.
    secrets.append(base64.b64encode(f"otds:{BASIC_PASSWORD}".encode()).decode())
    secrets.append(base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode())
    found = [
        (secret, where)
        for secret in secrets
        for where, text in (("capture", captured), ("logs", logs), ("audit export", exported.stdout))
        if secret in text
    ]
    assert found == []


def test_log_lines_with_urls_header_dumps_and_tracebacks_are_redacted() -> None:
    program = """
import logging
from scim_bridge.cli import configure_logging
configure_logging("info")
log = logging.getLogger("scim_bridge.anything")
log.info("calling %s", "https://x.example/v1?client_secret=cs-Zq201&page=2&filter=password%20eq%20%22pw-Zq202%22")
headers = {"Authorization": "Bearer tok-Zq203", "Cookie": "a=ck-Zq204; b=ck-Zq205", "X-Bridge-Secret": "wh-Zq206"}
log.info("headers %s", headers)
log.warning("body %s", '{"userName": "a", "urn:ietf:params:scim:schemas:core:2.0:User:password": "pw-Zq207"}')
try:
    raise ValueError("token=tk-Zq208 rejected")
except ValueError:
    log.exception("failed with password=pw-Zq209")
"""
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    text = result.stderr
    assert text.count("[redacted]") >= 8 and "Traceback" in text and "page=2" in text
    assert [f"Zq{n}" for n in range(201, 210) if f"Zq{n}" in text] == []

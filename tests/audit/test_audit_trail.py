"""The audit trail end to end over real HTTP, on both stores: SCIM writes with their diffs and
credential, refusals, the correlation id, verification against tampering, retention, export (CLI)
and the admin API."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scim_bridge import cli
from scim_bridge.audit.trail import AuditTrail
from scim_bridge.store import open_store
from tests.audit import tamper
from tests.live import TOKEN, LiveBridge

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ADMIN = "admin-token-for-audit"
PASSWORD = "Sup3r-Secret-Passw0rd!"


@pytest.fixture
def store_url(bridge_store_url: str) -> str:
    return bridge_store_url


@pytest.fixture
def bridge(store_url: str) -> Iterator[LiveBridge]:
    with LiveBridge(store_url, admin_tokens=[ADMIN]) as live:
        yield live


def create_user(scim: httpx.Client, name: str, **headers: str) -> httpx.Response:
    response = scim.post(
        "/Users",
        headers=headers,
        json={
            "schemas": [USER],
            "userName": name,
            "password": PASSWORD,
            "name": {"givenName": "Ada", "familyName": "L"},
            "emails": [{"value": name, "type": "work", "primary": True}],
        },
    )
    assert response.status_code == 201, response.text
    return response


def run_cli(*argv: str) -> int:
    return cli.main(list(argv))


def test_scim_writes_are_recorded_with_diff_credential_and_correlation(bridge: LiveBridge, store_url: str) -> None:
    with bridge.client() as scim:
        created = create_user(scim, "ada@example.com", **{"X-Request-Id": "otds-push-0001"})
        assert created.headers["x-request-id"] == "otds-push-0001"  # the client's id, echoed
        user_id = created.json()["id"]
        patched = scim.patch(
            f"/Users/{user_id}",
            json={
                "schemas": [PATCH],
                "Operations": [
                    {"op": "replace", "path": "name.givenName", "value": "Augusta"},
                    {"op": "replace", "path": "password", "value": "An0ther-Secret!"},
                ],
            },
        )
        assert patched.status_code == 200 and len(patched.headers["x-request-id"]) == 24  # generated
        assert scim.post("/Users", json={"schemas": [USER], "userName": "ADA@example.com"}).status_code == 409
        assert scim.delete(f"/Users/{user_id}").status_code == 204
    scim_entries = [r for r in tamper.records(store_url) if r["kind"] == "scim"]
    assert [(r["operation"], r["outcome"]) for r in scim_entries] == [
        ("create", "applied"),
        ("patch", "applied"),
        ("create", "refused"),
        ("delete", "applied"),
    ]
    create, patch, refused, delete = scim_entries
    assert create["correlation"] == "otds-push-0001" and patch["correlation"] == patched.headers["x-request-id"]
    for entry in scim_entries:
        assert entry["client"] == {"kind": "token", "name": "env-token-1"}  # who, never the token itself
    assert create["resource"] == {"type": "User", "id": user_id, "name": "ada@example.com"}
    assert create["request"] == "POST /scim/v2/Users"
    assert {"path": "name.givenName", "old": None, "new": "Ada"} in create["changes"]
    assert {"path": "emails", "added": ["ada@example.com"], "removed": []} in create["changes"]
    assert patch["changes"] == [{"path": "name.givenName", "old": "Ada", "new": "Augusta"}]
    assert refused["status"] == 409 and refused["scimType"] == "uniqueness" and refused["changes"] == []
    assert (
        delete["resource"]["id"] == user_id
        and {"path": "userName", "old": "ada@example.com", "new": None} in delete["changes"]
    )
    raw = tamper.raw_bytes(store_url)
    for secret in (PASSWORD, "An0ther-Secret!", TOKEN):
        assert secret.encode() not in raw


def test_bulk_operations_are_recorded_one_by_one(bridge: LiveBridge, store_url: str) -> None:
    with bridge.client() as scim:
        response = scim.post(
            "/Bulk",
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [
                    {
                        "method": "POST",
                        "path": "/Users",
                        "bulkId": "a",
                        "data": {"schemas": [USER], "userName": "bulk-a"},
                    },
                    {
                        "method": "POST",
                        "path": "/Groups",
                        "bulkId": "g",
                        "data": {
                            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                            "displayName": "Bulk Team",
                            "members": [{"value": "bulkId:a"}],
                        },
                    },
                    {"method": "DELETE", "path": "/Users/does-not-exist"},
                ],
            },
        )
        assert response.status_code == 200
    entries = [r for r in tamper.records(store_url) if r["kind"] == "scim"]
    assert [(r["operation"], r["outcome"], r["request"]) for r in entries] == [
        ("create", "applied", "POST /scim/v2/Bulk"),
        ("create", "applied", "POST /scim/v2/Bulk"),
        ("delete", "refused", "POST /scim/v2/Bulk"),
    ]
    assert len({r["correlation"] for r in entries}) == 1
    user_id = entries[0]["resource"]["id"]
    assert {"path": "members", "added": [user_id], "removed": []} in entries[1]["changes"]


def test_verify_detects_an_edited_and_a_removed_entry(
    bridge: LiveBridge, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with bridge.client() as scim:
        for n in range(5):
            create_user(scim, f"user{n}@example.com")
    assert len(tamper.records(store_url)) == 5
    assert run_cli("audit", "verify", "--store", store_url) == 0
    assert "intact: 5 entries, seq 1..5" in capsys.readouterr().out

    tamper.edit(store_url, 3, b"user2@example.com", b"mallory@example.com")
    assert run_cli("audit", "verify", "--store", store_url) == 1
    message = capsys.readouterr().err
    assert "TAMPERED at seq 3 (edited)" in message, message
    tamper.edit(store_url, 3, b"mallory@example.com", b"user2@example.com")  # put back
    assert run_cli("audit", "verify", "--store", store_url) == 0
    capsys.readouterr()

    tamper.remove(store_url, 4)
    assert run_cli("audit", "verify", "--store", store_url) == 1
    message = capsys.readouterr().err
    assert "TAMPERED at seq 4 (removed)" in message and "seq 4 is missing" in message, message


def test_removing_the_newest_entry_is_detected(store_url: str) -> None:
    async def fill() -> None:
        store = open_store(store_url)
        await store.open()
        await store.audit_append([b'{"n":1}', b'{"n":2}'])
        await store.audit_seal()
        await store.close()

    asyncio.run(fill())
    tamper.remove(store_url, 2)
    report = tamper.verify(store_url)
    assert not report.ok and (report.bad_seq, report.problem) == (2, "removed")


def test_retention_prunes_old_entries_and_verify_still_passes(store_url: str) -> None:
    async def scenario() -> None:
        store = open_store(store_url)
        await store.open()
        try:
            trail = AuditTrail(store, retention_days=1)
            await store.audit_append([b'{"old":1}', b'{"old":2}', b'{"old":3}'])
            await trail.flush()
            await asyncio.sleep(0.02)
            await store.audit_append([b'{"new":1}', b'{"new":2}'])
            await trail.flush()
            new_time = (await store.audit_read(after_seq=3, limit=1))[0].time_us / 1e6
            assert await trail.prune(now=new_time + 86400) == 3  # the three older than a day then
            assert (await trail.verify()).ok
            head = await store.audit_head()
            assert (head.anchor_seq, head.last_seq) == (3, 5)
            assert [e.seq for e in await store.audit_read()] == [4, 5]
        finally:
            await store.close()

    asyncio.run(scenario())
    tamper.remove(store_url, 4)  # the first retained entry still has the anchor to answer to
    report = tamper.verify(store_url)
    assert (report.ok, report.bad_seq, report.problem) == (False, 4, "removed")


def test_export_jsonl_and_csv_with_filters(bridge: LiveBridge, store_url: str, tmp_path: Path) -> None:
    with bridge.client() as scim:
        ada = create_user(scim, "ada@example.com").json()["id"]
        create_user(scim, "bob@example.com")
        scim.patch(
            f"/Users/{ada}",
            json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": "Ada L"}]},
        )
        scim.delete(f"/Users/{ada}")
    tamper.records(store_url)  # chained
    out = tmp_path / "ada.jsonl"
    assert (
        run_cli(
            "audit",
            "export",
            "--store",
            store_url,
            "--format",
            "jsonl",
            "--user",
            "ada@example.com",
            "--output",
            str(out),
        )
        == 0
    )
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["operation"] for line in lines] == ["create", "patch", "delete"]  # a deleted user, by name
    assert all(line["resource"]["id"] == ada and len(line["hash"]) == 64 for line in lines)
    out = tmp_path / "all.csv"
    assert run_cli("audit", "export", "--store", store_url, "--format", "csv", "--output", str(out)) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [row["resource_name"] for row in rows] == [
        "ada@example.com",
        "bob@example.com",
        "ada@example.com",
        "ada@example.com",
    ]
    assert rows[0]["client"] == "token:env-token-1" and json.loads(rows[2]["changes"])[0]["path"] == "displayName"
    future = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 3600))
    out = tmp_path / "none.jsonl"
    assert run_cli("audit", "export", "--store", store_url, "--since", future, "--output", str(out)) == 0
    assert out.read_text() == ""


def test_admin_api_filters_by_user_and_time(bridge: LiveBridge, store_url: str) -> None:
    with bridge.client() as scim:
        ada = create_user(scim, "ada@example.com").json()["id"]
        time.sleep(0.05)
        middle = time.time()
        time.sleep(0.05)
        create_user(scim, "bob@example.com")
        scim.patch(
            f"/Users/{ada}",
            json={"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "Countess"}]},
        )
    tamper.records(store_url)  # chained (the bridge also does so within 100 ms)
    admin = httpx.Client(base_url=f"{bridge.root}/admin/api", headers={"Authorization": f"Bearer {ADMIN}"})
    with bridge.client() as scim:
        assert scim.get(f"{bridge.root}/admin/api/audit").status_code == 403  # SCIM tokens lack the admin scope
    by_user = admin.get("/audit", params={"user": ada}).json()
    assert [e["operation"] for e in by_user["entries"]] == ["create", "patch"] and by_user["next"] is None
    by_name = admin.get("/audit", params={"user": "ADA@example.com"}).json()["entries"]
    assert [e["seq"] for e in by_name] == [e["seq"] for e in by_user["entries"]]
    since = admin.get("/audit", params={"since": middle}).json()["entries"]
    assert [(e["operation"], e["resource"]["name"]) for e in since] == [
        ("create", "bob@example.com"),
        ("patch", "ada@example.com"),
    ]
    iso_middle = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(middle)) + f".{int(middle % 1 * 1e6):06d}Z"
    until = admin.get("/audit", params={"until": iso_middle, "user": ada}).json()["entries"]
    assert [e["operation"] for e in until] == ["create"]
    page = admin.get("/audit", params={"limit": 2}).json()
    assert len(page["entries"]) == 2 and page["next"] == page["entries"][-1]["seq"]
    rest = admin.get("/audit", params={"after": page["next"]}).json()["entries"]
    assert len(rest) == 1
    csv_text = admin.get("/audit", params={"format": "csv", "user": ada}).text
    assert len(list(csv.DictReader(io.StringIO(csv_text)))) == 2
    jsonl = admin.get("/audit", params={"format": "jsonl"}).text.splitlines()
    assert len(jsonl) == 3
    assert admin.get("/audit", params={"since": "yesterday"}).status_code == 400

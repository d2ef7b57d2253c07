"""Scopes over real HTTP, on both stores: what a credential made with `credentials --scope` may do.

Credentials are made the way an operator makes them, with the `scim-bridge credentials` command
against the bridge's store; the bridge reads them from there (shared by replicas).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from scim_bridge.auth.credentials import TOKENS, CredentialBook, digest
from scim_bridge.cli import main
from scim_bridge.store import open_store
from tests.live import TOKEN, LiveBridge

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
ENV_ADMIN = "env-admin-token-0123456789"
POLICY = {"access": {"context": {"folders": ["teams/{department}"]}}}  # no target: the context still answers


def credentials(store_url: str, *args: str) -> str:
    """Run `scim-bridge credentials …` and return what it printed; fail on a non-zero exit."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["credentials", "--store", store_url, *args])
    assert code == 0, out.getvalue()
    return out.getvalue().strip()


def client_pair(printed: str) -> tuple[str, str]:
    values = dict(line.split("=", 1) for line in printed.splitlines())
    return values["client_id"], values["client_secret"]


@pytest.fixture
def bridge(bridge_store_url: str, tmp_path: Path) -> Iterator[LiveBridge]:
    (tmp_path / "policy.yml").write_text(yaml.safe_dump(POLICY))
    with LiveBridge(
        bridge_store_url, policy=tmp_path / "policy.yml", admin_tokens=[ENV_ADMIN], basic_users=["ping:pa55word"]
    ) as live:
        yield live


@pytest.fixture
def user_id(bridge: LiveBridge) -> str:
    with bridge.client() as scim:
        answer = scim.post("/Users", json={"schemas": [USER], "userName": "lena@example.com"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def as_bearer(bridge: LiveBridge, token: str) -> httpx.Client:
    return httpx.Client(base_url=bridge.root, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def scim_writes(user_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    bulk = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [{"method": "DELETE", "path": f"/Users/{user_id}"}],
    }
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    return [
        ("POST", "/scim/v2/Users", {"schemas": [USER], "userName": "intruder@example.com"}),
        ("PUT", f"/scim/v2/Users/{user_id}", {"schemas": [USER], "userName": "renamed@example.com"}),
        ("PATCH", f"/scim/v2/Users/{user_id}", patch),
        ("DELETE", f"/scim/v2/Users/{user_id}", {}),
        ("POST", "/scim/v2/Bulk", bulk),
    ]


def assert_scim_403(answer: httpx.Response, needed: str) -> None:
    assert answer.status_code == 403, answer.text
    body = answer.json()
    assert body["schemas"] == [ERROR] and body["status"] == "403"
    assert f"needs the {needed} scope" in body["detail"]


def test_an_apps_credential_reads_the_delivery_context_and_gets_403_on_every_scim_write(
    bridge: LiveBridge, user_id: str
) -> None:
    token = credentials(bridge.settings.store, "create-token", "workflow-app", "--scope", "apps")
    with as_bearer(bridge, token) as app:
        context = app.get(f"/api/v1/context/{user_id}")
        assert context.status_code == 200, context.text
        assert context.json()["user"]["userName"] == "lena@example.com"
        for method, path, body in scim_writes(user_id):
            assert_scim_403(app.request(method, path, json=body or None), "scim:write")
        assert_scim_403(app.get("/scim/v2/Users"), "scim:read")  # apps is not SCIM at all
    with bridge.client() as scim:  # nothing was changed by the refused requests
        after = scim.get(f"/Users/{user_id}").json()
        assert after["userName"] == "lena@example.com" and after["active"] is True
        assert scim.get("/Users").json()["totalResults"] == 1


def test_a_scim_read_credential_lists_searches_and_discovers_but_cannot_write(bridge: LiveBridge, user_id: str) -> None:
    token = credentials(bridge.settings.store, "create-token", "auditor", "--scope", "scim:read")
    with as_bearer(bridge, token) as reader:
        assert reader.get("/scim/v2/Users").json()["totalResults"] == 1
        assert reader.get(f"/scim/v2/Users/{user_id}").status_code == 200
        search = reader.post(
            "/scim/v2/Users/.search",
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": 'userName eq "lena@example.com"',
            },
        )
        assert search.status_code == 200 and search.json()["totalResults"] == 1
        assert reader.get("/scim/v2/ServiceProviderConfig").status_code == 200
        assert reader.get("/scim/v2/Schemas").status_code == 200
        for method, path, body in scim_writes(user_id):
            assert_scim_403(reader.request(method, path, json=body or None), "scim:write")
        apps = reader.get(f"/api/v1/context/{user_id}")
        assert apps.status_code == 403 and "needs the apps scope" in apps.json()["error"]  # the apps' JSON style


def test_a_scim_write_credential_can_also_read(bridge: LiveBridge, user_id: str) -> None:
    token = credentials(bridge.settings.store, "create-token", "okta", "--scope", "scim:write")
    with as_bearer(bridge, token) as okta:
        assert okta.get(f"/scim/v2/Users/{user_id}").status_code == 200
        patch = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        }
        assert okta.patch(f"/scim/v2/Users/{user_id}", json=patch).status_code == 200
        assert okta.get(f"/api/v1/context/{user_id}").status_code == 403


def test_an_admin_only_credential_opens_the_admin_api_and_cannot_touch_scim(bridge: LiveBridge, user_id: str) -> None:
    stored = credentials(bridge.settings.store, "create-token", "operator", "--scope", "admin")
    assert stored.startswith("sba_")
    for token in (stored, ENV_ADMIN):
        with as_bearer(bridge, token) as admin:
            assert admin.get("/admin/api/queue").status_code == 200
            assert admin.get(f"/admin/api/users/{user_id}").json()["id"] == user_id
            assert_scim_403(admin.get("/scim/v2/Users"), "scim:read")
            for method, path, body in scim_writes(user_id):
                assert_scim_403(admin.request(method, path, json=body or None), "scim:write")
            assert admin.get(f"/api/v1/context/{user_id}").status_code == 403


def test_credentials_without_scopes_keep_scim_and_apps_access_but_never_admin(bridge: LiveBridge, user_id: str) -> None:
    async def old_token() -> str:  # a token stored before scopes existed: no `scopes` field
        store = open_store(bridge.settings.store)
        await store.open()
        try:
            await store.kv_put(TOKENS, digest("sbt_from-last-year"), b'{"name": "old", "created": "2025-01-01"}')
        finally:
            await store.close()
        return "sbt_from-last-year"

    old = asyncio.run(old_token())
    for headers in (
        {"Authorization": f"Bearer {TOKEN}"},  # SCIM_BRIDGE_TOKENS
        {"Authorization": f"Bearer {old}"},
        {"Authorization": "Basic cGluZzpwYTU1d29yZA=="},  # ping:pa55word
    ):
        with httpx.Client(base_url=bridge.root, headers=headers, timeout=10) as caller:
            assert caller.get(f"/scim/v2/Users/{user_id}").status_code == 200
            assert caller.get(f"/api/v1/context/{user_id}").status_code == 200
            admin = caller.get("/admin/api/queue")
            assert admin.status_code == 403 and "needs the admin scope" in admin.json()["error"], headers
    with bridge.client(old) as scim:
        assert scim.delete(f"/Users/{user_id}").status_code == 204


def test_routes_no_scope_names_need_the_admin_scope(bridge: LiveBridge) -> None:
    with bridge.client() as scim:
        unknown = scim.get(bridge.root + "/internal/debug")
    assert_scim_403(unknown, "admin")
    with as_bearer(bridge, ENV_ADMIN) as admin:
        assert admin.get("/internal/debug").status_code == 404  # admin passes; there is nothing there


def test_an_oauth_token_request_can_narrow_the_clients_scopes_but_not_widen_them(
    bridge: LiveBridge, user_id: str
) -> None:
    store = bridge.settings.store
    client_id, secret = client_pair(credentials(store, "create-client", "otds", "--scope", "scim:write,apps"))
    token_url = f"{bridge.root}/oauth/token"

    def ask(scope: str | None) -> httpx.Response:
        form = {"grant_type": "client_credentials", **({"scope": scope} if scope is not None else {})}
        return httpx.post(token_url, data=form, auth=(client_id, secret))

    everything = ask(None).json()
    assert everything["scope"] == "scim:write apps"
    narrowed = ask("scim:read")
    assert narrowed.status_code == 200 and narrowed.json()["scope"] == "scim:read"
    with as_bearer(bridge, narrowed.json()["access_token"]) as reader:
        assert reader.get(f"/scim/v2/Users/{user_id}").status_code == 200
        assert_scim_403(reader.delete(f"/scim/v2/Users/{user_id}"), "scim:write")
        assert reader.get(f"/api/v1/context/{user_id}").status_code == 403
    for beyond in ("admin", "scim:read admin", "bogus"):
        refused = ask(beyond)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope", beyond
        assert refused.json()["error_description"]
    with as_bearer(bridge, everything["access_token"]) as otds:
        assert otds.get(f"/api/v1/context/{user_id}").status_code == 200
        assert otds.delete(f"/scim/v2/Users/{user_id}").status_code == 204
        assert otds.get("/admin/api/queue").status_code == 403


def test_an_admin_oauth_client_opens_the_admin_api(bridge: LiveBridge) -> None:
    client_id, secret = client_pair(credentials(bridge.settings.store, "create-client", "ops", "--scope", "admin"))
    answer = httpx.post(
        f"{bridge.root}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    with as_bearer(bridge, answer.json()["access_token"]) as ops:
        assert ops.get("/admin/api/queue").status_code == 200
        assert_scim_403(ops.get("/scim/v2/Users"), "scim:read")


def test_the_admin_api_turns_on_when_a_stored_admin_credential_exists(bridge_store_url: str) -> None:
    with LiveBridge(bridge_store_url) as live:  # no SCIM_BRIDGE_ADMIN_TOKENS
        with live.client() as scim:
            off = scim.get(live.root + "/admin/api/queue")
        assert off.status_code == 404 and "create-token NAME --scope admin" in off.json()["error"]
        token = credentials(live.settings.store, "create-token", "operator", "--scope", "admin")
        with as_bearer(live, token) as admin:
            assert admin.get("/admin/api/queue").status_code == 200
        time.sleep(CredentialBook.CACHE_SECONDS + 0.1)  # the "is it off?" answer is cached as briefly
        with live.client() as scim:
            assert scim.get(live.root + "/admin/api/queue").status_code == 403
        with httpx.Client() as anonymous:
            assert anonymous.get(live.root + "/admin/api/queue").status_code == 401


def test_the_credentials_command_validates_and_lists_scopes(bridge_store_url: str) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["credentials", "--store", bridge_store_url, "create-token", "x", "--scope", "apps,scim:delete"])
    assert code == 2 and "unknown scope 'scim:delete'" in err.getvalue() and "scim:read" in err.getvalue()
    credentials(bridge_store_url, "create-token", "app", "--scope", "apps", "--scope", "scim:read")
    credentials(bridge_store_url, "create-client", "otds")
    listed = credentials(bridge_store_url, "list").splitlines()
    assert any(" app " in row and row.endswith("scim:read apps") for row in listed), listed
    assert any(" otds " in row and row.endswith("scim:read scim:write apps") for row in listed), listed
    assert not any(" x " in row for row in listed)  # nothing was stored for the refused command

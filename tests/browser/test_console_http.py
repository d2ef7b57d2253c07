"""The console's session, CSRF token, roles and idle timeout over real HTTP (httpx, no browser),
on both stores; and a session made on one replica works on another sharing the store."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import time
from typing import Any

import httpx
import pytest

from scim_bridge.auth.credentials import CredentialBook
from scim_bridge.store import open_store
from tests.live import TOKEN, LiveBridge

ADMIN = "sba_console-test-admin-token-0123456789"


def _console_token(store_url: str) -> str:
    async def make() -> str:
        store = open_store(store_url)
        await store.open()
        try:
            return await CredentialBook(store, [], {}, []).create_token("reader", frozenset({"console"}))
        finally:
            await store.close()

    # in a thread: Playwright's sync API (the browser tests beside these) may hold this thread's loop
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, make()).result()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def login(bridge: LiveBridge, token: str) -> tuple[httpx.Client, httpx.Response]:
    client = httpx.Client(base_url=bridge.root, timeout=10)
    form = client.get("/console/login")
    answer = client.post(
        "/console/login", data={"csrf_token": _csrf(form.text), "token": token, "next": "/console/held"}
    )
    return client, answer


def _bridge(store_url: str, **settings: Any) -> LiveBridge:
    return LiveBridge(store_url, admin_tokens=[ADMIN], **settings)


def test_login_sets_a_strict_http_only_cookie_and_roles_follow_scopes(bridge_store_url: str) -> None:
    with _bridge(bridge_store_url) as bridge:
        client, answer = login(bridge, ADMIN)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/held"
        cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and v.startswith("sb_console="))
        flags = {part.strip().lower() for part in cookie.split(";")}
        assert {"httponly", "samesite=strict", "path=/console"} <= flags
        assert "secure" not in flags  # plain HTTP here: a Secure cookie would never come back
        overview = client.get("/console")
        assert overview.status_code == 200 and 'data-role="operator"' in overview.text
        # a SCIM credential may not open the console; a wrong one is refused; neither gets a cookie
        for token, status in ((TOKEN, 403), ("nope", 401)):
            _, refused = login(bridge, token)
            assert refused.status_code == status and "sb_console=" not in refused.headers.get("set-cookie", "")
        reader, answer = login(bridge, _console_token(bridge_store_url))
        assert answer.status_code == 303
        letters = reader.get("/console/dead-letters")
        assert letters.status_code == 200 and 'data-role="read-only"' in letters.text
        replay = reader.post("/console/dead-letters/replay", data={"csrf_token": _csrf(letters.text)})
        assert replay.status_code == 403 and "operator role" in replay.text


def test_secure_cookie_when_served_over_https(tmp_path: Any) -> None:
    with _bridge(f"sqlite:///{tmp_path}/b.db", public_url="https://bridge.example.com") as bridge:
        form = httpx.get(bridge.root + "/console/login")
        assert "secure" in form.headers["set-cookie"].lower()
        # a client over HTTP does not send a Secure cookie back: send the login form's by hand
        cookie = form.headers["set-cookie"].split(";", 1)[0]
        answer = httpx.post(
            bridge.root + "/console/login",
            data={"csrf_token": _csrf(form.text), "token": ADMIN},
            headers={"Cookie": cookie},
        )
        assert answer.status_code == 303
        session = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and v.startswith("sb_console="))
        assert "secure" in session.lower()


def test_every_post_needs_the_sessions_csrf_token(bridge_store_url: str) -> None:
    with _bridge(bridge_store_url) as bridge:
        client, _ = login(bridge, ADMIN)
        page = client.get("/console/dead-letters")
        for data in ({}, {"csrf_token": "forged"}):
            refused = client.post("/console/dead-letters/replay", data=data)
            assert refused.status_code == 403 and "CSRF" in refused.text
        # the login form has its own token (a cookie and a field that must match)
        fresh = httpx.Client(base_url=bridge.root, timeout=10)
        fresh.get("/console/login")
        assert fresh.post("/console/login", data={"csrf_token": "x", "token": ADMIN}).status_code == 403
        # the right token works, via the form field or htmx's header
        assert (
            client.post("/console/dead-letters/replay", headers={"X-CSRF-Token": _csrf(page.text)}).status_code == 200
        )
        logout = client.post("/console/logout", data={"csrf_token": _csrf(page.text)})
        assert logout.status_code == 303 and "/console/login" in logout.headers["location"]
        assert client.get("/console").status_code == 303  # the session is gone from the store


def test_a_session_from_one_replica_works_on_another(bridge_store_url: str) -> None:
    with _bridge(bridge_store_url) as first, _bridge(bridge_store_url) as second:
        client, _ = login(first, ADMIN)
        other = httpx.Client(base_url=second.root, cookies=client.cookies, timeout=10)
        assert other.get("/console/groups").status_code == 200


def test_idle_sessions_end_and_polling_does_not_keep_them_alive(bridge_store_url: str) -> None:
    with _bridge(bridge_store_url, console_idle_minutes=1.5 / 60) as bridge:
        client, _ = login(bridge, ADMIN)
        until = time.monotonic() + 2.4
        while time.monotonic() < until:  # in use for longer than the idle timeout: still logged in
            assert client.get("/console/groups").status_code == 200
            time.sleep(0.3)
        until = time.monotonic() + 2.4
        while time.monotonic() < until:  # only the Overview's polling: it does not count as use
            client.get("/console/overview/live")
            time.sleep(0.3)
        ended = client.get("/console/groups")
        assert ended.status_code == 303 and ended.headers["location"].startswith("/console/login")


def test_root_sends_browsers_to_the_console_and_scim_clients_keep_their_401(tmp_path: Any) -> None:
    with _bridge(f"sqlite:///{tmp_path}/b.db") as bridge:
        browser = httpx.get(bridge.root + "/", headers={"Accept": "text/html,*/*"})
        assert browser.status_code == 303 and browser.headers["location"] == "/console"
        scim = httpx.get(bridge.root + "/", headers={"Accept": "application/scim+json"})
        assert scim.status_code == 401 and scim.headers["content-type"].startswith("application/scim+json")
        # a login link cannot send anyone off-site
        client = httpx.Client(base_url=bridge.root, timeout=10)
        form = client.get("/console/login")
        answer = client.post(
            "/console/login", data={"csrf_token": _csrf(form.text), "token": ADMIN, "next": "//evil.example"}
        )
        assert answer.headers["location"] == "/console"


def test_with_the_console_off_there_is_no_console_and_root_is_scims_401(tmp_path: Any) -> None:
    with _bridge(f"sqlite:///{tmp_path}/b.db", console=False) as bridge:
        assert httpx.get(bridge.root + "/console/login").status_code == 404
        browser = httpx.get(bridge.root + "/", headers={"Accept": "text/html,*/*"})
        assert browser.status_code == 401 and browser.headers["content-type"].startswith("application/scim+json")
        scim = httpx.get(bridge.base + "/Users", headers={"Authorization": f"Bearer {TOKEN}"})
        assert scim.status_code == 200


@pytest.mark.parametrize("path", ["/console", "/console/people", "/console/policy"])
def test_pages_without_a_session_go_to_the_login(tmp_path: Any, path: str) -> None:
    with _bridge(f"sqlite:///{tmp_path}/b.db") as bridge:
        answer = httpx.get(bridge.root + path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/console/login?next=")


def test_failed_logins_are_throttled(tmp_path: Any) -> None:
    with _bridge(f"sqlite:///{tmp_path}/b.db") as bridge:
        statuses = [login(bridge, f"guess-{n}")[1].status_code for n in range(6)]
        assert statuses == [401] * 5 + [429]  # five tries, then one every 12 s (auth/throttle.py)
        _, refused = login(bridge, ADMIN)  # even the right token waits its turn
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0

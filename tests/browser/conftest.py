"""The console in a real browser: Playwright for Python driving Debian's chromium (never a browser
download), against the sandbox served over real HTTP. A failed test leaves a screenshot of its
page in .pytest-artifacts/. Without chromium the tests FAIL, saying how to install it."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.live_sandbox import LiveSandbox

CHROMIUM = os.environ.get("SCIM_BRIDGE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / ".pytest-artifacts"
#: 11 leavers at once: one more than the sandbox's brake lets through (share_floor 10)
LEAVERS = [
    "ava.andersen@example.com",
    "ben.hansen@example.com",
    "chloe.olsen@example.com",
    "daniel.brown@example.com",
    "elena.ito@example.com",
    "farid.petrov@example.com",
    "hiro.jensen@example.com",
    "isabel.quist@example.com",
    "jonas.dubois@example.com",
    "kara.kim@example.com",
    "liam.rossi@example.com",
]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


# Module scope, not session: Playwright's sync API holds a running event loop in the main thread
# while it is open, and every later test calling asyncio.run() would fail on it.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"chromium not found at {CHROMIUM}: the browser tests need Debian's chromium "
            "(apt-get install chromium), or SCIM_BRIDGE_CHROMIUM naming one",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: CI containers run as root, where chromium's own sandbox cannot start
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[LiveSandbox]:
    with LiveSandbox() as running:
        running.wait_idle()
        yield running


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
        opened.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()


def log_in(page: Any, root: str, token: str) -> None:
    page.goto(root + "/console")
    page.get_by_label("Credential").fill(token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/console$"))

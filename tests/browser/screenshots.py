"""scripts/screenshots: the console's main screens as PNGs in docs/screenshots/, from a fresh
sandbox in Debian's chromium — the same set-up as the browser tests, plus a role raised by hand in
the Cloudinary emulator so the Drift screen has something to show."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.browser.conftest import CHROMIUM, LEAVERS, log_in
from tests.browser.live_sandbox import LiveSandbox

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    sandbox = LiveSandbox()
    sandbox.app.bridge.state.console.history.interval = 1.0  # type: ignore[attr-defined]  # charts fill fast
    with sandbox:
        sandbox.wait_idle()
        sandbox.deactivate(LEAVERS)
        sandbox.wait_idle()
        sandbox.dead_letter("noah.lopez@example.com", "iconik: POST /users → 503 (Unavailable)")
        sandbox.raise_role_by_hand("maya.eriksen@example.com")
        with sandbox.admin() as admin:
            admin.post("/reconcile").raise_for_status()
        zoe = sandbox.user_id("zoe.petrov@example.com")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1366, "height": 860})
            log_in(page, sandbox.root, sandbox.admin_token)
            time.sleep(8)  # a few chart samples
            page.reload()
            shots = {
                "overview": "/console",
                "person": f"/console/people/{zoe}",
                "held": "/console/held",
                "drift": "/console/drift",
            }
            for name, path in shots.items():
                page.goto(sandbox.root + path)
                page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
                print(f"docs/screenshots/{name}.png")
            page.goto(sandbox.root + "/console/policy")
            running = Path(sandbox.access["cli"]["policy"]).read_text()
            page.get_by_label("Candidate policy (YAML)").fill(
                running.replace('{group: "Legal Reviewers", role: viewer}', '{group: "Legal Reviewers", role: editor}')
            )
            page.get_by_role("button", name="Plan").click()
            page.locator("#plan").scroll_into_view_if_needed()
            page.screenshot(path=str(OUT / "policy-plan.png"))
            print("docs/screenshots/policy-plan.png")
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""An operator's day in the console, in chromium: log in, find a person and the rule behind each
grant, replay a dead letter, approve a held change, plan a candidate policy, log out; a read-only
login cannot replay; a POST without the CSRF token is refused."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import LEAVERS, log_in
from tests.browser.live_sandbox import LiveSandbox

FETCH_POST = """async ([path, headers]) => {
  const form = {"Content-Type": "application/x-www-form-urlencoded"};
  const answer = await fetch(path, {method: "POST", headers: {...form, ...headers}, body: ""});
  return answer.status;
}"""


def _held_rows(page: Any, root: str, seconds: float = 45) -> Any:
    """The held changes' rows, once the brake has held some (the leavers sync meanwhile)."""
    deadline = time.monotonic() + seconds
    while True:
        page.goto(root + "/console/held")
        rows = page.locator("#held tbody tr[data-key]")
        if rows.count():
            return rows
        assert time.monotonic() < deadline, "the deprovision brake held nothing"
        time.sleep(0.5)


@pytest.mark.slow  # ~25 s with the sandbox's start and initial load into both emulators
def test_an_operator_finds_a_person_replays_approves_plans_and_logs_out(page: Any, sandbox: LiveSandbox) -> None:
    root = sandbox.root
    log_in(page, root, sandbox.admin_token)
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    expect(page.locator("[data-role]")).to_have_text("operator")
    for name in ("cloudinary", "iconik"):
        expect(page.locator(f"article[data-target={name}] .state")).to_have_text("ok")
    expect(page.locator("svg.chart")).to_have_count(3)

    # find a person; their grants in each target, and the rule behind each
    page.get_by_role("navigation").get_by_role("link", name="People").click()
    page.get_by_label("Name or e-mail").fill("zoe")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Zoe Petrov").click()
    expect(page.get_by_role("heading", name="Zoe Petrov", level=1)).to_be_visible()
    cloudinary = page.locator("article[data-target=cloudinary]")
    expect(cloudinary.locator(".state")).to_have_text("synced")
    role = cloudinary.locator("table.grants tr", has_text="role media_library_admin")
    expect(role).to_contain_text("Legal Reviewers")
    folder = cloudinary.locator("table.grants tr", has_text="folder masters")
    expect(folder).to_contain_text("access.cloudinary.folders[3] (masters) via group Legal Reviewers")
    iconik = page.locator("article[data-target=iconik]")
    expect(iconik.locator("table.grants tr", has_text="collection Brand Masters")).to_contain_text("Legal Reviewers")
    timeline = page.locator("#timeline tbody")  # the audit trail's story of her, target calls in words
    expect(timeline).to_contain_text("SCIM create of User zoe.petrov@example.com")
    expect(timeline.locator("tr", has_text="cloudinary: ").first).to_contain_text("zoe.petrov@example.com")
    page.get_by_role("link", name="Explain").click()  # htmx: the explanation below the buttons
    expect(page.locator("#explain pre")).to_contain_text("zoe.petrov@example.com")
    page.get_by_role("button", name="Provision now").click()
    # in step already, so the pass changes nothing ("skipped"), but it ran every step
    expect(page.locator("#provisioned h2")).to_have_text(re.compile(r"^Provisioned now: (success|skipped)$"))
    expect(page.locator("#provisioned ol li")).to_have_count(6)  # directory, rules, … results

    # replay a dead letter
    scim_id = sandbox.dead_letter("maya.eriksen@example.com", "cloudinary: PUT /users/u-1 → 500 (Unavailable)")
    page.get_by_role("navigation").get_by_role("link", name="Dead letters").click()
    row = page.locator("#letters tbody tr", has_text="Maya Eriksen")
    expect(row).to_contain_text("500 (Unavailable)")
    row.get_by_role("button", name="Replay Maya Eriksen").click()
    expect(page.get_by_role("status")).to_have_text(f"requeued User/{scim_id}")
    expect(page.locator("#letters caption")).to_have_text("0 dead letter(s)")

    # eleven leavers at once: the brake lets ten through and holds the rest; approve one
    sandbox.deactivate(LEAVERS)
    sandbox.wait_idle()  # every leaver synced or held: the held list no longer grows
    rows = _held_rows(page, root)
    count = rows.count()
    first = rows.first
    key, target = first.get_attribute("data-key"), first.locator("td").first.inner_text()
    first.get_by_role("button", name=re.compile(r"^Approve ")).click()
    expect(page.get_by_role("status")).to_have_text("approved 1 change(s)")
    expect(page.locator("#held tbody tr[data-key]")).to_have_count(count - 1)
    expect(page.locator(f'#held tbody tr[data-key="{key}"]', has_text=target)).to_have_count(0)

    # plan a candidate policy: Legal Reviewers become editors of the masters folder
    running = Path(sandbox.access["cli"]["policy"]).read_text()
    candidate = running.replace('{group: "Legal Reviewers", role: viewer}', '{group: "Legal Reviewers", role: editor}')
    assert candidate != running
    page.get_by_role("navigation").get_by_role("link", name="Policy").click()
    expect(page.locator("#digest")).to_contain_text("sha256:")
    page.get_by_label("Candidate policy (YAML)").fill(candidate)
    page.get_by_role("button", name="Plan").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Plan: \d+ change"))).to_be_visible()
    grant = page.locator("#changes tbody tr", has_text="masters").filter(has_text="grant")
    expect(grant.first).to_contain_text("Legal Reviewers")
    assert Path(sandbox.access["cli"]["policy"]).read_text() == running  # planned, never applied

    # log out: the session is gone
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_have_text("You are logged out.")
    page.goto(root + "/console/people")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


def test_a_read_only_login_sees_but_cannot_replay(page: Any, sandbox: LiveSandbox) -> None:
    sandbox.dead_letter("noah.lopez@example.com", "iconik: POST /users → 503 (Unavailable)")
    log_in(page, sandbox.root, sandbox.console_token())
    expect(page.locator("[data-role]")).to_have_text("read-only")
    page.get_by_role("navigation").get_by_role("link", name="Dead letters").click()
    expect(page.locator("#letters tbody tr", has_text="Noah Lopez")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Replay"))).to_have_count(0)
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    assert page.evaluate(FETCH_POST, ["/console/dead-letters/replay", {"X-CSRF-Token": token}]) == 403
    page.reload()
    expect(page.locator("#letters tbody tr", has_text="Noah Lopez")).to_be_visible()


def test_a_post_without_the_csrf_token_is_refused(page: Any, sandbox: LiveSandbox) -> None:
    sandbox.dead_letter("olga.schmidt@example.com", "cloudinary: DELETE /users/u-2 → 500 (Unavailable)")
    log_in(page, sandbox.root, sandbox.admin_token)
    page.goto(sandbox.root + "/console/dead-letters")
    assert page.evaluate(FETCH_POST, ["/console/dead-letters/replay", {}]) == 403
    page.reload()
    expect(page.locator("#letters tbody tr", has_text="Olga Schmidt")).to_be_visible()


def test_drift_is_repaired_only_after_a_confirmation(page: Any, sandbox: LiveSandbox) -> None:
    sandbox.wait_idle()
    sandbox.raise_role_by_hand("pablo.fischer@example.com")
    log_in(page, sandbox.root, sandbox.admin_token)
    page.get_by_role("navigation").get_by_role("link", name="Drift").click()
    page.get_by_role("button", name="Check now").click()
    expect(page.get_by_role("status")).to_contain_text("nothing was changed")
    wrong = page.locator("#drift tbody tr", has_text="pablo.fischer@example.com").filter(has_text="wrong-role")
    expect(wrong).to_contain_text("admin (directory: ")
    wanted = re.search(r"set (\S+)", wrong.inner_text())
    assert wanted, wrong.inner_text()
    assert sandbox.cloudinary_role("pablo.fischer@example.com") == "admin"  # a check changes nothing
    page.get_by_role("link", name="Repair…").click()
    expect(page.get_by_role("heading", name="Repair drift?")).to_be_visible()
    expect(page.locator("#repairs tbody tr", has_text="pablo.fischer@example.com")).to_contain_text(wanted.group(0))
    assert sandbox.cloudinary_role("pablo.fischer@example.com") == "admin"  # the confirmation page neither
    page.get_by_role("button", name="Yes, repair the targets").click()
    expect(page.get_by_role("status")).to_contain_text("Repairs applied")
    assert sandbox.cloudinary_role("pablo.fischer@example.com") == wanted.group(1)

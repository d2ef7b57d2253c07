"""Notifications to operators over real HTTP and SMTP: a signed webhook, retried until the receiver
takes it, and an e-mail through STARTTLS with a login, for the brake, dead letters, drift and a broken
audit chain; and the policy errors a bad `notify:` section gets at load."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from scim_bridge.audit.verification import last_verification
from scim_bridge.store import open_store
from scim_bridge.sync.policy import PolicyError, load_policy
from tests.emulators.live import LiveApp
from tests.live import free_port
from tests.sync.conftest import World, make_world
from tests.sync.receivers import SECRET, Mailbox, Receiver
from tests.sync.test_brake import deactivate, provisioned, push_users

ADMIN = {"Authorization": "Bearer admin-token-for-tests"}


@contextlib.contextmanager
def notify_world(tmp_path: Path, notify: dict[str, Any], **policy: Any) -> Iterator[World]:
    yield from make_world(tmp_path, f"sqlite:///{tmp_path}/notify.db", target_rate=400, notify=notify, **policy)


def webhook(tmp_path: Path, url: str) -> dict[str, Any]:
    (tmp_path / "notify-secret").write_text(SECRET + "\n")
    return {"url": f"{url}/hook", "secret_file": str(tmp_path / "notify-secret")}


def wait_for(condition: Any, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_brake_engaging_is_a_signed_webhook_retried_until_the_receiver_takes_it(tmp_path: Path) -> None:
    receiver = Receiver(fail_first=2)  # the receiver is down for the first two attempts
    with (
        LiveApp(receiver.app()) as hook,
        notify_world(
            tmp_path, {"webhook": webhook(tmp_path, hook.url)}, safety={"deprovision": {"max_count": 1}}
        ) as world,
    ):
        ids = push_users(world, 3, "brk")
        world.converge(lambda w: provisioned(w, "brk") == (3, 3))
        deactivate(world, ids)
        wait_for(lambda: len(receiver.events("brake.engaged")) == 2, 30, "both targets' notifications")
        events = receiver.events("brake.engaged")
        assert {e["target"] for e in events} == {"cloudinary", "iconik"}
        assert all("more than 1 deprovisions" in e["details"]["reason"] and e["time"].endswith("Z") for e in events)
        refused = [a for a in receiver.attempts if not a["accepted"]]
        assert len(refused) == 2  # retried after each failure, with the same delivery id
        retried = {a["headers"]["x-scim-bridge-delivery"] for a in refused}
        taken = {a["headers"]["x-scim-bridge-delivery"] for a in receiver.attempts if a["accepted"]}
        assert retried <= taken
        assert all(a["headers"]["x-scim-bridge-event"] == "brake.engaged" for a in receiver.attempts)
        assert SECRET not in (tmp_path / "policy.yml").read_text()  # the policy names the file, never the secret


def test_an_email_goes_through_starttls_with_a_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SMTP_USER", "bridge")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "smtp-password-for-tests")
    port = free_port()
    with Mailbox(tmp_path, port, "bridge", "smtp-password-for-tests") as mailbox:
        email = {
            "host": "127.0.0.1",
            "port": port,
            "starttls": True,
            "from": "scim-bridge@example.com",
            "to": ["iam-ops@example.com", "oncall@example.com"],
            "username_env": "TEST_SMTP_USER",
            "password_env": "TEST_SMTP_PASSWORD",
            "ca_file": str(mailbox.ca_file),
        }
        with notify_world(tmp_path, {"email": email}, safety={"deprovision": {"max_count": 1}}) as world:
            ids = push_users(world, 3, "mail")
            world.converge(lambda w: provisioned(w, "mail") == (3, 3))
            deactivate(world, ids)
            wait_for(lambda: len(mailbox.messages) == 2, 30, "two e-mails")
        for message, over_tls, login in mailbox.messages:
            assert over_tls and login == "bridge"
            assert message["Subject"].startswith("[scim-bridge] deprovision brake engaged for ")
            assert message["To"] == "iam-ops@example.com, oncall@example.com"
            text = message.get_payload(decode=True).decode()
            assert "event: brake.engaged" in text and "smtp-password-for-tests" not in text


def test_dead_letters_above_the_threshold_are_told_once(tmp_path: Path) -> None:
    receiver = Receiver()
    notify = {"webhook": webhook(tmp_path, "http://127.0.0.1:1"), "dead_letters_above": 2}
    notify["dead_letters_check_seconds"] = 0.3
    with LiveApp(receiver.app()) as hook:
        notify["webhook"]["url"] = f"{hook.url}/hook"
        with notify_world(tmp_path, notify) as world:
            assert httpx.put(f"{world.cloudinary_url}/_emulator/faults", json={"error_rate": 1.0, "error_status": 400})
            push_users(world, 4, "dead")
            wait_for(lambda: receiver.events("dead_letters.above"), 30, "the notification")
            time.sleep(1)  # checked again since: still above, not told again
            [told] = receiver.events("dead_letters.above")
            assert told["details"]["threshold"] == 2 and told["details"]["count"] >= 3 and "target" not in told


def test_drift_found_by_a_scheduled_reconcile_is_told(tmp_path: Path) -> None:
    receiver = Receiver()
    with LiveApp(receiver.app()) as hook:
        policy = {"reconcile": {"interval_seconds": 1}}
        with notify_world(tmp_path, {"webhook": webhook(tmp_path, hook.url)}, **policy) as world:
            push_users(world, 1, "drift")
            world.converge(lambda w: provisioned(w, "drift") == (1, 1))
            account = world.cld_user("drift0@example.com")
            assert account is not None
            account["role"] = "admin"  # raised by hand in the Console
            wait_for(lambda: receiver.events("reconcile.drift"), 30, "the drift notification")
            told = receiver.events("reconcile.drift")[0]["details"]
            assert told["kinds"].get("cloudinary wrong-role") == 1 and told["repaired"] is False


def test_a_broken_audit_chain_is_told_by_the_scheduled_verification(tmp_path: Path) -> None:
    receiver = Receiver()
    with LiveApp(receiver.app()) as hook:
        notify = {"webhook": webhook(tmp_path, hook.url), "audit_verify_seconds": 1}
        with notify_world(tmp_path, notify) as world:
            push_users(world, 2, "chain")
            world.converge(lambda w: provisioned(w, "chain") == (2, 2))
            with sqlite3.connect(tmp_path / "notify.db") as db:  # someone edits the trail behind the bridge's back
                db.execute('UPDATE audit SET body = CAST(\'{"kind":"scim"}\' AS BLOB) WHERE seq = 1')
            wait_for(lambda: receiver.events("audit.chain_broken"), 30, "the notification")
            told = receiver.events("audit.chain_broken")[0]["details"]
            assert told["seq"] == 1 and told["problem"] == "edited" and "TAMPERED" in told["message"]
            # and every replica's console Overview shows that verification's verdict
            shown = asyncio.run(last_verification_in(f"sqlite:///{tmp_path}/notify.db"))
            assert shown is not None and shown["ok"] is False and "TAMPERED at seq 1" in shown["message"]


async def last_verification_in(url: str) -> dict[str, Any] | None:
    store = open_store(url)
    await store.open()
    try:
        return await last_verification(store)
    finally:
        await store.close()


@pytest.mark.parametrize(
    "notify, message",
    [
        (
            {"webhook": {"url": "ftp://ops.example.com/hook", "secret_env": "HOME"}},
            "line 4: notify.webhook.url: .*is not an http",
        ),
        ({"webhook": {"url": "ops.example.com/hook", "secret_env": "HOME"}}, "notify.webhook.url: .*is not an http"),
        (
            {"webhook": {"url": "https://ops.example.com/hook", "secret_env": "NO_SUCH_VARIABLE_HERE"}},
            "line 3: notify.webhook.secret_env: .*NO_SUCH_VARIABLE_HERE is not set",
        ),
        (
            {"webhook": {"url": "https://ops.example.com/hook", "secret_file": "/no/such/secret"}},
            "notify.webhook.secret_file: .*cannot read /no/such/secret",
        ),
        ({"webhook": {"url": "https://ops.example.com/hook"}}, "notify.webhook: .*secret_env or secret_file"),
        (
            {"email": {"host": "smtp.example.com", "from": "b@example.com", "to": []}},
            "notify.email.to: List should have at least 1 item",
        ),
        (
            {"email": {"host": "smtp", "from": "b@example.com", "to": ["o@example.com"], "password_env": "NO_SUCH_PW"}},
            "notify.email.password_env: .*NO_SUCH_PW is not set",
        ),
        (
            {"email": {"host": "smtp", "from": "b@example.com", "to": ["o@example.com"], "port": 70000}},
            "notify.email.port: Input should be less than or equal to 65535",
        ),
        ({"events": ["brake.engaged", "nope"]}, "notify.events.1: Input should be"),
    ],
)
def test_a_bad_notify_section_is_refused_at_load_naming_the_field_and_line(
    tmp_path: Path, notify: dict[str, Any], message: str
) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(yaml.safe_dump({"notify": notify}))
    with pytest.raises(PolicyError, match=message):
        load_policy(policy)

"""Notifications to operators: a signed webhook and/or an e-mail, for the events that need a person.

Policy `notify:`

    notify:
      webhook: {url: https://ops.example.com/hooks/scim-bridge, secret_env: SCIM_BRIDGE_NOTIFY_SECRET}
      email: {host: smtp.example.com, port: 587, starttls: true, from: bridge@example.com,
              to: [iam-ops@example.com], username_env: SMTP_USER, password_env: SMTP_PASSWORD}
      dead_letters_above: 100          # tell once when the dead letters pass this many
      audit_verify_seconds: 86400      # verify the audit chain this often (0: never)

Events: `brake.engaged`, `quarantine.entered`, `quarantine.left`, `dead_letters.above`,
`reconcile.drift` (a scheduled reconcile found differences), `audit.chain_broken` (the scheduled
verification failed). The webhook body is `{"event", "time", "target"?, "details"}`, signed with
HMAC-SHA256 over `timestamp + "." + body` (headers `X-Scim-Bridge-Timestamp` and
`X-Scim-Bridge-Signature: sha256=<hex>`; `X-Scim-Bridge-Delivery` is the same on every retry of
one notification, so a receiver can drop repeats).

Delivery never blocks the sync: `send` only schedules it; each channel is retried with back-off
(RETRIES attempts, 1 s doubling to 5 min) and then given up with an error in the log. Pending
notifications live in memory: a process that dies loses the ones not delivered yet. Secrets are read
when the policy loads (a missing one is a policy error) and are never logged, audited or dumped.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import smtplib
import ssl
import time
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

log = logging.getLogger("scim_bridge.notify")

EventName = Literal[
    "brake.engaged",
    "quarantine.entered",
    "quarantine.left",
    "dead_letters.above",
    "reconcile.drift",
    "audit.chain_broken",
]
EVENTS: tuple[EventName, ...] = get_args(EventName)
RETRIES = 8  # attempts per channel: 1, 2, 4 … s apart, capped at MAX_DELAY
MAX_DELAY = 300.0
MAX_PENDING = 1000  # deliveries in flight; past it new notifications are dropped (logged)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _env(name: str | None, what: str) -> str | None:
    if name is None:
        return None
    value = os.environ.get(name)
    if not value:
        raise ValueError(f"environment variable {name} is not set (it should hold the {what})")
    return value


def _file(path: str | None, what: str) -> str | None:
    if path is None:
        return None
    try:
        value = Path(path).read_text().strip()
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror} (it should hold the {what})") from None
    if not value:
        raise ValueError(f"{path} is empty (it should hold the {what})")
    return value


class Webhook(_Strict):
    url: str
    secret_env: str | None = None  # the variable holding the signing secret
    secret_file: str | None = None  # or a file holding it
    timeout_seconds: float = Field(10.0, gt=0)
    _secret: str = PrivateAttr("")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @field_validator("secret_env")
    @classmethod
    def _secret_env(cls, value: str | None) -> str | None:
        _env(value, "webhook signing secret")
        return value

    @field_validator("secret_file")
    @classmethod
    def _secret_file(cls, value: str | None) -> str | None:
        _file(value, "webhook signing secret")
        return value

    @model_validator(mode="after")
    def _one_secret(self) -> Webhook:
        if (self.secret_env is None) == (self.secret_file is None):
            raise ValueError("give the signing secret's secret_env or secret_file (one of them)")
        self._secret = _env(self.secret_env, "") or _file(self.secret_file, "") or ""
        return self

    def signed(self, body: bytes, timestamp: str) -> str:
        digest = hmac.new(self._secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return f"sha256={digest}"


class Email(_Strict):
    host: str = Field(min_length=1)
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    sender: str = Field(alias="from", min_length=3)
    to: list[str] = Field(min_length=1)
    username_env: str | None = None
    password_env: str | None = None
    credentials_file: str | None = None  # JSON {"username", "password"}
    ca_file: str | None = None  # a private CA to trust for STARTTLS (default: the system's)
    timeout_seconds: float = Field(20.0, gt=0)
    _login: tuple[str, str] | None = PrivateAttr(None)

    @field_validator("username_env")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        _env(value, "SMTP user name")
        return value

    @field_validator("password_env")
    @classmethod
    def _password(cls, value: str | None) -> str | None:
        _env(value, "SMTP password")
        return value

    @field_validator("credentials_file")
    @classmethod
    def _credentials(cls, value: str | None) -> str | None:
        raw = _file(value, "SMTP credentials")
        if raw is not None:
            try:
                parsed = json.loads(raw)
            except ValueError:
                raise ValueError(f"{value} is not JSON ({{'username': …, 'password': …}})") from None
            if not isinstance(parsed, dict) or not parsed.get("username") or not parsed.get("password"):
                raise ValueError(f"{value} needs a username and a password")
        return value

    @field_validator("ca_file")
    @classmethod
    def _ca(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(f"{value} is not a readable file")
        return value

    @model_validator(mode="after")
    def _login_details(self) -> Email:
        if self.credentials_file and (self.username_env or self.password_env):
            raise ValueError("give username_env/password_env or credentials_file, not both")
        if bool(self.username_env) != bool(self.password_env):
            raise ValueError("username_env and password_env go together")
        if self.credentials_file:
            parsed = json.loads(Path(self.credentials_file).read_text())
            self._login = (str(parsed["username"]), str(parsed["password"]))
        elif self.username_env and self.password_env:
            self._login = (os.environ[self.username_env], os.environ[self.password_env])
        if self._login and not self.starttls:
            raise ValueError("starttls: false would send the SMTP password in clear; turn STARTTLS on")
        return self


class Notify(_Strict):
    """Policy `notify:`."""

    webhook: Webhook | None = None
    email: Email | None = None
    events: list[EventName] = list(EVENTS)  # which events to send (default: all)
    dead_letters_above: int | None = Field(None, ge=0)
    dead_letters_check_seconds: float = Field(30.0, gt=0)
    audit_verify_seconds: float = Field(86400.0, ge=0)


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def summary(body: dict[str, Any]) -> str:
    """One line for a person (the e-mail subject)."""
    event, target, details = body["event"], body.get("target"), body.get("details") or {}
    texts = {
        "brake.engaged": f"deprovision brake engaged for {target}: {details.get('reason')}",
        "quarantine.entered": f"{target} quarantined: {details.get('reason')}",
        "quarantine.left": f"{target} answers again; quarantine over after {details.get('quarantined_seconds')} s",
        "dead_letters.above": f"{details.get('count')} dead letters (more than {details.get('threshold')})",
        "reconcile.drift": f"reconcile found {details.get('differences')} difference(s)",
        "audit.chain_broken": f"audit trail verification failed: {details.get('message')}",
    }
    return str(texts.get(event, event))[:200]


class Notifier:
    def __init__(self, config: Notify) -> None:
        self.config = config
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self.delivered: list[tuple[str, str]] = []  # (channel, event) of recent deliveries, for status

    @property
    def channels(self) -> list[str]:
        return [name for name in ("webhook", "email") if getattr(self.config, name) is not None]

    def send(self, event: str, target: str | None = None, details: dict[str, Any] | None = None) -> None:
        """Schedule a notification on every channel; returns at once and never raises."""
        if not self.channels or event not in self.config.events:
            return
        if len(self._tasks) >= MAX_PENDING:
            log.error("notify: %d deliveries pending; %s dropped", len(self._tasks), event)
            return
        body: dict[str, Any] = {"event": event, "time": _iso_now()}
        if target is not None:
            body["target"] = target
        body["details"] = details or {}
        delivery = uuid.uuid4().hex
        for channel in self.channels:
            task = asyncio.create_task(self._deliver(channel, body, delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def event(self, event: str, target: str | None, details: dict[str, Any]) -> None:
        """The same as `send`, for callers that await a callback (brake, quarantine)."""
        self.send(event, target, details)

    async def _deliver(self, channel: str, body: dict[str, Any], delivery: str) -> None:
        for attempt in range(RETRIES):
            try:
                if channel == "webhook":
                    await self._post(body, delivery)
                else:
                    await asyncio.to_thread(self._mail, body)
                self.delivered = [*self.delivered[-99:], (channel, body["event"])]
                return
            except Exception as error:  # whatever failed, the next attempt may not
                delay = min(MAX_DELAY, 2.0**attempt)
                log.warning(
                    "notify: %s delivery of %s failed (attempt %d of %d, next in %g s): %s",
                    channel,
                    body["event"],
                    attempt + 1,
                    RETRIES,
                    delay,
                    _describe(error),
                )
                if attempt < RETRIES - 1:
                    await asyncio.sleep(delay)
        log.error("notify: %s delivery of %s given up after %d attempts", channel, body["event"], RETRIES)

    async def _post(self, body: dict[str, Any], delivery: str) -> None:
        webhook = self.config.webhook
        assert webhook is not None
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=webhook.timeout_seconds)
        raw = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        timestamp = str(int(time.time()))  # signed afresh on each attempt, so receivers may bound its age
        response = await self._client.post(
            webhook.url,
            content=raw,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "scim-bridge",
                "X-Scim-Bridge-Event": body["event"],
                "X-Scim-Bridge-Delivery": delivery,
                "X-Scim-Bridge-Timestamp": timestamp,
                "X-Scim-Bridge-Signature": webhook.signed(raw, timestamp),
            },
        )
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"the receiver answered {response.status_code}")

    def _mail(self, body: dict[str, Any]) -> None:
        """Blocking: runs in a worker thread (smtplib)."""
        email = self.config.email
        assert email is not None
        message = EmailMessage()
        message["Subject"] = f"[scim-bridge] {summary(body)}"
        message["From"] = email.sender
        message["To"] = ", ".join(email.to)
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = make_msgid(domain=email.sender.rsplit("@", 1)[-1])
        message.set_content(
            f"{summary(body)}\n\nevent: {body['event']}\ntime: {body['time']}\n"
            + (f"target: {body['target']}\n" if body.get("target") else "")
            + f"\n{json.dumps(body.get('details'), indent=2, sort_keys=True)}\n"
        )
        with smtplib.SMTP(email.host, email.port, timeout=email.timeout_seconds) as smtp:
            smtp.ehlo()
            if email.starttls:
                smtp.starttls(context=ssl.create_default_context(cafile=email.ca_file))
                smtp.ehlo()
            if email._login is not None:
                smtp.login(*email._login)
            smtp.send_message(message)

    async def close(self, grace: float = 2.0) -> None:
        """Give deliveries in flight a moment, then stop them (they are logged as lost)."""
        if self._tasks:
            done, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                log.error("notify: %d notification(s) not delivered at shutdown", len(pending))
                await asyncio.gather(*pending, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _describe(error: Exception) -> str:
    """The failure without anything secret: httpx errors name the URL, which may carry a token in
    its query string, so only the class and the status are kept for those."""
    if isinstance(error, httpx.HTTPError):
        return type(error).__name__
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return f"SMTP authentication refused ({error.smtp_code})"
    return f"{type(error).__name__}: {error}"[:300]

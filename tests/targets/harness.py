"""What the Target contract suite needs to know about each target: how to reach its emulator and
how to read the emulator's state back in the suite's terms. A new target adds one Harness here
(and its registry entry); tests/targets/test_contract.py then runs every rule against it.

The emulator is served by uvicorn over real HTTP, behind `Wire`: a plain ASGI wrapper that records
what crossed the wire (arrival time, status, the throttling headers) and can lose the answer of a
chosen request after the emulator applied it, as a dropped connection would.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from scim_bridge.emulators.faults import Faults
from scim_bridge.targets.base import Target, TargetUser
from scim_bridge.targets.registry import TARGETS
from scim_bridge.targets.settings import TargetSettings
from tests.emulators.live import LiveApp

SERVICE_EMAIL = "bridge-service@example.com"


@dataclass
class Exchange:
    method: str
    path: str
    arrived: float  # time.monotonic() when the request reached the emulator
    status: int = 0
    wait: float | None = None  # seconds the answer asked the client to wait (Retry-After / reset)


class _Lost(Exception):
    pass


@dataclass
class Wire:
    app: Any
    exchanges: list[Exchange] = field(default_factory=list)
    lose: list[tuple[str, re.Pattern[str]]] = field(default_factory=list)  # (method, path) answers to lose once

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator/"):
            await self.app(scope, receive, send)
            return
        exchange = Exchange(scope["method"], scope["path"], time.monotonic())
        self.exchanges.append(exchange)
        rule = next((r for r in self.lose if r[0] == scope["method"] and r[1].search(scope["path"])), None)
        if rule is not None:
            self.lose.remove(rule)

        async def recording(message: Any) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                exchange.wait = _wait(dict(message.get("headers", [])))
            elif rule is not None and message["type"] == "http.response.body":
                raise _Lost("answer lost after the emulator applied the request")
            await send(message)

        await self.app(scope, receive, recording)

    def sent(self, method: str, pattern: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.method == method and re.search(pattern, e.path)]


def _wait(headers: dict[bytes, bytes]) -> float | None:
    if b"retry-after" in headers:
        return float(headers[b"retry-after"])
    if b"x-featureratelimit-reset" in headers:
        return parsedate_to_datetime(headers[b"x-featureratelimit-reset"].decode()).timestamp() - time.time()
    return None


class Harness:
    """One target under the contract: its translator, its emulator's state, faults and wire."""

    name: str
    role: str  # a valid non-admin role of the target
    target: Target
    state: Any
    faults: Faults
    wire: Wire
    url: str

    def settings(self) -> TargetSettings:
        raise NotImplementedError

    def new_state(self) -> Any:
        raise NotImplementedError

    # the emulator's state, in the suite's terms
    def account(self, target_id: str) -> dict[str, Any] | None:
        """{"email", "enabled"} of a live account, None when it is gone."""
        raise NotImplementedError

    def accounts_with(self, email: str) -> list[str]:
        raise NotImplementedError

    def members(self, group_id: str) -> set[str]:
        raise NotImplementedError

    def group_name(self, group_id: str) -> str | None:
        raise NotImplementedError

    def groups_named(self, name: str) -> list[str]:
        raise NotImplementedError

    def set_last_login(self, target_id: str, when: str) -> None:
        raise NotImplementedError

    def make_by_hand(self, email: str) -> str:
        """An account created in the target's console, not by the bridge; returns its id."""
        raise NotImplementedError

    def role_of(self, target_id: str) -> str:
        raise NotImplementedError

    def service_account_id(self) -> str:
        [found] = self.accounts_with(SERVICE_EMAIL)
        return found

    def user(self, n: int | str, enabled: bool = True) -> TargetUser:
        email = n if isinstance(n, str) else f"contract{n}@example.com"
        return TargetUser(email, "Con", f"Tract {n}", f"Con Tract {n}", self.role, enabled)

    def set_faults(self, **changes: Any) -> None:
        """Through the emulator's own control endpoint, as an operator would during a load."""
        assert httpx.put(f"{self.url}/_emulator/faults", json=changes).status_code == 200

    @contextmanager
    def serve(self) -> Iterator[Harness]:
        self.state, self.faults = self.new_state(), Faults()
        self.wire = Wire(TARGETS[self.name].emulator_app(self.state, None, self.faults))
        with LiveApp(self.wire) as live:
            self.url = live.url
            self.target = TARGETS[self.name].build(self.settings())
            yield self


class CloudinaryHarness(Harness):
    name, role = "cloudinary", "media_library_user"

    def new_state(self) -> Any:
        from scim_bridge.emulators.cloudinary import CloudinaryState

        state = CloudinaryState()
        # the bridge's own login, made by hand when the account was set up
        state.users["service1"] = {
            "id": "service1",
            "name": "Bridge Service",
            "email": SERVICE_EMAIL,
            "role": "admin",
            "enabled": True,
            "pending": False,
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "last_login": None,
            "all_sub_accounts": True,
        }
        return state

    def settings(self) -> TargetSettings:
        credentials = {"account_id": self.state.account_id, "key": self.state.key, "secret": self.state.secret}
        return TargetSettings(self.url, 1000.0, credentials, SERVICE_EMAIL)

    def account(self, target_id: str) -> dict[str, Any] | None:
        user = self.state.users.get(target_id)
        return {"email": user["email"], "enabled": bool(user["enabled"])} if user else None

    def accounts_with(self, email: str) -> list[str]:
        return [u["id"] for u in self.state.users.values() if u["email"].lower() == email.lower()]

    def members(self, group_id: str) -> set[str]:
        ids = self.state.members.get(group_id, [])
        assert len(ids) == len(set(ids)), f"a member listed twice: {ids}"
        return set(ids)

    def group_name(self, group_id: str) -> str | None:
        group = self.state.groups.get(group_id)
        return group["name"] if group else None

    def groups_named(self, name: str) -> list[str]:
        return [g["id"] for g in self.state.groups.values() if g["name"].lower() == name.lower()]

    def set_last_login(self, target_id: str, when: str) -> None:
        self.state.users[target_id]["last_login"] = when

    def role_of(self, target_id: str) -> str:
        return str(self.state.users[target_id]["role"])

    def make_by_hand(self, email: str) -> str:
        user = {**self.state.users["service1"], "id": f"hand{len(self.state.users)}", "email": email, "role": "admin"}
        self.state.users[user["id"]] = user
        return str(user["id"])


class IconikHarness(Harness):
    name, role = "iconik", "STANDARD"

    def new_state(self) -> Any:
        from scim_bridge.emulators.iconik import IconikState

        return IconikState()  # its token runs as bridge-service@example.com, an admin

    def settings(self) -> TargetSettings:
        credentials = {"app_id": self.state.app_id, "auth_token": self.state.auth_token}
        return TargetSettings(self.url, 1000.0, credentials, SERVICE_EMAIL)

    def account(self, target_id: str) -> dict[str, Any] | None:
        user = self.state.users.get(target_id)
        if user is None or user["status"] == "DELETED":
            return None
        return {"email": user["email"], "enabled": user["status"] == "ACTIVE"}

    def accounts_with(self, email: str) -> list[str]:
        return [
            u["id"]
            for u in self.state.users.values()
            if (u["email"] or "").lower() == email.lower() and u["status"] != "DELETED"
        ]

    def members(self, group_id: str) -> set[str]:
        found = [u["id"] for u in self.state.users.values() for g in u["groups"] if g == group_id]
        assert len(found) == len(set(found)), f"a member listed twice: {found}"
        return set(found)

    def group_name(self, group_id: str) -> str | None:
        group = self.state.groups.get(group_id)
        return group["name"] if group else None

    def groups_named(self, name: str) -> list[str]:
        return [g["id"] for g in self.state.groups.values() if g["name"] == name]

    def set_last_login(self, target_id: str, when: str) -> None:
        self.state.users[target_id]["last_web_login"] = when

    def role_of(self, target_id: str) -> str:
        return str(self.state.users[target_id]["type"])

    def make_by_hand(self, email: str) -> str:
        own = self.state.users[self.state.token_user_id]
        user = {**own, "id": f"hand-{len(self.state.users)}", "email": email, "is_admin": False, "groups": []}
        self.state.users[user["id"]] = user
        return str(user["id"])


HARNESSES: dict[str, type[Harness]] = {"cloudinary": CloudinaryHarness, "iconik": IconikHarness}

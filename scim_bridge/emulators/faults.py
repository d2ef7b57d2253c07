"""Fault injection shared by the emulators, changeable at run time.

`GET|PUT /_emulator/faults` reads or sets the faults of a running emulator, so a test or an
operator can start a 429 storm, an error rate, added latency or dropped connections in the
middle of a load without restarting anything. The emulators import nothing from the bridge.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import asdict, dataclass, fields
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass
class Faults:
    error_rate: float = 0.0  # share of requests answered with `error_status`
    error_status: int = 503
    latency_ms: float = 0.0  # added to every request
    storm_until: float = 0.0  # epoch seconds: until then every request is throttled
    drop_rate: float = 0.0  # share of requests whose connection is cut mid-response
    # The account's credentials were revoked (a rotated secret, a deactivated setup user): every
    # request is answered 401 in the vendor's documented shape, until the switch is turned back.
    credentials_revoked: bool = False
    seed: int | None = None

    def update(self, changes: dict[str, Any]) -> None:
        names = {f.name for f in fields(self)}
        for key, value in changes.items():
            if key == "storm_seconds":
                self.storm_until = time.time() + float(value)
            elif key in names:
                setattr(self, key, value)
            else:
                raise ValueError(f"unknown fault {key!r}")


class FaultInjector:
    """ASGI middleware: applies the current faults before the emulator sees a request.

    `throttled(scope)`, `error_body(status)` and `unauthorised_body(path)` come from the emulator,
    so each fault answers in that vendor's own shape. The emulator's guard logs a call before
    this middleware runs, so refused calls are in its call log too (tests count them).
    """

    def __init__(
        self, app: ASGIApp, faults: Faults, throttled: Any, error_body: Any, unauthorised_body: Any = None
    ) -> None:
        self.app = app
        self.faults = faults
        self.throttled = throttled
        self.error_body = error_body
        self.unauthorised_body = unauthorised_body or (lambda path: {"error": "unauthorized"})
        self.random = random.Random(faults.seed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "/_emulator/" in scope["path"]:
            await self.app(scope, receive, send)
            return
        faults = self.faults
        if faults.credentials_revoked:
            await JSONResponse(self.unauthorised_body(scope["path"]), status_code=401)(scope, receive, send)
            return
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.storm_until > time.time():
            await self.throttled(scope, receive, send, retry_after=max(1, int(faults.storm_until - time.time())))
            return
        if faults.error_rate and self.random.random() < faults.error_rate:
            await JSONResponse(self.error_body(faults.error_status), status_code=faults.error_status)(
                scope, receive, send
            )
            return
        if faults.drop_rate and self.random.random() < faults.drop_rate:
            await self.app(scope, receive, _cut_after_headers(send))
            return
        await self.app(scope, receive, send)


class _ConnectionDropped(Exception):
    pass


def _cut_after_headers(send: Send) -> Send:
    """Send the status line and headers, then fail, so the server aborts the connection: the
    client sees a broken response after the emulator already applied the change."""

    async def cutting_send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise _ConnectionDropped("connection dropped by fault injection")
        await send(message)

    return cutting_send


def fault_routes_handler(faults: Faults) -> Any:
    async def endpoint(request: Request) -> JSONResponse:
        if request.method == "PUT":
            try:
                faults.update(await request.json())
            except (ValueError, TypeError) as error:
                return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse(asdict(faults))

    return endpoint

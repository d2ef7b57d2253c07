"""The outermost layer: the path made tolerable (web/paths.py), `/` sent to the console for a
browser, and the request series recorded (web/metrics.py), in one ASGI layer.

One layer rather than three because each ASGI layer costs about 1 µs a request inside this app
(measured in process on a cached GET /Users/{id} of ≈ 22 µs), and the console and metrics must
cost the SCIM front door under 3 % (issue 12; bench/front_door.py --observability both).
"""

from __future__ import annotations

from collections.abc import Awaitable
from time import perf_counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import RequestRecorder
from .paths import normalized

_REDIRECT_HEADERS = [(b"location", b"/console"), (b"content-length", b"0")]


class FrontDoor:
    def __init__(self, app: ASGIApp, *, metrics: bool, console: bool) -> None:
        self.app = app
        self.recorder = RequestRecorder() if metrics else None
        self.console = console

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope = normalized(scope)
        if self.console and scope["path"] == "/" and _wants_html(scope):
            await send({"type": "http.response.start", "status": 303, "headers": _REDIRECT_HEADERS})
            await send({"type": "http.response.body", "body": b""})
            return
        recorder = self.recorder
        if recorder is None:
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 500  # what the server sends when the app raised before answering

        # A plain function handing back send's awaitable: no coroutine of its own per message
        # (≈ 0.1 µs a request; ASGI asks for a callable returning an awaitable, not a coroutine).
        def send_status(message: Message) -> Awaitable[None]:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            return send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            recorder.record(scope, status, perf_counter() - started)


def _wants_html(scope: Scope) -> bool:
    """A browser asking for `/` (Accept: text/html); SCIM clients keep their 401 there."""
    if scope["method"] not in ("GET", "HEAD"):
        return False
    accept = next((v for k, v in scope["headers"] if k == b"accept"), b"")
    return b"text/html" in accept

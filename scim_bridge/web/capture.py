"""Capture mode: one JSON line per request (method, path, query, headers, body), so an operator
can record exactly what their OTDS sends (scim-clients.md §1.3). Credentials and passwords are
replaced by "[redacted]" before anything is written."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECRET_HEADERS = {"authorization", "cookie", "x-api-key", "proxy-authorization"}
SECRET_KEYS = {"password", "client_secret", "access_token", "secret", "token"}
REDACTED = "[redacted]"


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (REDACTED if k.lower() in SECRET_KEYS else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def _redact_patch_password(body: Any) -> Any:
    # A PATCH may carry the password as {"path": "password", "value": "..."}.
    if isinstance(body, dict):
        for key, operations in body.items():
            if key.lower() == "operations" and isinstance(operations, list):
                for operation in operations:
                    if isinstance(operation, dict) and str(operation.get("path", "")).lower().endswith("password"):
                        operation["value"] = REDACTED
    return body


class CaptureMiddleware:
    def __init__(self, app: ASGIApp, path: Path, extra_secret_headers: set[str] | None = None) -> None:
        self.app = app
        self.path = path
        self.secret_headers = SECRET_HEADERS | (extra_secret_headers or set())
        self._lock = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        status: list[int] = []

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, recording_receive, recording_send)
        await self._write(scope, b"".join(chunks), status[0] if status else 0)

    async def _write(self, scope: Scope, raw_body: bytes, status: int) -> None:
        headers = {}
        for key, value in scope["headers"]:
            name = key.decode("latin-1").lower()
            headers[name] = REDACTED if name in self.secret_headers else value.decode("latin-1")
        body: Any = None
        if raw_body:
            try:
                body = _redact_patch_password(redact(orjson.loads(raw_body)))
            except orjson.JSONDecodeError:
                body = "[not JSON]" if b"secret" not in raw_body.lower() else REDACTED
        line = (
            orjson.dumps(
                {
                    "time": time.time(),
                    "method": scope["method"],
                    "path": scope["path"],
                    "query": scope.get("query_string", b"").decode("latin-1"),
                    "headers": headers,
                    "body": body,
                    "status": status,
                }
            )
            + b"\n"
        )
        async with self._lock:
            await asyncio.to_thread(self._append, line)

    def _append(self, line: bytes) -> None:
        with self.path.open("ab") as handle:
            handle.write(line)

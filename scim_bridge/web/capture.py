"""Capture mode: one JSON line per request (method, path, query, headers, body), so an operator
can record exactly what their OTDS sends (scim-clients.md §1.3). Credentials and passwords are
replaced by "[redacted]" (scim_bridge/redaction.py, the rule logs and the audit trail use too)
before anything is written: JSON bodies at any depth, form bodies, query strings and headers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..redaction import REDACTED, SECRET_HEADERS, is_secret_header, redact_json, redact_query


class CaptureMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        path: Path,
        extra_secret_headers: set[str] | None = None,
        max_body_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self.app = app
        self.path = path
        self.max_body_bytes = max_body_bytes
        self.secret_headers = frozenset(SECRET_HEADERS | {h.lower() for h in extra_secret_headers or set()})
        self._lock = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        status: list[int] = []
        size = [0]

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                size[0] += len(chunk)
                if size[0] <= self.max_body_bytes:  # a refused oversized body is not kept in memory
                    chunks.append(chunk)
            return message

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, recording_receive, recording_send)
        await self._write(scope, b"".join(chunks), status[0] if status else 0, size[0])

    async def _write(self, scope: Scope, raw_body: bytes, status: int, size: int) -> None:
        headers = {}
        content_type = ""
        for key, value in scope["headers"]:
            name = key.decode("latin-1").lower()
            headers[name] = REDACTED if is_secret_header(name, self.secret_headers) else value.decode("latin-1")
            if name == "content-type":
                content_type = headers[name].split(";")[0].strip().lower()
        body: Any = None
        if size > self.max_body_bytes:
            body = f"[not recorded: {size} bytes, over the limit]"
        elif raw_body:
            if content_type == "application/x-www-form-urlencoded":
                body = redact_query(raw_body.decode("latin-1"))
            else:
                try:
                    body = redact_json(orjson.loads(raw_body))
                except orjson.JSONDecodeError:
                    body = "[not JSON]"  # unparsed bytes could hold anything: not recorded
        line = (
            orjson.dumps(
                {
                    "time": time.time(),
                    "method": scope["method"],
                    "path": scope["path"],
                    "query": redact_query(scope.get("query_string", b"").decode("latin-1")),
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

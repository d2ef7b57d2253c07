"""The bridge's log lines: JSON for a container's log collector, or text for a person at a terminal
(`SCIM_BRIDGE_LOG_FORMAT`, default json unless stderr is a terminal), and the access log.

A JSON line is one object: `time` (ISO 8601, UTC, milliseconds), `level`, `logger`, `message`,
`correlation` (the request, or the change a sync worker processes, audit/context.py), `resource`
(the resource a worker syncs, else the SCIM request's path), `target` (the vendor being called,
when known: TARGET, set around each translator call, or `extra={"target": …}`), `exc` (a
traceback), and for access lines `method`, `path`, `status`, `duration_ms`, `client`. Every string
field goes through the one redaction rule (redaction.py) here, on top of the handler's filter: an
`extra` field or a context value holds no secret either.

The access log is an ASGI middleware around the whole app rather than uvicorn's: uvicorn's line
has no duration, and it is written outside the app, where the correlation id is not known.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import orjson

from .audit.context import CORRELATION_ID, SCIM_REQUEST, SYNC_SUBJECT, TARGET
from .redaction import install_log_redaction, redact_query, redact_text

LogFormat = Literal["json", "text"]

#: fields of an access line, passed as `extra` (LogRecord attributes)
ACCESS_FIELDS = ("method", "path", "status", "duration_ms", "client")

access_log = logging.getLogger("scim_bridge.access")


def default_format(stream: TextIO | None = None) -> LogFormat:
    """json in a container (stderr is a pipe or a file), text at a terminal."""
    stream = stream if stream is not None else sys.stderr
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):  # closed or replaced streams
        return "json"


def _clean(value: Any) -> Any:
    return redact_text(value) if isinstance(value, str) else value


def _context(record: logging.LogRecord) -> dict[str, Any]:
    """correlation, resource and target of the task that logged the record, when it has them."""
    fields: dict[str, Any] = {}
    correlation = getattr(record, "correlation", None) or CORRELATION_ID.get()
    if correlation:
        fields["correlation"] = correlation
    resource = getattr(record, "resource", None)
    if resource is None:
        subject = SYNC_SUBJECT.get()
        request = SCIM_REQUEST.get()
        resource = f"{subject[0]}/{subject[1]}" if subject else request.path if request else None
    if resource:
        fields["resource"] = resource
    target = getattr(record, "target", None) or TARGET.get()
    if target:
        fields["target"] = target
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line (module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        created = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, Any] = {
            "time": f"{created:%Y-%m-%dT%H:%M:%S}.{created.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_context(record),
        }
        for name in ACCESS_FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return orjson.dumps({key: _clean(value) for key, value in line.items()}, default=str).decode()


class TextFormatter(logging.Formatter):
    """The line a person reads: time, level, logger, message, then the context as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = " ".join(f"{key}={value}" for key, value in _context(record).items())
        if context:
            head, newline, rest = text.partition("\n")  # after the message, before any traceback
            text = f"{head}  [{context}]{newline}{rest}"
        return redact_text(text)


def configure(level: str, log_format: LogFormat | None = None) -> None:
    """One stderr handler on the root logger in the chosen format, with the redaction filter;
    uvicorn's own loggers are pointed at it too (server.run), so every line has one shape."""
    chosen = log_format or default_format()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    install_log_redaction()


def route_uvicorn_logs() -> None:
    """uvicorn configures its loggers with handlers of its own (Config.load): send their records to
    the root handler instead, so its start-up and shutdown lines have the bridge's format."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if logging.getLogger().handlers:
            logger.handlers.clear()
            logger.propagate = True


class AccessLog:
    """Pure ASGI: one INFO line per HTTP request on `scim_bridge.access`, when the response ends."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answer: dict[str, Any] = {"status": 0, "correlation": None}

        async def observe(message: Any) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                for name, value in message.get("headers", ()):
                    if name.lower() == b"x-request-id":  # the correlation the app chose
                        answer["correlation"] = value.decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            self._log(scope, answer, started)

    @staticmethod
    def _log(scope: Any, answer: dict[str, Any], started: float) -> None:
        query = scope.get("query_string", b"").decode("latin-1")
        path = scope.get("path", "") + (f"?{redact_query(query)}" if query else "")
        client = scope.get("client")
        peer = f"{client[0]}:{client[1]}" if client else "-"
        status = answer["status"] or 500  # the app raised before answering: uvicorn sends a 500
        duration = round((time.perf_counter() - started) * 1000, 2)
        version = scope.get("http_version", "1.1")
        access_log.info(
            '%s - "%s %s HTTP/%s" %d %.2fms',
            peer,
            scope["method"],
            path,
            version,
            status,
            duration,
            extra={
                "method": scope["method"],
                "path": path,
                "status": status,
                "duration_ms": duration,
                "client": peer,
                "correlation": answer["correlation"],
                "resource": scope.get("path", ""),
            },
        )

"""How the bridge is served: uvicorn with httptools, plus the limits httptools does not have.

uvicorn 0.55 bounds headers only for h11 (`h11_max_incomplete_event_size`), and its only timer is
the keep-alive one (`timeout_keep_alive`), which stops the moment a request's first byte arrives:
with httptools, a client may send headers without end, or trickle them (or a body) one byte at a
time and hold a connection for ever. `GuardedHttpToolsProtocol` adds, per connection:

- a header limit: the request line and headers together at most `max_header_bytes` (default
  32 KiB), the request line at most `max_request_line_bytes` (16 KiB: a filter at the parser's
  4096-character limit may triple when percent-encoded), any one header line at most
  `max_header_line_bytes` (8 KiB); beyond, 431 (414 for the request line) and the connection is
  closed;
- a header deadline: a request's line and headers must all arrive within `header_timeout_seconds`
  (10 s) of its first byte, else 408 and close;
- a body deadline: its body must be complete within `body_timeout_seconds` (60 s) of the end of
  its headers, else 408 (if no answer has started) and close; the application sees a disconnect.

On SIGTERM, `BridgeServer` drains before uvicorn's own shutdown: /health/ready answers 503 at once
and the sync workers claim nothing more, while requests are still served for `drain_seconds` (the
time a load balancer or Kubernetes takes to stop sending); then uvicorn stops accepting, lets the
requests in flight finish for up to `shutdown_grace_seconds`, and the app's lifespan stops the
workers (which hand back what they did not finish). The process then exits 0: uvicorn would
re-raise the signal after its shutdown, and a pod killed by its own SIGTERM reports exit 143.
A second SIGTERM (or a SIGINT) skips what is left of the drain; a second SIGINT forces the exit.

Refusals are logged at INFO by `scim_bridge.http`: they are the client's doing, not the bridge's.
The protocol is a subclass rather than an ASGI middleware because ASGI only sees a request once
its headers are complete, which is exactly what a slow or endless header section never is.

One write per answer: uvicorn's cycle (0.5x: `RequestResponseCycle.send`) writes the head on
`http.response.start` and the body on `http.response.body`, and under uvloop each
`transport.write` is a send() at once (its fast path when nothing is queued), so a GET cost two
syscalls, each waking the client. Each cycle here writes through a `_HeadWithBody`: the head of a
response of known length is held and goes out with the first body bytes in one write. A chunked
(streamed) answer's head, and a HEAD answer's, are written at once as before; a cycle closing
(the app raised, or returned, after its start) or a refusal writes a held head first, so the
bytes on the wire and their order are uvicorn's.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from asyncio import TimerHandle
from dataclasses import dataclass
from types import FrameType
from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from ..config import Settings
from ..logs import AccessLog
from ..redaction import install_log_redaction
from .health import Lifecycle, lifecycle_of

log = logging.getLogger("scim_bridge.http")

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


@dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int = 32 * 1024
    max_request_line_bytes: int = 16 * 1024
    max_header_line_bytes: int = 8 * 1024
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 60.0

    @classmethod
    def of(cls, settings: Settings) -> HttpLimits:
        return cls(
            settings.max_header_bytes,
            settings.max_request_line_bytes,
            settings.max_header_line_bytes,
            settings.header_timeout_seconds,
            settings.body_timeout_seconds,
        )


def _error(status: int, detail: str) -> bytes:
    body = orjson.dumps(
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": str(status), "detail": detail}
    )
    return b"".join(
        [
            STATUS_LINE[status],
            b"content-type: application/scim+json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


#: above this, a held head and the body are written apart (no copy of a large body to join them)
JOIN_LIMIT = 64 * 1024


class _HeadWithBody:
    """What a RequestResponseCycle writes to (its `transport`): the head of a response of known
    length is held and written together with the body's first bytes (module docstring).

    The cycle's first write once `response_started` is set is its head (uvicorn writes it last in
    the start message's handling; before the start only `100 Continue` is written); its framing
    is known by then: `chunked_encoding` False means a content-length. A HEAD answer writes no
    body, so its head is never held."""

    __slots__ = ("_transport", "_cycle", "_head", "_head_seen")

    def __init__(self, transport: asyncio.Transport, cycle: RequestResponseCycle) -> None:
        self._transport = transport
        self._cycle = cycle
        self._head: bytes | None = None
        self._head_seen = False

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            if len(data) <= JOIN_LIMIT:
                self._transport.write(head + data)
            else:
                self._transport.writelines((head, data))
            return
        if not self._head_seen:
            cycle = self._cycle
            if cycle.response_started:
                self._head_seen = True
                if cycle.chunked_encoding is False and cycle.scope["method"] != "HEAD":
                    self._head = data
                    return
        self._transport.write(data)

    def flush(self) -> None:
        """Write a held head (the cycle ends without its body: a close, a refusal)."""
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # anything else a later uvicorn asks of its transport
        return getattr(self._transport, name)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header limits and read deadlines (module docstring)."""

    limits = HttpLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_headers = False  # a request has begun and its headers are not complete
        self._header_bytes = 0  # received while in headers, before this read (whole reads: an upper bound)
        self._read_size = 0  # the read being parsed
        limits = self.limits
        self._smallest_limit = min(limits.max_header_bytes, limits.max_request_line_bytes, limits.max_header_line_bytes)
        self._body_pending = False  # headers complete, body not yet (even if the answer is sent)
        self._header_timer: TimerHandle | None = None
        self._body_timer: TimerHandle | None = None
        self._refusal: tuple[int, str] | None = None
        self._writer: _HeadWithBody | None = None  # the writer of self.cycle

    # -- parser callbacks ------------------------------------------------------------------------
    # (kept lean: these run for every request; the timers are armed only for a request still
    # incomplete at the end of a read, which is when its deadline starts to matter)
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers, self._header_bytes = True, 0

    def on_headers_complete(self) -> None:
        self._in_headers = False
        # A request whose bytes so far fit in the smallest limit cannot break any: checked exactly
        # only when they do not (a large read, or headers over several reads).
        if self._header_bytes + self._read_size > self._smallest_limit:
            self._check_header_sizes()
        if self._refusal is not None:  # no application call for a refused request
            return
        self._body_pending = True
        previous = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not previous:  # a cycle was made (not an upgrade): its task has not run yet
            self._writer = _HeadWithBody(self.transport, cycle)
            cycle.transport = self._writer  # type: ignore[assignment]  # duck-types what the cycle uses

    def _check_header_sizes(self) -> None:
        limits = self.limits
        lines = [len(name) + len(value) + 4 for name, value in self.headers]  # "name: value\r\n"
        if len(self.url) > limits.max_request_line_bytes:
            self._refuse_later(414, f"the request line is longer than {limits.max_request_line_bytes} bytes")
        elif lines and max(lines) > limits.max_header_line_bytes:
            self._refuse_later(431, f"a header line is longer than {limits.max_header_line_bytes} bytes")
        elif sum(lines) + len(self.url) > limits.max_header_bytes:
            self._refuse_later(431, f"the request headers are larger than {limits.max_header_bytes} bytes")

    def on_body(self, body: bytes) -> None:
        if self._refusal is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._body_pending = False
        if self._refusal is None:
            super().on_message_complete()

    def _refused(self) -> bool:
        return self._refusal is not None

    # -- transport events --------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return
        self._read_size = len(data)
        super().data_received(data)
        if self._refused():  # the parser's callbacks above may have decided to refuse
            self._refuse()
            return
        if self._in_headers:
            self._header_bytes += len(data)
            if self._header_bytes > self.limits.max_header_bytes + self.limits.max_request_line_bytes:
                # one header still being received, larger than any allowed one
                self._refuse_later(431, f"the request headers are larger than {self.limits.max_header_bytes} bytes")
                self._refuse()
                return
            if self._header_timer is None:  # the request began in this read: its deadline starts now
                self._header_timer = self.loop.call_later(self.limits.header_timeout_seconds, self._headers_too_slow)
        elif self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        if self._body_pending:
            if self._body_timer is None:  # its headers ended in this read: the body's deadline starts now
                self._body_timer = self.loop.call_later(self.limits.body_timeout_seconds, self._body_too_slow)
        elif self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    # -- refusals ----------------------------------------------------------------------------------
    def _refuse_later(self, status: int, detail: str) -> None:
        if self._refusal is None:
            self._refusal = (status, detail)

    def _refuse(self) -> None:
        assert self._refusal is not None
        status, detail = self._refusal
        log.info("refused a request from %s: %s (%d)", self._peer(), detail, status)
        self._close_with(status, detail)

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        detail = f"the request headers were not complete after {self.limits.header_timeout_seconds:g} s"
        log.info("closed a connection from %s: %s", self._peer(), detail)
        self._refusal = (408, detail)
        self._close_with(408, detail)

    def _body_too_slow(self) -> None:
        self._body_timer = None
        detail = f"the request body was not complete after {self.limits.body_timeout_seconds:g} s"
        log.info("closed a connection from %s: %s", self._peer(), detail)
        self._refusal = (408, detail)
        self._close_with(408, detail)

    def _close_with(self, status: int, detail: str) -> None:
        self._cancel_timers()
        if self.transport.is_closing():
            return
        cycle = self.cycle
        answering = cycle is not None and not cycle.response_complete and not self._in_headers
        if answering and cycle is not None:
            # the application waiting for the body sees a disconnect, and cannot answer any more
            cycle.disconnected = True
            cycle.message_event.set()
        answered = cycle is not None and cycle.response_started and (answering or self._body_pending)
        if not answered:  # an answer already sent (or begun) is the client's answer
            self.transport.write(_error(status, detail))
        elif self._writer is not None:
            self._writer.flush()  # a begun answer's held head (self.cycle's), as uvicorn wrote it
        self.transport.close()

    def _cancel_timers(self) -> None:
        for timer in (self._header_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = None

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "?"


def protocol_class(limits: HttpLimits) -> type[asyncio.Protocol]:
    """The protocol with these limits (uvicorn builds protocols from a class, not an instance)."""
    return type("BridgeHttpProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})


def server_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration `scim-bridge serve` runs with (the tests' LiveBridge too)."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        # the bridge's own access log (logs.py: with duration and correlation), never uvicorn's too
        "access_log": False,
        "http": protocol_class(HttpLimits.of(settings)),
        "timeout_keep_alive": settings.keep_alive_timeout_seconds,
        "timeout_graceful_shutdown": settings.shutdown_grace_seconds,
    }
    options.update(overrides)
    return uvicorn.Config(AccessLog(app) if settings.access_log else app, **options)


class BridgeServer(uvicorn.Server):
    """uvicorn's server with a drain before its shutdown, exiting 0 on SIGTERM (module docstring)."""

    def __init__(self, config: uvicorn.Config, app: Any, drain_seconds: float) -> None:
        super().__init__(config)
        # the sandbox serves the bridge inside a PrefixRouter (with the emulators): find the bridge
        while not hasattr(app, "state") and hasattr(app, "bridge"):
            app = app.bridge
        self.sync = getattr(app.state, "sync", None) if hasattr(app, "state") else None
        self.lifecycle = lifecycle_of(app) if hasattr(app, "state") else Lifecycle()
        self.drain_seconds = drain_seconds
        self.drain_until: float | None = None
        self._announced = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # A signal handler: it only sets flags (on_tick acts on them in the event loop), and it does
        # not record the signal, so uvicorn does not re-raise it after the shutdown.
        self.lifecycle.draining = True  # /health/ready answers 503 from now on
        if sig == signal.SIGTERM and self.drain_until is None and self.drain_seconds > 0 and not self.should_exit:
            self.drain_until = time.monotonic() + self.drain_seconds
            return
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self.lifecycle.draining and not self._announced:
            self._announced = True
            log.info("draining: not ready; serving for %g s more, then finishing in-flight work", self.drain_seconds)
            if self.sync is not None:
                self.sync.begin_stop()  # no new sync work; what is in flight finishes or is handed back
        if self.drain_until is not None and time.monotonic() >= self.drain_until:
            self.should_exit = True
        return await super().on_tick(counter)


def run(app: Any, settings: Settings, **overrides: Any) -> None:
    # log_config=None: uvicorn's loggers keep no handlers of their own and propagate to the root
    # handler (logs.configure), so its lines have the bridge's format and redaction.
    config = server_config(app, settings, log_config=None, **overrides)
    config.load()
    install_log_redaction(*UVICORN_LOGGERS)
    BridgeServer(config, app, settings.drain_seconds).run()

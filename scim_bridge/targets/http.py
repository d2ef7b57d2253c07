"""The HTTP side every translator shares: a pooled httpx client, a client-side rate limiter that
also obeys what the target says (Retry-After, X-FeatureRateLimit-Reset, RateLimit-Remaining),
and the mapping from HTTP outcomes to the typed errors of targets/base.py."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx

from .. import metrics
from ..audit.context import INTENT, TARGET
from .base import Conflict, Forbidden, Gone, Invalid, PermanentError, TargetTimeout, Throttled, Unavailable

log = logging.getLogger("scim_bridge.targets")
T = TypeVar("T")


async def find_or_create(
    find: Callable[[], Awaitable[T | None]], create: Callable[[], Awaitable[T]], attempts: int = 3
) -> tuple[T, bool]:
    """(object, created): adopt what `find` returns, else create. A create whose answer was lost
    (5xx after the fact, a dropped connection, a timeout) may have happened, so it is read back
    before it is tried again; that is what keeps retries from making duplicates."""
    for attempt in range(attempts):
        existing = await find()
        if existing is not None:
            return existing, False
        try:
            return await create(), True
        except (Unavailable, TargetTimeout):
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


#: Set while the sync engine works on a revocation (a leaver, a removal): its calls take the next
#: free slot ahead of a backlog of joiners (DESIGN.md, "Revocation first").
PRIORITY: ContextVar[bool] = ContextVar("scim_bridge_target_priority", default=False)


@dataclass(frozen=True)
class TargetCall:
    """One HTTP request to a target, as the audit trail records it (no headers, no query, no body)."""

    target: str
    method: str
    path: str
    status: int | None  # None when no answer came (timeout, connection failure)
    outcome: str  # "ok", or the class of the typed error (Conflict, Unavailable, TargetTimeout…)
    latency_ms: float
    request_id: str | None  # the target's own id of the request, to quote to its support
    intent: str | None = None  # what the call is for, in words (audit/context.py INTENT)


#: Told of every request to a target, in the caller's context, after the answer (the audit trail
#: sets it for the sync workers and requests; see app.py). It must not raise.
CALL_OBSERVER: ContextVar[Callable[[TargetCall], Awaitable[None]] | None] = ContextVar(
    "scim_bridge_target_call_observer", default=None
)

#: Where each target says which request it was: Cloudinary sends X-Request-Id
#: (research/cloudinary.md §2); iconik records a request_id in its audit log (research/iconik.md
#: §7.1) but does not document a response header, so the usual names are tried.
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-iconik-request-id", "x-cloud-trace-context", "x-amzn-requestid")


class RateLimiter:
    """Spaces calls to at most `rate` per second, and pauses every call while the target has
    asked us to wait (a 429 with Retry-After, or a quota whose remaining count reached zero).

    A priority call does not queue behind the slots already handed out: it goes now and pushes
    the next free slot back by one, so the rate can exceed `rate` by the few revocations in
    flight — within the burst both targets allow (iconik: 1000 per 20 s)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._next = 0.0
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> float:
        """Wait for this call's slot; returns the seconds waited (0.0: none)."""
        async with self._lock:
            now = time.monotonic()
            if PRIORITY.get():
                start = max(now, self._paused_until)
                if self.rate:
                    self._next = max(self._next, now) + 1.0 / self.rate
            else:
                start = max(now, self._next, self._paused_until)
                if self.rate:
                    self._next = start + 1.0 / self.rate
        delay = start - now
        if delay > 0:
            await asyncio.sleep(delay)
            return delay
        return 0.0

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Seconds to wait, from Retry-After (seconds or HTTP-date) or X-FeatureRateLimit-Reset.

    A header sent twice counts by its first value: httpx joins repeats with ", ", which would
    otherwise parse by accident (an HTTP-date holds a comma) or not at all."""
    values = response.headers.get_list("retry-after")
    if values and values[0].strip():
        value = values[0].strip()
        if value.isdigit():
            return float(value)
        return _until(value)
    resets = response.headers.get_list("x-featureratelimit-reset")
    return _until(resets[0]) if resets else None


def _until(http_date: str) -> float | None:
    try:
        return max(0.0, parsedate_to_datetime(http_date).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class TargetHttp:
    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        rate: float,
        headers: dict[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.name = name
        self.limiter = limiter or RateLimiter(rate)  # shared when several clients spend one quota
        self.client = httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            auth=auth,
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def call(
        self, method: str, path: str, *, expect: tuple[int, ...] = (200,), idempotent: bool | None = None, **kwargs: Any
    ) -> httpx.Response:
        """One request, retried a few times in place when that is safe; any answer outside
        `expect` becomes a typed TargetError.

        Only idempotent requests are retried here (GET, PUT, PATCH, DELETE, and POSTs the caller
        marks so, such as membership adds): a POST that creates may have been applied before its
        answer was lost, so it goes back to the engine, which looks the object up before creating
        it again (research/iconik.md §10)."""
        if idempotent is None:
            idempotent = method != "POST"
        attempts = 3 if idempotent else 1
        for attempt in range(attempts):
            try:
                return await self._once(method, path, expect, **kwargs)
            except (Unavailable, TargetTimeout) as error:
                if attempt == attempts - 1:
                    raise
                metrics.TARGET_RETRIES.labels(self.name, type(error).__name__).inc()
                await asyncio.sleep(0.05 * 2**attempt * (0.5 + random.random()))
            except Throttled as throttled:
                # A short pause is cheaper waited here than re-queued; a long one goes back.
                if attempt == attempts - 1 or (throttled.retry_after or 2.0) > 3.0:
                    raise
                metrics.TARGET_RETRIES.labels(self.name, "Throttled").inc()
        raise AssertionError("unreachable")

    async def _once(self, method: str, path: str, expect: tuple[int, ...], **kwargs: Any) -> httpx.Response:
        naming = TARGET.set(self.name)  # log lines during the call (httpx's, the observer's) name the target
        try:
            return await self._once_named(method, path, expect, **kwargs)
        finally:
            TARGET.reset(naming)

    async def _once_named(self, method: str, path: str, expect: tuple[int, ...], **kwargs: Any) -> httpx.Response:
        waited = await self.limiter.wait()
        if waited:
            metrics.TARGET_RATE_LIMIT_WAITS.labels(self.name).inc()
            metrics.TARGET_RATE_LIMIT_WAIT_SECONDS.labels(self.name).inc(waited)
        started = time.monotonic()
        try:
            response = await self.client.request(method, path, **kwargs)
        except httpx.TimeoutException as error:
            await self._report(method, path, started, None, "TargetTimeout")
            raise TargetTimeout(f"{self.name}: {method} {path} timed out") from error
        except httpx.TransportError as error:  # refused, reset, dropped mid-response
            await self._report(method, path, started, None, "Unavailable")
            raise Unavailable(f"{self.name}: {method} {path}: {type(error).__name__}") from error
        self._observe_quota(response)
        if response.status_code in expect:
            await self._report(method, path, started, response, "ok")
            return response
        failure = self._error(method, path, response)
        await self._report(method, path, started, response, type(failure).__name__)
        raise failure

    async def _report(
        self, method: str, path: str, started: float, response: httpx.Response | None, outcome: str
    ) -> None:
        elapsed = time.monotonic() - started
        status = str(response.status_code) if response is not None else "none"
        metrics.TARGET_REQUESTS.labels(self.name, method, status).inc()
        metrics.TARGET_DURATION.labels(self.name, method).observe(elapsed)
        observer = CALL_OBSERVER.get()
        if observer is None:
            return
        request_id = (
            next((response.headers[h] for h in REQUEST_ID_HEADERS if h in response.headers), None)
            if response is not None
            else None
        )
        try:
            await observer(
                TargetCall(
                    self.name,
                    method,
                    path.split("?", 1)[0],
                    response.status_code if response is not None else None,
                    outcome,
                    elapsed * 1000,
                    request_id,
                    INTENT.get(),
                )
            )
        except Exception:  # recording must never turn a target call into a failure
            log.exception("target call observer failed")

    def _observe_quota(self, response: httpx.Response) -> None:
        remaining = response.headers.get("ratelimit-remaining") or response.headers.get("x-featureratelimit-remaining")
        if remaining == "0" and response.status_code < 400:
            wait = retry_after_seconds(response)
            self.limiter.pause(wait if wait is not None else 1.0)

    def _error(self, method: str, path: str, response: httpx.Response) -> Exception:
        status = response.status_code
        message = f"{self.name}: {method} {path} → {status} {_detail(response)}"
        if status in (420, 429):
            wait = retry_after_seconds(response)
            self.limiter.pause(wait if wait is not None else 2.0)
            return Throttled(message, wait, status)
        if status >= 500:
            return Unavailable(message, status)
        if status in (401, 403):
            return Forbidden(message, status)
        if status == 404:
            return Gone(message, status)
        if status == 409:
            return Conflict(message, status)
        if status == 400 or status == 422:
            return Invalid(message, status)
        return PermanentError(message, status)


def _detail(response: httpx.Response) -> str:
    """The target's own message, from either vendor's error shape; never the request's secrets."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        if isinstance(body.get("error"), dict):
            return str(body["error"].get("message", ""))[:300]
        if "errors" in body:
            return str(body["errors"])[:300]
    return str(body)[:200]

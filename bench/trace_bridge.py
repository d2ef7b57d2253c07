"""The bridge with a timeline of each revocation-lane sync (diagnosis only, not for production).

    SCIM_BRIDGE_TRACE_FILE=/tmp/trace.jsonl python bench/trace_bridge.py serve --port P --store URL

Run in place of `python -m scim_bridge`: wraps the worker, the store, the rate limiter and httpx
so that every revocation-lane entry writes one JSON line: when it was queued and claimed, each
store call and target call it made (limiter wait, connection-pool wait, time on the wire) and the
event-loop stalls seen meanwhile."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import os
import sys
import time
from contextvars import ContextVar
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from scim_bridge.cli import main
from scim_bridge.store import REVOCATION_LANE
from scim_bridge.store.redis import RedisStore
from scim_bridge.store.sqlite import SqliteStore
from scim_bridge.sync.worker import SyncWorker
from scim_bridge.targets.http import RateLimiter, TargetHttp

TRACE: ContextVar[dict[str, Any] | None] = ContextVar("trace", default=None)
OUT = open(os.environ["SCIM_BRIDGE_TRACE_FILE"], "a", buffering=1)
STALLS: list[tuple[float, float]] = []  # (wall time at the end of a stall, its length)


def ms(t: float) -> float:
    return round(t * 1000, 2)


def event(kind: str, started: float, **fields: Any) -> None:
    trace = TRACE.get()
    if trace is not None:
        trace["events"].append(
            {"kind": kind, "at": ms(started - trace["t0"]), "ms": ms(time.time() - started), **fields}
        )


async def watch_loop() -> None:
    while True:
        before = time.time()
        await asyncio.sleep(0.005)
        late = time.time() - before - 0.005
        if late > 0.01:
            STALLS.append((time.time(), late))
            del STALLS[:-2000]


original_process = SyncWorker.process


async def process(self: SyncWorker, entry: Any) -> None:
    if entry.lane != REVOCATION_LANE:
        return await original_process(self, entry)
    if not any(getattr(t, "_trace_watch", False) for t in asyncio.all_tasks()):
        task = asyncio.get_running_loop().create_task(watch_loop())
        task._trace_watch = True  # type: ignore[attr-defined]
    t0 = time.time()
    trace = {"id": entry.id, "t0": t0, "queued_ms": ms(t0 - entry.enqueued) if entry.enqueued else None, "events": []}
    TRACE.set(trace)
    try:
        await original_process(self, entry)
    finally:
        trace["total_ms"] = ms(time.time() - t0)
        trace["stalls"] = [(ms(end - t0), ms(length)) for end, length in STALLS if end > t0 - 0.2]
        trace.pop("t0")
        OUT.write(json.dumps(trace) + "\n")


SyncWorker.process = process  # type: ignore[method-assign]


def wrap_store(cls: type) -> None:
    for name, fn in list(vars(cls).items()):
        if name.startswith("_") or not inspect.iscoroutinefunction(fn):
            continue

        def make(fn: Any, name: str) -> Any:
            @functools.wraps(fn)
            async def traced(*args: Any, **kwargs: Any) -> Any:
                started = time.time()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    event("store", started, op=name)

            return traced

        setattr(cls, name, make(fn, name))


wrap_store(SqliteStore)
wrap_store(RedisStore)

original_wait = RateLimiter.wait


async def wait(self: RateLimiter) -> float:
    started = time.time()
    waited = await original_wait(self)
    event("limiter", started, waited=ms(waited))
    return waited


RateLimiter.wait = wait  # type: ignore[method-assign]

original_once = TargetHttp._once_named


async def once(self: TargetHttp, method: str, path: str, expect: Any, **kwargs: Any) -> httpx.Response:
    started = time.time()
    marks: dict[str, float] = {}
    trace = TRACE.get()
    if trace is not None:

        async def on_trace(name: str, info: dict[str, Any]) -> None:
            marks.setdefault(name, time.time())

        kwargs.setdefault("extensions", {})["trace"] = on_trace
    status = None
    try:
        response = await original_once(self, method, path, expect, **kwargs)
        status = response.status_code
        return response
    except Exception as error:
        status = type(error).__name__
        raise
    finally:
        if trace is not None:
            sent = marks.get("http11.send_request_headers.started")
            answered = marks.get("http11.receive_response_headers.complete")
            event(
                "call",
                started,
                target=self.name,
                call=f"{method} {path.split('?')[0]}",
                status=status,
                to_headers_sent=ms(sent - started) if sent else None,
                to_answer=ms(answered - sent) if sent and answered else None,
                connect=ms(marks["connection.connect_tcp.started"] - started)
                if "connection.connect_tcp.started" in marks
                else None,
            )


TargetHttp._once_named = once  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())

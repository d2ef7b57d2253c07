"""Writes to a hung Redis answer the truth (issue 10 §4): a 2xx if the write landed, and a 503
only for a write that did not land and never will.

The problem. A write is one Lua script. When Redis hangs (a long command, a fork on a big box,
a paused VM, SIGSTOP), the client's read times out after 5 s and the SCIM layer answers 503;
but the script is still in Redis's socket buffer and runs when Redis resumes. The client was
told "not applied", the write applied, and its retry met 409 uniqueness.

The choice: confirm before answering, and fence what cannot be confirmed. Two alternatives
were weighed and rejected: undoing after the fact (nothing can be undone while Redis hangs, and
an undo racing the late write is a second bug), and idempotent POSTs keyed by a fingerprint of
the body (it turns the RFC's 409 for a repeated POST into a 201 for every client, which
conformance suites and Okta's re-match logic rely on; and it covers only POST).

1. Every write script already carries a fresh call id (KEYS[1]) and stores its answer under it
   for 30 s, so the same call re-sent returns the first answer instead of writing twice
   (redis.py). After a timeout, the store re-sends the *same* call, for up to WRITE_BUDGET
   seconds in all: if Redis resumes within the budget, the re-sent call either returns the
   first call's answer (it ran) or runs now (it had not), and the client gets the truth, 2xx.
2. Each send carries a deadline: the moment after which this bridge no longer waits for that
   send's answer (its timeout, minus MARGIN for the reply's trip). The script checks it against
   Redis's own clock (TIME) before writing and refuses a late run ('late', nothing written, no
   answer stored, so a later send of the same call may still run). Once the budget is spent and
   the store answers StoreUnavailable (503), every send of the call is past its deadline: the
   write can no longer land, so the client's retry creates it once, with no 409.

Clocks: the deadline is in Redis's time, so the bridge keeps the offset between its clock and
Redis's (TIME, half the round trip), measured before the first write and refreshed every
minute. An error in it below MARGIN is harmless; NTP-synced hosts are within milliseconds.

What remains: a write that ran in time and whose answer was then lost with the connection
(Redis crashed right after it) and that Redis does not confirm within the budget; with AOF it
may exist after the restart. That is a crash, not a hang, and the same holds of any database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

#: Seconds a write may take in all, re-sends included, before the store gives up (503).
WRITE_BUDGET = 8.0
#: Seconds of one send: Redis's socket timeout.
SEND_TIMEOUT = 5.0
#: Seconds kept between a send's deadline in Redis and the end of the bridge's wait for it.
MARGIN = 0.5
#: Pause before re-sending after the connection was refused (the server is not listening).
REFUSED_PAUSE = 0.2
#: Seconds between clock-offset measurements.
OFFSET_TTL = 60.0

#: Lua, after the replay check of redis._replayable: refuse a send that runs after its deadline
#: (the last ARGV, in Redis-clock microseconds).
FENCE = """
local clock = redis.call('TIME')
if tonumber(clock[1]) * 1000000 + tonumber(clock[2]) > tonumber(ARGV[#ARGV]) then return {'err', 'late'} end
"""


class Late(Exception):
    """A send ran after its deadline and wrote nothing."""


class WriteFence:
    """Runs one write call until Redis confirms it or the budget is spent."""

    def __init__(self, clock: Callable[[], Awaitable[int]], down: tuple[type[BaseException], ...]) -> None:
        self._clock = clock  # Redis's TIME in microseconds
        self._down = down  # connection-level failures worth a re-send
        self._offset_us: int | None = None
        self._measured = 0.0

    async def _offset(self) -> int:
        """Redis clock minus ours, in microseconds; refreshed at most every OFFSET_TTL seconds."""
        now = time.monotonic()
        if self._offset_us is None or now - self._measured > OFFSET_TTL:
            try:
                async with asyncio.timeout(1.0 if self._offset_us is not None else SEND_TIMEOUT):
                    before = time.time()
                    server = await self._clock()
                    after = time.time()
                self._offset_us = server - int((before + after) / 2 * 1_000_000)
                self._measured = now
            except self._down:
                if self._offset_us is None:  # nothing sent yet, so nothing can land: a plain outage
                    raise
        return self._offset_us

    async def call(self, send: Callable[[list[Any]], Awaitable[Any]], argv: list[Any]) -> Any:
        """send(argv + [deadline]) until it answers in time; raises the last failure when the
        budget is spent, by which time no send of the call can still write."""
        give_up = time.monotonic() + WRITE_BUDGET
        maybe_sent = False  # whether a send of this call may have reached Redis
        while True:
            offset = await self._offset()
            wait = min(SEND_TIMEOUT, give_up - time.monotonic())
            deadline_us = int((time.time() + wait - MARGIN) * 1_000_000) + offset
            try:
                async with asyncio.timeout(wait):
                    result = await send([*argv, deadline_us])
                if not _is_late(result):
                    return result
                maybe_sent = True
                failure: BaseException = Late()
            except self._down as error:
                failure = error
                if _not_connected(error):
                    if not maybe_sent:  # Redis is down and has nothing of this call: a plain 503
                        raise
                    await asyncio.sleep(min(REFUSED_PAUSE, max(0.0, give_up - time.monotonic())))
                else:
                    maybe_sent = True  # a timeout or a dropped connection after the send
            if give_up - time.monotonic() <= MARGIN * 2:
                raise failure


def _not_connected(error: BaseException) -> bool:
    """The send never reached a server: the connection could not be opened (refused, no route).
    redis-py says so in the message ("Error 111 connecting to host:port. Connection refused.")."""
    return isinstance(error, ConnectionRefusedError) or "connecting to" in str(error).lower()


def _is_late(result: Any) -> bool:
    return (
        isinstance(result, list)
        and len(result) == 2
        and result[0] in (b"err", "err")
        and result[1] in (b"late", "late")
    )

"""Throttling of failed client authentications at POST /oauth/token (token buckets).

Only failures take from the buckets, so a client that authenticates correctly is never counted.
Two buckets are charged by each failure, and a request is refused (429) while either is empty:

- per remote address (any client id): ADDRESS_BURST failures, then one per ADDRESS_REFILL_SECONDS.
  This stops one host from spraying client ids or secrets.
- per client id *at that address*: CLIENT_BURST failures, then one per CLIENT_REFILL_SECONDS.
  This stops one misconfigured or hostile caller hammering one client, and, being smaller than
  the address bucket's refill rate, keeps such a caller from draining the address bucket that a
  healthy client behind the same NAT shares.

The client bucket is keyed by address as well on purpose: a bucket for a client id alone would
let anyone who knows OTDS's client id lock OTDS out from elsewhere by failing on purpose. The
secrets are 256-bit random strings, so the throttle is not what keeps them from being guessed;
it keeps a flood of bad attempts from costing the bridge (and its logs) anything.

Why these numbers: OTDS asks for one token per lifetime (1 hour by default, 15 minutes at the
least), so a healthy client fails never; an operator mistyping a secret gets 5 immediate tries,
then one every 12 s. A NAT with several clients has 20 failures in hand, then one every 3 s.

The counters live in memory, per replica, not in the store: the Store protocol has no atomic
counter with expiry (a kv read-modify-write would race between replicas anyway), and counting
every failed attempt in the shared Redis would make an attack a load on the store every replica
depends on. With N replicas behind a load balancer the effective limits are N times these,
still far below the 500 a second the endpoint took before. The remote address is the peer's, or
the client's behind a proxy uvicorn trusts (FORWARDED_ALLOW_IPS; 127.0.0.1 by default).
"""

from __future__ import annotations

import math
import time

ADDRESS_BURST, ADDRESS_REFILL_SECONDS = 20, 3.0
CLIENT_BURST, CLIENT_REFILL_SECONDS = 5, 12.0
MAX_BUCKETS = 50_000  # beyond this, buckets that have refilled are forgotten (they equal a new one)


class _Buckets:
    """Token buckets, each (tokens, last update); a missing bucket is a full one."""

    def __init__(self, burst: int, refill_seconds: float) -> None:
        self.burst = burst
        self.refill_seconds = refill_seconds
        self._state: dict[str, tuple[float, float]] = {}

    def _level(self, key: str, now: float) -> float:
        tokens, since = self._state.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - since) / self.refill_seconds)

    def wait(self, key: str, now: float) -> float:
        """Seconds until this bucket has a whole token again (0: a failure is allowed now)."""
        level = self._level(key, now)
        return 0.0 if level >= 1.0 else (1.0 - level) * self.refill_seconds

    def take(self, key: str, now: float) -> None:
        self._state[key] = (max(0.0, self._level(key, now) - 1.0), now)
        if len(self._state) > MAX_BUCKETS:
            self._state = {k: v for k, v in self._state.items() if self._level(k, now) < self.burst}
            if len(self._state) > MAX_BUCKETS:  # a flood from ever new addresses: start afresh
                self._state.clear()


class TokenEndpointThrottle:
    def __init__(self) -> None:
        self.addresses = _Buckets(ADDRESS_BURST, ADDRESS_REFILL_SECONDS)
        self.clients = _Buckets(CLIENT_BURST, CLIENT_REFILL_SECONDS)

    def retry_after(self, address: str, client_id: str) -> int:
        """Whole seconds to wait before this address may try this client again; 0: go ahead."""
        now = time.monotonic()
        wait = max(self.addresses.wait(address, now), self.clients.wait(_pair(address, client_id), now))
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, address: str, client_id: str) -> None:
        now = time.monotonic()
        self.addresses.take(address, now)
        self.clients.take(_pair(address, client_id), now)


def _pair(address: str, client_id: str) -> str:
    return f"{client_id}\0{address}"

"""Rate limits as the vendors describe them: a fixed window (Cloudinary's hourly quotas) and a
token bucket (iconik's "≈50 requests/s sustained, 1000 per 20 s")."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class FixedWindow:
    limit: int  # calls per window; 0 disables the limit
    window_seconds: float = 3600.0
    _start: float = field(default_factory=time.time)
    _used: int = 0

    def take(self) -> tuple[bool, int, float]:
        """(allowed, remaining, reset epoch seconds)."""
        now = time.time()
        if now - self._start >= self.window_seconds:
            self._start, self._used = now, 0
        reset = self._start + self.window_seconds
        if self.limit and self._used >= self.limit:
            return False, 0, reset
        self._used += 1
        return True, max(0, self.limit - self._used) if self.limit else 1_000_000, reset


@dataclass
class TokenBucket:
    rate: float  # tokens per second; 0 disables the limit
    burst: float
    _tokens: float = -1.0
    _updated: float = field(default_factory=time.monotonic)

    def take(self) -> tuple[bool, int, float]:
        """(allowed, remaining tokens, seconds until one token is back)."""
        if not self.rate:
            return True, 1_000_000, 0.0
        now = time.monotonic()
        if self._tokens < 0:
            self._tokens = self.burst
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens < 1:
            return False, 0, (1 - self._tokens) / self.rate
        self._tokens -= 1
        return True, int(self._tokens), 0.0

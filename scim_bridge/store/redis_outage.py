"""Outages of the Redis store: every connection-level failure becomes StoreUnavailable (the SCIM
layer answers 503, never 500), whichever client raised it (redis-py, or redis_lean.py, which
raises redis-py's exception classes)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    ConnectionError,
    ReadOnlyError,
    SlotNotCoveredError,
    TimeoutError,
    TryAgainError,
)

from .base import StoreUnavailable

P = ParamSpec("P")
T = TypeVar("T")
# A demoted master (ReadOnlyError), a cluster without a majority or between slot owners: outages
# too, answered 503 like a dropped connection, never a 500.
DOWN = (
    ConnectionError,
    TimeoutError,
    BusyLoadingError,
    OSError,
    ReadOnlyError,
    ClusterDownError,
    TryAgainError,
    SlotNotCoveredError,
)


def translate_outage(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Any connection-level failure becomes StoreUnavailable (the SCIM layer answers 503)."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except DOWN as error:
            raise StoreUnavailable(f"redis: {type(error).__name__}") from error

    return wrapper

"""Storage: one protocol (base.py), two backends chosen by URL."""

from __future__ import annotations

from .base import (
    GENESIS_HASH,
    LANES,
    REVOCATION_LANE,
    STANDARD_LANE,
    AuditEntry,
    AuditHead,
    NotFound,
    QueueDepth,
    QueueEntry,
    Record,
    Store,
    StoreError,
    StoreUnavailable,
    UniqueViolation,
    VersionMismatch,
    Write,
    chain_hash,
)
from .redis_connect import SCHEMES as REDIS_SCHEMES
from .redis_connect import RedisOptions

__all__ = [
    "GENESIS_HASH",
    "AuditEntry",
    "AuditHead",
    "chain_hash",
    "LANES",
    "REVOCATION_LANE",
    "STANDARD_LANE",
    "NotFound",
    "QueueDepth",
    "QueueEntry",
    "Record",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "UniqueViolation",
    "VersionMismatch",
    "RedisOptions",
    "Write",
    "open_store",
]


def open_store(url: str, redis_options: RedisOptions | None = None) -> Store:
    """Build (not yet open) the store a URL names: sqlite:///path.db, or Redis (redis://host:port/db,
    rediss://, redis+sentinel://, redis+cluster://: store/redis_connect.py) with its options."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from .sqlite import SqliteStore

        return SqliteStore(url)
    if scheme in REDIS_SCHEMES:
        from .redis import RedisStore

        return RedisStore(url, redis_options)
    raise ValueError(
        f"SCIM_BRIDGE_STORE: unsupported store URL {url!r} (use sqlite:///path.db or redis://host:port/db)"
    )

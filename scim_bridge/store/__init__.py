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
    "Write",
    "open_store",
]


def open_store(url: str) -> Store:
    """Build (not yet open) the store a URL names: sqlite:///path.db or redis://host:port/db."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from .sqlite import SqliteStore

        return SqliteStore(url)
    if scheme in ("redis", "rediss", "unix"):
        from .redis import RedisStore

        return RedisStore(url)
    raise ValueError(
        f"SCIM_BRIDGE_STORE: unsupported store URL {url!r} (use sqlite:///path.db or redis://host:port/db)"
    )

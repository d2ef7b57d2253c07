"""Reading and tampering with a store's audit log directly, as an attacker with store access would."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import redis

from scim_bridge.audit.trail import AuditTrail, as_record
from scim_bridge.store import open_store


def records(url: str) -> list[dict[str, Any]]:
    """Every retained entry, chained first (what `audit export` would write)."""

    async def read() -> list[dict[str, Any]]:
        store = open_store(url)
        await store.open()
        try:
            await store.audit_seal()
            return [as_record(entry) for entry in await store.audit_read(limit=1_000_000)]
        finally:
            await store.close()

    return asyncio.run(read())


def raw_bytes(url: str) -> bytes:
    """Everything the log holds, byte for byte (bodies and hashes), pending entries included."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.split("sqlite:///", 1)[1]) as conn:
            return b"\n".join(bytes(row[0]) + row[1].encode() for row in conn.execute("SELECT body, hash FROM audit"))
    with redis.Redis.from_url(url) as client:
        parts = [b"".join(k + v for k, v in fields.items()) for _, fields in client.xrange("sb:audit:log")]
        parts += [b"".join(k + v for k, v in fields.items()) for _, fields in client.xrange("sb:audit:pending")]
        return b"\n".join(parts)


def verify(url: str) -> Any:
    async def run() -> Any:
        store = open_store(url)
        await store.open()
        try:
            return await AuditTrail(store).verify()
        finally:
            await store.close()

    return asyncio.run(run())


def edit(url: str, seq: int, old: bytes, new: bytes) -> None:
    """Change bytes inside one entry's body, leaving its stored hash as it was."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.split("sqlite:///", 1)[1]) as conn:
            body = bytes(conn.execute("SELECT body FROM audit WHERE seq = ?", (seq,)).fetchone()[0])
            assert old in body
            conn.execute("UPDATE audit SET body = ? WHERE seq = ?", (body.replace(old, new), seq))
        return
    with redis.Redis.from_url(url) as client:  # a stream entry cannot be edited in place: rebuild it
        entries = client.xrange("sb:audit:log")
        client.delete("sb:audit:log")
        for entry_id, fields in entries:
            if entry_id == f"{seq}-0".encode():
                assert old in fields[b"b"]
                fields = {**fields, b"b": fields[b"b"].replace(old, new)}
            client.xadd("sb:audit:log", fields, id=entry_id)


def remove(url: str, seq: int) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.split("sqlite:///", 1)[1]) as conn:
            assert conn.execute("DELETE FROM audit WHERE seq = ?", (seq,)).rowcount == 1
        return
    with redis.Redis.from_url(url) as client:
        assert client.xdel("sb:audit:log", f"{seq}-0") == 1

"""Audit entries out as JSON lines (one entry per line, exactly the stored fields plus seq, time and
hash) or CSV (one column per common field; `changes` as JSON in one cell)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson

CSV_COLUMNS = (
    "seq",
    "time",
    "kind",
    "correlation",
    "client",
    "request",
    "operation",
    "outcome",
    "status",
    "resource_type",
    "resource_id",
    "resource_name",
    "target",
    "method",
    "path",
    "latency_ms",
    "request_id",
    "changes",
    "detail",
    "hash",
)


def jsonl_line(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record) + b"\n"


def csv_row(record: dict[str, Any]) -> dict[str, Any]:
    resource = record.get("resource") or {}
    client = record.get("client") or {}
    return {
        **{column: record.get(column) for column in CSV_COLUMNS},
        "client": f"{client.get('kind')}:{client.get('name')}" if client else "",
        "resource_type": resource.get("type"),
        "resource_id": resource.get("id"),
        "resource_name": resource.get("name"),
        "changes": orjson.dumps(record["changes"]).decode() if record.get("changes") else "",
    }


def csv_text(records: Iterable[dict[str, Any]], header: bool = True) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    if header:
        writer.writeheader()
    for record in records:
        writer.writerow(csv_row(record))
    return buffer.getvalue()


async def export(records: AsyncIterator[dict[str, Any]], fmt: str) -> AsyncIterator[bytes]:
    """Encoded chunks of an export, streamed (a year of entries need not fit in memory)."""
    if fmt == "csv":
        yield csv_text([], header=True).encode()
    batch: list[dict[str, Any]] = []
    async for record in records:
        batch.append(record)
        if len(batch) >= 500:
            yield _encode(batch, fmt)
            batch = []
    if batch:
        yield _encode(batch, fmt)


def _encode(batch: list[dict[str, Any]], fmt: str) -> bytes:
    if fmt == "csv":
        return csv_text(batch, header=False).encode()
    return b"".join(jsonl_line(record) for record in batch)

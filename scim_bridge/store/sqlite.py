"""The embedded store: one SQLite file, zero set-up, one bridge process.

Durability: WAL journal with `synchronous=FULL`, so a write is on disk when `create`/`replace`/
`delete` return, and therefore before the SCIM 2xx. Writes run in one dedicated thread that
commits concurrent writes together (sqlite_writer.py: an fsync must not stall the event loop,
and one fsync can serve many writes); point reads run inline on a second connection, because a
WAL read of one row costs microseconds and a thread hop would cost more than the read.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

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
    StoreUnavailable,
    UniqueViolation,
    VersionMismatch,
    Write,
    chain_hash,
)
from .queue_bell import QueueBell
from .sqlite_writer import GroupCommitWriter

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    body BLOB NOT NULL,
    UNIQUE (type, id)
);
CREATE TABLE IF NOT EXISTS index_entries (
    type TEXT NOT NULL,
    attr TEXT NOT NULL,
    value TEXT NOT NULL,
    id TEXT NOT NULL,
    is_unique INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS index_lookup ON index_entries (type, attr, value, id);
CREATE INDEX IF NOT EXISTS index_owner ON index_entries (type, id);
CREATE UNIQUE INDEX IF NOT EXISTS index_unique ON index_entries (type, attr, value) WHERE is_unique = 1;
CREATE TABLE IF NOT EXISTS queue (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    lane TEXT NOT NULL,
    generation INTEGER NOT NULL,
    enqueued INTEGER NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0,
    consumer TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (type, id)
);
-- the fencing token of each lease: one counter for the whole queue, so a token is never handed
-- out twice, not even after its entry was acked and the resource queued again
CREATE TABLE IF NOT EXISTS lease_counter (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
-- named leases of the jobs that run once per deployment (scheduled reconcile, expiry sweep...)
CREATE TABLE IF NOT EXISTS job_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_order ON queue (lane, enqueued);
CREATE TABLE IF NOT EXISTS kv (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    time_us INTEGER NOT NULL,
    hash TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_time ON audit (time_us);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    time_us INTEGER NOT NULL,
    anchor_seq INTEGER NOT NULL,
    anchor_hash TEXT NOT NULL
);
"""

_LANE_RANK = {lane: rank for rank, lane in enumerate(LANES)}


def _rank(column: str) -> str:
    return "CASE " + column + "".join(f" WHEN '{lane}' THEN {rank}" for lane, rank in _LANE_RANK.items()) + " END"


# In an upsert's SET every column names the row as it was (`excluded.` the one proposed).
_UPGRADES = f"{_rank('excluded.lane')} < {_rank('queue.lane')}"
_ENQUEUE = (
    "INSERT INTO queue (type, id, lane, generation, enqueued, correlation) VALUES (?, ?, ?, 1, ?, ?) "
    "ON CONFLICT (type, id) DO UPDATE SET generation = queue.generation + 1, "
    f"lane = CASE WHEN {_UPGRADES} THEN excluded.lane ELSE queue.lane END, "
    f"enqueued = CASE WHEN {_UPGRADES} THEN excluded.enqueued ELSE queue.enqueued END, "
    "correlation = coalesce(excluded.correlation, queue.correlation)"
)


class _AuditTail:
    """The audit entries the writes of the writer's current batch leave (sqlite_writer.BatchTail),
    chained and inserted together just before its COMMIT. Touched by the writer thread only."""

    def __init__(self) -> None:
        self._bodies: list[bytes] = []

    def add(self, body: bytes) -> None:
        self._bodies.append(body)

    def extend(self, bodies: Sequence[bytes]) -> None:
        self._bodies.extend(bodies)

    def begin(self) -> None:
        self._bodies = []

    def mark(self) -> int:
        return len(self._bodies)

    def undo(self, mark: int) -> None:
        del self._bodies[mark:]

    def flush(self, conn: sqlite3.Connection) -> None:
        bodies, self._bodies = self._bodies, []
        if bodies:
            _audit_append(conn, bodies)


def _audit_append(conn: sqlite3.Connection, bodies: Sequence[bytes]) -> None:
    seq, prev, last_time = conn.execute("SELECT seq, hash, time_us FROM audit_head WHERE id = 1").fetchone()
    now = max(time.time_ns() // 1000, last_time)  # times never decrease along the chain
    rows: list[Any] = []
    for body in bodies:
        seq += 1
        prev = chain_hash(prev, seq, now, body)
        rows.append((seq, now, prev, body))
    _insert_rows(conn, "audit (seq, time_us, hash, body)", rows)
    conn.execute("UPDATE audit_head SET seq = ?, hash = ?, time_us = ? WHERE id = 1", (seq, prev, now))


#: Rows of one multi-row INSERT: well under SQLite's bound-parameter cap (999 before 3.32).
_ROWS_PER_INSERT = 100


def _insert_rows(conn: sqlite3.Connection, into: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """INSERT of several rows per statement: one statement to step, where executemany steps once
    per row (and gives the interpreter lock away and takes it back each time)."""
    marks = "(" + ", ".join("?" * len(rows[0])) + ")"
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[start : start + _ROWS_PER_INSERT]
        conn.execute(f"INSERT INTO {into} VALUES {', '.join([marks] * len(chunk))}", [v for row in chunk for v in row])


def _path_from_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme != "sqlite":
        raise ValueError(f"not a sqlite URL: {url}")
    # sqlite:///relative.db → "relative.db"; sqlite:////abs/path.db → "/abs/path.db"
    path = (parsed.netloc + parsed.path)[1:] if parsed.path.startswith("/") else parsed.path
    return path or ":memory:"


class SqliteStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.path = _path_from_url(url)
        self._writer: GroupCommitWriter | None = None
        self._read_conn: sqlite3.Connection | None = None
        self._audit_tail = _AuditTail()  # the audit entries of the writer's current batch
        self.queue_bell = QueueBell()  # this process's enqueues wake its idle workers (queue_bell.py)

    # lifecycle -------------------------------------------------------------------------------
    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._read_conn = self._connect()
        self._read_conn.executescript(_SCHEMA)
        columns = {row[1] for row in self._read_conn.execute("PRAGMA table_info(queue)")}
        if "attempts" not in columns:  # files made before retries were counted
            self._read_conn.execute("ALTER TABLE queue ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
        if "correlation" not in columns:  # files made before the audit trail
            self._read_conn.execute("ALTER TABLE queue ADD COLUMN correlation TEXT")
        if "lease_no" not in columns:  # files made before leases were fenced
            self._read_conn.execute("ALTER TABLE queue ADD COLUMN lease_no INTEGER NOT NULL DEFAULT 0")
        self._read_conn.execute("INSERT OR IGNORE INTO lease_counter VALUES (1, 0)")
        self._read_conn.execute(
            "INSERT OR IGNORE INTO audit_head VALUES (1, 0, ?, 0, 0, ?)", (GENESIS_HASH, GENESIS_HASH)
        )
        self._writer = GroupCommitWriter(self._connect, self._audit_tail)
        self._writer.start()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=5000")
        # Savepoint (statement) journals in memory: each write of a group commit runs in its own
        # SAVEPOINT, and past 64 KiB SQLite spilled their journal to a temporary file, opened,
        # written page by page and closed in every batch (py-spy --native: open64, pwrite64 and
        # close in the writer thread). Only a rollback to a savepoint reads it; durability is the
        # WAL's and unchanged.
        conn.execute("PRAGMA temp_store=MEMORY")
        return conn

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.stop()
            self._writer = None
        if self._read_conn is not None:
            self._read_conn.close()
            self._read_conn = None

    async def ping(self) -> None:
        try:
            self._reader.execute("SELECT 1").fetchone()
        except sqlite3.Error as error:
            raise StoreUnavailable(str(error)) from error

    @property
    def _reader(self) -> sqlite3.Connection:
        if self._read_conn is None:
            raise StoreUnavailable("store is not open")
        return self._read_conn

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run fn in a write transaction; returns once committed (see sqlite_writer)."""
        if self._writer is None:
            raise StoreUnavailable("store is not open")
        return await self._writer.submit(fn)

    # resources -------------------------------------------------------------------------------
    async def create(self, write: Write) -> Record:
        def apply(conn: sqlite3.Connection) -> Record:
            cursor = conn.execute(
                "INSERT INTO resources (type, id, version, body) VALUES (?, ?, 1, ?)",
                (write.resource_type, write.id, write.body),
            )
            self._write_index(conn, write)
            self._enqueue(conn, write.resource_type, write.id, write.lane, write.correlation)
            if write.audit is not None:
                self._audit_tail.add(write.audit)  # chained before the batch's COMMIT
            return Record(write.resource_type, write.id, 1, int(cursor.lastrowid or 0), write.body)

        record = await self._write(apply)
        self.queue_bell.ring(write.lane)
        return record

    async def replace(self, write: Write, expected_version: int | None = None) -> Record:
        def apply(conn: sqlite3.Connection) -> Record:
            row = conn.execute(
                "SELECT version, seq FROM resources WHERE type = ? AND id = ?",
                (write.resource_type, write.id),
            ).fetchone()
            if row is None:
                raise NotFound(write.id)
            version, seq = row
            if expected_version is not None and expected_version != version:
                raise VersionMismatch(version)
            conn.execute(
                "UPDATE resources SET version = ?, body = ? WHERE seq = ?",
                (version + 1, write.body, seq),
            )
            conn.execute("DELETE FROM index_entries WHERE type = ? AND id = ?", (write.resource_type, write.id))
            self._write_index(conn, write)
            self._enqueue(conn, write.resource_type, write.id, write.lane, write.correlation)
            if write.audit is not None:
                self._audit_tail.add(write.audit)
            return Record(write.resource_type, write.id, version + 1, seq, write.body)

        record = await self._write(apply)
        self.queue_bell.ring(write.lane)
        return record

    async def delete(
        self,
        resource_type: str,
        id: str,
        expected_version: int | None = None,
        lane: str | None = REVOCATION_LANE,
        *,
        audit: bytes | None = None,
        correlation: str | None = None,
    ) -> None:
        def apply(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT version FROM resources WHERE type = ? AND id = ?", (resource_type, id)
            ).fetchone()
            if row is None:
                raise NotFound(id)
            if expected_version is not None and expected_version != row[0]:
                raise VersionMismatch(row[0])
            conn.execute("DELETE FROM resources WHERE type = ? AND id = ?", (resource_type, id))
            conn.execute("DELETE FROM index_entries WHERE type = ? AND id = ?", (resource_type, id))
            self._enqueue(conn, resource_type, id, lane, correlation)
            if audit is not None:
                self._audit_tail.add(audit)

        await self._write(apply)
        self.queue_bell.ring(lane)

    @staticmethod
    def _write_index(conn: sqlite3.Connection, write: Write) -> None:
        """The write's index rows; a unique key another resource holds fails the insert (the
        partial unique index) and is a UniqueViolation. The caller's savepoint undoes the rest.
        No SELECT before: that was one statement more per write in the writer thread, each a
        hand-over of the interpreter lock to it and back."""
        unique = set(write.unique_keys)
        rows = {(attr, value) for attr, value in write.index_keys} | unique
        if not rows:
            return
        try:
            _insert_rows(
                conn,
                "index_entries (type, attr, value, id, is_unique)",
                [(write.resource_type, a, v, write.id, int((a, v) in unique)) for a, v in rows],
            )
        except sqlite3.IntegrityError:
            raise UniqueViolation(SqliteStore._taken_key(conn, write)) from None

    @staticmethod
    def _taken_key(conn: sqlite3.Connection, write: Write) -> tuple[str, str]:
        for attr, value in write.unique_keys:
            row = conn.execute(
                "SELECT id FROM index_entries WHERE type = ? AND attr = ? AND value = ? AND is_unique = 1 AND id != ?",
                (write.resource_type, attr, value, write.id),
            ).fetchone()
            if row is not None:
                return attr, value
        return write.unique_keys[0]

    async def get(self, resource_type: str, id: str) -> Record | None:
        row = self._read(
            "SELECT version, seq, body FROM resources WHERE type = ? AND id = ?", (resource_type, id)
        ).fetchone()
        return Record(resource_type, id, row[0], row[1], row[2]) if row else None

    async def get_with_referrers(
        self, resource_type: str, id: str, referrer_type: str, referrer_attribute: str
    ) -> tuple[Record | None, list[str]]:
        row = self._read(
            "SELECT version, seq, body, (SELECT group_concat(id, char(0)) FROM index_entries INDEXED BY index_lookup "
            "WHERE type = ? AND attr = ? AND value = ?) FROM resources WHERE type = ? AND id = ?",
            (referrer_type, referrer_attribute, id, resource_type, id),
        ).fetchone()
        if row is None:
            return None, []
        return Record(resource_type, id, row[0], row[1], row[2]), (sorted(row[3].split("\0")) if row[3] else [])

    async def get_many(self, resource_type: str, ids: Sequence[str]) -> list[Record]:
        records: list[Record] = []
        unique_ids = list(dict.fromkeys(ids))
        for start in range(0, len(unique_ids), 500):  # SQLite caps bound parameters
            chunk = unique_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._read(
                f"SELECT id, version, seq, body FROM resources WHERE type = ? AND id IN ({marks})",
                (resource_type, *chunk),
            ).fetchall()
            records.extend(Record(resource_type, r[0], r[1], r[2], r[3]) for r in rows)
        records.sort(key=lambda record: record.seq)
        return records

    async def get_many_with_referrers(
        self, resource_type: str, ids: Sequence[str], referrer_type: str, referrer_attribute: str
    ) -> list[tuple[Record, list[str]]]:
        unique_ids = list(dict.fromkeys(ids))
        if len(unique_ids) == 1:  # an eq filter's match: the GET's one statement
            record, referrers = await self.get_with_referrers(
                resource_type, unique_ids[0], referrer_type, referrer_attribute
            )
            return [(record, referrers)] if record is not None else []
        records = await self.get_many(resource_type, unique_ids)
        held: dict[str, list[str]] = {record.id: [] for record in records}
        found = list(held)
        for start in range(0, len(found), 500):  # SQLite caps bound parameters
            chunk = found[start : start + 500]
            rows = self._read(
                "SELECT value, id FROM index_entries INDEXED BY index_lookup "
                f"WHERE type = ? AND attr = ? AND value IN ({','.join('?' * len(chunk))})",
                (referrer_type, referrer_attribute, *chunk),
            ).fetchall()
            for value, referrer in rows:
                held[value].append(referrer)
        return [(record, sorted(held[record.id])) for record in records]

    async def lookup(self, resource_type: str, attribute: str, value: str) -> list[str]:
        rows = self._read(
            # Each (attr, value) is written once per resource, so no DISTINCT: with it, SQLite
            # preferred walking index_owner over every entry of the type (EXPLAIN QUERY PLAN).
            "SELECT id FROM index_entries INDEXED BY index_lookup WHERE type = ? AND attr = ? AND value = ?",
            (resource_type, attribute, value),
        ).fetchall()
        return [row[0] for row in rows]

    async def count(self, resource_type: str) -> int:
        return int(self._read("SELECT COUNT(*) FROM resources WHERE type = ?", (resource_type,)).fetchone()[0])

    async def scan(self, resource_type: str, after_seq: int = 0, batch: int = 500) -> AsyncIterator[Record]:
        while True:
            rows = self._read(
                "SELECT id, version, seq, body FROM resources WHERE type = ? AND seq > ? ORDER BY seq LIMIT ?",
                (resource_type, after_seq, batch),
            ).fetchall()
            for row in rows:
                yield Record(resource_type, row[0], row[1], row[2], row[3])
            if len(rows) < batch:
                return
            after_seq = rows[-1][2]
            await asyncio.sleep(0)  # let other requests run during a long scan

    async def page(self, resource_type: str, offset: int, limit: int) -> list[Record]:
        rows = self._read(
            "SELECT id, version, seq, body FROM resources WHERE type = ? ORDER BY seq LIMIT ? OFFSET ?",
            (resource_type, limit, offset),
        ).fetchall()
        return [Record(resource_type, r[0], r[1], r[2], r[3]) for r in rows]

    def _read(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor:
        try:
            return self._reader.execute(sql, params)
        except sqlite3.OperationalError as error:
            raise StoreUnavailable(str(error)) from error

    # sync queue ------------------------------------------------------------------------------
    def _enqueue(
        self, conn: sqlite3.Connection, resource_type: str, id: str, lane: str | None, correlation: str | None = None
    ) -> None:
        if lane is None:
            return
        # Order within a lane; a clock reading costs nothing where a counter row cost two statements
        # per write (ties or a clock step only reorder equal-priority work, never lose it).
        # Coalesce: one entry per resource. A revocation upgrades a queued standard entry (and
        # takes its place in the revocation line); it is never downgraded. One statement (an
        # upsert) where a SELECT and then an INSERT or UPDATE were two, on every write.
        conn.execute(_ENQUEUE, (resource_type, id, lane, time.time_ns(), correlation))

    async def enqueue(self, resource_type: str, id: str, lane: str, correlation: str | None = None) -> None:
        await self._write(lambda c: self._enqueue(c, resource_type, id, lane, correlation))
        self.queue_bell.ring(lane)

    async def claim(
        self, consumer: str, limit: int = 10, lease_seconds: float = 60.0, lanes: Sequence[str] = LANES
    ) -> list[QueueEntry]:
        def apply(conn: sqlite3.Connection) -> list[QueueEntry]:
            now = time.time()
            entries: list[QueueEntry] = []
            for lane in lanes:
                if len(entries) >= limit:
                    break
                rows = conn.execute(
                    "SELECT type, id, generation, attempts, correlation, enqueued FROM queue "
                    "WHERE lane = ? AND lease_until <= ? "
                    "ORDER BY enqueued LIMIT ?",
                    (lane, now, limit - len(entries)),
                ).fetchall()
                for resource_type, id, generation, attempts, correlation, enqueued in rows:
                    lease_no = self._next_lease_no(conn)
                    conn.execute(
                        "UPDATE queue SET lease_until = ?, consumer = ?, lease_no = ? WHERE type = ? AND id = ?",
                        (now + lease_seconds, consumer, lease_no, resource_type, id),
                    )
                    entries.append(
                        QueueEntry(
                            resource_type,
                            id,
                            lane,
                            f"{generation}:{lease_no}",
                            attempts,
                            correlation,
                            enqueued / 1e9,
                        )
                    )
            return entries

        return await self._write(apply)

    @staticmethod
    def _next_lease_no(conn: sqlite3.Connection) -> int:
        """The fencing token of a new lease: greater than every one handed out before."""
        return int(
            conn.execute("UPDATE lease_counter SET value = value + 1 WHERE id = 1 RETURNING value").fetchone()[0]
        )

    @staticmethod
    def _fenced(conn: sqlite3.Connection, entry: QueueEntry) -> tuple[int, bool] | None:
        """(generation now, whether the entry's lease is still `entry`'s) or None when it is gone.
        A newer lease means this worker's lease expired and another worker took the entry over:
        its ack or defer must not touch that worker's lease (fencing)."""
        row = conn.execute(
            "SELECT generation, lease_no FROM queue WHERE type = ? AND id = ?", (entry.resource_type, entry.id)
        ).fetchone()
        if row is None:
            return None
        lease_no = int(entry.token.rsplit(":", 1)[1])
        return int(row[0]), row[1] == lease_no

    async def ack(self, entry: QueueEntry) -> bool:
        def apply(conn: sqlite3.Connection) -> bool:
            found = self._fenced(conn, entry)
            if found is None:
                return True  # acked already
            generation, current = found
            if not current:
                return False  # refused: a newer lease holds it
            if generation == int(entry.token.split(":", 1)[0]):
                conn.execute("DELETE FROM queue WHERE type = ? AND id = ?", (entry.resource_type, entry.id))
            else:  # changed again while being processed: make it claimable at once
                conn.execute(
                    "UPDATE queue SET lease_until = 0, consumer = NULL WHERE type = ? AND id = ?",
                    (entry.resource_type, entry.id),
                )
            return True

        return await self._write(apply)

    async def defer(self, entry: QueueEntry, delay_seconds: float) -> int:
        def apply(conn: sqlite3.Connection) -> int:
            found = self._fenced(conn, entry)
            if found is None or not found[1]:
                return 0  # acked already, or refused: a newer lease holds it
            conn.execute(
                "UPDATE queue SET lease_until = ?, consumer = NULL, attempts = attempts + 1 WHERE type = ? AND id = ?",
                (time.time() + delay_seconds, entry.resource_type, entry.id),
            )
            row = conn.execute(
                "SELECT attempts FROM queue WHERE type = ? AND id = ?", (entry.resource_type, entry.id)
            ).fetchone()
            return int(row[0]) if row else 0

        return await self._write(apply)

    async def release(self, entry: QueueEntry, consumer: str) -> bool:
        def apply(conn: sqlite3.Connection) -> bool:
            # lease_until = 0 sorts nothing first (claims order by `enqueued`), but makes it claimable now
            cursor = conn.execute(
                "UPDATE queue SET lease_until = 0, consumer = NULL "
                "WHERE type = ? AND id = ? AND consumer = ? AND lease_no = ?",
                (entry.resource_type, entry.id, consumer, int(entry.token.rsplit(":", 1)[1])),
            )
            return cursor.rowcount > 0

        return await self._write(apply)

    async def renew(self, entry: QueueEntry, consumer: str, lease_seconds: float) -> bool:
        def apply(conn: sqlite3.Connection) -> bool:
            # the same lease number and holder: nobody leased it since (an expired lease nobody took
            # over goes on, as its ack would count); a defer or ack cleared the holder
            cursor = conn.execute(
                "UPDATE queue SET lease_until = ? WHERE type = ? AND id = ? AND consumer = ? AND lease_no = ?",
                (
                    time.time() + lease_seconds,
                    entry.resource_type,
                    entry.id,
                    consumer,
                    int(entry.token.rsplit(":", 1)[1]),
                ),
            )
            return cursor.rowcount > 0

        return await self._write(apply)

    async def lease(
        self, resource_type: str, id: str, consumer: str, lease_seconds: float = 60.0, lane: str = STANDARD_LANE
    ) -> QueueEntry | None:
        def apply(conn: sqlite3.Connection) -> QueueEntry | None:
            now = time.time()
            row = conn.execute(
                "SELECT lane, generation, lease_until, consumer, attempts, correlation FROM queue "
                "WHERE type = ? AND id = ?",
                (resource_type, id),
            ).fetchone()
            if row is None:
                lease_no = self._next_lease_no(conn)
                conn.execute(
                    "INSERT INTO queue (type, id, lane, generation, enqueued, lease_until, consumer, lease_no) "
                    "VALUES (?, ?, ?, 1, ?, ?, ?, ?)",
                    (resource_type, id, lane, time.time_ns(), now + lease_seconds, consumer, lease_no),
                )
                return QueueEntry(resource_type, id, lane, f"1:{lease_no}")
            queued_lane, generation, until, holder, attempts, correlation = row
            if until > now and holder is not None and holder != consumer:
                return None  # a worker is processing it now
            lease_no = self._next_lease_no(conn)
            conn.execute(
                "UPDATE queue SET lease_until = ?, consumer = ?, lease_no = ? WHERE type = ? AND id = ?",
                (now + lease_seconds, consumer, lease_no, resource_type, id),
            )
            return QueueEntry(resource_type, id, queued_lane, f"{generation}:{lease_no}", attempts, correlation)

        return await self._write(apply)

    async def job_lease(self, name: str, holder: str, lease_seconds: float) -> bool:
        def apply(conn: sqlite3.Connection) -> bool:
            now = time.time()
            cursor = conn.execute(
                "INSERT INTO job_leases (name, holder, until) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
                "SET holder = excluded.holder, until = excluded.until WHERE holder = excluded.holder OR until <= ?",
                (name, holder, now + lease_seconds, now),
            )
            return cursor.rowcount > 0

        return await self._write(apply)

    async def job_release(self, name: str, holder: str) -> None:
        await self._write(
            lambda conn: conn.execute("DELETE FROM job_leases WHERE name = ? AND holder = ?", (name, holder))
        )

    async def queue_depth(self) -> QueueDepth:
        rows = self._read("SELECT lane, COUNT(*) FROM queue GROUP BY lane", ()).fetchall()
        depth = QueueDepth({lane: 0 for lane in LANES})
        depth.lanes.update({lane: count for lane, count in rows})
        return depth

    async def queue_oldest(self) -> dict[str, float]:
        rows = self._read("SELECT lane, MIN(enqueued) FROM queue GROUP BY lane", ()).fetchall()
        return {lane: oldest / 1e9 for lane, oldest in rows}

    # key/value -------------------------------------------------------------------------------
    async def kv_get(self, namespace: str, key: str) -> bytes | None:
        row = self._read("SELECT value FROM kv WHERE namespace = ? AND key = ?", (namespace, key)).fetchone()
        return bytes(row[0]) if row else None

    async def kv_put(self, namespace: str, key: str, value: bytes, *, only_if_absent: bool = False) -> bool:
        verb = "INSERT OR IGNORE" if only_if_absent else "INSERT OR REPLACE"

        def apply(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(f"{verb} INTO kv (namespace, key, value) VALUES (?, ?, ?)", (namespace, key, value))
            return cursor.rowcount > 0

        return await self._write(apply)

    async def kv_delete(self, namespace: str, key: str) -> bool:
        def apply(conn: sqlite3.Connection) -> bool:
            return conn.execute("DELETE FROM kv WHERE namespace = ? AND key = ?", (namespace, key)).rowcount > 0

        return await self._write(apply)

    async def kv_items(self, namespace: str) -> list[tuple[str, bytes]]:
        rows = self._read("SELECT key, value FROM kv WHERE namespace = ? ORDER BY key", (namespace,)).fetchall()
        return [(row[0], bytes(row[1])) for row in rows]

    # audit log -------------------------------------------------------------------------------
    # Chained in the writer thread, inside the transaction of the writes they belong to: each
    # write leaves its entry in the batch's tail (_AuditTail), and the tail reads the head row,
    # inserts the batch's entries and moves the head once, just before the COMMIT, so the chain
    # has one order (the batch's) and an entry commits, or not, with its write.
    async def audit_append(self, bodies: Sequence[bytes]) -> None:
        if bodies:
            await self._write(lambda c: self._audit_tail.extend(bodies))

    async def audit_seal(self) -> int:
        return 0  # entries are chained as they are appended

    async def audit_read(
        self, after_seq: int = 0, limit: int = 1000, since: float | None = None, until: float | None = None
    ) -> list[AuditEntry]:
        low = int(since * 1_000_000) if since is not None else -1
        high = int(until * 1_000_000) if until is not None else 2**62
        rows = self._read(
            "SELECT seq, time_us, hash, body FROM audit WHERE seq > ? AND time_us >= ? AND time_us < ? "
            "ORDER BY seq LIMIT ?",
            (after_seq, low, high, limit),
        ).fetchall()
        return [AuditEntry(r[0], r[1], r[2], bytes(r[3])) for r in rows]

    async def audit_head(self) -> AuditHead:
        row = self._read("SELECT seq, hash, anchor_seq, anchor_hash FROM audit_head WHERE id = 1", ()).fetchone()
        return AuditHead(row[0], row[1], row[2], row[3])

    async def audit_prune(self, before: float, limit: int = 10_000) -> int:
        cutoff = int(before * 1_000_000)

        def apply(conn: sqlite3.Connection) -> int:
            last: tuple[int, str] | None = None
            count = 0
            for seq, time_us, hash in conn.execute(
                "SELECT seq, time_us, hash FROM audit ORDER BY seq LIMIT ?", (limit,)
            ):
                if time_us >= cutoff:
                    break
                last, count = (seq, hash), count + 1
            if last is None:
                return 0
            conn.execute("DELETE FROM audit WHERE seq <= ?", (last[0],))
            conn.execute("UPDATE audit_head SET anchor_seq = ?, anchor_hash = ? WHERE id = 1", last)
            return count

        return await self._write(apply)

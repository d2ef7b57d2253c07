"""One writer thread for a SQLite file, committing concurrent writes together (group commit).

Each write must be on disk before its SCIM 2xx (`synchronous=FULL`), and one fsync costs about a
millisecond here: committed one by one, POST /Users peaked near 700/s. The thread takes every
write waiting at that moment, runs them in one transaction, commits once, and only then answers
all of them. Durability per write is unchanged; the fsync is shared. A failing write must be
rolled back alone: the batch first runs without savepoints (two statements per write fewer),
and if a write fails, the batch is rolled back and run again with a SAVEPOINT per write; after
such a batch the next CAREFUL_BATCHES start with savepoints, as conflicts come in runs (an IdP
re-sending users that exist).

What every write of a batch appends to one shared structure (the audit chain) is gathered and
written once, just before the COMMIT (`BatchTail`): one read of the chain's head and one insert
per batch, where each write read the head, inserted and moved it; every statement here is a
hand-over of the interpreter lock to this thread and back (py-spy --native: the thread waited
for the lock after most statements while the event loop ran requests).
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from .base import StoreUnavailable

T = TypeVar("T")
Job = tuple[Callable[[sqlite3.Connection], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]

MAX_BATCH = 256
#: Batches run with a savepoint per write after one whose write failed (conflicts come in runs).
CAREFUL_BATCHES = 32
_STOP = object()


class BatchTail(Protocol):
    """What the writes of one batch leave to be written together before its COMMIT."""

    def begin(self) -> None:
        """A batch starts: nothing is pending."""

    def mark(self) -> Any:
        """Where the pending work stands before a write (undo goes back here)."""

    def undo(self, mark: Any) -> None:
        """The write since `mark` was rolled back: forget what it left."""

    def flush(self, connection: sqlite3.Connection) -> None:
        """Write what the batch's kept writes left, inside its transaction (raises sqlite3.Error)."""


class GroupCommitWriter:
    def __init__(self, connect: Callable[[], sqlite3.Connection], tail: BatchTail | None = None) -> None:
        self._connect = connect
        self._tail = tail
        self._careful = 0  # batches left to run with savepoints (see _commit)
        self._jobs: queue.SimpleQueue[Job | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sqlite-writer", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise StoreUnavailable(f"sqlite: {self._error}")

    def stop(self) -> None:
        if self._thread is not None:
            self._jobs.put(_STOP)
            self._thread.join()
            self._thread = None

    async def submit(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run fn(connection) in a transaction; return once it is committed to disk."""
        if self._thread is None:
            raise StoreUnavailable("store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((fn, loop, future))
        return await future

    def _run(self) -> None:
        try:
            connection = self._connect()
        except sqlite3.Error as error:
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                first = self._jobs.get()
                if first is _STOP:
                    return
                batch: list[Job] = [first]  # type: ignore[list-item]  # not _STOP, so a Job: `is` cannot narrow object
                stop = False
                while len(batch) < MAX_BATCH:
                    try:
                        job = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if job is _STOP:
                        stop = True
                        break
                    batch.append(job)  # type: ignore[arg-type]  # not _STOP, so a Job (as above)
                self._commit(connection, batch)
                if stop:
                    return
        finally:
            connection.close()

    def _commit(self, connection: sqlite3.Connection, batch: list[Job]) -> None:
        outcomes: list[tuple[bool, Any]] | None = None
        try:
            if self._careful == 0:
                outcomes = self._apply(connection, batch, savepoints=False)
                if outcomes is None:  # a write failed: the batch again, one savepoint per write
                    self._careful = CAREFUL_BATCHES
            else:
                self._careful -= 1
            outcomes = outcomes or self._apply(connection, batch, savepoints=True)
        except sqlite3.Error as error:  # disk full, I/O error: nothing of the batch is kept
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            outcomes = [(False, StoreUnavailable(f"sqlite: {error}"))] * len(batch)
        if outcomes is None:  # not reached: with savepoints every write has its outcome
            outcomes = [(False, StoreUnavailable("sqlite: the batch was not applied"))] * len(batch)
        # One wake-up of each loop for the whole batch: a call_soon_threadsafe per write was a
        # write to the loop's self-pipe, and a hand-over of the interpreter lock, per write.
        settled: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for (_, loop, future), (ok, value) in zip(batch, outcomes, strict=True):
            settled.setdefault(loop, []).append((future, ok, value))
        for loop, answers in settled.items():
            loop.call_soon_threadsafe(_settle_all, answers)

    def _apply(
        self, connection: sqlite3.Connection, batch: list[Job], *, savepoints: bool
    ) -> list[tuple[bool, Any]] | None:
        """Run the batch in one transaction and commit it. With savepoints, a failing write is
        rolled back alone; without, the first failing write rolls the whole batch back and the
        answer is None (the caller runs it again with savepoints), except in a batch of one,
        where that is the same thing. Raises sqlite3.Error when the transaction itself fails."""
        outcomes: list[tuple[bool, Any]] = []
        tail = self._tail
        if tail is not None:
            tail.begin()
        connection.execute("BEGIN IMMEDIATE")
        for fn, _, _ in batch:
            if not savepoints:
                try:
                    outcomes.append((True, fn(connection)))
                except Exception as error:
                    connection.execute("ROLLBACK")
                    return [(False, error)] if len(batch) == 1 else None
                continue
            mark = tail.mark() if tail is not None else None
            connection.execute("SAVEPOINT job")
            try:
                value = fn(connection)
                connection.execute("RELEASE job")
            except Exception as error:  # this write alone is undone
                if tail is not None:
                    tail.undo(mark)
                connection.execute("ROLLBACK TO job")
                connection.execute("RELEASE job")
                outcomes.append((False, error))
            else:
                outcomes.append((True, value))
        if tail is not None:
            tail.flush(connection)
        connection.execute("COMMIT")
        return outcomes


def _settle_all(answers: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in answers:
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

"""The embedded backend: SQLite in WAL mode, one writer thread with group commit, reader threads.

Durability: ``synchronous=FULL`` makes every COMMIT fsync the WAL before it returns, and a
caller's future is resolved only after that COMMIT. Group commit: the writer takes every
transaction waiting in its queue (up to ``max_batch``), runs them in one SQLite transaction and
commits once, so one fsync covers them all. If one member fails, the batch is rolled back and run
again without it, so members never see each other's failures.

Readers run on a small thread pool, each thread with its own connection; WAL lets them read a
consistent snapshot while the writer writes. The full-text index is a separate file, filled by
its own thread after each commit (``store/fulltext.py``) and attached to readers as ``ix``.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from courrier.store import schema
from courrier.store.batching import Pending, Submitter, Unit, plan
from courrier.store.blobs import BlobArea
from courrier.store.errors import AlreadyExists, StorageFull, StoreClosed, StoreError
from courrier.store.fulltext import FullTextIndexer
from courrier.store.tx import Index, Notify, Q, TxFactory, Unindex, Unlink, drive_sync

T = TypeVar("T")

_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    # With WAL, FULL syncs the log at every commit: a commit that returned survives power loss.
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA busy_timeout = 30000",
    "PRAGMA cache_size = -32768",
    "PRAGMA temp_store = MEMORY",
)


#: Longest wait for the rest of a batch (seconds); far below one fsync plus a batch's work.
GATHER_WAIT = 0.0005


class _UnitFailed(Exception):
    def __init__(self, unit: Unit, error: BaseException) -> None:
        self.unit, self.error = unit, error


def _execute(conn: sqlite3.Connection, q: Q) -> Any:
    if q.fetch == "many":
        conn.executemany(q.sql, q.params)
        return None
    cursor = conn.execute(q.sql, q.params)
    if q.fetch == "one":
        found = cursor.fetchall()  # step to the end: a RETURNING statement is then complete
        return found[0] if found else None
    if q.fetch == "all":
        return cursor.fetchall()
    return cursor.rowcount


def _map_error(exc: BaseException) -> BaseException:
    if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc):
        return AlreadyExists("That name is already taken.")
    if (
        isinstance(exc, sqlite3.Error)
        and getattr(exc, "sqlite_errorcode", 0) == sqlite3.SQLITE_FULL
    ):
        return StorageFull("The disk is full; nothing was written.")
    if isinstance(exc, sqlite3.Error):
        return StoreError(f"The database failed: {exc}.")
    return exc


class SQLiteBackend(Submitter):
    dialect = "sqlite"

    def __init__(
        self,
        path: Path,
        *,
        max_batch: int,
        readers: int,
        notify: Callable[[list[Notify]], None],
        blobs: BlobArea,
    ) -> None:
        self.path = path
        self.blobs = blobs
        self.indexer = FullTextIndexer(path.with_name("fulltext.db"), path, blobs)
        self._max_batch = max_batch
        self._notify = notify
        self._jobs: queue.SimpleQueue[Pending | None] = queue.SimpleQueue()
        self._local = threading.local()
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="courrier-read")
        self._reader_conns: list[sqlite3.Connection] = []
        self._writer: threading.Thread | None = None
        self._closed = False
        self.batches = 0
        self.batched_jobs = 0

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=512,
            uri=True,  # for ATTACH of the index read-only
        )
        for pragma in _PRAGMAS:
            conn.execute(pragma)
        return conn

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = await asyncio.to_thread(self._connect)
        try:
            await asyncio.to_thread(_migrate, conn)
        except BaseException:
            conn.close()
            raise
        await asyncio.to_thread(self.indexer.start)
        self._writer = threading.Thread(
            target=self._write_loop, args=(conn,), name="courrier-write", daemon=True
        )
        self._writer.start()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._jobs.put(None)
        if self._writer is not None:
            await asyncio.to_thread(self._writer.join)
        await asyncio.to_thread(self.indexer.stop)
        self._readers.shutdown(wait=True)
        for conn in self._reader_conns:
            conn.close()

    # -- writes --------------------------------------------------------------------------

    def _enqueue(self, pending: Pending) -> None:
        self._jobs.put(pending)

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        try:
            stopping = False
            expected = 1
            while not stopping:
                first = self._jobs.get()
                if first is None:
                    break
                batch = [first]
                # Like PostgreSQL's commit_delay: when the last batch was bigger than what is
                # waiting now, the other writers are about to send theirs; wait a little for
                # them rather than spend a whole fsync on a few.
                deadline = time.monotonic() + GATHER_WAIT
                while len(batch) < self._max_batch:
                    try:
                        if len(batch) < expected:
                            job = self._jobs.get(timeout=max(0.0, deadline - time.monotonic()))
                        else:
                            job = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if job is None:
                        stopping = True
                        break
                    batch.append(job)
                expected = len(batch)
                self._commit(conn, batch)
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA optimize")
            conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[Pending]) -> None:
        units = plan(batch)
        notices: list[Notify] = []
        indexing: list[Index | Unindex] = []
        while units:
            staged: list[tuple[Unit, Any, list[Any]]] = []
            try:
                conn.execute("BEGIN IMMEDIATE")
                for unit in units:
                    try:
                        value, effects = drive_sync(unit.factory, lambda q: _execute(conn, q))
                    except Exception as exc:
                        raise _UnitFailed(unit, exc) from exc
                    staged.append((unit, value, effects))
                conn.execute("COMMIT")
            except _UnitFailed as failed:
                # Run the batch again without the failed unit: the others must not pay for it.
                _rollback(conn)
                failed.unit.fail(_map_error(failed.error))
                units.remove(failed.unit)
                continue
            except Exception as exc:  # BEGIN or COMMIT failed: disk full, I/O error, locked
                _rollback(conn)
                for unit in units:
                    unit.fail(_map_error(exc))
                break
            for unit, value, effects in staged:
                unit.succeed(value)
                for effect in effects:
                    if isinstance(effect, Unlink):
                        self.blobs.remove(effect.path)
                    elif isinstance(effect, Notify):
                        notices.append(effect)
                    else:
                        indexing.append(effect)
            self.batches += 1
            self.batched_jobs += len(batch)
            self.indexer.submit(indexing)
            break
        by_loop: dict[asyncio.AbstractEventLoop, list[Pending]] = {}
        for pending in batch:
            by_loop.setdefault(pending.loop, []).append(pending)
        for loop, members in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
                loop.call_soon_threadsafe(self._resolve, members, notices)

    def _resolve(self, members: Sequence[Pending], notices: list[Notify]) -> None:
        for pending in members:
            pending.settle()
        if notices:
            self._notify(notices)

    # -- reads ---------------------------------------------------------------------------

    async def flush_index(self) -> None:
        await self.indexer.flush()

    async def read(self, factory: TxFactory[T]) -> T:
        if self._closed:
            raise StoreClosed("The store is closed.")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._read_sync, factory)

    def _read_sync(self, factory: TxFactory[T]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only = ON")
            index_uri = f"file:{urllib.parse.quote(str(self.indexer.path))}?mode=ro"
            conn.execute("ATTACH DATABASE ? AS ix", (index_uri,))
            self._local.conn = conn
            self._reader_conns.append(conn)
        conn.execute("BEGIN")
        try:
            value, _ = drive_sync(factory, lambda q: _execute(conn, q))
        except Exception as exc:
            raise _map_error(exc) from exc
        finally:
            conn.execute("COMMIT")
        return value


def _rollback(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):
        conn.execute("ROLLBACK")


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema to :data:`schema.LATEST` (writers of other processes wait meanwhile)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        drive_sync(lambda: schema.migrate("sqlite", int(time.time())), lambda q: _execute(conn, q))
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise

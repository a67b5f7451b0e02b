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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from courrier.store import schema
from courrier.store.blobs import BlobArea
from courrier.store.errors import AlreadyExists, SchemaTooNew, StoreClosed, StoreError
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


@dataclass(slots=True)
class _Job:
    factory: TxFactory[Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    outcome: tuple[bool, Any] = field(default=(False, None))


class _JobFailed(Exception):
    def __init__(self, job: _Job, error: BaseException) -> None:
        self.job, self.error = job, error


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
    if isinstance(exc, sqlite3.Error):
        return StoreError(f"The database failed: {exc}.")
    return exc


class SQLiteBackend:
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
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
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

    async def write(self, factory: TxFactory[T]) -> T:
        if self._closed:
            raise StoreClosed("The store is closed.")
        loop = asyncio.get_running_loop()
        job = _Job(factory, loop.create_future(), loop)
        self._jobs.put(job)
        result: T = await job.future
        return result

    def _write_loop(self, conn: sqlite3.Connection) -> None:
        try:
            stopping = False
            while not stopping:
                first = self._jobs.get()
                if first is None:
                    break
                batch = [first]
                while len(batch) < self._max_batch:
                    try:
                        job = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if job is None:
                        stopping = True
                        break
                    batch.append(job)
                self._commit(conn, batch)
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA optimize")
            conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        pending = list(batch)
        notices: list[Notify] = []
        indexing: list[Index | Unindex] = []
        while pending:
            staged: list[tuple[_Job, Any, list[Any]]] = []
            try:
                conn.execute("BEGIN IMMEDIATE")
                for job in pending:
                    try:
                        value, effects = drive_sync(job.factory, lambda q: _execute(conn, q))
                    except Exception as exc:
                        raise _JobFailed(job, exc) from exc
                    staged.append((job, value, effects))
                conn.execute("COMMIT")
            except _JobFailed as failed:
                _rollback(conn)
                failed.job.outcome = (False, _map_error(failed.error))
                pending.remove(failed.job)
                continue
            except Exception as exc:  # BEGIN or COMMIT failed: disk full, I/O error, locked
                _rollback(conn)
                for job in pending:
                    job.outcome = (False, _map_error(exc))
                break
            for job, value, effects in staged:
                job.outcome = (True, value)
                for effect in effects:
                    if isinstance(effect, Unlink):
                        self.blobs.remove(effect.path)
                    elif isinstance(effect, Notify):
                        notices.append(effect)
                    else:
                        indexing.append(effect)
            self.batches += 1
            self.batched_jobs += len(staged)
            self.indexer.submit(indexing)
            break
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in batch:
            by_loop.setdefault(job.loop, []).append(job)
        for loop, jobs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
                loop.call_soon_threadsafe(self._resolve, jobs, notices)

    def _resolve(self, jobs: Sequence[_Job], notices: list[Notify]) -> None:
        for job in jobs:
            if job.future.done():
                continue
            ok, value = job.outcome
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)
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
    """Bring the schema to :data:`schema.LATEST`, one transaction per migration."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(schema.VERSION_TABLE)
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        current = int(row[0] or 0)
        if current > schema.LATEST:
            raise SchemaTooNew(
                f"The database is at schema version {current}, newer than this courrier "
                f"understands ({schema.LATEST}); upgrade courrier."
            )
        for migration in schema.MIGRATIONS:
            if migration.version > current:
                for statement in migration.sqlite:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (migration.version, int(time.time())),
                )
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise

"""The cluster backend: PostgreSQL through asyncpg, group commit per node, LISTEN/NOTIFY feed.

Each node runs one writer task that gathers every waiting transaction into one PostgreSQL
transaction (one WAL flush for all, ``synchronous_commit`` stays on), like the SQLite backend.
Several nodes share the database: row locks on ``accounts`` and ``mailboxes`` serialise UID and
MODSEQ allocation, and a batch that meets a deadlock or serialisation failure is run again.

Changes reach the other nodes through ``NOTIFY courrier_changes`` sent inside the committing
transaction (delivered only if it commits); each node's listener hands notices from other nodes
to its local change feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import asyncpg

from courrier.store import schema
from courrier.store.batching import Pending, Submitter, Unit, plan
from courrier.store.errors import AlreadyExists, StorageFull, StoreClosed, StoreError
from courrier.store.pgindex import PostgresIndexer
from courrier.store.tx import Index, Notify, Q, TxFactory, Unindex, to_postgres

T = TypeVar("T")
log = logging.getLogger(__name__)

CHANNEL = "courrier_changes"
#: Arbitrary key for the advisory lock that serialises migrations between nodes.
_MIGRATION_LOCK = 0x636F7572
_RETRIES = 5
#: NOTIFY payloads must stay under 8000 bytes.
_PAYLOAD_MAX = 7000


class _UnitFailed(Exception):
    def __init__(self, unit: Unit, error: BaseException) -> None:
        self.unit, self.error = unit, error


_sql_cache: dict[str, str] = {}


async def _execute(conn: asyncpg.Connection, q: Q) -> Any:
    text = q.pg or q.sql
    sql = _sql_cache.get(text)
    if sql is None:
        sql = _sql_cache[text] = to_postgres(text)
    params = q.params if q.pg_params is None else q.pg_params
    if q.fetch == "one":
        return await conn.fetchrow(sql, *params)
    if q.fetch == "all":
        return await conn.fetch(sql, *params)
    if q.fetch == "many":
        await conn.executemany(sql, params)
        return None
    status: str = await conn.execute(sql, *params)
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


async def _drive(factory: TxFactory[T], conn: asyncpg.Connection) -> tuple[T, list[Any]]:
    effects: list[Any] = []
    gen = factory()
    value: Any = None
    while True:
        try:
            step = gen.send(value)
        except StopIteration as stop:
            return stop.value, effects
        value = None
        if isinstance(step, Q):
            value = await _execute(conn, step)
        elif isinstance(step, Unindex):
            # Before the blob row goes, inside the same transaction.
            await conn.execute("DELETE FROM fts WHERE blob_id = $1", step.blob_id)
        else:
            effects.append(step)


def _map_error(exc: BaseException) -> BaseException:
    if isinstance(exc, asyncpg.UniqueViolationError):
        return AlreadyExists("That name is already taken.")
    if isinstance(exc, asyncpg.DiskFullError):
        return StorageFull("The database server's disk is full; nothing was written.")
    if isinstance(exc, asyncpg.PostgresError | OSError | asyncpg.InterfaceError):
        return StoreError(f"The database failed: {exc}.")
    return exc


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.DeadlockDetectedError | asyncpg.SerializationError)


class PostgresBackend(Submitter):
    dialect = "postgres"

    def __init__(
        self, url: str, *, max_batch: int, readers: int, notify: Callable[[list[Notify]], None]
    ) -> None:
        self.url = url
        self.node_id = uuid.uuid4().hex[:12]
        self._max_batch = max_batch
        self._readers = readers
        self._notify = notify
        self._jobs: asyncio.Queue[Pending | None] = asyncio.Queue()
        self._pool: asyncpg.Pool | None = None
        self._writer_conn: asyncpg.Connection | None = None
        self._listener: asyncpg.Connection | None = None
        self._writer_task: asyncio.Task[None] | None = None
        self.indexer = PostgresIndexer(url)
        self._closed = False
        self.batches = 0
        self.batched_jobs = 0

    async def open(self) -> None:
        try:
            self._writer_conn = await asyncpg.connect(self.url)
            await _migrate(self._writer_conn)
            self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=self._readers)
            self._listener = await asyncpg.connect(self.url)
            await self._listener.add_listener(CHANNEL, self._on_notify)
            await self.indexer.start()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            await self._close_connections()
            raise StoreError(f"Cannot use the PostgreSQL database: {exc}.") from exc
        except BaseException:
            await self._close_connections()
            raise
        self._writer_task = asyncio.create_task(self._write_loop(), name="courrier-pg-write")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._jobs.put(None)
        if self._writer_task is not None:
            await self._writer_task
        await self._close_connections()

    async def _close_connections(self) -> None:
        await self.indexer.stop()
        await self._close_database()

    async def _close_database(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.remove_listener(CHANNEL, self._on_notify)
                await self._listener.close()
        if self._pool is not None:
            await self._pool.close()
        if self._writer_conn is not None:
            await self._writer_conn.close()

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        node, _, body = payload.partition(" ")
        if node == self.node_id or not body:
            return
        notices = []
        for item in body.split(","):
            # "account:modseq[:mailbox.mailbox…]" (see _payloads)
            account, _, rest = item.partition(":")
            modseq, _, boxes = rest.partition(":")
            if account.isdigit() and modseq.isdigit():
                ids = boxes.split(".") if boxes else []
                mailboxes = frozenset(int(b) for b in ids) if all(map(str.isdigit, ids)) else None
                notices.append(Notify(int(account), int(modseq), mailboxes if ids else None))
        if notices:
            self._notify(notices)

    # -- writes --------------------------------------------------------------------------

    def _enqueue(self, pending: Pending) -> None:
        self._jobs.put_nowait(pending)

    async def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            first = await self._jobs.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self._max_batch and not self._jobs.empty():
                job = self._jobs.get_nowait()
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            await self._commit(batch)

    async def _commit(self, batch: list[Pending]) -> None:
        conn = self._writer_conn
        assert conn is not None
        units = plan(batch)
        retries = 0
        while units:
            staged: list[tuple[Unit, Any]] = []
            notices: dict[int, Notify] = {}
            indexing: list[Index] = []
            tr = conn.transaction()
            try:
                await tr.start()
                for unit in units:
                    try:
                        value, effects = await _drive(unit.factory, conn)
                    except Exception as exc:
                        raise _UnitFailed(unit, exc) from exc
                    staged.append((unit, value))
                    for effect in effects:
                        if isinstance(effect, Index):
                            indexing.append(effect)
                        elif isinstance(effect, Notify):
                            notices[effect.account_id] = _merged(
                                notices.get(effect.account_id), effect
                            )
                for payload in self._payloads(notices):
                    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
                await tr.commit()
            except _UnitFailed as failed:
                await _rollback(tr)
                if _retryable(failed.error) and retries < _RETRIES:
                    retries += 1
                    continue
                failed.unit.fail(_map_error(failed.error))
                units.remove(failed.unit)
                continue
            except Exception as exc:
                await _rollback(tr)
                if _retryable(exc) and retries < _RETRIES:
                    retries += 1
                    continue
                for unit in units:
                    unit.fail(_map_error(exc))
                if conn.is_closed():
                    await self._reconnect()
                break
            self.batches += 1
            self.batched_jobs += len(batch)
            for unit, value in staged:
                unit.succeed(value)
            self.indexer.submit(indexing)
            if notices:
                self._notify(list(notices.values()))
            break
        for pending in batch:
            pending.settle()

    def _payloads(self, notices: dict[int, Notify]) -> list[str]:
        items = [
            f"{n.account_id}:{n.modseq}"
            + (":" + ".".join(map(str, sorted(n.mailboxes))) if n.mailboxes else "")
            for n in notices.values()
        ]
        payloads, current = [], ""
        for item in items:
            if current and len(current) + len(item) > _PAYLOAD_MAX:
                payloads.append(f"{self.node_id} {current}")
                current = ""
            current = f"{current},{item}" if current else item
        if current:
            payloads.append(f"{self.node_id} {current}")
        return payloads

    async def _reconnect(self) -> None:
        with contextlib.suppress(Exception):
            self._writer_conn = await asyncpg.connect(self.url)

    # -- reads ---------------------------------------------------------------------------

    async def flush_index(self) -> None:
        await self.indexer.flush()

    async def read(self, factory: TxFactory[T]) -> T:
        if self._closed or self._pool is None:
            raise StoreClosed("The store is closed.")
        async with self._pool.acquire() as conn:
            try:
                async with conn.transaction(readonly=True, isolation="repeatable_read"):
                    value, _ = await _drive(factory, conn)
            except Exception as exc:
                raise _map_error(exc) from exc
        return value


async def _rollback(tr: Any) -> None:
    with contextlib.suppress(Exception):
        await tr.rollback()


async def _migrate(conn: asyncpg.Connection) -> None:
    """Bring the schema to :data:`schema.LATEST`; the advisory lock makes other nodes wait."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await _drive(lambda: schema.migrate("postgres", int(time.time())), conn)


def _merged(earlier: Notify | None, notice: Notify) -> Notify:
    """One notice per account and transaction: the highest MODSEQ, every mailbox named."""
    if earlier is None:
        return notice
    mailboxes = None
    if earlier.mailboxes is not None and notice.mailboxes is not None:
        mailboxes = earlier.mailboxes | notice.mailboxes
    return Notify(notice.account_id, max(earlier.modseq, notice.modseq), mailboxes)

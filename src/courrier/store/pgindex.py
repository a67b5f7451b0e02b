"""The cluster backend's full-text index: ``tsvector`` rows filled off the commit path.

As with SQLite (``store/fulltext.py``), the index is derived data: after each commit the node
that committed queues the new blobs' text, and an indexer task writes them in large batches on
its own connection, so a delivery never waits for PostgreSQL to tokenise it. A search on this
node first waits for that queue (:meth:`PostgresIndexer.flush`); another node sees the words a
few milliseconds later. At start, blobs without an index row (a node stopped with a queue) are
indexed again. Rows of blobs dropped meanwhile are skipped; rows are deleted with their blob.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import asyncpg

from courrier.message import parse
from courrier.store.tx import Index

log = logging.getLogger(__name__)

_BATCH = 500

_INSERT = (
    "INSERT INTO fts (blob_id, headers, body) "
    "SELECT u.b, to_tsvector('simple', u.h), to_tsvector('simple', u.t) "
    "FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(b, h, t) "
    "JOIN blobs ON blobs.id = u.b ON CONFLICT (blob_id) DO NOTHING"
)


class PostgresIndexer:
    def __init__(self, url: str) -> None:
        self.url = url
        self._queue: asyncio.Queue[Index | asyncio.Future[None] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None

    async def start(self) -> None:
        self._conn = await asyncpg.connect(self.url)
        self._task = asyncio.create_task(self._run(), name="courrier-pg-index")

    async def stop(self) -> None:
        if self._task is not None:
            await self._queue.put(None)
            await self._task
        if self._conn is not None:
            await self._conn.close()

    def submit(self, items: Sequence[Index]) -> None:
        for item in items:
            self._queue.put_nowait(item)

    async def flush(self) -> None:
        marker: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(marker)
        await marker

    async def _run(self) -> None:
        try:
            await self._catch_up()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            log.exception("full-text catch-up failed; it is tried again at the next start")
        running = True
        while running:
            batch = [await self._queue.get()]
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            running = None not in batch
            await self._write([i for i in batch if isinstance(i, Index)])
            for item in batch:
                if isinstance(item, asyncio.Future) and not item.done():
                    item.set_result(None)

    async def _write(self, items: list[Index]) -> None:
        if not items or self._conn is None:
            return
        try:
            await self._conn.execute(
                _INSERT,
                [i.blob_id for i in items],
                [i.headers for i in items],
                [i.body for i in items],
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            log.exception("full-text indexing failed; the index catches up at the next start")

    async def _catch_up(self) -> None:
        """Index blobs that have no index row yet, in batches."""
        assert self._conn is not None
        last = 0
        while True:
            found = await self._conn.fetch(
                "SELECT b.id, b.data FROM blobs b WHERE b.id > $1 AND NOT EXISTS "
                "(SELECT 1 FROM fts f WHERE f.blob_id = b.id) ORDER BY b.id LIMIT $2",
                last,
                _BATCH,
            )
            if not found:
                return
            items = []
            for blob_id, data in found:
                parsed = parse(bytes(data))
                items.append(Index(int(blob_id), parsed.headers_text, parsed.text))
                last = int(blob_id)
            await self._write(items)
            log.info("full-text index caught up with %d message(s)", len(items))

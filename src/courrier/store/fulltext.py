"""The embedded backend's full-text index: SQLite FTS5 in its own file, filled off the commit path.

The index is derived data: it can always be rebuilt from the blobs. So it lives in
``<data>/fulltext.db`` with its own thread and connection, and is written in large batches after
the mail itself has been committed. An append does not wait for its words to be indexed, and the
tokenising runs beside the writer, on the other core. A search first waits until every blob
committed before it is indexed (:meth:`FullTextIndexer.flush`), so it never misses new mail.

After a crash the index catches up at start: every blob above its watermark (the highest blob id
indexed) is read, parsed and indexed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from courrier.message import parse
from courrier.store.blobs import BlobArea
from courrier.store.tx import Index, Unindex

log = logging.getLogger(__name__)

#: Bumped when the index's layout or text extraction changes: the index is then rebuilt.
INDEX_VERSION = 2
#: How long (seconds) a first queued change waits for others to join its batch.
_LINGER = 0.02
_BATCH = 1000

_SCHEMA = (
    # RFC 9051 §6.4.4 SEARCH TEXT/BODY candidates, one row per blob. IMAP strings match
    # anywhere, inside words too: the trigram tokeniser finds any substring of three letters
    # or more. detail=none keeps neither positions nor columns (a third of the size); the
    # caller checks candidates exactly anyway.
    "CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5("
    "headers, body, tokenize = 'trigram', detail = none)",
    "CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)


@dataclass(slots=True)
class _Flush:
    future: asyncio.Future[None]
    loop: asyncio.AbstractEventLoop


_Item = Index | Unindex | _Flush | None


class FullTextIndexer:
    def __init__(self, path: Path, main_db: Path, blobs: BlobArea) -> None:
        self.path = path
        self.main_db = main_db
        self.blobs = blobs
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        conn = self._open()
        self._thread = threading.Thread(
            target=self._run, args=(conn,), name="courrier-index", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join()

    def submit(self, items: Sequence[Index | Unindex]) -> None:
        """Queue index changes of a committed transaction (called by the writer, in order)."""
        for item in items:
            self._queue.put(item)

    async def flush(self) -> None:
        """Return once everything submitted before this call is in the index."""
        loop = asyncio.get_running_loop()
        marker = _Flush(loop.create_future(), loop)
        self._queue.put(marker)
        await marker.future

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        # Derived data: losing the last transactions on power loss only means re-indexing them.
        conn.execute("PRAGMA synchronous = NORMAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version != INDEX_VERSION:
            conn.execute("DROP TABLE IF EXISTS fts")
            conn.execute("DROP TABLE IF EXISTS state")
            conn.execute(f"PRAGMA user_version = {INDEX_VERSION}")
        for statement in _SCHEMA:
            conn.execute(statement)
        return conn

    def _run(self, conn: sqlite3.Connection) -> None:
        try:
            self._catch_up(conn)
            while True:
                item = self._queue.get()
                if isinstance(item, Index | Unindex):
                    # Let a busy writer's next commits join this batch: one index transaction
                    # per burst rather than per commit (a search flushes, so it never waits).
                    time.sleep(_LINGER)
                batch: list[_Item] = [item]
                while len(batch) < _BATCH:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                if not self._apply(conn, batch):
                    return
        finally:
            conn.close()

    def _apply(self, conn: sqlite3.Connection, batch: list[_Item]) -> bool:
        """Write one batch; False once the stop marker is seen."""
        flushes = [i for i in batch if isinstance(i, _Flush)]
        running = None not in batch
        work = [i for i in batch if isinstance(i, Index | Unindex)]
        if work:
            try:
                conn.execute("BEGIN")
                top = 0
                for item in work:
                    if isinstance(item, Index):
                        conn.execute(
                            "INSERT OR REPLACE INTO fts (rowid, headers, body) VALUES (?, ?, ?)",
                            (item.blob_id, item.headers, item.body),
                        )
                        top = max(top, item.blob_id)
                    else:
                        conn.execute("DELETE FROM fts WHERE rowid = ?", (item.blob_id,))
                if top:
                    _set_watermark(conn, top)
                conn.execute("COMMIT")
            except sqlite3.Error:
                log.exception("full-text indexing failed; the index will catch up at start")
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
        for flush in flushes:
            with contextlib.suppress(RuntimeError):
                flush.loop.call_soon_threadsafe(_settle, flush.future)
        return running

    def _catch_up(self, conn: sqlite3.Connection) -> None:
        """Index blobs committed after the watermark (a crash lost their queued entries)."""
        row = conn.execute("SELECT value FROM state WHERE key = 'watermark'").fetchone()
        watermark = int(row[0]) if row else 0
        main = sqlite3.connect(f"file:{urllib.parse.quote(str(self.main_db))}?mode=ro", uri=True)
        try:
            cursor = main.execute(
                "SELECT id, data, path FROM blobs WHERE id > ? ORDER BY id", (watermark,)
            )
            pending = 0
            conn.execute("BEGIN")
            for blob_id, data, path in cursor:
                raw = bytes(data) if data is not None else self.blobs.read(str(path))
                parsed = parse(raw)
                conn.execute(
                    "INSERT OR REPLACE INTO fts (rowid, headers, body) VALUES (?, ?, ?)",
                    (blob_id, parsed.headers_text, parsed.text),
                )
                _set_watermark(conn, int(blob_id))
                pending += 1
                if pending % _BATCH == 0:
                    conn.execute("COMMIT")
                    conn.execute("BEGIN")
            conn.execute("COMMIT")
            if pending:
                log.info("full-text index caught up with %d message(s)", pending)
        finally:
            main.close()


def _set_watermark(conn: sqlite3.Connection, blob_id: int) -> None:
    conn.execute(
        "INSERT INTO state (key, value) VALUES ('watermark', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value)",
        (blob_id,),
    )


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)

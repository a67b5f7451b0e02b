"""Child process for the SIGKILL durability test: appends concurrently, prints each acknowledgement.

Usage: python -m tests.store.appender (sqlite DATA_DIR | postgresql URL) MAILBOX_ID COUNT WRITERS

A line ``ACK <n> <uid>`` is printed (and flushed) only after ``append`` returned, that is after
the message is durable; the parent kills this process at a random moment and checks that every
acknowledged message survived intact.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from courrier.store import Store
from tests.store.helpers import make_message


async def main(backend: str, location: str, mailbox_id: int, count: int, writers: int) -> None:
    if backend == "sqlite":
        store = await Store.open_sqlite(Path(location), inline_blob_max=6000)
    else:
        store = await Store.open_postgres(location)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)
    print("READY", flush=True)

    async def writer() -> None:
        while not queue.empty():
            n = queue.get_nowait()
            # Every 10th message is big enough to go to a blob file (SQLite).
            appended = await store.append(
                mailbox_id, make_message(n, size=8000 if n % 10 == 0 else 0)
            )
            sys.stdout.write(f"ACK {n} {appended.uid}\n")
            sys.stdout.flush()

    await asyncio.gather(*(writer() for _ in range(writers)))
    await store.close()
    print("DONE", flush=True)


if __name__ == "__main__":
    b, loc, box, count, writers = sys.argv[1:6]
    asyncio.run(main(b, loc, int(box), int(count), int(writers)))

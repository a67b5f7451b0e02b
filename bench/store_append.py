"""Durable appends per second into one mailbox, beside the raw fsync rate of the same disk.

    python -m bench.store_append [--repeat 3] [--backends sqlite,postgresql] [--record]

Each append is a whole ``Store.append`` of a distinct 4 KiB message: parse (ENVELOPE,
BODYSTRUCTURE, search fields), blob, row, change log, full-text index, commit with fsync. The
raw rate is a 4 KiB ``write`` + ``fsync`` loop on a file in the same directory: what a store
that syncs once per message could reach at best; the Maildir rate (a new file per message,
synced with its directory) is what file-per-message servers pay. Group commit is working when
appends at 10 writers exceed the store's own 1-writer rate several times. Medians of
``--repeat`` runs; ``--record`` appends the table to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.results import record
from courrier.store import Store

ROOT = Path(__file__).resolve().parents[1]
WRITERS = (1, 10, 50)
MESSAGE_SIZE = 4096


def message(n: int) -> bytes:
    head = (
        f"From: Alice Example <alice@example.org>\r\nTo: Bob <bob@example.test>\r\n"
        f"Subject: Benchmark message {n}\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\n"
        f"Message-ID: <bench-{n}@example.org>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode()
    line = f"Line of text in message {n}, with some words to index for search.\r\n".encode()
    body = line * ((MESSAGE_SIZE - len(head)) // len(line) + 1)
    return (head + body)[:MESSAGE_SIZE]


def raw_fsync_rate(directory: Path, seconds: float = 3.0) -> float:
    """4 KiB appends to one file, each followed by fsync."""
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    block = b"x" * MESSAGE_SIZE
    count, start = 0, time.perf_counter()
    try:
        while time.perf_counter() - start < seconds:
            os.write(fd, block)
            os.fsync(fd)
            count += 1
    finally:
        os.close(fd)
        path.unlink()
    return count / (time.perf_counter() - start)


def file_per_message_rate(directory: Path, seconds: float = 3.0) -> float:
    """One new 4 KiB file per message, fsync'd with its directory: how Maildir delivers."""
    folder = directory / "maildir-probe"
    folder.mkdir()
    block = b"x" * MESSAGE_SIZE
    count, start = 0, time.perf_counter()
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        while time.perf_counter() - start < seconds:
            fd = os.open(folder / f"m{count}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, block)
            os.fsync(fd)
            os.close(fd)
            os.fsync(dir_fd)
            count += 1
    finally:
        os.close(dir_fd)
        shutil.rmtree(folder)
    return count / (time.perf_counter() - start)


async def appends_per_second(store: Store, writers: int, count: int) -> tuple[float, float]:
    """(appends/s, mean batch size) for ``count`` appends by ``writers`` concurrent writers."""
    domain = f"w{writers}-{time.monotonic_ns()}.test"
    await store.add_domain(domain)
    account = await store.add_account(f"bench@{domain}", "x")
    inbox = await store.mailbox(account.id, "INBOX")
    messages = [message(n) for n in range(count)]
    next_index = iter(range(count))
    batches0, jobs0 = store.backend.batches, store.backend.batched_jobs

    async def writer() -> None:
        for n in next_index:
            await store.append(inbox.id, messages[n])

    start = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    elapsed = time.perf_counter() - start
    batches = store.backend.batches - batches0
    jobs = store.backend.batched_jobs - jobs0
    return count / elapsed, jobs / max(batches, 1)


def count_for(writers: int) -> int:
    return 2000 if writers == 1 else 8000


async def run_sqlite(directory: Path, repeat: int) -> dict[int, tuple[float, float]]:
    results: dict[int, list[tuple[float, float]]] = {w: [] for w in WRITERS}
    for i in range(repeat):
        data = directory / f"sqlite-{i}"
        store = await Store.open_sqlite(data)
        async with store:
            for writers in WRITERS:
                results[writers].append(
                    await appends_per_second(store, writers, count_for(writers))
                )
        shutil.rmtree(data)
    return {w: _median(r) for w, r in results.items()}


async def run_postgres(url: str, repeat: int) -> dict[int, tuple[float, float]]:
    results: dict[int, list[tuple[float, float]]] = {w: [] for w in WRITERS}
    for _ in range(repeat):
        store = await Store.open_postgres(url)
        async with store:
            for writers in WRITERS:
                results[writers].append(
                    await appends_per_second(store, writers, count_for(writers))
                )
    return {w: _median(r) for w, r in results.items()}


def _median(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str]:
    sys.path.insert(0, str(ROOT))
    from tests.support.pgcluster import running_cluster

    with running_cluster() as cluster:
        yield cluster.create_database()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument("--dir", help="where to put the databases (default: a temp dir in .)")
    args = parser.parse_args()
    backends = args.backends.split(",")
    directory = Path(tempfile.mkdtemp(prefix="bench-", dir=args.dir or ROOT))
    try:
        fsync_rates = [raw_fsync_rate(directory) for _ in range(args.repeat)]
        fsync = statistics.median(fsync_rates)
        maildir = statistics.median(file_per_message_rate(directory) for _ in range(args.repeat))
        table: dict[str, dict[int, tuple[float, float]]] = {}
        if "sqlite" in backends:
            table["SQLite"] = asyncio.run(run_sqlite(directory, args.repeat))
        if "postgresql" in backends:
            with postgres_cluster() as url:
                table["PostgreSQL"] = asyncio.run(run_postgres(url, args.repeat))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    lines = [
        f"raw fsync of a 4 KiB append, same disk: {fsync:,.0f}/s "
        f"(runs: {', '.join(f'{r:,.0f}' for r in fsync_rates)})",
        f"one new 4 KiB file per message + fsync of file and directory (Maildir): {maildir:,.0f}/s",
        "",
        "| backend | writers | durable appends/s | × raw fsync rate | × 1 writer | mean batch |",
        "|---|---|---|---|---|---|",
    ]
    for backend, rows in table.items():
        single = rows[1][0]
        for writers, (rate, batch) in rows.items():
            lines.append(
                f"| {backend} | {writers} | {rate:,.0f} | {rate / fsync:.2f} "
                f"| {rate / single:.2f} | {batch:.1f} |"
            )
    report = "\n".join(lines)
    print(report)
    if args.record:
        record(
            "Store appends",
            "bench.store_append",
            f"medians of {args.repeat} runs, 4 KiB messages, one mailbox.",
            report,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

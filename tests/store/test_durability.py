"""Durability: SIGKILL in the middle of thousands of concurrent appends loses nothing acknowledged.

The child process (``appender.py``) prints an acknowledgement only after ``Store.append``
returned. We kill it with SIGKILL at a random point, reopen the store, and check that every
acknowledged message is there byte for byte, that nothing half-written is visible, and that the
counters (UIDNEXT, quota usage, blob references) agree with the rows.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from courrier.store import Store

from .helpers import make_message, new_account, sql

ROOT = Path(__file__).resolve().parents[2]


def _location(store: Store, tmp_path: Path) -> tuple[str, str]:
    if store.backend.dialect == "sqlite":
        return "sqlite", str(tmp_path / "data")
    return "postgresql", str(store.backend.url)  # type: ignore[attr-defined]


async def _prepare(store_opener: Callable[..., Any], tmp_path: Path) -> tuple[str, str, int, int]:
    store: Store = await store_opener()
    async with store:
        account = await new_account(store)
        inbox = await store.mailbox(account.id, "INBOX")
        backend, location = _location(store, tmp_path)
    return backend, location, account.id, inbox.id


def test_sigkill_during_concurrent_appends(
    store_opener: Callable[..., Any], tmp_path: Path
) -> None:
    backend, location, account_id, inbox_id = asyncio.run(_prepare(store_opener, tmp_path))

    total, writers = 5000, 50
    kill_after = random.randint(300, 1500)
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.store.appender",
            backend,
            location,
            str(inbox_id),
            str(total),
            str(writers),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    acked: dict[int, int] = {}
    assert child.stdout.readline().strip() == "READY"
    for line in child.stdout:
        m = re.fullmatch(r"ACK (\d+) (\d+)\n", line)
        assert m, line
        acked[int(m.group(1))] = int(m.group(2))
        if len(acked) >= kill_after:
            child.send_signal(signal.SIGKILL)
            break
    # Acknowledgements already written to the pipe before the kill count too.
    for line in child.stdout:
        m = re.fullmatch(r"ACK (\d+) (\d+)\n", line)
        if m:
            acked[int(m.group(1))] = int(m.group(2))
    assert child.wait() == -signal.SIGKILL
    assert len(acked) >= kill_after

    asyncio.run(_verify(store_opener, account_id, inbox_id, acked))


async def _verify(
    store_opener: Callable[..., Any], account_id: int, inbox_id: int, acked: dict[int, int]
) -> None:
    reopened: Store = await store_opener()
    async with reopened:
        messages = await reopened.list_messages(inbox_id)
        by_uid = {m.uid: m for m in messages}
        # Every acknowledged append is there, at its UID, byte for byte.
        for n, uid in acked.items():
            assert uid in by_uid, f"acknowledged message {n} (uid {uid}) lost"
            content = await reopened.read_message(by_uid[uid].id)
            assert content == make_message(n, size=8000 if n % 10 == 0 else 0)
        # Nothing half-written: every visible message is complete and matches its number.
        for message in messages:
            content = await reopened.read_message(message.id)
            n = int(content.split(b"number ")[1].split(b".")[0])
            assert content == make_message(n, size=8000 if n % 10 == 0 else 0)
            assert message.size == len(content)
        uids = sorted(by_uid)
        assert len(uids) == len(set(uids))
        box = await reopened.mailbox(account_id, "INBOX")
        assert box.uidnext > uids[-1]
        refreshed = await reopened.get_account_by_id(account_id)
        assert refreshed is not None and refreshed.used_bytes == sum(m.size for m in messages)
        refs = await sql(reopened, "SELECT SUM(refs), COUNT(*) FROM blobs")
        assert int(refs[0][0]) == len(messages) == int(refs[0][1])
        if reopened.blobs is not None:
            referenced = {
                r[0] for r in await sql(reopened, "SELECT path FROM blobs WHERE path IS NOT NULL")
            }
            assert referenced <= reopened.blobs.files()
        # The full-text index caught up with what the crash left unindexed.
        for n, uid in list(acked.items())[-20:]:
            assert uid in await reopened.search_text(inbox_id, [str(n)], [str(n)], body=False)
        # The store still works after the crash.
        after = await reopened.append(inbox_id, make_message(99999))
        assert after.uid > uids[-1]

"""A full disk: appends fail with a clear, temporary error; nothing acknowledged is lost.

The embedded store is put on a small tmpfs (mounting needs root, as on the CI machines).
"""

from __future__ import annotations

from pathlib import Path

from courrier.store import StorageFull, Store

from .helpers import make_message, new_account


async def test_full_disk_is_a_clear_temporary_error(small_disk: Path) -> None:
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * 2_000_000)  # what the operator deletes to make room
    store = await Store.open_sqlite(small_disk / "data", inline_blob_max=20_000)
    async with store:
        account = await new_account(store)
        inbox = await store.mailbox(account.id, "INBOX")
        stored: dict[int, int] = {}
        failures: list[StorageFull] = []
        for n in range(2000):
            size = 60_000 if n % 3 == 0 else 3000  # files and inline blobs both
            try:
                appended = await store.append(inbox.id, make_message(n, size=size))
            except StorageFull as exc:
                failures.append(exc)
                if len(failures) >= 5:
                    break
            else:
                stored[n] = appended.message_id
        assert failures, "the disk never filled up"
        assert "disk is full" in str(failures[0])
        assert len(stored) > 20
        # Everything acknowledged before the disk filled is intact.
        for n, message_id in stored.items():
            size = 60_000 if n % 3 == 0 else 3000
            assert await store.read_message(message_id) == make_message(n, size=size)
        listed = await store.list_messages(inbox.id)
        assert len(listed) == len(stored)
        refreshed = await store.get_account(account.address)
        assert refreshed is not None and refreshed.used_bytes == sum(m.size for m in listed)
        # Once the operator frees space, the store is writable again.
        ballast.unlink()
        again = await store.append(inbox.id, make_message(99998))
        assert await store.read_message(again.message_id) == make_message(99998)
        await store.expunge(
            inbox.id, [m.uid for m in listed[: len(listed) // 2]], deleted_only=False
        )
        again = await store.append(inbox.id, make_message(99999))
        assert await store.read_message(again.message_id) == make_message(99999)

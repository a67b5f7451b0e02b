"""Helpers for store tests: sample messages and raw SQL peeks through the store's own backend."""

from __future__ import annotations

from typing import Any

from courrier.store import Account, Store
from courrier.store.tx import Tx, rows


def make_message(
    n: int, *, subject: str | None = None, body: str | None = None, size: int = 0
) -> bytes:
    """A well-formed message whose content identifies ``n``; padded to at least ``size`` bytes."""
    text = body if body is not None else f"This is message number {n}.\r\n"
    head = (
        f"From: Alice Example <alice@example.org>\r\n"
        f"To: bob@example.test\r\n"
        f"Subject: {subject if subject is not None else f'Message {n}'}\r\n"
        f"Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n"
        f"Message-ID: <m{n}@example.org>\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n"
        f"\r\n"
    )
    raw = (head + text).encode()
    if len(raw) < size:
        line = b"padding line for a realistic message size, 0123456789 abcdefghij\r\n"
        raw += line * ((size - len(raw)) // len(line) + 1)
    return raw


async def new_account(store: Store, address: str = "bob@example.test", quota: int = 0) -> Account:
    domain = address.partition("@")[2]
    if await store.get_domain(domain) is None:
        await store.add_domain(domain)
    return await store.add_account(address, "hash", "", quota_bytes=quota)


async def sql(store: Store, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run a read-only query through the store's backend (for checking invariants)."""

    def tx() -> Tx[list[tuple[Any, ...]]]:
        found = yield rows(query, *params)
        return [tuple(r) for r in found]

    return await store.backend.read(tx)

"""The directory cache: what every delivery looks up, kept in memory by each process.

An SMTP delivery asks for the recipient's domain, account (or alias) and target mailbox; each
question answered by the database is a round trip through a reader thread (or to PostgreSQL),
and at a thousand messages a second those trips cost more than the delivery itself. Postfix
keeps its lookup tables in memory for the same reason.

Only found entries are kept, so something created anywhere is seen at once. A change made
through this process's :class:`~courrier.store.api.Store` clears the cache when it commits;
a change made by another process (the CLI, another node on PostgreSQL) bumps the
``directory_serial`` row, which the cache reads at most once every :data:`REFRESH` seconds,
so a removed user or renamed mailbox is forgotten within that time. The mailbox entries are
ids only; cached accounts carry the usage counters of when they were read, so quota checks
ask :meth:`~courrier.store.api.Store.used_bytes` instead.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from courrier.store import directory, mailboxes
from courrier.store.errors import InvalidName
from courrier.store.models import Account, Alias, Domain
from courrier.store.tx import Tx, TxFactory, one

T = TypeVar("T")

#: Longest time (seconds) another process's change can go unseen.
REFRESH = 1.0

Reader = Callable[[TxFactory[Any]], Awaitable[Any]]


def read_serial() -> Tx[int]:
    row = yield one("SELECT value FROM directory_serial WHERE id = 1")
    return int(row[0]) if row else 0


class DirectoryCache:
    def __init__(self, read: Reader) -> None:
        self._read = read
        self._entries: dict[tuple[Any, ...], Any] = {}
        self._serial: int | None = None
        self._checked = 0.0
        #: Bumped by every clear: an answer read across a clear is not kept.
        self._generation = 0

    def clear(self) -> None:
        self._entries.clear()
        self._generation += 1

    async def domain(self, name: str) -> Domain | None:
        return await self._get(("domain", name), lambda: directory.get_domain(name))

    async def account(self, address: str) -> Account | None:
        return await self._get(("account", address), lambda: directory.get_account(address))

    async def alias(self, address: str) -> Alias | None:
        return await self._get(("alias", address), lambda: directory.get_alias(address))

    async def mailbox_id(self, account_id: int, name: str) -> int | None:
        """The id of the account's mailbox ``name``; None when there is none (or the name is
        not a valid mailbox name)."""
        try:
            name = mailboxes.check_mailbox_name(name)
        except InvalidName:
            return None
        return await self._get(("mailbox", account_id, name), lambda: _mailbox_id(account_id, name))

    async def special_mailbox_id(self, account_id: int, use: str) -> int | None:
        """The id of the account's mailbox with SPECIAL-USE ``use`` (``\\Sent``, …)."""
        return await self._get(("special", account_id, use), lambda: _special_id(account_id, use))

    async def _get(self, key: tuple[Any, ...], factory: TxFactory[T | None]) -> T | None:
        await self._check_serial()
        if key in self._entries:
            found: T = self._entries[key]
            return found
        generation = self._generation
        value: T | None = await self._read(factory)
        # A change committed while we read would be missed if we kept an older answer.
        if value is not None and generation == self._generation:
            self._entries[key] = value
        return value

    async def _check_serial(self) -> None:
        now = time.monotonic()
        if now - self._checked < REFRESH:
            return
        self._checked = now  # one check in flight at a time
        serial = await self._read(read_serial)
        if serial != self._serial:
            self.clear()
            self._serial = serial


def _mailbox_id(account_id: int, name: str) -> Tx[int | None]:
    found = yield from mailboxes.get_mailbox(account_id, name)
    return found.id if found else None


def _special_id(account_id: int, use: str) -> Tx[int | None]:
    found = yield from mailboxes.list_mailboxes(account_id, counts=False)
    return next((m.id for m in found if m.special_use == use), None)

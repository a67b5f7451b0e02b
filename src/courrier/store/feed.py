"""The change feed: in-process wake-ups for sessions waiting on an account's changes.

A subscriber (an IMAP IDLE session, a POP3 or webmail view) holds a :class:`Subscription` and
awaits :meth:`Subscription.wait`; after every commit that changed the account, the backend
publishes the account's new MODSEQ and each waiter wakes. What changed is then read from the
change log (``Store.changes_since``). A subscription is one small object and at most one future:
thousands of idle sessions cost little. A subscription may watch one mailbox only (an IMAP
session's selected mailbox): changes that name other mailboxes of the account do not wake it,
so that one delivery does not wake every session of an account with many open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import TracebackType

from courrier.store.tx import Notify


class Subscription:
    __slots__ = ("_feed", "_waiter", "account_id", "mailbox_id", "modseq")

    def __init__(
        self, feed: ChangeFeed, account_id: int, modseq: int, mailbox_id: int | None
    ) -> None:
        self._feed = feed
        self._waiter: asyncio.Future[None] | None = None
        self.account_id = account_id
        #: The one mailbox watched; None: all of the account's.
        self.mailbox_id = mailbox_id
        #: Highest MODSEQ announced so far (of the changes watched).
        self.modseq = modseq

    def _wake(self, modseq: int, mailboxes: frozenset[int] | None) -> None:
        watched = self.mailbox_id
        if watched is not None and mailboxes is not None and watched not in mailboxes:
            return
        if modseq > self.modseq:
            self.modseq = modseq
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(None)

    async def wait(self, seen: int) -> int:
        """Wait until the account's MODSEQ passes ``seen``; return the newest.

        Callers bound the wait with ``asyncio.timeout`` (IDLE's 30 minutes, RFC 9051 §5.4).
        """
        if self.modseq > seen:
            return self.modseq
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
        return self.modseq

    def close(self) -> None:
        self._feed._remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.close()


class ChangeFeed:
    def __init__(self) -> None:
        self._subs: dict[int, set[Subscription]] = {}
        self._latest: dict[int, int] = {}

    def latest(self, account_id: int) -> int:
        """The highest MODSEQ published for the account (0: none since start)."""
        return self._latest.get(account_id, 0)

    def subscribe(
        self, account_id: int, modseq: int = 0, mailbox_id: int | None = None
    ) -> Subscription:
        sub = Subscription(self, account_id, modseq, mailbox_id)
        self._subs.setdefault(account_id, set()).add(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.account_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.account_id]

    def publish(self, notices: Iterable[Notify]) -> None:
        for notice in notices:
            if notice.modseq > self._latest.get(notice.account_id, 0):
                self._latest[notice.account_id] = notice.modseq
            for sub in self._subs.get(notice.account_id, ()):
                sub._wake(notice.modseq, notice.mailboxes)

    def subscribers(self, account_id: int) -> int:
        return len(self._subs.get(account_id, ()))

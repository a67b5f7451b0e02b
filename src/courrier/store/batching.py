"""Group commit, the part both backends share: what waits for the writer, and how a batch of
waiting writes becomes the transactions that are run together before one commit.

Every append waiting in a batch is merged into one :func:`messages.append_batch` transaction (a few
statements for the lot, instead of a few per message); every other write is its own unit. Units
of one batch were all waiting at once, so any order among them is a valid order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from courrier.store import messages
from courrier.store.errors import StoreClosed, StoreError
from courrier.store.models import Appended
from courrier.store.tx import TxFactory

T = TypeVar("T")


@dataclass(slots=True, eq=False)
class Pending:
    """A write waiting for the group commit: a transaction, or one message to append."""

    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    factory: TxFactory[Any] | None = None
    item: messages.AppendItem | None = None
    #: (succeeded, value or exception), set by the writer before the future is settled.
    outcome: tuple[bool, Any] = field(default=(False, None))

    def settle(self) -> None:
        """Hand the outcome to the waiting coroutine (on its event loop)."""
        if self.future.done():
            return
        ok, value = self.outcome
        if ok:
            self.future.set_result(value)
        else:
            self.future.set_exception(value)


@dataclass(slots=True, eq=False)
class Unit:
    """One transaction of a batch and the writes whose outcome it decides."""

    members: list[Pending]
    factory: TxFactory[Any]
    merged: bool

    def succeed(self, value: Any) -> None:
        if not self.merged:
            self.members[0].outcome = (True, value)
            return
        for member, result in zip(self.members, value, strict=True):
            member.outcome = (False, result) if isinstance(result, StoreError) else (True, result)

    def fail(self, error: BaseException) -> None:
        for member in self.members:
            member.outcome = (False, error)


class Submitter:
    """The asynchronous front of a backend's writer: queue a write, await its outcome."""

    _closed: bool

    def _enqueue(self, pending: Pending) -> None:
        raise NotImplementedError

    async def write(self, factory: TxFactory[T]) -> T:
        """Run a transaction in the next group commit; return once it is durable."""
        result: T = await self._submit(factory, None)
        return result

    async def append(self, item: messages.AppendItem) -> Appended:
        """Store a message in the next group commit (merged with the batch's other appends)."""
        result: Appended = await self._submit(None, item)
        return result

    async def _submit(
        self, factory: TxFactory[Any] | None, item: messages.AppendItem | None
    ) -> Any:
        if self._closed:
            raise StoreClosed("The store is closed.")
        loop = asyncio.get_running_loop()
        pending = Pending(loop.create_future(), loop, factory, item)
        self._enqueue(pending)
        return await pending.future


def plan(batch: Sequence[Pending]) -> list[Unit]:
    units = [Unit([p], p.factory, merged=False) for p in batch if p.factory is not None]
    appends = [p for p in batch if p.item is not None]
    if appends:
        items = [p.item for p in appends if p.item is not None]
        units.append(Unit(appends, lambda: messages.append_batch(items), merged=True))
    return units

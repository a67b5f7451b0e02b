"""Transactions as sans-IO generators: the store's logic written once for both backends.

A transaction is a generator that yields :class:`Q` (a statement) and receives its result, or
yields an effect (:class:`Notify`, :class:`Unlink`, :class:`Index`, :class:`Unindex`) that the
backend carries out in its own way, never visible to others before the commit. Backends run the
generator: the SQLite one synchronously on its writer or reader thread, the PostgreSQL one with
``await`` on an asyncpg connection. SQL is written with ``?`` placeholders
and the SQLite spelling; where the dialects differ, a statement gives both spellings.

A transaction may be run more than once (group commit re-runs a batch without a failed member),
so it must not touch anything outside the database except through effects.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

T = TypeVar("T")

Row = Sequence[Any]
Fetch = Literal["none", "one", "all", "many"]


@dataclass(frozen=True, slots=True)
class Q:
    """One statement. ``fetch``: "none" → rowcount, "one" → a row or None, "all" → rows,
    "many" → executemany over ``params`` (a sequence of tuples) returning None."""

    sql: str
    params: Sequence[Any] = ()
    fetch: Fetch = "none"
    #: PostgreSQL spelling when it differs (still with ``?`` placeholders), and its parameters
    #: when they differ too.
    pg: str | None = None
    pg_params: Sequence[Any] | None = None


@dataclass(frozen=True, slots=True)
class Notify:
    """After commit: tell change-feed subscribers that ``account_id`` reached ``modseq``, by
    changes to ``mailboxes`` (None: any of them, or not known)."""

    account_id: int
    modseq: int
    mailboxes: frozenset[int] | None = None


@dataclass(frozen=True, slots=True)
class Unlink:
    """After commit: remove a blob file that no row references any more."""

    path: str


@dataclass(frozen=True, slots=True)
class Index:
    """Put a new blob's words in the full-text index (SQLite: after commit, off the commit path;
    PostgreSQL: in the same transaction)."""

    blob_id: int
    headers: str
    body: str


@dataclass(frozen=True, slots=True)
class Unindex:
    """Take a dropped blob out of the full-text index."""

    blob_id: int


Effect = Notify | Unlink | Index | Unindex
Step = Q | Effect
Tx = Generator[Step, Any, T]
TxFactory = Callable[[], Tx[T]]


def one(sql: str, *params: Any, pg: str | None = None) -> Q:
    return Q(sql, params, "one", pg)


def rows(sql: str, *params: Any, pg: str | None = None) -> Q:
    return Q(sql, params, "all", pg)


def run(sql: str, *params: Any, pg: str | None = None) -> Q:
    return Q(sql, params, "none", pg)


def many(sql: str, params: Sequence[Sequence[Any]], pg: str | None = None) -> Q:
    return Q(sql, params, "many", pg)


def to_postgres(sql: str) -> str:
    """Number ``?`` placeholders as ``$1, $2, …`` (statements never contain a literal ``?``)."""
    parts = sql.split("?")
    out = [parts[0]]
    for i, part in enumerate(parts[1:], start=1):
        out.append(f"${i}")
        out.append(part)
    return "".join(out)


def drive_sync(factory: TxFactory[T], execute: Callable[[Q], Any]) -> tuple[T, list[Effect]]:
    """Run a transaction whose statements are executed synchronously by ``execute``."""
    effects: list[Effect] = []
    gen = factory()
    value: Any = None
    try:
        while True:
            step = gen.send(value)
            if isinstance(step, Q):
                value = execute(step)
            else:
                effects.append(step)
                value = None
    except StopIteration as stop:
        return stop.value, effects

"""Transactions on DMARC results of inbound mail, counted for the aggregate reports.

What this module owns: each inbound message's DMARC evaluation (RFC 7489 §7.2.1.1), counted
per UTC day, policy domain and identical report row: messages from the same source with the
same results add 1 to one row's count, as the report's ``<record><row><count>`` does. The
row's content is kept as JSON made by ``courrier.mailauth`` (the report's ``policy_published``
and ``record`` in the shape :mod:`courrier.mailauth.dmarc` documents); this module only counts
and reads them back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from courrier.store.tx import Tx, rows, run


@dataclass(frozen=True, slots=True)
class DmarcRow:
    """One message's result under the policy domain whose record applied. ``policy`` and
    ``record`` are JSON texts."""

    day: str
    policy_domain: str
    policy: str
    record: str


@dataclass(frozen=True, slots=True)
class DmarcCount:
    """A report row: how many messages of the day had exactly this result."""

    policy_domain: str
    policy: str
    record: str
    count: int


def record(row: DmarcRow) -> Tx[None]:
    digest = hashlib.sha256(f"{row.policy}\n{row.record}".encode()).hexdigest()
    yield run(
        "INSERT INTO dmarc_results (day, policy_domain, digest, policy, record, count) "
        "VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT (day, policy_domain, digest) "
        "DO UPDATE SET count = dmarc_results.count + 1",
        row.day,
        row.policy_domain,
        digest,
        row.policy,
        row.record,
    )


def report_day(day: str) -> Tx[list[DmarcCount]]:
    """The day's rows (``YYYY-MM-DD``, UTC), by policy domain."""
    found = yield rows(
        "SELECT policy_domain, policy, record, count FROM dmarc_results WHERE day = ? "
        "ORDER BY policy_domain, id",
        day,
    )
    return [DmarcCount(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in found]


def forget_before(day: str) -> Tx[int]:
    """Drop the rows of days before ``day`` (reported, or too old to be)."""
    removed = yield run("DELETE FROM dmarc_results WHERE day < ?", day)
    return int(removed)

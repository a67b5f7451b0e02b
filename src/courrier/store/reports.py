"""Transactions on DMARC aggregate and TLS-RPT reports, those we sent and those we received.

What this module owns: one row per report, with its kind (``dmarc`` or ``tlsrpt``), direction
(``sent`` or ``received``), the policy domain it is about, the reporting organisation, its
report id and period, a JSON summary (what ``courrier report list|show`` prints) and the
report itself (XML or JSON text). A report is unique by kind, direction, domain, organisation
and report id: adding it twice adds nothing, which is how one node, and only one, gets to
send a day's report (the first to add its row), and how a report received twice is kept once.
Building and parsing reports is ``courrier.mailauth``'s business, never this module's.
"""

from __future__ import annotations

from dataclasses import dataclass

from courrier.store.tx import Row, Tx, one, rows

_COLUMNS = "id, kind, direction, domain, org, report_id, begin_at, end_at, created_at, summary"


@dataclass(frozen=True, slots=True)
class Report:
    kind: str
    direction: str
    domain: str
    org: str
    report_id: str
    begin_at: int
    end_at: int
    created_at: int
    #: JSON text.
    summary: str
    #: The report as sent or received (XML or JSON text), not read by :func:`list_reports`.
    content: str = ""
    #: Set once stored.
    id: int = 0


def _report(r: Row, content: str = "") -> Report:
    """A row of ``_COLUMNS`` as a report."""
    return Report(
        kind=str(r[1]),
        direction=str(r[2]),
        domain=str(r[3]),
        org=str(r[4]),
        report_id=str(r[5]),
        begin_at=int(r[6]),
        end_at=int(r[7]),
        created_at=int(r[8]),
        summary=str(r[9]),
        content=content,
        id=int(r[0]),
    )


def add(report: Report) -> Tx[int | None]:
    """Keep ``report``; its id, or None when the same report is already kept."""
    row = yield one(
        "INSERT INTO reports (kind, direction, domain, org, report_id, begin_at, end_at, "
        "created_at, summary, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (kind, direction, domain, org, report_id) DO NOTHING RETURNING id",
        report.kind,
        report.direction,
        report.domain,
        report.org,
        report.report_id,
        report.begin_at,
        report.end_at,
        report.created_at,
        report.summary,
        report.content,
    )
    return None if row is None else int(row[0])


def list_reports(kind: str | None, direction: str | None) -> Tx[list[Report]]:
    """Reports (without their content), newest period first."""
    where = [("kind = ?", kind), ("direction = ?", direction)]
    chosen = [(clause, value) for clause, value in where if value is not None]
    found = yield rows(
        f"SELECT {_COLUMNS} FROM reports "
        + ("WHERE " + " AND ".join(c for c, _ in chosen) if chosen else "")
        + " ORDER BY begin_at DESC, id DESC",
        *(value for _, value in chosen),
    )
    return [_report(r) for r in found]


def get(report_id: int) -> Tx[Report | None]:
    row = yield one(f"SELECT {_COLUMNS}, content FROM reports WHERE id = ?", report_id)
    return None if row is None else _report(row, str(row[10]))

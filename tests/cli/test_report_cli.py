"""`courrier report list|show` as an operator runs them, on reports received from Google and
Microsoft and kept in the store (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from courrier import config, provisioning
from courrier.cli import report as report_cli
from courrier.mailauth.dmarc import Policy, evaluate, parse_record, report_row
from courrier.mailauth.reportin import find_reports, ingest
from courrier.mailauth.spf import SPFResult
from courrier.store import Store, Target
from tests.cli.test_cli import courrier
from tests.mailauth import reportmail
from tests.store.helpers import make_message
from tests.support.pgcluster import PostgresCluster
from tests.support.server import inbox


@dataclass
class Location:
    """Where the CLI finds the store the test fills."""

    args: list[str]
    env: dict[str, str]
    open: Callable[[], Awaitable[Store]]

    def run(self, *args: str) -> tuple[int, str, str]:
        done = courrier(*args, *self.args, env=self.env)
        assert "Traceback" not in done.stderr, done.stderr
        return done.returncode, done.stdout, done.stderr


@pytest.fixture
def location(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Location:
    data = tmp_path / "data"
    if backend == "postgresql":
        cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
        url = cluster.create_database()
        env = {"COURRIER_STORE_BACKEND": "postgresql", "COURRIER_STORE_URL": url}
        return Location(["--data", str(data)], env, lambda: Store.open_postgres(url))
    return Location(["--data", str(data)], {}, lambda: Store.open_sqlite(data))


async def received(location: Location) -> tuple[int, int, int]:
    """Google's DMARC and TLS reports and Microsoft's DMARC report, ingested: their ids."""
    store = await location.open()
    async with store:
        (google,) = await ingest(store, reportmail.google_dmarc(), ["example.org"])
        (tls,) = await ingest(store, reportmail.google_tlsrpt(), ["example.org"])
        (microsoft,) = await ingest(store, reportmail.microsoft_dmarc(), ["example.org"])
    return google, tls, microsoft


async def test_report_list(location: Location) -> None:
    code, out, _ = location.run("report", "list")
    assert (code, out) == (0, "No reports.\n")
    google, tls, microsoft = await received(location)

    code, out, _ = location.run("report", "list", "--json")
    listed = json.loads(out)
    assert [r["id"] for r in listed] == [tls, google, microsoft]  # newest period first
    assert listed[1] == {
        "id": google,
        "kind": "dmarc",
        "direction": "received",
        "domain": "example.org",
        "org": "google.com",
        "report_id": "5717107811868587391",
        "begin_at": 1778284800,
        "end_at": 1778371199,
        "created_at": listed[1]["created_at"],
        "summary": listed[1]["summary"],
    }
    assert listed[1]["summary"]["messages"] == 12
    assert listed[0]["summary"]["failures"] == 3

    code, out, _ = location.run("report", "list")
    rows = [re.split(r"\s{2,}", line) for line in out.splitlines()]
    assert code == 0 and rows == [
        ["ID", "KIND", "DIRECTION", "DOMAIN", "ORG", "PERIOD (UTC)", "SUMMARY"],
        [str(tls), "tlsrpt", "received", "example.org", "Google Inc.", "2026-05-09",
         "1000 sessions, 3 failed"],
        [str(google), "dmarc", "received", "example.org", "google.com", "2026-05-09",
         "12 messages, 10 pass, 2 fail (quarantine 2)"],
        # Its period ends at midnight: the day before is the one it covers.
        [str(microsoft), "dmarc", "received", "news.example.org", "Enterprise Outlook",
         "2026-05-08", "4 messages, 3 pass, 1 fail (reject 1)"],
    ]  # fmt: skip

    _, out, _ = location.run("report", "list", "--kind", "dmarc", "--json")
    assert [r["id"] for r in json.loads(out)] == [google, microsoft]
    _, out, _ = location.run("report", "list", "--direction", "sent", "--json")
    assert json.loads(out) == []
    _, out, _ = location.run("report", "list", "--kind", "tlsrpt", "--direction", "received")
    assert len(out.splitlines()) == 2
    code, _, err = location.run("report", "list", "--kind", "arf")
    assert code == 2 and "invalid choice" in err


async def test_report_show(location: Location) -> None:
    google, tls, _ = await received(location)

    code, out, _ = location.run("report", "show", str(google))
    assert code == 0
    assert out.splitlines()[:7] == [
        f"Report {google}: DMARC aggregate report, received",
        "Domain:     example.org",
        "Reporter:   google.com",
        "Report id:  5717107811868587391",
        "Period:     2026-05-09 00:00:00 to 2026-05-09 23:59:59 UTC",
        "Policy:     p=quarantine sp=quarantine pct=100 adkim=r aspf=r",
        "Messages:   12 messages, 10 pass, 2 fail (quarantine 2)",
    ]
    table = [line.split() for line in out.splitlines()[8:]]
    assert table == [
        ["SOURCE", "IP", "MESSAGES", "DISPOSITION", "DKIM", "SPF", "HEADER", "FROM"],
        ["203.0.113.25", "8", "none", "pass", "pass", "example.org"],
        ["2001:db8:4860::1b", "2", "none", "pass", "fail", "example.org"],
        ["198.51.100.7", "2", "quarantine", "fail", "fail", "example.org"],
    ]

    code, out, _ = location.run("report", "show", str(tls))
    assert code == 0
    assert out.splitlines()[5:] == [
        "Sessions:   1000 sessions, 3 failed",
        "",
        "Policy example.org (sts): 997 successful, 3 failed sessions",
        "  policy: version: STSv1 | mode: enforce | mx: mail.example.org | max_age: 604800",
        "  certificate-expired: 3 sessions to mail.example.org [203.0.113.25] from 209.85.220.41",
    ]

    _, out, _ = location.run("report", "show", str(google), "--raw")
    assert out == reportmail.GOOGLE_DMARC.read_text()
    _, out, _ = location.run("report", "show", str(tls), "--raw")
    assert json.loads(out) == json.loads(reportmail.GOOGLE_TLSRPT.read_text())

    _, out, _ = location.run("report", "show", str(tls), "--json")
    shown = json.loads(out)
    assert shown["kind"] == "tlsrpt" and shown["org"] == "Google Inc."
    assert shown["content"] == reportmail.GOOGLE_TLSRPT.read_text()
    assert shown["summary"]["policies"][0]["policy_domain"] == "example.org"

    code, out, err = location.run("report", "show", "999")
    assert (code, out, err) == (1, "", "courrier: There is no report 999.\n")
    code, _, err = location.run("report", "show", "x")
    assert code == 2 and "invalid int value" in err


def test_show_prints_no_control_characters(capsys: pytest.CaptureFixture[str]) -> None:
    """What a reporter wrote reaches the terminal without the escapes it would obey."""
    (found,) = find_reports(reportmail.google_tlsrpt())
    summary = json.loads(found.summary)
    summary["failure_details"][0]["receiving_mx_hostname"] = "\x1b]0;owned\x07mx.example.org"
    summary["policies"][0]["policy_strings"] = ["mode: enforce\r\x1b[2K"]
    report = dataclasses.replace(found, id=7, summary=json.dumps(summary))
    report_cli.print_report(report)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert "  policy: mode: enforce??[2K" in out
    assert "sessions to ?]0;owned?mx.example.org [203.0.113.25]" in out


async def test_report_send(location: Location) -> None:
    """`courrier report send --day D` sends the day's aggregate report once; a report to one
    of our own domains lands in the mailbox at once."""
    store = await location.open()
    async with store:
        settings = config.load(env={}, overrides={"server.hostname": "mx.example.org"})
        await provisioning.add_domain(store, "example.org")
        await provisioning.add_user(store, settings, "bob@example.org", "a long passphrase, really")
        bob = await store.get_account("bob@example.org")
        assert bob is not None
        inbox_id = await store.directory.mailbox_id(bob.id, "INBOX")
        assert inbox_id is not None
        p = Policy("example.org", parse_record("v=DMARC1; p=reject; rua=mailto:bob@example.org"))
        spf = SPFResult("fail", "mailfrom", "spoof.test", "x@spoof.test", "")
        outcome = evaluate("example.org", p, spf, [])
        row = report_row(
            outcome,
            day="2026-05-09",
            source_ip="192.0.2.7",
            envelope_from="spoof.test",
            envelope_to="example.org",
            spf=spf,
            dkim=[],
        )
        for n in range(3):
            await store.deliver(make_message(n), [Target(inbox_id)], dmarc=row)

    code, out, err = location.run("report", "send", "--day", "2026-05-09")
    assert code == 0, err
    assert re.fullmatch(
        r"dmarc report about example\.org queued for bob@example\.org \(report \d+\)\n", out
    )
    code, out, _ = location.run("report", "send", "--day", "2026-05-09")
    assert (code, out) == (0, "No reports to send for 2026-05-09 (none due, or already sent).\n")
    code, out, _ = location.run("report", "list", "--direction", "sent", "--json")
    (sent,) = json.loads(out)
    assert (sent["kind"], sent["domain"]) == ("dmarc", "example.org")
    assert location.run("report", "send", "--day", "May 9")[0] == 2
    store = await location.open()
    async with store:
        mail = await inbox(store, "bob@example.org")
    assert len(mail) == 4 and b"Report Domain: example.org" in mail[-1]

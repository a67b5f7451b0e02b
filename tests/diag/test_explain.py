"""`courrier explain`: every code of the IANA enhanced status code registry (its list kept in
tests/data, written from the registry, not from our table) has an explanation under the
registry's name; bounce lines of the big providers are recognised; the CLI answers, reads
standard input, prints JSON and fails clearly on what it does not know."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from courrier.diag.codes import BASIC, DETAILS
from courrier.diag.explain import explain
from tests.cli.test_cli import courrier

REGISTRY = Path(__file__).parent.parent / "data" / "smtp-enhanced-status-codes.csv"


def registry() -> list[dict[str, str]]:
    with REGISTRY.open(newline="") as f:
        return list(csv.DictReader(f))


def test_every_registry_code_has_its_entry() -> None:
    rows = registry()
    assert len(rows) >= 80
    for row in rows:
        key = row["code"].removeprefix("X.")
        assert key in DETAILS, row
        assert DETAILS[key].name == row["name"], row
        assert DETAILS[key].reference == row["reference"], row


@pytest.mark.parametrize("code", [r["code"] for r in registry()])
def test_each_registry_code_is_explained_in_both_classes(code: str) -> None:
    for klass in "45":
        found = explain(code.replace("X", klass))
        assert found.known and not found.unknown
        assert found.verdict == ("transient" if klass == "4" else "permanent")


def test_reply_codes_of_rfc_5321_are_known() -> None:
    for code in (211, 214, 220, 221, 250, 251, 252, 354, 421, 450, 451, 452, 455, 500, 501,
                 502, 503, 504, 550, 551, 552, 553, 554, 555):  # fmt: skip
        assert code in BASIC


def test_bounce_line_gets_both_codes_and_the_provider() -> None:
    line = (
        "550-5.7.26 This mail is unauthenticated, which poses a security risk to the sender "
        "and Gmail users, and has been blocked. The sender must authenticate with at least "
        "one of SPF or DKIM."
    )
    found = explain(line)
    assert (found.basic, found.enhanced, found.verdict) == (550, "5.7.26", "permanent")
    assert any("Multiple authentication checks failed" in x for x in found.lines)
    assert found.providers[0]["provider"] == "Gmail"
    assert "DKIM" in found.providers[0]["action"]


def test_dsn_fields_and_a_disagreeing_class() -> None:
    found = explain("Status: 4.2.2\nDiagnostic-Code: smtp; 452 4.2.2 Mailbox full")
    assert (found.basic, found.enhanced, found.verdict) == (452, "4.2.2", "transient")
    assert any("Mailbox full" in x for x in found.lines)
    odd = explain("550 4.7.1 try later")
    assert any("disagree" in x for x in odd.lines)


def test_microsoft_block_list_text() -> None:
    found = explain(
        "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your "
        "Internet service provider since part of their network is on our block list (S3150)."
    )
    assert [p["provider"] for p in found.providers] == ["Outlook"]


def test_cli_text_json_stdin_and_failures() -> None:
    done = courrier("explain", "550", "5.1.1")
    assert done.returncode == 0
    assert "Bad destination mailbox address" in done.stdout
    assert "bounced" in done.stdout
    retry = courrier("explain", "421", "4.7.0")
    assert retry.returncode == 0 and "retries" in retry.stdout
    piped = courrier("explain", "-", "--json", stdin="Diagnostic-Code: smtp; 554 5.7.1 no\n")
    assert piped.returncode == 0
    assert json.loads(piped.stdout)["enhanced"] == "5.7.1"
    unknown = courrier("explain", "hello")
    assert unknown.returncode == 1 and "no known SMTP code" in unknown.stderr
    assert courrier("explain").returncode == 2

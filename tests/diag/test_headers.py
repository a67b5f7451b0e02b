"""`courrier headers` on real-shaped header sets (tests/data/headers: Gmail, Exchange Online, a
mailing list with an ARC chain, a spoof): the path, the results and the DMARC alignment
explained correctly for each; the CLI's text, JSON, standard input and refusal of what is not
a message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from courrier.diag.headers import HeaderError, analyse
from tests.cli.test_cli import courrier

SAMPLES = Path(__file__).parent.parent / "data" / "headers"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_gmail_both_aligned_path_and_tls() -> None:
    found = analyse(sample("gmail.eml"))
    assert found.summary["subject"] == "Café tomorrow"  # RFC 2047 decoded
    assert found.summary["from_domain"] == "example.com"
    assert [h.by for h in found.hops][:2] == ["mail.example.com", "mx.google.com"]
    assert found.hops[0].protocol == "ESMTPSA"  # authenticated submission (RFC 3848)
    assert found.hops[1].ip == "198.51.100.25" and found.hops[1].tls == "TLS1_3"
    assert found.hops[1].delay == 2.0
    assert found.dmarc == "pass"
    assert "DKIM signature by example.com: pass, aligned (same domain)" in found.alignment[2]
    assert found.alignment[-1] == (
        "DMARC: pass, because an aligned DKIM signature and an aligned SPF passed."
    )


def test_esp_newsletter_aligned_through_spf_only() -> None:
    found = analyse(sample("outlook.eml"))
    text = "\n".join(found.alignment)
    assert "SPF for bounce.shop.example: pass, aligned under relaxed alignment" in text
    assert "DKIM signature by esp-mailer.example: pass, not aligned with shop.example" in text
    assert "DMARC: pass, because an aligned SPF passed." in text
    assert found.hops[0].ip == "192.0.2.44"
    assert any("not spam" in s and "bulk" in s for s in found.spam)


def test_forwarded_list_mail_explained_by_its_arc_chain() -> None:
    found = analyse(sample("forwarded-arc.eml"))
    assert [a["i"] for a in found.arc] == ["1", "2"]
    assert [a["cv"] for a in found.arc] == ["none", "pass"]
    assert found.dmarc == "fail"  # on the receiver's own SPF and DKIM results
    text = "\n".join(found.alignment)
    assert "the first intermediary (relay.example.net, i=1) recorded spf=pass; dkim=pass" in text
    assert "recorded dmarc=pass — an ARC chain from a forwarder may have vouched" in text


def test_spoof_signed_by_another_domain_fails_dmarc() -> None:
    found = analyse(sample("spoofed.eml"))
    assert found.dmarc == "fail"
    text = "\n".join(found.alignment)
    assert "DKIM signature by cheap-hosting.example: pass, not aligned with bank.example" in text
    assert "does not count for DMARC" in text
    assert any(s.startswith("X-Spam-Flag: YES") for s in found.spam)
    assert not any("Note:" in line for line in found.alignment)  # agrees with dmarc=fail


@pytest.mark.parametrize("raw", [b"", b"\x00\x01binary", b"just some words\nno header\n"])
def test_what_is_not_a_message_is_refused(raw: bytes) -> None:
    with pytest.raises(HeaderError):
        analyse(raw)


def test_cli_text_json_and_stdin() -> None:
    done = courrier("headers", str(SAMPLES / "spoofed.eml"))
    assert done.returncode == 0
    assert "DMARC: fail" in done.stdout
    piped = courrier("headers", "-", "--json", stdin=sample("gmail.eml").decode())
    assert piped.returncode == 0
    data = json.loads(piped.stdout)
    assert data["dmarc"] == "pass" and len(data["hops"]) == 3
    refused = courrier("headers", "-", stdin="hello\n")
    assert refused.returncode == 1 and "not a mail message" in refused.stderr
    assert "Traceback" not in refused.stderr

"""`courrier dns record …` and `courrier dns ds` as an operator runs them: records of one's own
added, refused with the reason, listed and removed; the DS record for the parent, the same
every time and matching the key the served zone is signed with."""

from __future__ import annotations

import json
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from tests.cli.test_cli import courrier


def test_records_of_ones_own(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert courrier("domain", "add", "example.org", "--data", data).returncode == 0
    added = courrier("dns", "record", "add", "example.org", "www", "A", "203.0.113.80",
                     "--data", data)  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "Added www.example.org.\t3600\tIN\tA\t203.0.113.80"
    refused = courrier("dns", "record", "add", "example.org", "www", "CNAME", "elsewhere.net.",
                       "--data", data)  # fmt: skip
    assert refused.returncode == 2
    assert "a CNAME must be alone at its name (RFC 1034 §3.6.2)" in refused.stderr
    listed = json.loads(courrier("dns", "record", "list", "example.org", "--json",
                                 "--data", data).stdout)  # fmt: skip
    assert [(r["name"], r["type"], r["value"]) for r in listed] == [
        ("www.example.org", "A", "203.0.113.80")
    ]
    zone = json.loads(courrier("domain", "dns", "example.org", "--json", "--data", data).stdout)
    assert {"name": "www.example.org", "type": "A", "value": "203.0.113.80"}.items() <= next(
        r for r in zone if r["type"] == "A"
    ).items()
    removed = courrier("dns", "record", "remove", "example.org", str(listed[0]["id"]),
                       "--data", data)  # fmt: skip
    assert removed.returncode == 0, removed.stderr
    assert "No records of your own" in courrier("dns", "record", "list", "example.org",
                                                "--data", data).stdout  # fmt: skip


def test_ds_for_the_parent(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert courrier("domain", "add", "example.org", "--data", data).returncode == 0
    first = json.loads(courrier("dns", "ds", "example.org", "--json", "--data", data).stdout)
    again = json.loads(courrier("dns", "ds", "example.org", "--json", "--data", data).stdout)
    assert first == again  # the key is kept
    dnskey = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DNSKEY, first["dnskey"])
    expected = dns.dnssec.make_ds(dns.name.from_text("example.org"), dnskey, "SHA256")
    assert first["ds"] == expected.to_text()
    assert first["ds"].startswith(f"{first['key_tag']} 13 2 ")  # ECDSA P-256, SHA-256
    text = courrier("dns", "ds", "example.org", "--data", data).stdout
    assert f"example.org.\t3600\tIN\tDS\t{first['ds']}" in text
    missing = courrier("dns", "ds", "nowhere.example", "--data", data)
    assert missing.returncode == 2 and "not hosted here" in missing.stderr

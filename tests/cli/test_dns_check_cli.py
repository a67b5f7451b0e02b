"""`courrier dns export` and `courrier dns check` as an operator runs them: the exported zone
read back by dnspython and accepted by BIND's named-checkzone; the check against a DNS
stand-in on loopback serving a zone that differs on purpose (exactly those differences
found), the exported zone itself (all ok), and a resolver that is not there (errors, no
traceback)."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.rdatatype
import dns.zone
import pytest

from courrier.dns.check import value
from tests.cli.test_cli import courrier
from tests.support.spfzone import ZoneServer

DOMAIN = "example.org"
HOST = "mail.example.org"
ENV = {
    "COURRIER_SERVER_HOSTNAME": HOST,
    "COURRIER_DNS_HOST_ADDRESSES": "192.0.2.25,2001:db8::25",
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A data directory hosting example.org (with its DKIM keys), once for the module."""
    path = str(tmp_path_factory.mktemp("dnscheck") / "data")
    added = courrier("domain", "add", DOMAIN, "--data", path, env=ENV)
    assert added.returncode == 0, added.stderr
    return path


@pytest.fixture(scope="module")
def intended(data: str) -> list[dict[str, Any]]:
    """The records the domain should publish, as `courrier domain dns --json` lists them."""
    listed = courrier("domain", "dns", DOMAIN, "--json", "--data", data, env=ENV)
    assert listed.returncode == 0, listed.stderr
    records: list[dict[str, Any]] = json.loads(listed.stdout)
    return records


def entry(rdtype: str, text: str) -> dict[str, Any]:
    """A record for the stand-in (tests.support.spfzone): TXT cut in strings of 100 octets
    (not where courrier cuts them), MX as [preference, exchange], the rest as zone text."""
    if rdtype == "TXT":
        return {"TXT": [text[i : i + 100] for i in range(0, len(text), 100)]}
    if rdtype == "MX":
        return {"MX": text.split()}
    return {rdtype: text}


def zonedata(records: list[tuple[str, str, str]]) -> dict[str, list[dict[str, Any]]]:
    data: dict[str, list[dict[str, Any]]] = {}
    for name, rdtype, text in records:
        data.setdefault(name, []).append(entry(rdtype, text))
    return data


@pytest.fixture
def serving() -> Iterator[list[ZoneServer]]:
    servers: list[ZoneServer] = []
    yield servers
    for server in servers:
        server.close()


def serve(servers: list[ZoneServer], records: list[tuple[str, str, str]]) -> str:
    server = ZoneServer(zonedata(records))
    servers.append(server)
    return server.start()


def check(data: str, resolver: str, *options: str) -> subprocess.CompletedProcess[str]:
    return courrier(
        "dns", "check", DOMAIN, "--resolver", resolver, *options, "--data", data, env=ENV
    )


def exported(data: str, tmp_path: Path) -> tuple[Path, dns.zone.Zone]:
    path = tmp_path / "example.org.zone"
    done = courrier("dns", "export", DOMAIN, "--output", str(path), "--data", data, env=ENV)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return path, dns.zone.from_text(path.read_text(), relativize=False, check_origin=True)


def zone_records(zone: dns.zone.Zone) -> set[tuple[str, str, str]]:
    return {
        (name.to_text(omit_final_dot=True), dns.rdatatype.to_text(rdataset.rdtype), value(rd))
        for name, rdataset in zone.iterate_rdatasets()
        for rd in rdataset
    }


def test_export_is_the_zone_with_every_intended_record(
    data: str, intended: list[dict[str, Any]], tmp_path: Path
) -> None:
    path, zone = exported(data, tmp_path)
    soa = zone.get_rdataset(DOMAIN + ".", "SOA")
    assert soa is not None
    [serial] = [rd.serial for rd in soa]
    assert zone_records(zone) == {
        (DOMAIN, "SOA", f"{HOST}. hostmaster.{DOMAIN}. {serial} 3600 900 1209600 300"),
        (DOMAIN, "NS", f"{HOST}."),
        (HOST, "A", "192.0.2.25"),
        (HOST, "AAAA", "2001:db8::25"),
        *((r["name"], r["type"], r["value"]) for r in intended),
    }
    text = path.read_text()
    lines = [line for line in text.splitlines() if not line.startswith(";")]
    assert lines[:2] == ["$ORIGIN example.org.", "$TTL 3600"]
    assert lines[2].startswith("@\t3600\tIN\tSOA\tmail.example.org. ")
    # Each record with what it is for, as `courrier domain dns` says it.
    dmarc = next(r for r in intended if r["name"].startswith("_dmarc."))
    assert f"; {dmarc['why']}\n_dmarc\t3600\tIN\tTXT\t" in text
    # BIND accepts it (bind9-utils).
    checked = subprocess.run(
        ["named-checkzone", DOMAIN, str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"loaded serial {serial}" in checked.stdout and checked.stdout.endswith("OK\n")

    # To standard output, the same zone; a newer export has a serial at least as high.
    printed = courrier("dns", "export", DOMAIN, "--data", data, env=ENV)
    assert printed.returncode == 0, printed.stderr
    again = dns.zone.from_text(printed.stdout, relativize=False)
    assert zone_records(again) - zone_records(zone) <= {
        r for r in zone_records(again) if r[1] == "SOA"
    }
    new_soa = again.get_rdataset(DOMAIN + ".", "SOA")
    assert new_soa is not None and new_soa[0].serial >= serial


def test_export_of_a_zone_whose_mail_host_has_no_address(data: str) -> None:
    done = courrier(
        "dns", "export", DOMAIN, "--data", data, env={**ENV, "COURRIER_DNS_HOST_ADDRESSES": ""}
    )
    assert done.returncode == 0
    assert done.stderr.strip() == (
        "courrier: warning: mail.example.org is in the zone but dns.host_addresses is empty, "
        "so the zone has no A/AAAA for it: add them."
    )


def test_check_finds_exactly_what_differs(
    data: str, intended: list[dict[str, Any]], serving: list[ZoneServer]
) -> None:
    imaps = f"_imaps._tcp.{DOMAIN}"
    dmarc = f"_dmarc.{DOMAIN}"
    published = [
        (r["name"], r["type"], r["value"])
        for r in intended
        if r["name"] not in (imaps, dmarc)  # the _imaps SRV left out
    ]
    # Equal in meaning, not in text: names in capitals, an MX without its final dot.
    published = [
        (n, t, "10 MAIL.Example.ORG") if t == "MX" else (n, t, v.upper() if t == "CNAME" else v)
        for n, t, v in published
    ]
    published += [
        (dmarc, "TXT", "v=DMARC1; p=none"),  # another policy
        (DOMAIN, "MX", "20 mx.elsewhere.example."),  # a second MX, to another host
        (DOMAIN, "TXT", "v=spf1 include:_spf.elsewhere.example ~all"),  # a second SPF
        (DOMAIN, "TXT", "google-site-verification=abc123"),  # none of our business
    ]
    resolver = serve(serving, published)

    done = check(data, resolver, "--json")
    assert done.returncode == 1, done.stderr
    assert done.stderr == ""
    findings = json.loads(done.stdout)
    assert all(
        set(f) == {"name", "type", "status", "intended", "published", "fix", "detail"}
        for f in findings
    )
    not_ok = [(f["name"], f["type"], f["status"]) for f in findings if f["status"] != "ok"]
    assert sorted(not_ok) == sorted(
        [
            (imaps, "SRV", "missing"),
            (dmarc, "TXT", "different"),
            (DOMAIN, "MX", "extra"),
            (DOMAIN, "TXT", "extra"),
        ]
    )
    # One finding per intended record, the others ok.
    assert sorted((f["name"], f["type"], f["intended"]) for f in findings if f["intended"]) == (
        sorted((r["name"], r["type"], r["value"]) for r in intended)
    )
    fixes = {(f["name"], f["type"], f["status"]): f["fix"] for f in findings}
    [imaps_record] = [r for r in intended if r["name"] == imaps]
    assert fixes[(imaps, "SRV", "missing")] == (f"{imaps}.\t3600\tIN\tSRV\t{imaps_record['value']}")
    [dmarc_record] = [r for r in intended if r["name"] == dmarc]
    assert fixes[(dmarc, "TXT", "different")] == (
        f'{dmarc}.\t3600\tIN\tTXT\t"{dmarc_record["value"]}"'
    )
    assert fixes[(DOMAIN, "MX", "extra")] == "example.org.\t300\tIN\tMX\t20 mx.elsewhere.example."
    assert fixes[(DOMAIN, "TXT", "extra")] == (
        'example.org.\t300\tIN\tTXT\t"v=spf1 include:_spf.elsewhere.example ~all"'
    )
    different = next(f for f in findings if f["status"] == "different")
    assert (different["intended"], different["published"]) == (
        dmarc_record["value"],
        "v=DMARC1; p=none",
    )

    # The text form: a table, then the lines to publish, replace and remove.
    text = check(data, resolver)
    assert text.returncode == 1
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["STATUS", "NAME", "TYPE", "PUBLISHED"]
    assert f"  publish  {imaps}.\t3600\tIN\tSRV\t{imaps_record['value']}" in lines
    assert f"  replace  {dmarc} TXT v=DMARC1; p=none" in lines
    assert "  remove   example.org.\t300\tIN\tMX\t20 mx.elsewhere.example." in lines
    assert (
        lines[-1]
        == f"4 change(s) to make, 0 record(s) not checked, {len(intended) - 2} as intended."
    )


def test_check_of_the_exported_zone_is_all_ok(
    data: str, intended: list[dict[str, Any]], serving: list[ZoneServer], tmp_path: Path
) -> None:
    _, zone = exported(data, tmp_path)
    resolver = serve(serving, sorted(zone_records(zone)))
    done = check(data, resolver, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    findings = json.loads(done.stdout)
    assert len(findings) == len(intended)
    assert {f["status"] for f in findings} == {"ok"}
    assert all(f["fix"] is None and f["published"] == f["intended"] for f in findings)
    text = check(data, resolver)
    assert text.returncode == 0
    assert text.stdout.splitlines()[-1] == (
        "The DNS publishes every record of example.org as intended."
    )


def test_check_with_no_resolver_answering(data: str, intended: list[dict[str, Any]]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never answering
        done = check(data, f"127.0.0.1:{port}", "--json", "--timeout", "1")
        text = check(data, f"127.0.0.1:{port}", "--timeout", "1")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    findings = json.loads(done.stdout)
    assert len(findings) == len(intended)
    assert {f["status"] for f in findings} == {"error"}
    assert all(f["detail"].startswith("no answer from the DNS: ") for f in findings)
    assert text.returncode == 1 and "Traceback" not in text.stderr
    assert "Not checked, example.org MX: no answer from the DNS" in text.stderr
    assert text.stdout.splitlines()[-1] == (
        f"0 change(s) to make, {len(intended)} record(s) not checked, 0 as intended."
    )


def test_check_of_a_domain_not_hosted(data: str) -> None:
    done = courrier("dns", "check", "nowhere.example", "--data", data, env=ENV)
    assert done.returncode == 2
    assert done.stderr.strip() == "courrier: The domain nowhere.example is not hosted here."
    bad = check(data, "127.0.0.1:dns")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "courrier: --resolver: '127.0.0.1:dns' has a bad port"

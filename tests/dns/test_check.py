"""The comparison of published records with intended ones (courrier.dns.check), sans-IO: TXT
strings joined and read for meaning, names in any case with or without their final dot,
records of one kind paired (different) and the others missing or extra, unrelated TXT left
alone; and the questions asked through a real resolver (courrier.dns.published) of a DNS
stand-in on loopback that fails some of them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT

from courrier import config
from courrier.dns.check import Answer, Finding, Status, compare, questions, same
from courrier.dns.published import ask_all
from courrier.dns.records import Record
from courrier.dns.resolver import make_resolver
from tests.support.spfzone import TIMEOUT, ZoneServer

DOMAIN = "example.org"
SPF = Record(DOMAIN, "TXT", "v=spf1 mx -all", "SPF")
MX = Record(DOMAIN, "MX", "10 mail.example.org.", "MX")
DMARC = Record(
    f"_dmarc.{DOMAIN}",
    "TXT",
    "v=DMARC1; p=quarantine; adkim=s; aspf=s; rua=mailto:postmaster@example.org",
    "DMARC",
)
KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" + "x" * 300 + "IDAQAB"
DKIM = Record(f"rsa1._domainkey.{DOMAIN}", "TXT", f"v=DKIM1; k=rsa; p={KEY}", "DKIM")
IMAPS = Record(f"_imaps._tcp.{DOMAIN}", "SRV", "0 1 993 mail.example.org.", "IMAPS")
AUTOCONFIG = Record(f"autoconfig.{DOMAIN}", "CNAME", "mail.example.org.", "autoconfig")
CAA = Record(DOMAIN, "CAA", '0 issue "letsencrypt.org"', "CAA")


def rdata(rdtype: str, text: str) -> dns.rdata.Rdata:
    return dns.rdata.from_text(dns.rdataclass.IN, rdtype, text)


def txt(*strings: str) -> dns.rdata.Rdata:
    return dns.rdtypes.ANY.TXT.TXT(
        dns.rdataclass.IN, dns.rdatatype.TXT, [s.encode() for s in strings]
    )


def statuses(findings: Sequence[Finding]) -> list[tuple[str, str, str]]:
    return [(f.name, f.type, f.status.value) for f in findings]


def test_txt_strings_are_joined_however_they_are_split() -> None:
    value = DKIM.value
    assert same(DKIM, txt(value[:255], value[255:]))  # as Record.zone_line splits it
    assert same(DKIM, txt(*(value[i : i + 100] for i in range(0, len(value), 100))))
    assert same(SPF, txt("v=spf1 ", "mx -all"))
    assert not same(SPF, txt("v=spf1 mx", "-all"))  # "mx-all": the space was inside a string


def test_names_in_any_case_with_or_without_the_final_dot() -> None:
    assert same(MX, rdata("MX", "10 MAIL.Example.ORG."))
    assert same(
        Record(DOMAIN, "MX", "10 mail.example.org", ""), rdata("MX", "10 mail.example.org.")
    )
    assert same(IMAPS, rdata("SRV", "0 1 993 Mail.Example.Org."))
    assert same(AUTOCONFIG, rdata("CNAME", "MAIL.EXAMPLE.ORG."))
    assert not same(MX, rdata("MX", "20 mail.example.org."))
    assert not same(MX, rdata("MX", "10 mail.example.net."))
    assert not same(IMAPS, rdata("SRV", "0 1 143 mail.example.org."))
    # The record's own name: any case, with a final dot, is asked once, in lower case.
    upper = Record("Example.ORG.", "MX", "10 mail.example.org.", "")
    assert questions([upper, MX, SPF]) == [(DOMAIN, "MX"), (DOMAIN, "TXT")]
    answers = {(DOMAIN, "MX"): Answer((rdata("MX", "10 mail.example.org."),), 300)}
    assert statuses(compare([upper], answers)) == [(DOMAIN, "MX", "ok")]


def test_policy_records_are_read_for_their_meaning() -> None:
    # SPF: runs of spaces and the case of names do not matter; the order of terms does.
    assert same(SPF, txt("v=spf1  MX   -ALL"))
    assert not same(SPF, txt("v=spf1 -all mx"))
    assert not same(SPF, txt("v=spf1 mx ~all"))
    # Tag lists: spaces around tags, a final ";" and the order of the tags do not matter…
    assert same(
        DMARC,
        txt("v=DMARC1;p=quarantine;aspf=s ; adkim=s;rua=mailto:postmaster@example.org;"),
    )
    # …values do.
    assert not same(DMARC, txt(DMARC.value.replace("p=quarantine", "p=none")))
    assert not same(DMARC, txt(DMARC.value.replace("adkim=s", "adkim=r")))
    # A DKIM key may be cut by spaces and leave out its v= (RFC 6376 §3.6.1).
    assert same(DKIM, txt(f"k=rsa; p={KEY[:100]} {KEY[100:200]}", f"\t{KEY[200:]}"))
    assert not same(DKIM, txt("v=DKIM1; k=rsa; p=", KEY[:200], KEY[200:-1]))
    # A TXT record of no known kind must be exactly the same.
    verify = Record(DOMAIN, "TXT", "site-verification=AbC", "")
    assert same(verify, txt("site-verification=", "AbC"))
    assert not same(verify, txt("site-verification=abc"))


def test_pairs_of_a_kind_differ_the_rest_are_missing_or_extra() -> None:
    intended = [MX, SPF, DMARC, IMAPS, AUTOCONFIG]
    answers = {
        # Ours, and a second MX to another host.
        (DOMAIN, "MX"): Answer(
            (rdata("MX", "20 mx.elsewhere.example."), rdata("MX", "10 mail.example.org.")), 300
        ),
        # A second SPF record (a permerror for every check, RFC 7208 §4.5), a verification
        # TXT and a misplaced DMARC record, which are none of our business.
        (DOMAIN, "TXT"): Answer(
            (
                txt("google-site-verification=xyz"),
                txt("v=spf1 mx -all"),
                txt("v=spf1 include:_spf.elsewhere.example ~all"),
                txt("v=DMARC1; p=reject"),
            ),
            600,
        ),
        # The DMARC record with another policy.
        (f"_dmarc.{DOMAIN}", "TXT"): Answer((txt("v=DMARC1; p=none"),), 300),
        (f"_imaps._tcp.{DOMAIN}", "SRV"): Answer(),
        (f"autoconfig.{DOMAIN}", "CNAME"): Answer((rdata("CNAME", "elsewhere.example."),), 60),
    }
    findings = compare(intended, answers)
    assert statuses(findings) == [
        (DOMAIN, "MX", "ok"),
        (DOMAIN, "MX", "extra"),
        (DOMAIN, "TXT", "ok"),
        (DOMAIN, "TXT", "extra"),
        (f"_dmarc.{DOMAIN}", "TXT", "different"),
        (f"_imaps._tcp.{DOMAIN}", "SRV", "missing"),
        (f"autoconfig.{DOMAIN}", "CNAME", "different"),
    ]
    by = {(f.name, f.type, f.status): f for f in findings}
    extra_mx = by[(DOMAIN, "MX", Status.EXTRA)]
    assert extra_mx.as_json() == {
        "name": DOMAIN,
        "type": "MX",
        "status": "extra",
        "intended": None,
        "published": "20 mx.elsewhere.example.",
        "fix": "example.org.\t300\tIN\tMX\t20 mx.elsewhere.example.",
        "detail": "published but not intended",
    }
    extra_spf = by[(DOMAIN, "TXT", Status.EXTRA)]
    assert (
        extra_spf.fix == 'example.org.\t600\tIN\tTXT\t"v=spf1 include:_spf.elsewhere.example ~all"'
    )
    dmarc = by[(f"_dmarc.{DOMAIN}", "TXT", Status.DIFFERENT)]
    assert (dmarc.intended, dmarc.published, dmarc.fix) == (
        DMARC.value,
        "v=DMARC1; p=none",
        DMARC.zone_line(),
    )
    missing = by[(f"_imaps._tcp.{DOMAIN}", "SRV", Status.MISSING)]
    assert (missing.published, missing.fix, missing.detail) == (None, IMAPS.zone_line(), "IMAPS")
    assert by[(DOMAIN, "MX", Status.OK)].fix is None


def test_an_unrelated_txt_is_not_our_record_changed() -> None:
    # Only a verification TXT at the apex: our SPF is missing, not "different".
    answers = {(DOMAIN, "TXT"): Answer((txt("google-site-verification=xyz"),), 300)}
    [finding] = compare([SPF], answers)
    assert (finding.status, finding.published, finding.fix) == (
        Status.MISSING,
        None,
        SPF.zone_line(),
    )
    # Another SPF record alone: ours changed.
    answers = {(DOMAIN, "TXT"): Answer((txt("v=spf1 a -all"),), 300)}
    assert statuses(compare([SPF], answers)) == [(DOMAIN, "TXT", "different")]
    # An admin's record of no known kind is found among the others or missing; the others
    # never pair with it.
    verify = Record(DOMAIN, "TXT", "site-verification=AbC", "an admin's")
    answers = {(DOMAIN, "TXT"): Answer((txt("other=1"), txt("v=spf1 mx -all")), 300)}
    assert statuses(compare([SPF, verify], answers)) == [
        (DOMAIN, "TXT", "ok"),
        (DOMAIN, "TXT", "missing"),
    ]
    answers = {(DOMAIN, "TXT"): Answer((txt("other=1"), txt("site-verification=AbC")), 300)}
    assert statuses(compare([verify], answers)) == [(DOMAIN, "TXT", "ok")]


def test_caa_records_pair_by_property() -> None:
    iodef = rdata("CAA", '0 iodef "mailto:security@example.org"')
    answers = {(DOMAIN, "CAA"): Answer((iodef, rdata("CAA", '0 issue "letsencrypt.org"')), 300)}
    assert statuses(compare([CAA], answers)) == [(DOMAIN, "CAA", "ok")]
    answers = {(DOMAIN, "CAA"): Answer((iodef, rdata("CAA", '0 issue "pki.goog"')), 300)}
    [finding] = compare([CAA], answers)
    assert (finding.status, finding.published) == (Status.DIFFERENT, '0 issue "pki.goog"')


def test_dns_failures_are_reported_per_record() -> None:
    answers = {
        (DOMAIN, "MX"): Answer(error="no answer from the DNS: SERVFAIL"),
        (DOMAIN, "TXT"): Answer((txt("v=spf1 mx -all"),), 300),
    }
    findings = compare([MX, SPF], answers)
    assert statuses(findings) == [(DOMAIN, "MX", "error"), (DOMAIN, "TXT", "ok")]
    assert findings[0].detail == "no answer from the DNS: SERVFAIL"
    assert findings[0].fix is None and findings[0].published is None


async def test_questions_asked_through_the_resolver() -> None:
    zone: dict[str, list[Any]] = {
        DOMAIN: [{"MX": [10, "mail.example.org"]}, {"TXT": ["v=spf1 ", "mx -all"]}],
        f"_dmarc.{DOMAIN}": [TIMEOUT],
        f"_imaps._tcp.{DOMAIN}": [{"SRV": "0 1 993 mail.example.org."}],
        f"autoconfig.{DOMAIN}": [{"CNAME": "mail.example.org"}],
        f"go.{DOMAIN}": [{"CNAME": "there.example.net"}],
        "there.example.net": [{"TXT": "v=spf1 mx -all"}, {"TXT": "v=spf1 -all"}],
        f"rsa1._domainkey.{DOMAIN}": [{"A": "192.0.2.1"}],
    }
    elsewhere = Record(f"go.{DOMAIN}", "TXT", "v=spf1 mx -all", "via a CNAME")
    intended = [MX, SPF, DMARC, IMAPS, AUTOCONFIG, DKIM, elsewhere, CAA]
    server = ZoneServer(zone, failing=[DOMAIN])
    with server.serving() as address:
        settings = config.load(env={}, overrides={"dns.resolvers": [address]})
        answers = await ask_all(make_resolver(settings, timeout=1.0), questions(intended))
    # The apex fails (SERVFAIL): its MX, SPF and CAA are errors; the DMARC name times out.
    assert {q for q, a in answers.items() if a.error} == {
        (DOMAIN, "MX"),
        (DOMAIN, "TXT"),
        (DOMAIN, "CAA"),
        (f"_dmarc.{DOMAIN}", "TXT"),
    }
    assert "SERVFAIL" in answers[(DOMAIN, "MX")].error
    findings = {(f.name, f.type): f for f in compare(intended, answers)}
    assert findings[(f"_imaps._tcp.{DOMAIN}", "SRV")].status is Status.OK
    assert findings[(f"autoconfig.{DOMAIN}", "CNAME")].status is Status.OK
    # Nothing of the type at the name (NODATA) is missing.
    assert findings[(f"rsa1._domainkey.{DOMAIN}", "TXT")].status is Status.MISSING
    # A CNAME the resolver followed: the record to remove is where it led.
    ok, extra = compare([elsewhere], answers)
    assert (ok.status, extra.status) == (Status.OK, Status.EXTRA)
    assert extra.fix == 'there.example.net.\t300\tIN\tTXT\t"v=spf1 -all"'

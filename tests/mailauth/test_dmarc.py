"""DMARC evaluation (RFC 7489): records parsed, identifiers aligned by organizational domain
(the Public Suffix List) or exactly, the subdomain policy, pct sampling, the ARC override of
trusted forwarders, and discovery through the DNS (the From domain's record, then its
organization's)."""

from __future__ import annotations

import pytest

from courrier import config
from courrier.dns.resolver import TempDNSError, make_resolver
from courrier.mailauth.arc import ARCResult
from courrier.mailauth.dkimverify import DKIMResult
from courrier.mailauth.dmarc import (
    DiscoveryError,
    DMARCSyntaxError,
    Policy,
    aligned,
    discover,
    evaluate,
    parse_record,
    report_row,
)
from courrier.mailauth.orgdomain import organizational_domain
from courrier.mailauth.spf import SPFResult
from tests.support.dnsstub import DNSStub

NO_SPF = SPFResult("none", "mailfrom", "", "", "")


def spf(domain: str, result: str = "pass") -> SPFResult:
    return SPFResult(result, "mailfrom", domain, f"a@{domain}", "")


def dkim(domain: str, result: str = "pass") -> DKIMResult:
    return DKIMResult(result, domain, "s1", "rsa-sha256", "@" + domain, 2048)


def policy(text: str, domain: str = "example.org") -> Policy:
    return Policy(domain, parse_record(text))


# -- records ------------------------------------------------------------------------------


def test_a_record_is_parsed_with_its_defaults() -> None:
    r = parse_record("v=DMARC1; p=quarantine; rua=mailto:d@example.org,mailto:x@y.test!10m")
    assert (r.p, r.sp, r.pct, r.adkim, r.aspf, r.fo) == (
        "quarantine",
        "quarantine",
        100,
        "r",
        "r",
        "0",
    )
    assert r.rua == ("mailto:d@example.org", "mailto:x@y.test!10m")
    r = parse_record("v=DMARC1;p=reject;sp=none;pct=20;adkim=s;aspf=s;np=quarantine;t=y;x=1")
    assert (r.p, r.sp, r.pct, r.adkim, r.aspf, r.np, r.testing) == (
        "reject", "none", 20, "s", "s", "quarantine", True,
    )  # fmt: skip


@pytest.mark.parametrize(
    "text",
    ["p=reject; v=DMARC1", "v=DMARC1; p=block", "v=DMARC1; p=none; adkim=x", "v=spf1 -all",
     "v=DMARC1; p=none; pct=half", "v=DMARC1; p"],
)  # fmt: skip
def test_broken_records_are_refused(text: str) -> None:
    with pytest.raises(DMARCSyntaxError):
        parse_record(text)


def test_a_record_without_p_but_with_rua_is_p_none() -> None:
    """RFC 7489 §6.6.3 step 6."""
    assert parse_record("v=DMARC1; rua=mailto:d@example.org").p == "none"


# -- alignment ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "organization"),
    [("mail.example.co.uk", "example.co.uk"), ("a.b.example.org", "example.org"),
     ("example.org", "example.org"), ("co.uk", "co.uk"), ("x.github.io", "x.github.io"),
     ("Mail.Example.COM.", "example.com")],
)  # fmt: skip
def test_organizational_domains_come_from_the_public_suffix_list(
    name: str, organization: str
) -> None:
    assert organizational_domain(name) == organization


def test_relaxed_and_strict_alignment() -> None:
    assert aligned("mail.example.org", "example.org", "r")
    assert not aligned("mail.example.org", "example.org", "s")
    assert aligned("EXAMPLE.org.", "example.org", "s")
    assert not aligned("example.co.uk", "other.co.uk", "r")  # a public suffix is no organization
    assert not aligned("a.github.io", "b.github.io", "r")  # private suffixes count too


def test_either_aligned_pass_is_enough() -> None:
    p = policy("v=DMARC1; p=reject")
    assert evaluate("example.org", p, spf("example.org"), []).result == "pass"
    assert evaluate("example.org", p, NO_SPF, [dkim("example.org")]).dkim_aligned == "example.org"
    # Relaxed: a subdomain's signature aligns; strict: it does not.
    assert evaluate("example.org", p, NO_SPF, [dkim("news.example.org")]).result == "pass"
    strict = policy("v=DMARC1; p=reject; adkim=s; aspf=s")
    failed = evaluate("example.org", strict, spf("bounce.example.org"), [dkim("news.example.org")])
    assert (failed.result, failed.disposition) == ("fail", "reject")


def test_unaligned_or_failed_results_fail() -> None:
    p = policy("v=DMARC1; p=quarantine")
    # A valid signature by another domain (a mailing list, a provider) does not align.
    assert (
        evaluate("example.org", p, spf("provider.test"), [dkim("provider.test")]).result == "fail"
    )
    # An aligned domain whose check failed does not count.
    out = evaluate("example.org", p, spf("example.org", "softfail"), [dkim("example.org", "fail")])
    assert (out.result, out.disposition, out.policy) == ("fail", "quarantine", "quarantine")


def test_no_record_means_no_policy() -> None:
    out = evaluate("example.org", None, NO_SPF, [])
    assert (out.result, out.disposition) == ("none", "none")


def test_a_subdomain_gets_the_subdomain_policy() -> None:
    """sp= applies to mail from a subdomain whose policy came from the organization."""
    p = policy("v=DMARC1; p=reject; sp=quarantine")
    out = evaluate("news.example.org", p, NO_SPF, [])
    assert (out.policy, out.disposition, out.policy_domain) == (
        "quarantine",
        "quarantine",
        "example.org",
    )
    assert evaluate("example.org", p, NO_SPF, []).disposition == "reject"


def test_pct_samples_the_policy() -> None:
    """RFC 7489 §6.6.4: messages not sampled get the next policy down."""
    p = policy("v=DMARC1; p=reject; pct=25")
    sampled = evaluate("example.org", p, NO_SPF, [], sample=0.10)
    assert (sampled.disposition, sampled.reasons) == ("reject", ())
    out = evaluate("example.org", p, NO_SPF, [], sample=0.80)
    assert out.disposition == "quarantine"
    assert out.reasons == (("sampled_out", "pct=25"),)
    q = policy("v=DMARC1; p=quarantine; pct=0")
    assert evaluate("example.org", q, NO_SPF, [], sample=0.0).disposition == "none"
    assert evaluate("example.org", policy("v=DMARC1; p=reject; t=y"), NO_SPF, []).disposition == (
        "quarantine"
    )


def test_a_trusted_forwarders_arc_chain_overrides_a_failure() -> None:
    p = policy("v=DMARC1; p=reject")
    chain = ARCResult("pass", 2, ("example.org", "lists.example.net"), "")
    out = evaluate("example.org", p, NO_SPF, [], arc=chain, trusted_sealers={"lists.example.net"})
    assert (out.result, out.disposition) == ("fail", "none")
    assert out.reasons == (("local_policy", "arc=pass as[2].d=lists.example.net"),)
    # Not trusted, or a broken chain: the policy applies.
    assert evaluate("example.org", p, NO_SPF, [], arc=chain).disposition == "reject"
    broken = ARCResult("fail", 2, chain.sealers, "seal 2 did not verify")
    out = evaluate("example.org", p, NO_SPF, [], arc=broken, trusted_sealers={"lists.example.net"})
    assert out.disposition == "reject"


def test_the_report_row_tells_what_happened() -> None:
    p = policy("v=DMARC1; p=quarantine; rua=mailto:d@example.org")
    results = [dkim("provider.test")]
    out = evaluate("example.org", p, spf("provider.test"), results)
    row = report_row(out, day="2026-11-23", source_ip="192.0.2.1", envelope_from="provider.test",
                     envelope_to="b.test", spf=spf("provider.test"), dkim=results)  # fmt: skip
    assert row is not None
    assert (row.day, row.policy_domain) == ("2026-11-23", "example.org")
    assert (
        '"disposition": "quarantine"' in row.record
        and '"rua": ["mailto:d@example.org"]' in row.policy
    )
    assert report_row(evaluate("x.test", None, NO_SPF, []), day="d", source_ip="", envelope_from="",
                      envelope_to="", spf=NO_SPF, dkim=[]) is None  # fmt: skip


# -- discovery ----------------------------------------------------------------------------


async def lookup(
    records: dict[str, list[str]], domain: str, failing: set[str] | None = None
) -> Policy | None:
    async with DNSStub(records, failing).serving() as resolver:
        settings = config.load(env={}, overrides={"dns.resolvers": [resolver]})
        return await discover(make_resolver(settings, timeout=2), domain)


async def test_discovery_falls_back_on_the_organizational_domain() -> None:
    records = {
        "_dmarc.example.org TXT": ['"v=DMARC1; p=reject"'],
        "_dmarc.own.example.org TXT": ['"v=DMARC1; p=none"'],
        "_dmarc.other.test TXT": ['"some other text"'],
    }
    found = await lookup(records, "news.example.org")
    assert found is not None and (found.domain, found.record.p) == ("example.org", "reject")
    found = await lookup(records, "own.example.org")
    assert found is not None and (found.domain, found.record.p) == ("own.example.org", "none")
    assert await lookup(records, "other.test") is None


async def test_discovery_errors() -> None:
    with pytest.raises(DiscoveryError):
        await lookup({"_dmarc.example.org TXT": ['"v=DMARC1; p=maybe"']}, "example.org")
    two = {"_dmarc.example.org TXT": ['"v=DMARC1; p=reject"', '"v=DMARC1; p=none"']}
    assert await lookup(two, "example.org") is None  # §6.6.3: several records, no policy
    with pytest.raises(TempDNSError):
        await lookup({}, "example.org", failing={"_dmarc.example.org"})

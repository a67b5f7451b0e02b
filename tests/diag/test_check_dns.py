"""`courrier check` on the DNS side, against loopback stand-ins: a good domain (nothing to fix)
and domains each with one planted fault — MX to a CNAME, SPF with 11 lookups, a weak DKIM key,
a DMARC typo, an MTA-STS policy that does not name the MX, a block-listed MX address, an MX
address without reverse DNS, ``+all`` — each reported with the right severity and a fix, and
nothing else. The SMTP side is in test_check_smtp.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import jsonschema
import pytest

from courrier import config
from courrier.diag.domaincheck import CheckOptions, check_domain
from courrier.diag.findings import Report, Severity, schema
from courrier.dns.resolver import make_resolver
from tests.diag.standins import (
    DNSBL,
    Domain,
    HTTPSServer,
    dkim_value,
    merged,
    reverse,
    sts_policy,
)
from tests.support.pki import Authority
from tests.support.spfzone import ZoneServer


def _cname(d: Domain) -> Domain:
    d.set(d.name, {"MX": [10, f"alias.{d.name}"]}, d.zone[d.name][1])
    d.set(f"alias.{d.name}", {"CNAME": d.mx_host})
    d.policy = sts_policy(f"alias.{d.name}")
    return d


def _spf11(d: Domain) -> Domain:
    includes = [f"i{n}.{d.name}" for n in range(10)]
    d.set(
        d.name,
        d.zone[d.name][0],
        {"TXT": "v=spf1 mx " + " ".join(f"include:{i}" for i in includes) + " -all"},
    )
    for n, include in enumerate(includes):
        d.set(include, {"TXT": f"v=spf1 ip4:192.0.2.{n} -all"})
    return d


def _spf(d: Domain, record: str) -> Domain:
    return d.set(d.name, d.zone[d.name][0], {"TXT": record})


def _ip_literal(d: Domain) -> Domain:
    d.set(d.name, {"MX": [10, d.address]}, {"TXT": "v=spf1 include:_spf.provider.test -all"})
    d.policy = sts_policy(d.address)
    return d


_WEAK = dkim_value(1024)

#: name → (how to plant the fault, the findings it must give: (check, severity)).
PLANTED: dict[str, tuple[Callable[[Domain], Domain], set[tuple[str, str]]]] = {
    "cname": (_cname, {("mx.cname", "warning")}),
    "spf11": (_spf11, {("spf.lookups", "error")}),
    "weakdkim": (
        lambda d: d.set(f"sel1._domainkey.{d.name}", {"TXT": _WEAK}),
        {("dkim.key", "warning")},
    ),
    "dmarctypo": (
        lambda d: d.set(
            f"_dmarc.{d.name}", {"TXT": f"v=DMARC1; p=qurantine; rua=mailto:dmarc@{d.name}"}
        ),
        {("dmarc.syntax", "error")},
    ),
    "stsmismatch": (
        lambda d: setattr(d, "policy", sts_policy("mx.elsewhere.test")) or d,
        {("mta-sts.mx", "error")},
    ),
    "listed": (
        lambda d: d.set(
            f"{reverse(d.address).removesuffix('.in-addr.arpa')}.{DNSBL}",
            {"A": "127.0.0.2"},
            {"TXT": "Listed for sending spam, see https://bl.test/"},
        ),
        {("dnsbl.listed", "error")},
    ),
    "noptr": (lambda d: d.set(reverse(d.address)), {("ptr.present", "warning")}),
    "plusall": (lambda d: _spf(d, "v=spf1 mx +all"), {("spf.all", "error")}),
    "voidspf": (
        lambda d: _spf(d, "v=spf1 mx a:gone1.test a:gone2.test a:gone3.test -all"),
        {("spf.void-lookups", "error")},
    ),
    "noinclude": (
        lambda d: _spf(d, "v=spf1 mx include:_spf.good.test -all"),
        {("spf.include", "error")},
    ),
    "ptrspf": (lambda d: _spf(d, "v=spf1 mx ptr -all"), {("spf.ptr", "warning")}),
    "ipliteral": (_ip_literal, {("mx.ip-literal", "error")}),
    "dkimtesting": (
        lambda d: d.set(
            f"sel1._domainkey.{d.name}",
            {"TXT": ["v=DKIM1; t=y; ", *d.zone[f"sel1._domainkey.{d.name}"][0]["TXT"]]},
        ),
        {("dkim.testing", "warning")},
    ),
    "dmarcnone": (
        lambda d: d.set(f"_dmarc.{d.name}", {"TXT": f"v=DMARC1; p=none; rua=mailto:d@{d.name}"}),
        {("dmarc.policy", "warning")},
    ),
    "externalrua": (
        lambda d: d.set(
            f"_dmarc.{d.name}", {"TXT": "v=DMARC1; p=reject; rua=mailto:agg@reports.test"}
        ),
        {("dmarc.report-auth", "warning")},
    ),
    "nopolicy": (lambda d: setattr(d, "policy", "") or d, {("mta-sts.policy", "error")}),
    "shortmaxage": (
        lambda d: setattr(d, "policy", sts_policy(d.mx_host, max_age=3600)) or d,
        {("mta-sts.max-age", "warning")},
    ),
    "badtlsrpt": (
        lambda d: d.set(f"_smtp._tls.{d.name}", {"TXT": f"v=TLSRPTv1; rua=tls@{d.name}"}),
        {("tls-rpt.record", "error")},
    ),
    # Nothing to fix: a domain that takes no mail, and a block list refusing to answer.
    "nullmx": (lambda d: d.set(d.name, {"MX": [0, "."]}, {"TXT": "v=spf1 -all"}), set()),
    "blrefused": (
        lambda d: d.set(
            f"{reverse(d.address).removesuffix('.in-addr.arpa')}.{DNSBL}", {"A": "127.255.255.254"}
        ),
        set(),
    ),
}


def domains() -> list[Domain]:
    good = Domain("good.test", "127.0.0.30")
    broken = [
        plant(Domain(f"{name}.test", f"127.0.0.{31 + i}"))
        for i, (name, (plant, _)) in enumerate(PLANTED.items())
    ]
    return [good, *broken]


@contextlib.asynccontextmanager
async def lab(tmp_path: Path) -> AsyncIterator[tuple[str, int, str]]:
    """The stand-ins running: (resolver, https port, CA file)."""
    every = domains()
    authority = Authority()
    ca_file = str(authority.write_root(tmp_path / "ca.pem"))
    server = HTTPSServer({d.name: d.policy for d in every if d.policy})
    issued = authority.issue(*(f"mta-sts.{d.name}" for d in every))
    async with server.serving(issued, tmp_path / "https") as port:
        good = every[0]
        good.set(
            f"default._bimi.{good.name}",
            {"TXT": f"v=BIMI1; l=https://mta-sts.{good.name}:{port}/logo.svg"},
        )
        with ZoneServer(merged(*every)).serving() as resolver:
            yield resolver, port, ca_file


def options(port: int, ca_file: str) -> CheckOptions:
    return CheckOptions(
        https_port=port,
        ca_file=ca_file,
        timeout=5.0,
        selectors=("sel1",),
        dnsbls=(DNSBL,),
        smtp=False,
        allow_private=True,
    )


async def run_check(resolver: str, domain: str, port: int, ca_file: str) -> Report:
    settings = config.load(None, overrides={"dns.resolvers": [resolver]})
    return await check_domain(make_resolver(settings, timeout=5.0), domain, options(port, ca_file))


def bad(report: Report) -> set[tuple[str, str]]:
    return {(f.check, str(f.severity)) for f in report.findings if f.severity >= Severity.WARNING}


async def test_good_domain_has_nothing_to_fix(tmp_path: Path) -> None:
    async with lab(tmp_path) as (resolver, port, ca_file):
        report = await run_check(resolver, "good.test", port, ca_file)
    assert bad(report) == set(), report.text()
    checks = {f.check: f for f in report.findings}
    # What was looked at and found right, not merely nothing found.
    for check in (
        "mx.records", "mx.address", "mx.cname", "spf.record", "spf.lookups", "spf.all",
        "dkim.key", "dmarc.record", "dmarc.policy", "mta-sts.record", "mta-sts.policy",
        "mta-sts.mx", "tls-rpt.record", "bimi.record", "bimi.logo", "ptr.fcrdns",
        "dnsbl.listed",
    ):  # fmt: skip
        assert checks[check].severity is Severity.OK, (check, report.text())
    assert checks["spf.lookups"].data["lookups"] == 2  # mx + include
    assert checks["dkim.key"].data["bits"] == 2048
    assert report.exit_code == 0


@pytest.mark.parametrize("name", list(PLANTED))
async def test_planted_fault_is_the_only_finding(tmp_path: Path, name: str) -> None:
    async with lab(tmp_path) as (resolver, port, ca_file):
        report = await run_check(resolver, f"{name}.test", port, ca_file)
    planted = PLANTED[name][1]
    assert bad(report) == planted, report.text()
    for f in report.findings:
        if f.severity >= Severity.WARNING:
            assert f.why and f.fix, f
    assert report.exit_code == (1 if planted else 0)


async def test_spf_tree_lists_every_include(tmp_path: Path) -> None:
    async with lab(tmp_path) as (resolver, port, ca_file):
        report = await run_check(resolver, "spf11.test", port, ca_file)
    lookups = next(f for f in report.findings if f.check == "spf.lookups")
    assert lookups.data["lookups"] == 11
    tree = lookups.data["tree"]
    assert [c["domain"] for c in tree["includes"]] == [f"i{n}.spf11.test" for n in range(10)]
    assert "Remove includes" in lookups.fix
    assert "i9.spf11.test: v=spf1 ip4:192.0.2.9 -all" in report.text()


async def run_cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "courrier", "check", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COURRIER_SERVER_HOSTNAME": "checker.test"},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_cli_json_follows_the_documented_schema(tmp_path: Path) -> None:
    async with lab(tmp_path) as (resolver, port, ca_file):
        common = [
            "--resolver", resolver, "--https-port", str(port), "--ca-file", ca_file,
            "--selector", "sel1", "--dnsbl", DNSBL, "--no-smtp", "--allow-private",
            "--data", str(tmp_path / "data"),
        ]  # fmt: skip
        good = await run_cli("good.test", "--json", *common)
        broken = await run_cli("dmarctypo.test", "--json", *common)
        text = await run_cli("dmarctypo.test", *common)
    assert good[0] == 0, good
    assert broken[0] == 1, broken
    for _, out, _ in (good, broken):
        jsonschema.validate(json.loads(out), schema())
    found = json.loads(broken[1])
    assert found["worst"] == "error"
    typo = [f for f in found["findings"] if f["check"] == "dmarc.syntax"]
    assert "qurantine" in typo[0]["seen"]
    assert text[0] == 1
    assert "[FAIL] _dmarc.dmarctypo.test: p='qurantine' is not none" in text[1]
    assert "fix: Correct the record" in text[1]


async def test_cli_refuses_what_is_not_a_domain() -> None:
    code, _, err = await run_cli("not a domain")
    assert code == 2
    assert "is not a domain name" in err and "Traceback" not in err


async def test_domain_that_does_not_exist_is_one_error(tmp_path: Path) -> None:
    async with lab(tmp_path) as (resolver, port, ca_file):
        report = await run_check(resolver, "nowhere.test", port, ca_file)
    assert [(f.check, str(f.severity)) for f in report.findings] == [("domain.exists", "error")]

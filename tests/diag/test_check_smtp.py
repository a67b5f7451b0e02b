"""`courrier check` on the SMTP side: each MX host probed as a sender meets it. A real courrier
MX (certificate of a test CA naming it, TLSA record matching it under a "signed" zone) has
nothing to fix; deliberately bad servers (tests.support.badsmtp) each show their one fault —
no STARTTLS, expired, self-signed or misnamed certificate, open relay, a greeting naming no
host, a refusing greeting, a silent server, nothing listening, a TLSA record that does not
match — with the right severity and nothing else. The relay probe never sends DATA."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from courrier import config
from courrier.diag.domaincheck import CheckOptions, check_domain
from courrier.diag.findings import Report, Severity
from courrier.dns.resolver import make_resolver
from courrier.security.certificates import generate_self_signed
from tests.diag.standins import DNSBL, Domain, HTTPSServer, merged
from tests.support.badsmtp import BadSMTP
from tests.support.pki import Authority
from tests.support.server import start_server
from tests.support.spfzone import ZoneServer

GOOD_ADDRESS = "127.0.0.50"


@dataclass
class Case:
    """A domain whose MX is a bad server made by ``server`` (None: courrier itself), the
    faults it must show, and whether its zone keeps its MTA-STS policy (enforce)."""

    server: Callable[[str, Authority, Path], BadSMTP] | None
    faults: set[tuple[str, str]]
    mta_sts: bool = False
    tlsa: str = ""


def _issued(authority: Authority, tmp: Path, host: str, **kw: bool) -> tuple[Path, Path]:
    return authority.issue(host, **kw).write(tmp, host)


def _self_signed(_: Authority, tmp: Path, host: str) -> tuple[Path, Path]:
    cert, key = tmp / f"{host}.self.pem", tmp / f"{host}.self.key"
    generate_self_signed(host, cert, key)
    return cert, key


CASES: dict[str, Case] = {
    "smtpgood": Case(None, set(), mta_sts=True, tlsa="good"),
    "nostarttls": Case(lambda h, a, t: BadSMTP(h), {("smtp.starttls", "error")}),
    "expired": Case(
        lambda h, a, t: BadSMTP(h, _issued(a, t, h, expired=True)),
        {("smtp.certificate-expiry", "error")},
    ),
    "stsexpired": Case(
        lambda h, a, t: BadSMTP(h, _issued(a, t, h, expired=True)),
        {("smtp.certificate-expiry", "error"), ("mta-sts.certificate", "error")},
        mta_sts=True,
    ),
    "selfsigned": Case(
        lambda h, a, t: BadSMTP(h, _self_signed(a, t, h)), {("smtp.certificate-chain", "warning")}
    ),
    "wrongname": Case(
        lambda h, a, t: BadSMTP(h, _issued(a, t, "mail.elsewhere.test")),
        {("smtp.certificate-name", "warning")},
    ),
    "openrelay": Case(
        lambda h, a, t: BadSMTP(h, _issued(a, t, h), open_relay=True),
        {("smtp.open-relay", "error")},
    ),
    "badbanner": Case(
        lambda h, a, t: BadSMTP(h, _issued(a, t, h), banner="localhost ESMTP"),
        {("smtp.banner", "warning"), ("ptr.banner", "warning")},
    ),
    "refusing": Case(
        lambda h, a, t: BadSMTP(h, greeting_code=554, banner="5.7.1 go away"),
        {("smtp.banner", "error")},
    ),
    "silent": Case(lambda h, a, t: BadSMTP(h, greeting_code=0), {("smtp.connect", "error")}),
    "closed": Case(lambda h, a, t: None, {("smtp.connect", "error")}),  # type: ignore[arg-type,return-value]
    "nohelo": Case(
        lambda h, a, t: BadSMTP(h, ehlo=False),
        {("smtp.ehlo", "warning"), ("smtp.starttls", "error")},
    ),
    "danemismatch": Case(
        lambda h, a, t: BadSMTP(h, _issued(a, t, h)), {("dane.match", "error")}, tlsa="wrong"
    ),
}


def free_port(addresses: list[str]) -> int:
    for port in range(31000, 60000, 7):
        try:
            for address in addresses:
                with socket.socket() as s:
                    s.bind((address, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


@dataclass
class SMTPLab:
    resolver: str
    options: CheckOptions
    servers: dict[str, BadSMTP]


@contextlib.asynccontextmanager
async def smtp_lab(tmp_path: Path) -> AsyncIterator[SMTPLab]:
    authority = Authority()
    ca_file = str(authority.write_root(tmp_path / "ca.pem"))
    names = list(CASES)
    addresses = {n: GOOD_ADDRESS if CASES[n].server is None else f"127.0.0.{51 + i}"
                 for i, n in enumerate(names)}  # fmt: skip
    port = free_port(sorted(set(addresses.values())))
    domains = {n: Domain(f"{n}.test", addresses[n]) for n in names}
    good_cert = authority.issue(*(d.mx_host for n, d in domains.items() if CASES[n].server is None))
    for name, case in CASES.items():
        d = domains[name]
        if not case.mta_sts:
            d.set(f"_mta-sts.{d.name}")
        if case.tlsa:
            record = good_cert.tlsa(3, 1, 1) if case.tlsa == "good" else "3 1 1 " + "5a" * 32
            d.set(f"_25._tcp.{d.mx_host}", {"TLSA": record})
    servers: dict[str, BadSMTP] = {}
    cert, key = good_cert.write(tmp_path / "good", "mx")
    async with contextlib.AsyncExitStack() as stack:
        for name, case in CASES.items():
            made = case.server(domains[name].mx_host, authority, tmp_path) if case.server else None
            if made is not None:
                servers[name] = made
                await stack.enter_async_context(made.serving(addresses[name], port))
        await stack.enter_async_context(
            start_server(
                tmp_path / "data",
                **{
                    "server.listen": [GOOD_ADDRESS],
                    "server.hostname": domains["smtpgood"].mx_host,
                    "listeners.smtp.port": port,
                    "tls.cert_file": str(cert),
                    "tls.key_file": str(key),
                },
            )
        )
        https = HTTPSServer({d.name: d.policy for d in domains.values()})
        issued = authority.issue(*(f"mta-sts.{d.name}" for d in domains.values()))
        https_port = await stack.enter_async_context(https.serving(issued, tmp_path / "https"))
        zone = ZoneServer(merged(*domains.values()), signed=[d.name for d in domains.values()])
        resolver = stack.enter_context(zone.serving())
        options = CheckOptions(
            smtp_port=port, https_port=https_port, ca_file=ca_file, timeout=3.0,
            selectors=("sel1",), dnsbls=(DNSBL,), helo="checker.test", allow_private=True,
        )  # fmt: skip
        yield SMTPLab(resolver, options, servers)


async def run(lab: SMTPLab, domain: str) -> Report:
    settings = config.load(None, overrides={"dns.resolvers": [lab.resolver]})
    return await check_domain(make_resolver(settings, timeout=3.0), domain, lab.options)


def bad(report: Report) -> set[tuple[str, str]]:
    return {(f.check, str(f.severity)) for f in report.findings if f.severity >= Severity.WARNING}


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[SMTPLab]:
    async with smtp_lab(tmp_path) as started:
        yield started


async def test_courrier_mx_has_nothing_to_fix(lab: SMTPLab) -> None:
    report = await run(lab, "smtpgood.test")
    assert bad(report) == set(), report.text()
    found = {f.check: f for f in report.findings}
    for check in (
        "smtp.banner", "smtp.ehlo", "smtp.starttls", "smtp.tls-version", "smtp.certificate-name",
        "smtp.certificate-chain", "smtp.open-relay", "dane.match", "ptr.banner", "dnssec.signed",
    ):  # fmt: skip
        assert found[check].severity is Severity.OK, (check, report.text())
    assert "STARTTLS" in found["smtp.ehlo"].data["extensions"]
    assert found["smtp.tls-version"].data["version"] in ("TLSv1.2", "TLSv1.3")
    assert found["smtp.certificate-expiry"].data["days_left"] >= 28
    assert "connect and greeting" in found["smtp.timing"].seen


@pytest.mark.parametrize("name", [n for n in CASES if n != "smtpgood"])
async def test_bad_server_shows_its_fault_only(lab: SMTPLab, name: str) -> None:
    report = await run(lab, f"{name}.test")
    assert bad(report) == CASES[name].faults, report.text()
    for f in report.findings:
        if f.severity >= Severity.WARNING:
            assert f.why and f.fix, f
    server = lab.servers.get(name)
    if server is not None:
        assert not any(c.upper().startswith("DATA") for c in server.commands), server.commands


async def test_relay_probe_stops_before_data(lab: SMTPLab) -> None:
    await run(lab, "openrelay.test")
    commands = lab.servers["openrelay"].commands
    verbs = [c.split(" ", 1)[0].upper() for c in commands]
    assert verbs == ["EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "RSET", "QUIT"], commands
    assert "example.com" in commands[4] and "openrelay.test" not in commands[4]

"""The SMTP and TLS probe of one MX address, as a sender meets it (MXToolbox's SMTP test).

One connection, through the queue's SMTP client (:mod:`courrier.smtp.client`): the greeting
and the host name it announces (RFC 5321 §4.3.1, §4.1.3), EHLO and the extensions offered
(§4.1.1.1), STARTTLS (RFC 3207) — the handshake accepts any certificate, as opportunistic
senders do (RFC 7435), and the certificate is judged here: its dates, whether it names the MX
host (RFC 6125 §6.4: a wildcard stands for one whole left-most label) and whether it chains to
a trusted root — then the open-relay probe: ``MAIL FROM`` and ``RCPT TO`` addresses of other
domains; an accepted ``RCPT`` means anyone can relay through the host (RFC 5321 §3.6.2 and
§7.1). No ``DATA`` is ever sent: the probe ends with ``RSET`` and ``QUIT``.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import ssl
import time
import warnings
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from courrier.diag.findings import Finding, error, info, ok, warning
from courrier.smtp.client import SMTPClient, SMTPClientError, TLSFailed
from courrier.smtp.client_proto import TIMEOUTS

__all__ = ["ProbeResult", "probe"]

_G = "smtp"
#: The relay probe's addresses: domains reserved for examples (RFC 2606), never ours.
RELAY_FROM = "courrier-relay-probe@example.net"
RELAY_TO = "courrier-relay-probe@example.com"
_OLD_TLS = ("SSLv3", "TLSv1", "TLSv1.1")


@dataclass
class ProbeResult:
    host: str
    address: str
    findings: list[Finding]
    #: A 220 greeting was received.
    reachable: bool
    #: The host name the greeting announced (its first word), if any.
    banner_host: str | None
    #: The certificates presented over STARTTLS (DER, leaf first); empty without TLS.
    chain: list[bytes] = field(default_factory=list)


@dataclass
class _Probe:
    host: str
    address: str
    subject: str
    findings: list[Finding] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.timings[name] = round((now - self.started) * 1000, 1)
        self.started = now


async def probe(
    host: str,
    address: str,
    *,
    port: int = 25,
    seconds: float = 10.0,
    helo: str,
    ca_file: str = "",
    relay_test: bool = True,
) -> ProbeResult:
    """Probe ``address`` (one of MX ``host``'s) on ``port``; never raises for what the server
    does. ``seconds`` bounds each step."""
    p = _Probe(host, address, f"{host} [{address}]")
    result = ProbeResult(host, address, p.findings, False, None)
    try:
        client = await SMTPClient.connect(
            address, port, local_name=helo, connect_timeout=seconds,
            timeouts=dict.fromkeys(TIMEOUTS, seconds),
        )  # fmt: skip
    except SMTPClientError as exc:
        p.findings.append(_unreachable(p, port, exc))
        return result
    p.lap("connect_and_greeting_ms")
    result.reachable = True
    try:
        result.banner_host = _banner(p, client)
        await _session(p, client, result, ca_file, relay_test)
    except SMTPClientError as exc:
        p.findings.append(
            error(
                _G,
                "smtp.session",
                p.subject,
                f"the conversation broke off: {exc}",
                "Senders meeting this retry later and, after days, bounce the mail.",
                "Look at the server's log for this connection.",
            )
        )
    finally:
        await client.quit()
    p.findings.append(info(_G, "smtp.timing", p.subject, _timing_text(p.timings), "", **p.timings))
    return result


def _timing_text(timings: dict[str, float]) -> str:
    return ", ".join(
        f"{k.removesuffix('_ms').replace('_', ' ')} {v:.0f} ms" for k, v in timings.items()
    )


def _unreachable(p: _Probe, port: int, exc: SMTPClientError) -> Finding:
    if exc.reply is not None:
        return error(
            _G,
            "smtp.banner",
            p.subject,
            f"the server refuses connections: {exc.reply}",
            "RFC 5321 §3.1: a greeting other than 220 turns every sender away.",
            "Let the server greet with 220; check its connection limits and block lists.",
        )
    return error(
        _G,
        "smtp.connect",
        p.subject,
        f"port {port} unreachable: {exc}",
        "Other servers cannot deliver here: mail waits in their queues, then bounces.",
        f"Open TCP port {port} to the Internet in the firewall, check that the mail server "
        "listens on this address, and that the provider does not block port 25.",
    )


def _banner(p: _Probe, client: SMTPClient) -> str | None:
    greeting = client.greeting
    assert greeting is not None
    words = greeting.lines[0].split() if greeting.lines else []
    name = words[0].rstrip(".").lower() if words else None
    text = f"220 {greeting.lines[0] if greeting.lines else ''}".strip()
    if name is None or not _is_fqdn(name):
        p.findings.append(
            warning(
                _G,
                "smtp.banner",
                p.subject,
                f"the greeting does not name the host: {text}",
                "RFC 5321 §4.3.1: the greeting starts with the server's fully-qualified "
                "name; receivers compare it with its reverse DNS.",
                f"Set the server's host name to its public name ({p.host}); in courrier "
                "server.hostname.",
            )
        )
    elif name != p.host:
        p.findings.append(
            info(
                _G,
                "smtp.banner",
                p.subject,
                f"{text} (names {name}, not the MX {p.host})",
                "Common with shared mail hosting; what matters is that the name matches the "
                "reverse DNS of the address.",
            )
        )
    else:
        p.findings.append(ok(_G, "smtp.banner", p.subject, text))
    return name


def _is_fqdn(name: str) -> bool:
    if name.startswith("[") or name == "localhost" or "." not in name:
        return False
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return True
    return False


async def _session(
    p: _Probe, client: SMTPClient, result: ProbeResult, ca_file: str, relay_test: bool
) -> None:
    extensions = await client.hello()
    p.lap("ehlo_ms")
    if not extensions.keywords:
        p.findings.append(
            warning(
                _G,
                "smtp.ehlo",
                p.subject,
                "EHLO refused; only HELO works",
                "Without ESMTP (RFC 5321 §4.1.1.1) there is no STARTTLS, SIZE or 8BITMIME: "
                "mail travels in clear text.",
                "Enable ESMTP in the mail server.",
            )
        )
    else:
        offered = " ".join(f"{k} {v}".strip() for k, v in sorted(extensions.keywords.items()))
        p.findings.append(
            ok(
                _G,
                "smtp.ehlo",
                p.subject,
                f"EHLO accepted: {offered}",
                extensions=dict(extensions.keywords),
            )
        )
    if "STARTTLS" not in extensions:
        p.findings.append(
            error(
                _G,
                "smtp.starttls",
                p.subject,
                "STARTTLS is not offered",
                "Mail to this host travels in clear text: anyone on the path can read it, "
                "and senders with MTA-STS or DANE refuse to deliver.",
                "Give the mail server a certificate and enable STARTTLS (RFC 3207).",
            )
        )
    else:
        try:
            await client.starttls(_any_certificate(), p.host)
        except TLSFailed as exc:
            p.findings.append(
                error(
                    _G,
                    "smtp.starttls",
                    p.subject,
                    f"STARTTLS fails: {exc}",
                    "Senders that try TLS and fail may not retry in clear text: mail is "
                    "deferred, then bounced.",
                    "Check the server's certificate and key files and its TLS settings.",
                )
            )
            return  # the connection is unusable after a failed handshake
        p.lap("starttls_ms")
        p.findings.append(ok(_G, "smtp.starttls", p.subject, "STARTTLS offered and working"))
        result.chain = client.peer_chain()
        p.findings += _tls(p, client, result.chain, ca_file)
    if relay_test:
        p.findings.append(await _relay(p, client))


def _any_certificate() -> ssl.SSLContext:
    """Opportunistic TLS (RFC 7435 §4): any certificate, judged afterwards."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _tls(p: _Probe, client: SMTPClient, chain: list[bytes], ca_file: str) -> list[Finding]:
    version, cipher = client.tls_session() or ("", "")
    found: list[Finding] = []
    if version in _OLD_TLS:
        found.append(
            warning(
                _G,
                "smtp.tls-version",
                p.subject,
                f"{version} with {cipher}",
                "RFC 8996: TLS 1.0 and 1.1 are deprecated; modern senders refuse them.",
                "Allow TLS 1.2 and 1.3 in the server's TLS settings.",
            )
        )
    else:
        found.append(
            ok(
                _G,
                "smtp.tls-version",
                p.subject,
                f"{version} with {cipher}",
                version=version,
                cipher=cipher,
            )
        )
    if not chain:
        return found
    try:
        certs = [x509.load_der_x509_certificate(der) for der in chain]
    except ValueError as exc:
        found.append(
            error(
                _G,
                "smtp.certificate-chain",
                p.subject,
                f"unreadable certificate: {exc}",
                "Senders that check certificates cannot read this one.",
                "Install a valid certificate chain.",
            )
        )
        return found
    leaf = certs[0]
    facts: dict[str, object] = {
        "subject": leaf.subject.rfc4514_string(),
        "issuer": leaf.issuer.rfc4514_string(),
        "not_after": leaf.not_valid_after_utc.isoformat(),
        "names": _names(leaf),
    }
    found.append(_expiry(p, leaf, facts))
    found.append(_name(p, leaf, facts))
    found.append(_trust(p, certs, ca_file, facts))
    return found


def _expiry(p: _Probe, leaf: x509.Certificate, facts: dict[str, object]) -> Finding:
    left = leaf.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    days = left.days
    date = leaf.not_valid_after_utc.date().isoformat()
    if left.total_seconds() <= 0:
        return error(
            _G,
            "smtp.certificate-expiry",
            p.subject,
            f"the certificate expired on {date}",
            "Senders that check certificates (MTA-STS, DANE-TA, REQUIRETLS) refuse to "
            "deliver, and the others see a broken set-up.",
            "Renew the certificate (an ACME client such as certbot renews it by itself).",
            days_left=days,
            **facts,
        )
    if days < 14:
        return warning(
            _G,
            "smtp.certificate-expiry",
            p.subject,
            f"the certificate expires in {days} days ({date})",
            "Once expired, senders that check certificates stop delivering.",
            "Renew it now, and automate renewal.",
            days_left=days,
            **facts,
        )
    if days < 30:
        return info(
            _G,
            "smtp.certificate-expiry",
            p.subject,
            f"the certificate expires in {days} days ({date})",
            "Renewal is usually done 30 days ahead; check that it happens.",
            days_left=days,
            **facts,
        )
    return ok(
        _G,
        "smtp.certificate-expiry",
        p.subject,
        f"valid for {days} more days ({date})",
        days_left=days,
        **facts,
    )


def _names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [n.lower() for n in san.get_values_for_type(x509.DNSName)]


def _matches(pattern: str, host: str) -> bool:
    """RFC 6125 §6.4.3: ``*.example.com`` covers one left-most label, nothing more."""
    if pattern.startswith("*."):
        first, dot, rest = host.partition(".")
        return bool(first) and bool(dot) and rest == pattern[2:]
    return pattern == host


def _name(p: _Probe, leaf: x509.Certificate, facts: dict[str, object]) -> Finding:
    names = _names(leaf)
    if any(_matches(n, p.host) for n in names):
        return ok(
            _G, "smtp.certificate-name", p.subject, f"the certificate names {p.host}", **facts
        )
    return warning(
        _G,
        "smtp.certificate-name",
        p.subject,
        f"the certificate does not name {p.host} (it names {', '.join(names) or 'nothing'})",
        "RFC 6125: senders that check certificates (MTA-STS, REQUIRETLS, DANE-TA) refuse a "
        "certificate for another name.",
        f"Get a certificate whose names include {p.host}.",
        **facts,
    )


@cache
def _system_roots() -> tuple[x509.Certificate, ...]:
    path = ssl.get_default_verify_paths().cafile
    if not path:
        return ()
    try:
        with warnings.catch_warnings():  # old roots with negative serial numbers
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            return tuple(x509.load_pem_x509_certificates(Path(path).read_bytes()))
    except (OSError, ValueError):
        return ()


def _roots(ca_file: str) -> list[x509.Certificate]:
    roots = list(_system_roots())
    if ca_file:
        with contextlib.suppress(OSError, ValueError):
            roots += x509.load_pem_x509_certificates(Path(ca_file).read_bytes())
    return roots


def _trust(
    p: _Probe, certs: list[x509.Certificate], ca_file: str, facts: dict[str, object]
) -> Finding:
    leaf = certs[0]
    roots = _roots(ca_file)
    # Judged for the chain alone: at a moment the leaf was valid, for a name it holds (the
    # dates and the MX name have findings of their own).
    moment = min(datetime.datetime.now(datetime.UTC), leaf.not_valid_after_utc)
    names = _names(leaf)
    problem = "the certificate names no host" if not names else ""
    if not problem and roots:
        target = names[0].removeprefix("*.")
        try:
            verifier = (
                PolicyBuilder().store(Store(roots)).time(moment)
                .build_server_verifier(x509.DNSName(target))
            )  # fmt: skip
            verifier.verify(leaf, certs[1:])
        except (VerificationError, ValueError) as exc:
            problem = str(exc)
    elif not roots:
        problem = "no trusted root certificates on this system"
    if problem:
        self_signed = leaf.issuer == leaf.subject
        seen = (
            "the certificate is self-signed"
            if self_signed
            else (f"the certificate does not chain to a trusted root ({problem})")
        )
        return warning(
            _G,
            "smtp.certificate-chain",
            p.subject,
            seen,
            "Most senders accept it for opportunistic TLS, but those that check "
            "certificates (MTA-STS, DANE-TA, REQUIRETLS) refuse to deliver.",
            "Use a certificate from a public CA (Let's Encrypt), and send the intermediate "
            "certificates with it.",
            **facts,
        )
    return ok(
        _G,
        "smtp.certificate-chain",
        p.subject,
        f"issued by {leaf.issuer.rfc4514_string()}, chain trusted",
        **facts,
    )


async def _relay(p: _Probe, client: SMTPClient) -> Finding:
    mail = await client.command(f"MAIL FROM:<{RELAY_FROM}>", "mail")
    rcpt = await client.command(f"RCPT TO:<{RELAY_TO}>", "rcpt") if mail.positive else None
    await client.command("RSET", "command")  # never DATA: no message is sent
    if rcpt is not None and rcpt.positive:
        return error(
            _G,
            "smtp.open-relay",
            p.subject,
            f"accepts mail for other domains from anyone (RCPT TO:<{RELAY_TO}> → {rcpt})",
            "An open relay is found by spammers within hours: it sends their mail, lands on "
            "every block list, and your own mail is then refused everywhere.",
            "Accept mail from unauthenticated clients only for your own domains (in courrier "
            "relaying needs AUTH on the submission ports).",
        )
    answer = rcpt if rcpt is not None else mail
    return ok(_G, "smtp.open-relay", p.subject, f"refuses to relay ({answer})")

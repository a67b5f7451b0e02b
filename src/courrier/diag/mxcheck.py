"""Where a domain's mail goes: its MX records and the hosts they name (RFC 5321 §5.1, RFC 7505).

Findings: the domain exists; MX records are there (else the implicit MX of the domain's own
address, §5.1), or a null MX says the domain takes no mail (RFC 7505 §3); each MX host is a
name (not an IP literal), not an alias (RFC 2181 §10.3: the target of an MX must not be a
CNAME), resolves to addresses, and those addresses are reachable from the Internet. The hosts
found are what the SMTP, DANE, MTA-STS and reputation checks look at next.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass, field

import dns.rdtypes.ANY.MX

from courrier.diag.findings import Finding, error, info, ok, warning
from courrier.diag.lookups import Lookups

__all__ = ["MXHost", "check_mx"]

_G = "dns"


@dataclass
class MXHost:
    name: str
    preference: int
    addresses: list[str] = field(default_factory=list)


@dataclass
class MXResult:
    findings: list[Finding]
    hosts: list[MXHost]
    #: The domain does not exist, or publishes a null MX: there is nothing more to check.
    stop: bool = False


async def check_mx(lookups: Lookups, domain: str, *, allow_private: bool = False) -> MXResult:
    looked = await lookups.ask(domain, "MX")
    if looked.error:
        found = error(
            _G,
            "mx.lookup",
            domain,
            f"MX lookup failed: {looked.error}",
            "Senders cannot find where to deliver while the DNS does not answer; they retry, "
            "then bounce.",
            "Check that the domain's name servers answer (dig +trace MX).",
        )
        return MXResult([found], [], stop=True)
    if looked.missing == "nxdomain":
        found = error(
            _G,
            "domain.exists",
            domain,
            "the domain does not exist (NXDOMAIN)",
            "No mail can reach a domain that does not exist.",
            "Register the domain, or check its spelling and its delegation (NS at the parent).",
        )
        return MXResult([found], [], stop=True)
    records = [r for r in looked.records if isinstance(r, dns.rdtypes.ANY.MX.MX)]
    if not records:
        return await _implicit(lookups, domain, allow_private)
    mx = sorted((r.preference, r.exchange.to_text(omit_final_dot=True).lower()) for r in records)
    if any(name in ("", ".") for _, name in mx):
        return _null(domain, mx)
    listed = ", ".join(f"{p} {n}" for p, n in mx)
    findings = [ok(_G, "mx.records", domain, f"{len(mx)} MX: {listed}", mx=_as_json(mx))]
    hosts = [MXHost(name, preference) for preference, name in mx]
    checked = await asyncio.gather(*(_host(lookups, h, allow_private) for h in hosts))
    for host_findings in checked:
        findings += host_findings
    return MXResult(findings, hosts)


def _as_json(mx: list[tuple[int, str]]) -> list[dict[str, object]]:
    return [{"preference": p, "host": n} for p, n in mx]


def _null(domain: str, mx: list[tuple[int, str]]) -> MXResult:
    if len(mx) == 1:
        found = info(
            _G,
            "mx.null",
            domain,
            "null MX (0 .): the domain declares it accepts no mail (RFC 7505)",
            "Senders bounce mail to it at once instead of queueing it.",
        )
    else:
        found = error(
            _G,
            "mx.null",
            domain,
            "a null MX (0 .) beside other MX records",
            "RFC 7505 §3: a null MX must be the only MX; senders may treat the domain as "
            "accepting no mail.",
            "Remove the 0 . record, or the others if the domain really takes no mail.",
            mx=_as_json(mx),
        )
    return MXResult([found], [], stop=True)


async def _implicit(lookups: Lookups, domain: str, allow_private: bool) -> MXResult:
    addresses, failed = await lookups.addresses(domain)
    if not addresses:
        found = error(
            _G,
            "mx.records",
            domain,
            "no MX record and no address" + (f" ({failed})" if failed else ""),
            "Senders find nowhere to deliver: mail to the domain bounces.",
            f"Publish an MX record: {domain}. IN MX 10 mail.{domain}.",
        )
        return MXResult([found], [], stop=True)
    host = MXHost(domain, 0, addresses)
    findings = [
        warning(
            _G,
            "mx.records",
            domain,
            "no MX record: senders fall back to the domain's own address (RFC 5321 §5.1)",
            "Some senders and spam filters treat a domain without MX as not taking mail, "
            "and the web server's address then receives it.",
            f"Publish an MX record naming the mail host: {domain}. IN MX 10 mail.{domain}.",
        )
    ]
    findings += _addresses(host, allow_private)
    return MXResult(findings, [host])


async def _host(lookups: Lookups, host: MXHost, allow_private: bool) -> list[Finding]:
    name = host.name
    if _is_ip(name.strip("[]")):
        return [
            error(
                _G,
                "mx.ip-literal",
                name,
                "the MX names an IP address, not a host name",
                "RFC 5321 §5.1 and RFC 7505: an MX holds a domain name; senders look up "
                f"{name} as a name, find nothing and bounce the mail.",
                f"Publish an A record for a host name (mail.example. IN A {name.strip('[]')}) "
                "and name that host in the MX.",
            )
        ]
    cname = await lookups.ask(name, "CNAME")
    addresses, failed = await lookups.addresses(name)
    host.addresses = addresses
    findings: list[Finding] = []
    if cname.records:
        target = cname.records[0].to_text().rstrip(".")
        findings.append(
            warning(
                _G,
                "mx.cname",
                name,
                f"the MX host is an alias (CNAME to {target})",
                "RFC 2181 §10.3 and RFC 5321 §5.1: an MX must name a host, not an alias; "
                "some senders refuse it, and DANE and MTA-STS checks use the wrong name.",
                f"Point the MX at {target} directly, or replace the CNAME by A/AAAA records.",
            )
        )
    if not addresses:
        if failed:
            findings.append(
                warning(
                    _G,
                    "mx.address",
                    name,
                    f"address lookup failed: {failed}",
                    "Senders that cannot resolve the MX host defer mail to it.",
                    "Check that the name servers of the MX host's zone answer.",
                )
            )
        else:
            findings.append(
                error(
                    _G,
                    "mx.address",
                    name,
                    "the MX host has no A or AAAA record",
                    "Senders cannot connect to a host without an address: mail to this MX "
                    "is deferred or bounced.",
                    f"Publish A (and AAAA) records for {name}, or remove the MX.",
                )
            )
        return findings
    if not cname.records:
        findings.append(ok(_G, "mx.cname", name, "a host name, not an alias"))
    findings += _addresses(host, allow_private)
    return findings


def _addresses(host: MXHost, allow_private: bool) -> list[Finding]:
    listed = ", ".join(host.addresses)
    private = [a for a in host.addresses if not ipaddress.ip_address(a).is_global]
    if private and not allow_private:
        return [
            error(
                _G,
                "mx.address",
                host.name,
                f"resolves to addresses not reachable from the Internet: {', '.join(private)}",
                "Loopback, private and reserved addresses cannot be reached by other "
                "servers: their mail is deferred, then bounced.",
                f"Publish the public address of {host.name} in its A/AAAA records.",
                addresses=host.addresses,
            )
        ]
    return [ok(_G, "mx.address", host.name, f"resolves to {listed}", addresses=host.addresses)]


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True

"""The DNS records a hosted domain should publish, as courrier recommends them.

This is what Mailcow's "DNS" button shows: MX, SPF, the DKIM keys, DMARC, TLS-RPT, MTA-STS
when it is on, CAA, and the RFC 6186 SRV records and autoconfig names that let mail clients
find the server. ``courrier domain dns NAME`` prints them in BIND zone-file syntax or JSON,
and the zones we serve hold them (:mod:`courrier.dns.zonedata`). Records an admin adds are
merged in by :func:`merge`: one of the same kind replaces ours.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

#: What a DKIM key says about itself: ``(name, TXT value, state)``, state being pending,
#: active or retiring (courrier.mailauth.keys).
DkimRecord = tuple[str, str, str]

_DKIM_WHY = {
    "pending": "DKIM (RFC 6376): a new key, publish it now; it signs from its activation on.",
    "active": "DKIM (RFC 6376): the key that signs the domain's mail now.",
    "retiring": "DKIM (RFC 6376): a replaced key, kept while mail it signed is in transit.",
}


@dataclass(frozen=True, slots=True)
class Record:
    name: str
    type: str
    value: str
    why: str
    ttl: int = 3600

    def zone_line(self) -> str:
        value = self.value
        if self.type == "TXT":
            value = _txt(value)
        return f"{self.name}.\t{self.ttl}\tIN\t{self.type}\t{value}"

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _txt(value: str) -> str:
    """Quote a TXT value, split into 255-byte strings (RFC 1035 §3.3.14)."""
    chunks = [value[i : i + 255] for i in range(0, len(value), 255)] or [""]
    return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


#: How long senders may cache our MTA-STS policy (RFC 8461 §3.2: a week or more).
MTA_STS_MAX_AGE = 604800


def mta_sts_policy(hostname: str, mode: str) -> str:
    """The MTA-STS policy file of our domains (RFC 8461 §3.2): our host is their MX."""
    host = hostname.rstrip(".")
    return f"version: STSv1\r\nmode: {mode}\r\nmx: {host}\r\nmax_age: {MTA_STS_MAX_AGE}\r\n"


def mta_sts_id(policy: str) -> str:
    """The policy's id for its ``_mta-sts`` record: it changes when the policy does (§3.1)."""
    return hashlib.sha256(policy.encode()).hexdigest()[:20]


def recommended_records(
    domain: str,
    hostname: str,
    dkim: Sequence[DkimRecord] = (),
    *,
    mta_sts: str = "none",
    caa_issuers: Sequence[str] = (),
) -> list[Record]:
    """Records for ``domain`` whose mail is handled by this server, named ``hostname``, with
    the DKIM keys to publish, the MTA-STS mode (none: no record) and the CAs that may issue
    its certificates."""
    host = hostname.rstrip(".")
    keys = [Record(name, "TXT", value, _DKIM_WHY[state]) for name, value, state in dkim]
    return [
        Record(domain, "MX", f"10 {host}.", "Mail for the domain goes to this server."),
        Record(
            domain,
            "TXT",
            "v=spf1 mx -all",
            "SPF (RFC 7208): only the domain's MX hosts send its mail.",
        ),
        *keys,
        Record(
            f"_dmarc.{domain}",
            "TXT",
            f"v=DMARC1; p=quarantine; adkim=s; aspf=s; rua=mailto:postmaster@{domain}",
            "DMARC (RFC 7489): unauthenticated mail claiming the domain goes to spam; "
            "aggregate reports come to postmaster.",
        ),
        Record(
            f"_smtp._tls.{domain}",
            "TXT",
            f"v=TLSRPTv1; rua=mailto:postmaster@{domain}",
            "TLS-RPT (RFC 8460): senders report TLS failures delivering to the domain.",
        ),
        *_mta_sts(domain, host, mta_sts),
        *(
            Record(
                domain,
                "CAA",
                f'0 issue "{issuer}"',
                "CAA (RFC 8659): only this authority may issue certificates for the domain.",
            )
            for issuer in caa_issuers
        ),
        Record(
            f"_submissions._tcp.{domain}",
            "SRV",
            f"0 1 465 {host}.",
            "RFC 8314/6186: mail clients find submission over TLS.",
        ),
        Record(
            f"_submission._tcp.{domain}",
            "SRV",
            f"0 1 587 {host}.",
            "RFC 6186: mail clients find submission with STARTTLS.",
        ),
        Record(f"_imaps._tcp.{domain}", "SRV", f"0 1 993 {host}.", "RFC 6186: IMAP over TLS."),
        Record(f"_imap._tcp.{domain}", "SRV", "0 0 0 .", "RFC 6186: no cleartext IMAP."),
        Record(f"_pop3s._tcp.{domain}", "SRV", f"10 1 995 {host}.", "RFC 6186: POP3 over TLS."),
        Record(f"_pop3._tcp.{domain}", "SRV", "0 0 0 .", "RFC 6186: no cleartext POP3."),
        Record(
            f"autoconfig.{domain}",
            "CNAME",
            f"{host}.",
            "Thunderbird's autoconfig looks up this name.",
        ),
        Record(
            f"autodiscover.{domain}",
            "CNAME",
            f"{host}.",
            "Outlook's autodiscover looks up this name.",
        ),
    ]


def _mta_sts(domain: str, host: str, mode: str) -> list[Record]:
    if mode == "none":
        return []
    policy_id = mta_sts_id(mta_sts_policy(host, mode))
    return [
        Record(
            f"_mta-sts.{domain}",
            "TXT",
            f"v=STSv1; id={policy_id}",
            f"MTA-STS (RFC 8461): senders must use TLS to the MX ({mode}); the id changes "
            "with the policy.",
        ),
        Record(
            f"mta-sts.{domain}",
            "CNAME",
            f"{host}.",
            "MTA-STS: the policy is served over HTTPS at this name.",
        ),
    ]


def txt_kind(value: str) -> str:
    """What a TXT record is, by its version tag (``spf1``, ``DMARC1``, ``DKIM1``, ``STSv1``,
    ``TLSRPTv1``), or empty: two of a kind at one name conflict (RFC 7208 §4.5, RFC 7489
    §6.6.3), other TXT records live side by side."""
    head = value.split(";", 1)[0].split(" ", 1)[0].strip()
    key, _, tag = head.partition("=")
    return tag.strip() if key.strip().lower() == "v" else ""


def merge(generated: Sequence[Record], added: Sequence[Record]) -> list[Record]:
    """Our records with an admin's: one added at a name replaces ours of the same kind there
    (a CNAME, or a TXT of the same version tag: an admin's SPF replaces ours); the rest are
    added beside them (a backup MX beside ours)."""

    def kind(r: Record) -> tuple[str, str, str]:
        return (r.name.lower(), r.type, txt_kind(r.value) if r.type == "TXT" else "")

    replaced = {
        kind(r) for r in added if r.type == "CNAME" or (r.type == "TXT" and txt_kind(r.value))
    }
    return [r for r in generated if kind(r) not in replaced] + list(added)


def host_records(host: str, addresses: Sequence[str], tlsa: Sequence[str]) -> list[Record]:
    """The mail host's own records, for the zone its name is in: its addresses and its
    TLSA record (DANE, RFC 7672 §3: at ``_25._tcp.<host>``)."""
    host = host.rstrip(".")
    found = [
        Record(
            host,
            "AAAA" if ":" in address else "A",
            address,
            "The mail server's address (dns.host_addresses).",
        )
        for address in addresses
    ]
    found += [
        Record(
            f"_25._tcp.{host}",
            "TLSA",
            value,
            "DANE (RFC 7672): senders that validate DNSSEC check the server's certificate "
            "against this key.",
        )
        for value in tlsa
    ]
    return found

"""The DNS records a hosted domain should publish, as courrier recommends them.

This is what Mailcow's "DNS" button shows: MX, SPF, the DKIM keys, DMARC, and the RFC 6186
SRV records and autoconfig names that let mail clients find the server. ``courrier domain dns
NAME`` prints them in BIND zone-file syntax or JSON.
"""

from __future__ import annotations

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


def recommended_records(
    domain: str, hostname: str, dkim: Sequence[DkimRecord] = ()
) -> list[Record]:
    """Records for ``domain`` whose mail is handled by this server, named ``hostname``, with
    the DKIM keys to publish."""
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

"""``courrier headers``: a received message's header read the way a postmaster reads it — the
path it took (Received, RFC 5321 §4.4), what the receivers concluded (Authentication-Results,
RFC 8601; ARC, RFC 8617), whether SPF and DKIM *align* with the From domain so that DMARC can
pass (RFC 7489 §3.1, told in plain words, LearnDMARC-style) and what the spam filters said.

Sans-IO: bytes in, :class:`Analysis` out. Header fields are parsed by the standard library
(RFC 2047 words decoded), A-R by ``authres``. Signatures are not verified here: their keys
live in the sender's DNS; ``courrier headers`` reads what the receivers recorded.
"""

from __future__ import annotations

import datetime
import email.utils
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from typing import Any

import authres

from courrier.mailauth.dmarc import aligned
from courrier.mailauth.orgdomain import organizational_domain

__all__ = ["Analysis", "HeaderError", "analyse"]


class HeaderError(ValueError):
    """The input is not a mail message header."""


@dataclass
class Hop:
    number: int
    source: str = ""
    ip: str = ""
    by: str = ""
    protocol: str = ""
    tls: str = ""
    date: str = ""
    delay: float | None = None


@dataclass
class AuthResult:
    authserv_id: str
    method: str
    result: str
    properties: dict[str, str]


@dataclass
class Analysis:
    summary: dict[str, str] = field(default_factory=dict)
    hops: list[Hop] = field(default_factory=list)
    results: list[AuthResult] = field(default_factory=list)
    arc: list[dict[str, str]] = field(default_factory=list)
    alignment: list[str] = field(default_factory=list)
    dmarc: str = ""
    spam: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "hops": [vars(h) for h in self.hops],
            "authentication_results": [vars(r) for r in self.results],
            "arc": self.arc,
            "alignment": self.alignment,
            "dmarc": self.dmarc,
            "spam": self.spam,
        }

    def text(self) -> str:
        out = ["Message"]
        out += [f"  {k}: {v}" for k, v in self.summary.items() if v]
        out += ["", f"Path ({len(self.hops)} hop(s), oldest first)"]
        for h in self.hops:
            delay = "" if h.delay is None else f"  +{h.delay:.0f} s"
            if h.delay is not None and h.delay < 0:
                delay = f"  {h.delay:.0f} s (clock skew)"
            tls = f", TLS {h.tls}" if h.tls else ""
            out.append(
                f"  {h.number}. {h.source or '?'} [{h.ip or '?'}] → {h.by or '?'}"
                f" ({h.protocol or '?'}{tls}){delay}"
            )
        if self.results:
            out += ["", "Authentication-Results"]
            out += [
                f"  {r.authserv_id}: {r.method}={r.result} "
                + " ".join(f"{k}={v}" for k, v in r.properties.items())
                for r in self.results
            ]
        if self.arc:
            out += ["", "ARC chain (signatures not verified offline)"]
            out += [
                f"  i={a['i']} cv={a['cv']} sealed by {a['d']}: {a['results']}" for a in self.arc
            ]
        out += ["", "Alignment (DMARC)"] + [f"  {line}" for line in self.alignment]
        if self.spam:
            out += ["", "Spam filters"] + [f"  {s}" for s in self.spam]
        return "\n".join(out) + "\n"


def analyse(raw: bytes) -> Analysis:
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    if not head.strip() or b"\x00" in head or not re.match(rb"[!-9;-~]+:", head):
        raise HeaderError("this is not a mail message: it does not begin with header fields")
    msg = BytesHeaderParser(policy=policy.default).parsebytes(head + b"\r\n\r\n")
    if not any(msg.get(n) for n in ("From", "Received", "Message-ID", "Date")):
        raise HeaderError("this is not a mail message: no From, Date or Received field")
    out = Analysis()
    from_domain = _domain(str(msg.get("From", "")))
    out.summary = {
        "from": str(msg.get("From", "")),
        "from_domain": from_domain,
        "organizational_domain": organizational_domain(from_domain) if from_domain else "",
        "to": str(msg.get("To", "")),
        "subject": str(msg.get("Subject", "")),
        "date": str(msg.get("Date", "")),
        "message_id": str(msg.get("Message-ID", "")),
        "return_path": str(msg.get("Return-Path", "")),
    }
    out.hops = _hops(msg)
    out.results = _results(msg)
    out.arc = _arc(msg)
    _align(out, msg, from_domain)
    out.spam = _spam(msg)
    return out


def _domain(address: str) -> str:
    parsed = email.utils.parseaddr(address)[1]
    return parsed.rpartition("@")[2].lower().rstrip(".>") if "@" in parsed else ""


# -- Received (RFC 5321 §4.4: "from" "by" "via" "with" "id" "for" ";" date-time) ---------------

_FROM = re.compile(r"\bfrom\s+(\S+)(?:\s+\(([^)]*)\))?", re.I)
_BY = re.compile(r"\bby\s+(\S+)", re.I)
_WITH = re.compile(r"\bwith\s+([A-Za-z0-9-]+)", re.I)
_IP = re.compile(r"\[(?:IPv6:)?([0-9a-fA-F:.]+)\]")
_BARE_IP = re.compile(r"^((?:\d{1,3}\.){3}\d{1,3})")
_TLS = re.compile(
    r"version=(TLS[0-9_.v]+)|using (TLSv?[0-9.]+)|\b(TLS1_[0-3])\b|\b(TLSv1\.[0-3])\b", re.I
)


def _hops(msg: EmailMessage) -> list[Hop]:
    fields = [str(v) for v in msg.get_all("Received", [])]
    hops: list[Hop] = []
    previous: datetime.datetime | None = None
    for number, value in enumerate(reversed(fields), 1):  # the oldest is the last field
        text = " ".join(value.split())
        body, _, date_text = text.rpartition(";")
        body = body or text
        hop = Hop(number)
        if m := _FROM.search(body):
            hop.source = m.group(1)
            ip = (
                _IP.search(m.group(2) or "")
                or _IP.search(body)
                or _BARE_IP.search(m.group(2) or "")
            )
            hop.ip = ip.group(1) if ip else ""
        if m := _BY.search(body):
            hop.by = m.group(1)
        if m := _WITH.search(body):
            hop.protocol = m.group(1).upper()
        if m := _TLS.search(body):
            hop.tls = next(g for g in m.groups() if g)
        elif hop.protocol.startswith(("ESMTPS", "UTF8SMTPS", "LMTPS")):
            hop.tls = "yes"  # RFC 3848: the S says TLS
        when = _date(date_text)
        if when is not None:
            hop.date = when.isoformat()
            if previous is not None:
                hop.delay = (when - previous).total_seconds()
            previous = when
        hops.append(hop)
    return hops


def _date(text: str) -> datetime.datetime | None:
    try:
        when = email.utils.parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=datetime.UTC)


# -- Authentication-Results and ARC -----------------------------------------------------------


def _results(msg: EmailMessage) -> list[AuthResult]:
    found: list[AuthResult] = []
    for value in msg.get_all("Authentication-Results", []):
        found += _parse_ar(str(value))
    return found


def _parse_ar(value: str) -> list[AuthResult]:
    text = " ".join(value.split())
    if re.match(r"[A-Za-z-]+=", text):
        # Exchange Online leaves out the authserv-id (RFC 8601 §2.2 requires one).
        text = "unnamed-receiver; " + text
    try:
        parsed = authres.AuthenticationResultsHeader.parse_value(text)
    except authres.AuthResError:
        return []
    return [
        AuthResult(
            str(parsed.authserv_id),
            str(r.method),
            str(r.result),
            {f"{p.type}.{p.name}": str(p.value) for p in r.properties},
        )
        for r in parsed.results
    ]


def _tags(value: str) -> dict[str, str]:
    return {
        k.strip().lower(): v.strip()
        for k, _, v in (t.partition("=") for t in " ".join(value.split()).split(";"))
        if k.strip()
    }


def _arc(msg: EmailMessage) -> list[dict[str, str]]:
    seals = {_tags(str(v)).get("i", ""): _tags(str(v)) for v in msg.get_all("ARC-Seal", [])}
    results = {}
    for v in msg.get_all("ARC-Authentication-Results", []):
        text = " ".join(str(v).split())
        instance, _, rest = text.partition(";")
        results[instance.strip().removeprefix("i=")] = rest.strip()
    sets = []
    for i in sorted(seals, key=lambda x: int(x) if x.isdigit() else 0):
        seal = seals[i]
        sets.append({"i": i, "cv": seal.get("cv", ""), "d": seal.get("d", ""),
                     "results": results.get(i, "")})  # fmt: skip
    return sets


# -- alignment (RFC 7489 §3.1) ----------------------------------------------------------------


def _align(out: Analysis, msg: EmailMessage, from_domain: str) -> None:
    if not from_domain:
        out.alignment.append("The From field has no address: DMARC cannot apply.")
        return
    org = organizational_domain(from_domain)
    top = out.results[0].authserv_id if out.results else ""
    mine = [r for r in out.results if r.authserv_id == top]
    dmarc = next((r for r in mine if r.method == "dmarc"), None)
    mode_dkim = mode_spf = "r"
    say = out.alignment.append
    say(f"From domain is {from_domain} (organizational domain {org}).")
    if not mine:
        say("No Authentication-Results: no receiver recorded SPF, DKIM or DMARC.")
        return
    say(f"Results recorded by {top} (the receiver that added the topmost field).")
    spf_pass = dkim_pass = False
    for r in mine:
        if r.method == "spf":
            domain = (
                _domain(r.properties.get("smtp.mailfrom", ""))
                or r.properties.get("smtp.mailfrom", "").lower()
                or _domain(str(msg.get("Return-Path", "")))
            )
            spf_pass |= _say_one(say, "SPF", r.result, domain, from_domain, org, mode_spf)
        elif r.method == "dkim":
            domain = (
                r.properties.get("header.d", "")
                or r.properties.get("header.i", "").rpartition("@")[2]
            )
            dkim_pass |= _say_one(say, "DKIM", r.result, domain.lower(), from_domain, org,
                                  mode_dkim)  # fmt: skip
    verdict = "pass" if spf_pass or dkim_pass else "fail"
    why = (
        "an aligned " + " and an aligned ".join(
            n for n, ok in (("DKIM signature", dkim_pass), ("SPF", spf_pass)) if ok
        ) + " passed"
        if verdict == "pass"
        else "neither SPF nor DKIM passed aligned with the From domain"
    )  # fmt: skip
    say(f"DMARC: {verdict}, because {why}.")
    out.dmarc = verdict
    if verdict == "fail" and out.arc:
        first = out.arc[0]
        say(f"ARC: the first intermediary ({first['d']}, i={first['i']}) recorded "
            f"{_methods(first['results'])}; a failure since then came on the way "
            "(forwarding changes the sending server, list footers break DKIM).")  # fmt: skip
    if dmarc is not None and dmarc.result != verdict:
        say(f"Note: {top} recorded dmarc={dmarc.result}"
            + (" — an ARC chain from a forwarder may have vouched for the message"
               if dmarc.result == "pass" and out.arc else "")
            + ".")  # fmt: skip


def _methods(results: str) -> str:
    """``spf=pass; dkim=pass`` out of an A-R value."""
    found = re.findall(r"\b(spf|dkim|dmarc)=([a-z]+)", results)
    return "; ".join(f"{m}={r}" for m, r in found) or "nothing"


def _say_one(
    say: Any, method: str, result: str, domain: str, from_domain: str, org: str, mode: str
) -> bool:
    if not domain:
        say(f"{method} {result}, for no domain named.")
        return False
    if aligned(domain, from_domain, "s"):
        how = "aligned (same domain)"
    elif aligned(domain, from_domain, mode):
        how = f"aligned under relaxed alignment (same organizational domain {org})"
    else:
        how = (
            f"not aligned with {from_domain} (different organizational domain "
            f"{organizational_domain(domain)})"
        )
    what = "signature by" if method == "DKIM" else "for"
    counts = result == "pass" and not how.startswith("not")
    tail = "it counts for DMARC." if counts else "it does not count for DMARC."
    say(f"{method} {what} {domain}: {result}, {how} → {tail}")
    return counts


# -- spam verdicts ----------------------------------------------------------------------------

_FOREFRONT = {
    "SFV:SPM": "Microsoft filtered it as spam",
    "SFV:NSPM": "Microsoft found it not spam",
    "SFV:SKN": "Microsoft skipped filtering (marked safe by a rule)",
    "SFV:BLK": "the recipient blocks the sender",
    "CAT:PHSH": "classified as phishing",
    "CAT:SPM": "classified as spam",
    "CAT:HPHSH": "classified as high-confidence phishing",
    "CAT:BULK": "classified as bulk mail",
    "CAT:NONE": "no category",
}


def _spam(msg: EmailMessage) -> list[str]:
    found: list[str] = []
    for name in ("X-Spam-Status", "X-Spam-Flag", "X-Spam-Score", "X-Spam-Level",
                 "X-Rspamd-Score", "X-Spamd-Result", "X-Spam", "X-Mimecast-Spam-Score",
                 "X-Barracuda-Spam-Score", "X-Proofpoint-Spam-Details"):  # fmt: skip
        for value in msg.get_all(name, []):
            found.append(f"{name}: {' '.join(str(value).split())[:200]}")
    for value in msg.get_all("X-Forefront-Antispam-Report", []):
        fields = [f.strip() for f in str(value).split(";") if f.strip()]
        notes = [_FOREFRONT[f] for f in fields if f in _FOREFRONT]
        scl = next((f for f in fields if f.startswith("SCL:")), "")
        if scl:
            level = int(scl[4:]) if scl[4:].lstrip("-").isdigit() else 0
            notes.append(f"{scl} ({'junk' if level >= 5 else 'inbox'}: 5 and up go to Junk)")
        found.append("Microsoft: " + "; ".join(notes or fields[:4]))
    for value in msg.get_all("X-MS-Exchange-Organization-SCL", []):
        found.append(f"Microsoft SCL {value} (5 and up go to Junk; -1 skipped filtering)")
    return found

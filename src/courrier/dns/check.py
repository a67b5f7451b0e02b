"""Does the DNS publish what a hosted domain should? Sans-IO: the records the domain should
publish (:func:`courrier.provisioning.domain_records`) and what the DNS answered in, one
finding per record out, each with the zone line that fixes it.

What this module owns: the questions to ask (one per name and type, :func:`questions`), when a
published record is the intended one (compared for meaning, not text: :func:`same`), and how
the records at one name and type are paired (:func:`compare`). ``courrier dns check`` asks
the questions (:mod:`courrier.dns.published`) and prints the findings; the web admin can too.

Pairing: records at one name and type are compared by kind. A TXT record's kind is its
version tag (``v=spf1``, ``DMARC1``, ``DKIM1``, ``STSv1``, ``TLSRPTv1``: one of each per
name, RFC 7208 §4.5, RFC 7489 §6.6.3, RFC 8461 §3.1, RFC 8460 §3; a tag list with a ``p=``
and no ``v=`` is a DKIM key, whose ``v=`` is optional, RFC 6376 §3.6.1), a CAA record's its
property tag (``issue``, ``iodef``…, RFC 8659 §4.1); every other type is one kind. Within a
kind, a published record equal to an intended one is **ok**; the intended records left are
paired in order with the published ones left, **different** (the published one to replace),
the rest **missing** (nothing to replace) or **extra** (to remove). Published records of a
kind not intended at that name are left alone (a DMARC record at the apex, a CAA ``iodef``),
and so are TXT records with no known version tag (site verifications and the like, any
number side by side); an intended TXT without one is ok or missing, never paired.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.txtbase

from courrier.dns.records import Record, txt_kind

__all__ = ["Answer", "Finding", "Question", "Status", "compare", "question", "questions", "same"]

#: A name (lower case, no final dot) and a record type, as asked of the DNS.
Question = tuple[str, str]

#: TXT version tags of which a name has at most one record (lower case).
TXT_KINDS = frozenset({"spf1", "dmarc1", "dkim1", "stsv1", "tlsrptv1"})


class Status(enum.StrEnum):
    OK = "ok"
    MISSING = "missing"
    DIFFERENT = "different"
    EXTRA = "extra"
    #: The DNS gave no answer (SERVFAIL, timeout): what is published is unknown.
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Answer:
    """What the DNS said to one question: the records (none when the name or the type does
    not exist, NXDOMAIN or NODATA) with their owner and TTL, or why it gave no answer."""

    records: tuple[dns.rdata.Rdata, ...] = ()
    ttl: int = 0
    #: Where the records are, when not at the name asked (a CNAME led there, RFC 1034 §3.6.2).
    owner: str = ""
    error: str = ""


@dataclass(frozen=True, slots=True)
class Finding:
    name: str
    type: str
    status: Status
    #: The intended value (as :class:`Record` holds it: TXT strings joined), if any.
    intended: str | None
    #: The published value in the same form, if any.
    published: str | None
    #: The zone line to publish (missing; different: in place of the published one) or to
    #: remove (extra); None when there is nothing to do.
    fix: str | None
    #: What the record is for, or what went wrong asking for it.
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "status": str(self.status),
            "intended": self.intended,
            "published": self.published,
            "fix": self.fix,
            "detail": self.detail,
        }


def question(record: Record) -> Question:
    return record.name.lower().rstrip("."), record.type.upper()


def questions(intended: Sequence[Record]) -> list[Question]:
    """Every name and type the intended records are at, in their order, once each."""
    return list(dict.fromkeys(question(r) for r in intended))


def compare(intended: Sequence[Record], answers: Mapping[Question, Answer]) -> list[Finding]:
    """The findings for ``intended`` given the DNS's ``answers`` to :func:`questions`: per
    question, one for each intended record in their order, then the extra published ones."""
    findings: list[Finding] = []
    for asked in questions(intended):
        records = [r for r in intended if question(r) == asked]
        answer = answers.get(asked, Answer(error="not asked"))
        if answer.error:
            name, rdtype = asked
            findings += [
                Finding(name, rdtype, Status.ERROR, r.value, None, None, answer.error)
                for r in records
            ]
        else:
            findings += _compare_at(asked, records, answer)
    return findings


def _compare_at(asked: Question, intended: list[Record], answer: Answer) -> list[Finding]:
    name, rdtype = asked
    found: dict[int, Finding] = {}  # by index in ``intended``
    extras: list[Finding] = []
    for kind in dict.fromkeys(_kind(rdtype, r.value) for r in intended):
        published = [rd for rd in answer.records if _kind(rdtype, value(rd)) == kind]
        left: list[int] = []
        for i, record in enumerate(intended):
            if _kind(rdtype, record.value) != kind:
                continue
            match = next((rd for rd in published if same(record, rd)), None)
            if match is None:
                left.append(i)
                continue
            published.remove(match)
            found[i] = Finding(
                name, rdtype, Status.OK, record.value, value(match), None, record.why
            )
        if kind is None:  # independent TXT records: what is left is missing, nothing extra
            published = []
        published.sort(key=value)
        for n, i in enumerate(left):
            record = intended[i]
            if n < len(published):
                status, shown = Status.DIFFERENT, value(published[n])
            else:
                status, shown = Status.MISSING, None
            found[i] = Finding(
                name, rdtype, status, record.value, shown, record.zone_line(), record.why
            )
        owner = answer.owner or name
        extras += [
            Finding(
                name,
                rdtype,
                Status.EXTRA,
                None,
                value(rd),
                f"{owner}.\t{answer.ttl}\tIN\t{rdtype}\t{rd.to_text()}",
                "published but not intended",
            )
            for rd in published[len(left) :]
        ]
    return [found[i] for i in range(len(intended))] + extras


def value(rdata: dns.rdata.Rdata) -> str:
    """A published record's value as :class:`Record` holds one: zone-file text with absolute
    names, a TXT record's character-strings joined (RFC 7208 §3.3, RFC 6376 §3.6.2.2)."""
    if isinstance(rdata, dns.rdtypes.txtbase.TXTBase):
        return b"".join(rdata.strings).decode("utf-8", "backslashreplace")
    return str(rdata.to_text(origin=None, relativize=False))


def same(record: Record, published: dns.rdata.Rdata) -> bool:
    """Whether ``published`` says what ``record`` says: for TXT, the strings joined and read
    by kind (:func:`_txt_form`); for other types, the records' canonical forms (RFC 4034
    §6.2: names in lower case, absolute, so ``Mail.Example.org`` is ``mail.example.org.``)."""
    if record.type.upper() == "TXT":
        return _txt_form(record.value) == _txt_form(value(published))
    try:
        intended = dns.rdata.from_text(
            dns.rdataclass.IN,
            dns.rdatatype.from_text(record.type),
            record.value,
            origin=dns.name.root,
            relativize=False,
        )
    except (dns.exception.DNSException, ValueError):
        return False
    return bool(intended == published)


def _kind(rdtype: str, text: str) -> str | None:
    """The kind of a record (module docstring); None for a TXT without a known version tag."""
    if rdtype == "TXT":
        return _txt_kind(text)
    if rdtype == "CAA":
        parts = text.split()
        return parts[1].lower() if len(parts) > 2 else ""
    return ""


def _txt_kind(text: str) -> str | None:
    tag = txt_kind(text).lower()
    if tag in TXT_KINDS:
        return tag
    if not tag and "p" in (_tag_list(text) or {}):
        return "dkim1"  # a key record without its optional v= (RFC 6376 §3.6.1)
    return None


def _tag_list(text: str) -> dict[str, str] | None:
    """A tag list (RFC 6376 §3.2) as tag → value, whitespace around tags, ``=`` and ``;``
    left out, a final ``;`` allowed; None when ``text`` is not one (a term without ``=``, a
    tag twice)."""
    tags: dict[str, str] = {}
    for term in text.split(";"):
        if not term.strip():
            continue
        tag, equals, val = term.partition("=")
        if not equals or tag.strip() in tags:
            return None
        tags[tag.strip()] = val.strip()
    return tags


def _txt_form(text: str) -> tuple[str, ...]:
    """A TXT value in a form where equal meanings are equal.

    SPF (RFC 7208 §4.6.1): terms separated by runs of spaces, their names case-insensitive,
    their order significant. Tag lists — DKIM (RFC 6376 §3.2), and the DMARC, MTA-STS and
    TLS-RPT records written the same way (RFC 7489 §6.4, RFC 8461 §3.1, RFC 8460 §3): tags in
    any order; in DKIM keys ``v=DKIM1`` is the default and whitespace inside values is
    ignored (RFC 6376 §3.6.1). Other TXT records, and tag lists that do not parse: as written.
    """
    kind = _txt_kind(text)
    if kind == "spf1":
        return tuple(term.lower() for term in text.split(" ") if term)
    tags = _tag_list(text) if kind else None
    if tags is None:
        return (text,)
    if kind == "dkim1":
        tags = {"v": "DKIM1", **{tag: "".join(val.split()) for tag, val in tags.items()}}
    return tuple(sorted(f"{tag}={val}" for tag, val in tags.items()))

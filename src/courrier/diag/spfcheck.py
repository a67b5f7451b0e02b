"""A domain's SPF record looked at as a receiver would evaluate it (RFC 7208), without a client.

Findings: one record (§4.5: two are a permerror), its syntax (§12, through
:mod:`courrier.mailauth.spfsyntax`), the DNS-querying terms of the whole tree of includes and
redirects within the limit of 10 (§4.6.4: ``include``, ``a``, ``mx``, ``ptr``, ``exists``,
``redirect``; beyond it every receiver returns permerror and the record protects nothing),
void lookups within the limit of 2 (§4.6.4), includes that lead to a record (§5.2: an
include of a domain without SPF is a permerror), no ``ptr`` (§5.5: SHOULD NOT be used) and
what ``all`` says (``+all`` lets anyone send, ``?all`` says nothing). Terms with macros (§7)
depend on the message and are counted, not followed. The tree is in the ``spf.lookups``
finding's data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import dns.rdtypes.ANY.MX

from courrier.diag.findings import Finding, error, info, ok, warning
from courrier.diag.lookups import Lookups
from courrier.mailauth.spfsyntax import syntax_error

__all__ = ["check_spf", "spf_records"]

_G = "authentication"
#: §4.6.4: the limits on DNS-querying terms, void lookups and an mx term's hosts.
MAX_LOOKUPS: Final = 10
MAX_VOID: Final = 2
MAX_MX: Final = 10
_COUNTED: Final = ("include", "a", "mx", "ptr", "exists")


@dataclass
class Node:
    """One record of the tree: where it was found, its text and what it led to."""

    domain: str
    record: str = ""
    lookups: int = 0
    children: list[Node] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "record": self.record,
            "lookups": self.lookups,
            "includes": [c.as_json() for c in self.children],
        }

    def lines(self, depth: int = 0) -> list[str]:
        own = [f"{'  ' * depth}{self.domain}: {self.record or '(no record)'}"]
        return own + [line for c in self.children for line in c.lines(depth + 1)]


@dataclass
class _Walk:
    lookups: Lookups
    findings: list[Finding] = field(default_factory=list)
    total: int = 0
    voids: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)


def spf_records(texts: list[str]) -> list[str]:
    """§4.5: the TXT records that are SPF records (``v=spf1`` alone or followed by a space)."""
    return [t for t in texts if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]


async def check_spf(lookups: Lookups, domain: str) -> list[Finding]:
    looked = await lookups.txt(domain)
    if looked.error:
        return [
            warning(
                _G,
                "spf.record",
                domain,
                f"not checked: {looked.error}",
                "Receivers that cannot read the SPF record answer temperror and may defer.",
                "Check that the domain's name servers answer TXT queries.",
            )
        ]
    records = spf_records(looked.texts)
    if not records:
        return [
            warning(
                _G,
                "spf.record",
                domain,
                "no SPF record",
                "Without SPF, receivers cannot tell which servers may send for the domain; "
                "Gmail and Yahoo ask bulk senders for SPF and DKIM, and DMARC then rests on "
                "DKIM alone.",
                f'Publish {domain}. IN TXT "v=spf1 mx -all" (add the servers that send for it).',
            )
        ]
    if len(records) > 1:
        return [
            error(
                _G,
                "spf.record",
                domain,
                f"{len(records)} SPF records",
                "RFC 7208 §4.5: with more than one record every receiver returns permerror: "
                "SPF fails for all mail of the domain.",
                "Merge them into one v=spf1 record and remove the others.",
                records=records,
            )
        ]
    walk = _Walk(lookups)
    tree = Node(domain)
    walk.seen.add(domain)
    await _record(walk, tree, records[0], top=True)
    return [ok(_G, "spf.record", domain, records[0]), *walk.findings, *_limits(walk, tree)]


def _limits(walk: _Walk, tree: Node) -> list[Finding]:
    data = {"tree": tree.as_json(), "lines": tree.lines()}
    found: list[Finding] = []
    if walk.total > MAX_LOOKUPS:
        found.append(
            error(
                _G,
                "spf.lookups",
                tree.domain,
                f"{walk.total} DNS lookups, over the limit of {MAX_LOOKUPS}",
                "RFC 7208 §4.6.4: past 10 lookups receivers stop with permerror, so SPF "
                "fails for mail from every server, listed or not.",
                "Remove includes you no longer use, replace a/mx terms by ip4/ip6 ranges, "
                "or split senders onto subdomains with their own SPF.",
                lookups=walk.total,
                **data,
            )
        )
    else:
        found.append(
            ok(
                _G,
                "spf.lookups",
                tree.domain,
                f"{walk.total} of {MAX_LOOKUPS} DNS lookups",
                lookups=walk.total,
                **data,
            )
        )
    if len(walk.voids) > MAX_VOID:
        found.append(
            error(
                _G,
                "spf.void-lookups",
                tree.domain,
                f"{len(walk.voids)} lookups find nothing: {', '.join(walk.voids)}",
                "RFC 7208 §4.6.4: receivers stop with permerror after 2 void lookups.",
                "Remove the terms naming domains without records.",
                void=walk.voids,
            )
        )
    elif walk.voids:
        found.append(
            warning(
                _G,
                "spf.void-lookups",
                tree.domain,
                f"a lookup finds nothing: {', '.join(walk.voids)}",
                "A term naming a domain without records matches nothing and counts toward "
                "the limit of 2 void lookups (RFC 7208 §4.6.4).",
                "Remove the term or publish the records it expects.",
                void=walk.voids,
            )
        )
    return found


async def _record(walk: _Walk, node: Node, record: str, *, top: bool) -> None:
    node.record = record
    problem = syntax_error(record)
    if problem:
        walk.findings.append(
            error(
                _G,
                "spf.syntax",
                node.domain,
                f"syntax error: {problem}",
                "RFC 7208 §4.6: a record that does not parse is a permerror: SPF fails for "
                "all mail of the domain.",
                "Correct the record (RFC 7208 §12 gives its grammar).",
                record=record,
            )
        )
        return
    terms = [t for t in record.split(" ")[1:] if t]
    ends = False
    for term in terms:
        qualifier = term[0] if term[0] in "+-~?" else "+"
        body = term[1:] if term[0] in "+-~?" else term
        name = body.split(":", 1)[0].split("/", 1)[0].split("=", 1)[0].lower()
        if name == "all":
            ends = True
            if top:
                walk.findings.append(_all(node.domain, qualifier))
        elif name in _COUNTED or name == "redirect":
            node.lookups += 1
            walk.total += 1
            await _follow(walk, node, name, body, top=top)
    if top and not ends and not any(t.lower().startswith("redirect=") for t in terms):
        walk.findings.append(
            warning(
                _G,
                "spf.all",
                node.domain,
                "the record does not end with an all term",
                "Without all, mail from unlisted servers gets neutral (RFC 7208 §4.7): SPF "
                "does not say it is unauthorised.",
                "End the record with -all (or ~all while you are testing).",
            )
        )


async def _follow(walk: _Walk, node: Node, name: str, body: str, *, top: bool) -> None:
    target = _target(name, body, node.domain)
    if name == "ptr":
        walk.findings.append(
            warning(
                _G,
                "spf.ptr",
                node.domain,
                "uses the ptr mechanism",
                "RFC 7208 §5.5: ptr is slow and unreliable and SHOULD NOT be used; large "
                "receivers ignore it.",
                "Replace ptr by ip4/ip6 ranges or a/mx terms.",
            )
        )
        return
    if target is None:
        return  # a macro: depends on the message (§7), counted only
    if name in ("include", "redirect"):
        # A redirect's record stands in for this one (§6.1): its all is the domain's.
        await _include(walk, node, name, target, top=top and name == "redirect")
    elif name == "a":
        four, six = await walk.lookups.ask(target, "A"), await walk.lookups.ask(target, "AAAA")
        if four.void and six.void:
            walk.voids.append(f"a:{target}")
    elif name == "mx":
        looked = await walk.lookups.ask(target, "MX")
        hosts = [r for r in looked.records if isinstance(r, dns.rdtypes.ANY.MX.MX)]
        if looked.void:
            walk.voids.append(f"mx:{target}")
        elif len(hosts) > MAX_MX:
            walk.findings.append(
                error(
                    _G,
                    "spf.mx",
                    node.domain,
                    f"mx:{target} has {len(hosts)} MX hosts, over the limit of {MAX_MX}",
                    "RFC 7208 §4.6.4: an mx term with more than 10 hosts is a permerror.",
                    "Use ip4/ip6 ranges for these servers instead of mx.",
                )
            )
    elif name == "exists":
        looked = await walk.lookups.ask(target, "A")
        if looked.void:
            walk.voids.append(f"exists:{target}")


async def _include(walk: _Walk, node: Node, name: str, target: str, *, top: bool) -> None:
    child = Node(target)
    node.children.append(child)
    if target in walk.seen:
        walk.findings.append(
            error(
                _G,
                "spf.include",
                node.domain,
                f"{name} of {target} loops back",
                "A loop of includes runs into the lookup limit: permerror.",
                f"Remove the {name} of {target}.",
            )
        )
        return
    walk.seen.add(target)
    looked = await walk.lookups.txt(target)
    records = spf_records(looked.texts)
    if looked.error or len(records) != 1:
        if looked.error:
            seen = f"{name}:{target} not checked: {looked.error}"
        elif records:
            seen = f"{name}:{target} has {len(records)} SPF records"
        else:
            seen = f"{name}:{target} has no SPF record"  # a permerror, not only void
        walk.findings.append(
            error(
                _G,
                "spf.include",
                node.domain,
                seen,
                "RFC 7208 §5.2 and §6.1: an include or redirect to a domain without exactly "
                "one SPF record is a permerror for every message.",
                f"Correct or remove the {name} of {target}.",
            )
        )
        return
    await _record(walk, child, records[0], top=top)


def _target(name: str, body: str, domain: str) -> str | None:
    """The domain a term looks up (its own, else the record's), None when it has macros."""
    if name == "redirect":
        spec = body.split("=", 1)[1]
    else:
        rest = body[len(name) :]
        spec = rest[1:].split("/", 1)[0] if rest.startswith(":") else ""
    if "%" in spec:
        return None
    return (spec or domain).lower().rstrip(".")


def _all(domain: str, qualifier: str) -> Finding:
    if qualifier == "+":
        return error(
            _G,
            "spf.all",
            domain,
            "+all: every server on the Internet may send for the domain",
            "SPF passes for anyone, so it protects nothing and helps spoofers pass DMARC.",
            "End the record with -all (or ~all while you are testing).",
        )
    if qualifier == "?":
        return warning(
            _G,
            "spf.all",
            domain,
            "?all: unlisted servers get neutral",
            "Neutral says nothing about unlisted servers: spoofed mail is not flagged.",
            "End the record with -all (or ~all while you are testing).",
        )
    if qualifier == "~":
        return info(
            _G,
            "spf.all",
            domain,
            "~all: unlisted servers get softfail",
            "Softfail marks unlisted senders as suspicious without rejecting them; with "
            "DMARC enforcing, -all adds little.",
        )
    return ok(_G, "spf.all", domain, "-all: unlisted servers fail")

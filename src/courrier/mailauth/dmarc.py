"""DMARC (RFC 7489): the From domain's policy found, the SPF and DKIM results aligned with it,
and what to do with the message.

Our own evaluation, in three parts: :func:`parse_record` (§6.3, §6.4; the DMARCbis ``np`` and
``t`` tags are read too), :func:`discover` (§6.6.3: ``_dmarc.<From domain>``, then the
organizational domain's record) and :func:`evaluate`, which is pure: identifier alignment
(§3.1: relaxed compares organizational domains, strict the names), the policy that applies
(``p``, or ``sp`` for a subdomain), sampling (``pct``, §6.6.4: a message not sampled gets the
next policy down) and the local overrides a receiver may apply (§7.2.1.1's PolicyOverride):
mail that a trusted forwarder's valid ARC chain vouches for (RFC 8617 §7.2.1).

The report row (:func:`report_row`) is the message's line of the aggregate report (§7.2),
in the JSON shape :mod:`courrier.store.dmarcresults` keeps: ``policy`` is the report's
``policy_published`` plus the record's ``rua``; ``record`` is the row, identifiers and
authentication results.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import dns.asyncresolver

from courrier.dns.resolver import txt_records
from courrier.mailauth.arc import ARCResult
from courrier.mailauth.dkimverify import DKIMResult
from courrier.mailauth.orgdomain import organizational_domain
from courrier.mailauth.spf import SPFResult
from courrier.store.dmarcresults import DmarcRow

POLICIES = ("none", "quarantine", "reject")
_DOWNGRADE = {"reject": "quarantine", "quarantine": "none", "none": "none"}


class DMARCSyntaxError(ValueError):
    """The text is not a DMARC record (or a broken one)."""


@dataclass(frozen=True, slots=True)
class DMARCRecord:
    p: str
    sp: str
    pct: int = 100
    adkim: str = "r"
    aspf: str = "r"
    rua: tuple[str, ...] = ()
    ruf: tuple[str, ...] = ()
    fo: str = "0"
    #: DMARCbis: the policy for non-existent subdomains (None: ``sp``), and test mode (t=y).
    np: str | None = None
    testing: bool = False


def parse_record(text: str) -> DMARCRecord:
    """RFC 7489 §6.3-§6.4: ``v=DMARC1`` first, then tags in any order; unknown tags ignored."""
    parts = [p.strip() for p in text.split(";")]
    found: dict[str, str] = {}
    for part in parts:
        if not part:
            continue
        name, eq, value = part.partition("=")
        if not eq:
            raise DMARCSyntaxError(f"{part!r} is not tag=value")
        found.setdefault(name.strip().lower(), value.strip())
    if not parts or parts[0].replace(" ", "") != "v=DMARC1":
        raise DMARCSyntaxError("the record does not begin with v=DMARC1")
    rua = _uris(found.get("rua", ""))
    p = found.get("p", "").lower()
    if p not in POLICIES:
        # §6.6.3 step 6: a record without a valid p= but with a valid rua= is p=none.
        if not rua:
            raise DMARCSyntaxError(f"p={p!r} is not none, quarantine or reject")
        p = "none"
    sp = found.get("sp", p).lower()
    np = found.get("np", "").lower() or None
    if sp not in POLICIES or (np is not None and np not in POLICIES):
        raise DMARCSyntaxError("sp= or np= is not none, quarantine or reject")
    try:
        pct = int(found.get("pct", "100"))
    except ValueError:
        raise DMARCSyntaxError("pct= is not a number") from None
    adkim, aspf = found.get("adkim", "r").lower(), found.get("aspf", "r").lower()
    if adkim not in ("r", "s") or aspf not in ("r", "s"):
        raise DMARCSyntaxError("adkim= and aspf= are r or s")
    return DMARCRecord(
        p=p,
        sp=sp,
        pct=min(max(pct, 0), 100),
        adkim=adkim,
        aspf=aspf,
        rua=rua,
        ruf=_uris(found.get("ruf", "")),
        fo=found.get("fo", "0"),
        np=np,
        testing=found.get("t", "n").lower() == "y",
    )


def _uris(value: str) -> tuple[str, ...]:
    return tuple(u.strip() for u in value.split(",") if u.strip())


@dataclass(frozen=True, slots=True)
class Policy:
    """A DMARC record and the domain it was found at (the From domain or its organization)."""

    domain: str
    record: DMARCRecord


class DiscoveryError(Exception):
    """A record exists but is unusable (``permerror``)."""


async def discover(resolver: dns.asyncresolver.Resolver, from_domain: str) -> Policy | None:
    """§6.6.3: the From domain's record, else its organizational domain's; None when there
    is none. :class:`TempDNSError` when the DNS failed, :class:`DiscoveryError` when the
    record is broken."""
    candidates = [from_domain]
    organization = organizational_domain(from_domain)
    if organization != from_domain:
        candidates.append(organization)
    for domain in candidates:
        records = [
            r.decode("utf-8", "replace")
            for r in await txt_records(resolver, f"_dmarc.{domain}")
            if r.replace(b" ", b"")[:8].upper() == b"V=DMARC1"
        ]
        if len(records) > 1:
            return None  # §6.6.3 step 5: more than one record: no policy
        if records:
            try:
                return Policy(domain, parse_record(records[0]))
            except DMARCSyntaxError as exc:
                raise DiscoveryError(f"_dmarc.{domain}: {exc}") from exc
    return None


@dataclass(frozen=True, slots=True)
class DMARCResult:
    #: pass, fail, none (no policy), temperror, permerror.
    result: str
    from_domain: str
    #: Where the policy was found ("" without one), and the policy that applied to this
    #: message (p, or sp for a subdomain; "none" without a policy).
    policy_domain: str = ""
    policy: str = "none"
    #: What is done with it after sampling and overrides: none, quarantine or reject.
    disposition: str = "none"
    #: The aligned authenticated identifiers (a DKIM d=, the SPF domain), if any.
    dkim_aligned: str | None = None
    spf_aligned: str | None = None
    #: Overrides as (type, comment): sampled_out, local_policy… (RFC 7489 Appendix C).
    reasons: tuple[tuple[str, str], ...] = ()
    record: DMARCRecord | None = field(default=None, compare=False)
    reason: str = ""


def aligned(identifier: str, from_domain: str, mode: str) -> bool:
    """§3.1.1, §3.1.2: strict is the same name, relaxed the same organizational domain."""
    identifier, from_domain = identifier.lower().rstrip("."), from_domain.lower().rstrip(".")
    if mode == "s":
        return identifier == from_domain
    return organizational_domain(identifier) == organizational_domain(from_domain)


def evaluate(
    from_domain: str,
    policy: Policy | None,
    spf: SPFResult,
    dkim: Sequence[DKIMResult],
    *,
    arc: ARCResult | None = None,
    trusted_sealers: Collection[str] = (),
    sample: float = 0.0,
) -> DMARCResult:
    """The DMARC result and disposition of a message from ``from_domain``. ``sample`` is a
    number in [0, 1) drawn for this message: it is sampled in when ``sample * 100 < pct``."""
    if policy is None:
        return DMARCResult("none", from_domain)
    record = policy.record
    dkim_aligned = next(
        (
            d.domain
            for d in dkim
            if d.result == "pass" and aligned(d.domain, from_domain, record.adkim)
        ),
        None,
    )
    spf_aligned = (
        spf.domain
        if spf.result == "pass" and spf.domain and aligned(spf.domain, from_domain, record.aspf)
        else None
    )
    applied = record.p if from_domain == policy.domain else record.sp
    passed = DMARCResult(
        "pass",
        from_domain,
        policy.domain,
        applied,
        dkim_aligned=dkim_aligned,
        spf_aligned=spf_aligned,
        record=record,
    )
    if dkim_aligned or spf_aligned:
        return passed
    disposition = applied
    reasons: list[tuple[str, str]] = []
    if disposition != "none" and (sample * 100 >= record.pct or record.testing):
        disposition = _DOWNGRADE[disposition]
        reasons.append(("sampled_out", "t=y" if record.testing else f"pct={record.pct}"))
    if disposition != "none" and arc is not None and arc.result == "pass":
        trusted = {s.lower().rstrip(".") for s in trusted_sealers}
        vouching = [
            (i, d) for i, d in enumerate(arc.sealers, 1) if d.lower().rstrip(".") in trusted
        ]
        if vouching:
            # RFC 8617 §7.2.1: the override is told in the report's reason.
            i, d = vouching[-1]
            reasons.append(("local_policy", f"arc=pass as[{i}].d={d}"))
            disposition = "none"
    return dataclasses.replace(
        passed, result="fail", disposition=disposition, reasons=tuple(reasons)
    )


def report_row(
    result: DMARCResult,
    *,
    day: str,
    source_ip: str,
    envelope_from: str,
    envelope_to: str,
    spf: SPFResult,
    dkim: Sequence[DKIMResult],
) -> DmarcRow | None:
    """The message's line of the policy domain's aggregate report (None without a policy)."""
    record = result.record
    if record is None or not result.policy_domain:
        return None
    policy = {
        "domain": result.policy_domain,
        "adkim": record.adkim,
        "aspf": record.aspf,
        "p": record.p,
        "sp": record.sp,
        "pct": record.pct,
        "np": record.np,
        "fo": record.fo,
        "rua": list(record.rua),
    }
    row = {
        "source_ip": source_ip,
        "disposition": result.disposition,
        "dkim": "pass" if result.dkim_aligned else "fail",
        "spf": "pass" if result.spf_aligned else "fail",
        "reasons": [{"type": t, "comment": c} for t, c in result.reasons],
        "header_from": result.from_domain,
        "envelope_from": envelope_from,
        "envelope_to": envelope_to,
        "dkim_results": [
            {"domain": d.domain, "selector": d.selector, "result": d.result} for d in dkim
        ],
        "spf_results": (
            [
                {
                    "domain": spf.domain,
                    "scope": "helo" if spf.identity == "helo" else "mfrom",
                    "result": spf.result,
                }
            ]
            if spf.domain
            else []
        ),
    }
    return DmarcRow(
        day,
        result.policy_domain,
        json.dumps(policy, sort_keys=True),
        json.dumps(row, sort_keys=True),
    )

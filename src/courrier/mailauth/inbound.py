"""What the MX finds out about each message it receives, and what it does about it.

SPF is started as soon as MAIL FROM is known (:meth:`InboundAuth.start_spf`) and runs while the
client sends RCPT and DATA. After DATA, :meth:`InboundAuth.check` verifies the DKIM signatures
and the ARC chain side by side, finds the From domain's DMARC policy and evaluates it, and
returns a :class:`Verdict`: the Authentication-Results and Received-SPF fields to put in
front of the message, the action (deliver, to Junk, or refuse), the message without forged
Authentication-Results, and the row for the sender's aggregate report.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import dns.asyncresolver

from courrier.config import Settings
from courrier.dns.resolver import TempDNSError, make_resolver
from courrier.mailauth import authresults, dmarc
from courrier.mailauth.arc import ARCResult, verify_arc
from courrier.mailauth.dkimverify import DKIMResult, verify_dkim
from courrier.mailauth.signing import author_domain
from courrier.mailauth.spf import SPFResult, check_spf
from courrier.store.dmarcresults import DmarcRow

log = logging.getLogger("courrier.mailauth")

#: What becomes of a message: delivered as usual, delivered to Junk, or refused.
DELIVER, JUNK, REJECT = "deliver", "junk", "reject"


@dataclass(frozen=True, slots=True)
class Verdict:
    spf: SPFResult
    dkim: tuple[DKIMResult, ...]
    arc: ARCResult
    dmarc: dmarc.DMARCResult
    #: Authentication-Results and Received-SPF, CRLF-terminated, to put in front.
    headers: str
    action: str
    #: The line of the From domain's aggregate report (None without a DMARC policy).
    report: DmarcRow | None
    #: The content as it is to be stored: without forged Authentication-Results.
    message: bytes
    #: Our Authentication-Results on one line, for the ARC-Authentication-Results of a seal.
    payload: str

    def summary(self) -> str:
        """One log line: ``spf=pass dkim=pass dmarc=pass (p=none) arc=none``."""
        dkim_text = ",".join(d.result for d in self.dkim) or "none"
        return (
            f"spf={self.spf.result} dkim={dkim_text} dmarc={self.dmarc.result}"
            f" (p={self.dmarc.policy} dis={self.dmarc.disposition}) arc={self.arc.result}"
            f" action={self.action}"
        )


class InboundAuth:
    """The checks, with the resolver they share (and its cache)."""

    def __init__(
        self,
        settings: Settings,
        resolver: dns.asyncresolver.Resolver | None = None,
        *,
        sample: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.resolver = resolver or make_resolver(settings, timeout=20)
        self.authserv_id = settings.mailauth.authserv_id or settings.server.hostname
        self.trusted = frozenset(s.lower() for s in settings.mailauth.arc_trusted_sealers)
        self.sample = sample

    def start_spf(self, *, client_ip: str, mail_from: str, helo: str) -> asyncio.Task[SPFResult]:
        """Start the SPF check of this transaction (RFC 7208 §2.4, §2.3 for a null sender)."""
        return asyncio.ensure_future(
            check_spf(self.resolver, client_ip=client_ip, mail_from=mail_from, helo=helo)
        )

    async def check(
        self,
        message: bytes,
        *,
        spf: asyncio.Task[SPFResult],
        client_ip: str,
        helo: str,
        mail_from: str,
        envelope_to: str,
    ) -> Verdict:
        dkim_results, arc_result = await asyncio.gather(
            verify_dkim(message, self.resolver), verify_arc(message, self.resolver)
        )
        spf_result = await spf
        from_domain = author_domain(message)
        outcome = await self._dmarc(from_domain, spf_result, dkim_results, arc_result)
        found = authresults.results(spf_result, dkim_results, outcome, arc_result)
        headers = authresults.header(self.authserv_id, found) + spf_result.received_spf(
            client_ip=client_ip, helo=helo, receiver=self.authserv_id
        )
        action = DELIVER
        if outcome.disposition == "quarantine":
            action = JUNK
        elif outcome.disposition == "reject":
            action = REJECT if self.settings.mailauth.dmarc_reject == "reject" else JUNK
        report = dmarc.report_row(
            outcome,
            day=time.strftime("%Y-%m-%d", time.gmtime()),
            source_ip=client_ip,
            envelope_from=mail_from.rpartition("@")[2].lower(),
            envelope_to=envelope_to,
            spf=spf_result,
            dkim=dkim_results,
        )
        return Verdict(
            spf_result,
            tuple(dkim_results),
            arc_result,
            outcome,
            headers,
            action,
            report,
            authresults.strip_forged(message, self.authserv_id),
            authresults.payload(self.authserv_id, found),
        )

    async def _dmarc(
        self,
        from_domain: str | None,
        spf: SPFResult,
        dkim: list[DKIMResult],
        arc: ARCResult,
    ) -> dmarc.DMARCResult:
        if from_domain is None:
            # RFC 7489 §6.6.1: DMARC needs exactly one author domain; without it there is no
            # policy to apply (the message is still delivered, and told so).
            return dmarc.DMARCResult("permerror", "", reason="not exactly one From domain")
        try:
            policy = await dmarc.discover(self.resolver, from_domain)
        except TempDNSError as exc:
            return dmarc.DMARCResult("temperror", from_domain, reason=str(exc))
        except dmarc.DiscoveryError as exc:
            return dmarc.DMARCResult("permerror", from_domain, reason=str(exc))
        return dmarc.evaluate(
            from_domain,
            policy,
            spf,
            dkim,
            arc=arc,
            trusted_sealers=self.trusted,
            sample=self.sample(),
        )

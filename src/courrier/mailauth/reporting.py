"""The daily reports we send: DMARC aggregate reports (RFC 7489 §7.2) on the mail our MX
checked, and SMTP TLS reports (RFC 8460) on the sessions our queue opened, once a UTC day is
over.

What this module owns: the run over one day (:func:`send_day`) and its schedule
(:class:`ReportScheduler`). For each policy domain with counted rows (DMARC) or sessions
(TLS-RPT), it finds where the report may go (:mod:`~courrier.mailauth.aggregate`,
:mod:`~courrier.mailauth.tlsrpt`), builds it, keeps it in the store as sent, and only then
queues the message, DKIM-signed by :class:`~courrier.mailauth.signing.Signer`. Keeping it first
is the claim: the report id is made from the kind, day, domain and organisation, so every node
on one PostgreSQL makes the same one, the store keeps a report once, and only the node whose
row went in sends it. A domain with nowhere to send to gets no row: it is looked at again at the
next run (a DNS failure now may be an answer then).

Report mail for an address of a domain we host is delivered to its mailbox, never sent around
through our own MX: there it would be DMARC-checked and counted, and tomorrow's report would be
about today's. Our queue's sessions to domains we host are not reported (that would be us
telling ourselves about ourselves). Report mail asks for no delivery status notifications
(RFC 3461 NOTIFY=NEVER): a report that cannot be delivered is dropped, not bounced to the
postmaster.
"""

from __future__ import annotations

import asyncio
import calendar
import dataclasses
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from itertools import groupby
from typing import Any

import dns.asyncresolver

from courrier.config import Settings
from courrier.delivery.local import LocalRecipient, Trace, deliver
from courrier.delivery.recipients import resolve
from courrier.dns.resolver import TempDNSError, make_resolver
from courrier.mailauth import aggregate, tlsrpt
from courrier.mailauth.signing import Signer
from courrier.store import Store, StoreError
from courrier.store.dmarcresults import DmarcCount
from courrier.store.queue import OutboundRecipient
from courrier.store.reports import Report
from courrier.store.transport import PolicyDay

__all__ = ["ReportScheduler", "previous_day", "report_from", "report_org", "send_day"]

log = logging.getLogger("courrier.mailauth")

DAY = 86400
#: Days of DMARC results kept before the day being reported (reported, or too old to be).
KEEP_DAYS = 3


def report_org(settings: Settings) -> str:
    """The reporting organisation: ``mailauth.report_org``, else the server's host name."""
    return settings.mailauth.report_org or settings.server.hostname


def report_from(settings: Settings) -> str:
    """The reports' author and sender: ``mailauth.report_from``, else postmaster@hostname."""
    return settings.mailauth.report_from or f"postmaster@{settings.server.hostname}"


def period(day: str) -> tuple[int, int]:
    """A UTC day (``YYYY-MM-DD``) as its first and last second, as the large reporters write
    a day's report (and RFC 8460's example, Appendix B)."""
    begin = calendar.timegm(time.strptime(day, "%Y-%m-%d"))
    return begin, begin + DAY - 1


def previous_day(now: float) -> str:
    """The UTC day before the one ``now`` is in."""
    return time.strftime("%Y-%m-%d", time.gmtime(now - DAY))


def _report_id(kind: str, day: str, domain: str, org: str) -> tuple[str, str]:
    """The report id, the same on every node, and its unique part (letters and digits, for
    the file name). No "@" in it: report readers (parsedmarc) cut an id at the "@", taking
    it for a Message-ID; the Subject puts it in angle brackets (RFC 7489 §7.2.1.1)."""
    unique = hashlib.sha256(f"{kind}\n{day}\n{domain}\n{org}".encode()).hexdigest()[:16]
    return f"{day}.{domain}.{unique}", unique


async def send_day(
    settings: Settings,
    store: Store,
    day: str,
    *,
    resolver: dns.asyncresolver.Resolver | None = None,
    wake: Callable[[], None] | None = None,
    now: float | None = None,
) -> list[Report]:
    """Send the reports of ``day`` (UTC, ``YYYY-MM-DD``) not sent yet, by this node or
    another; the reports this run sent, as kept. ``wake`` is told when mail was queued (the
    queue's :meth:`~courrier.queue.runner.QueueRunner.wake`). DMARC results older than
    KEEP_DAYS before ``day`` are dropped."""
    run = _Run(
        settings,
        store,
        resolver or make_resolver(settings),
        wake,
        time.time() if now is None else now,
    )
    return await run.day(day)


class _Run:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        resolver: dns.asyncresolver.Resolver,
        wake: Callable[[], None] | None,
        now: float,
    ) -> None:
        self.settings = settings
        self.store = store
        self.resolver = resolver
        self.wake = wake
        self.now = now
        self.org = report_org(settings)
        self.sender = report_from(settings)
        #: The "Submitter" of the Subject and file name is a domain (§7.2.1.1): the sender's.
        self.submitter = self.sender.rpartition("@")[2].lower()
        self.signer = Signer(store)
        #: The (kind, domain, report id) of the reports of the day already sent.
        self.done: set[tuple[str, str, str]] = set()

    async def day(self, day: str) -> list[Report]:
        begin, _ = period(day)
        self.done = {
            (r.kind, r.domain, r.report_id)
            for r in await self.store.list_reports(direction="sent")
            if r.begin_at == begin
        }
        sent: list[Report] = []
        for domain, counts in groupby(await self.store.dmarc_day(day), lambda c: c.policy_domain):
            report = await self._dmarc(day, domain, list(counts))
            if report is not None:
                sent.append(report)
        hosted = {d.name for d in await self.store.list_domains()}
        for domain, policies in groupby(
            await self.store.tls_report(day), lambda p: p.policy_domain
        ):
            if domain in hosted:
                continue
            report = await self._tlsrpt(day, domain, list(policies))
            if report is not None:
                sent.append(report)
        oldest = time.strftime("%Y-%m-%d", time.gmtime(begin - KEEP_DAYS * DAY))
        await self.store.forget_dmarc_before(oldest)
        return sent

    async def _dmarc(self, day: str, domain: str, counts: list[DmarcCount]) -> Report | None:
        report_id, unique = _report_id("dmarc", day, domain, self.org)
        if ("dmarc", domain, report_id) in self.done:
            return None
        rua = aggregate.published_policy(counts).get("rua") or []
        found = await aggregate.destinations(self.resolver, domain, [str(u) for u in rua])
        if not found:
            log.info("DMARC report for %s (%s): nowhere to send it", domain, day)
            return None
        begin, end = period(day)
        xml = aggregate.feedback_xml(
            counts, org=self.org, email=self.sender, report_id=report_id, begin=begin, end=end
        )
        attachment = aggregate.gzipped(xml)
        name = aggregate.filename(self.submitter, domain, begin, end, unique)

        async def composed(to: Sequence[aggregate.Destination]) -> bytes:
            raw = aggregate.message(
                sender=self.sender,
                to=[d.address for d in to],
                domain=domain,
                submitter=self.submitter,
                report_id=report_id,
                report=attachment,
                name=name,
                begin=begin,
                end=end,
                now=self.now,
            )
            return await self.signer.sign(raw, int(self.now))

        raw = await composed(found)
        # §7.2.1: the size a limit applies to is the message's, after gzip and base64.
        kept = aggregate.within_limits(found, len(raw))
        if not kept:
            # §7.2.2's error report (that a report was too large) is not sent.
            log.info("DMARC report for %s (%s): larger than every rua's size limit", domain, day)
            return None
        if len(kept) != len(found):
            raw = await composed(kept)
        to = [d.address for d in kept]
        summary: dict[str, Any] = {**aggregate.summary(counts), "to": to}
        return await self._send(
            self._row("dmarc", domain, report_id, day, summary, xml),
            raw,
            to,
        )

    async def _tlsrpt(self, day: str, domain: str, policies: list[PolicyDay]) -> Report | None:
        report_id, unique = _report_id("tlsrpt", day, domain, self.org)
        if ("tlsrpt", domain, report_id) in self.done:
            return None
        try:
            to = await tlsrpt.rua(self.resolver, domain)
        except TempDNSError as exc:
            log.warning("TLS report for %s (%s): not sent this time: %s", domain, day, exc)
            return None
        if not to:
            return None
        begin, end = period(day)
        content = tlsrpt.report_json(
            policies, org=self.org, contact=self.sender, report_id=report_id, begin=begin, end=end
        )
        raw = tlsrpt.message(
            sender=self.sender,
            to=to,
            domain=domain,
            submitter=self.submitter,
            report_id=report_id,
            report=tlsrpt.gzipped(content),
            name=tlsrpt.filename(self.submitter, domain, begin, end, unique),
            begin=begin,
            end=end,
            now=self.now,
        )
        raw = await self.signer.sign(raw, int(self.now))
        summary: dict[str, Any] = {**tlsrpt.summary(policies), "to": to}
        return await self._send(
            self._row("tlsrpt", domain, report_id, day, summary, content),
            raw,
            to,
        )

    def _row(
        self,
        kind: str,
        domain: str,
        report_id: str,
        day: str,
        summary: dict[str, Any],
        content: str,
    ) -> Report:
        begin, end = period(day)
        return Report(
            kind=kind,
            direction="sent",
            domain=domain,
            org=self.org,
            report_id=report_id,
            begin_at=begin,
            end_at=end,
            created_at=int(self.now),
            summary=json.dumps(summary),
            content=content,
        )

    async def _send(self, report: Report, raw: bytes, to: list[str]) -> Report | None:
        """Claim ``report`` (keep it as sent) and, when this node's row went in, queue it."""
        kept = await self.store.add_report(report)
        what = f"{'DMARC' if report.kind == 'dmarc' else 'TLS'} report {report.report_id}"
        if kept is None:
            log.info("%s: already sent", what)
            return None
        if not raw.startswith(b"DKIM-Signature:"):
            # RFC 8460 §5.3: receivers ignore TLS reports without one; RFC 7489 §7.2.1.1: the
            # report must pass DMARC.
            log.warning("%s goes unsigned: no DKIM key for %s", what, self.submitter)
        try:
            await self._queue(raw, to, what)
        except StoreError as exc:
            log.error("%s kept but not queued, so not sent: %s", what, exc)
        return dataclasses.replace(report, id=kept)

    async def _queue(self, raw: bytes, to: list[str], what: str) -> None:
        """Deliver ``raw`` to the mailboxes of ``to`` that are ours and queue it for the rest,
        in one transaction (as the queue's bounces are)."""
        hostname = self.settings.server.hostname
        separator = self.settings.accounts.plus_separator
        local: list[LocalRecipient] = []
        remote: list[OutboundRecipient] = []
        for address in to:
            found = await resolve(self.store, address.lower(), separator=separator)
            if not found.local_domain:
                remote.append(OutboundRecipient(address, "NEVER"))
                continue
            if not found:
                log.warning("%s: <%s> is no address here; not delivered to it", what, address)
            local.extend(LocalRecipient(address, account) for account in found.accounts)
            remote.extend(OutboundRecipient(target, "NEVER") for target in found.forwards)
        queue_id = secrets.token_hex(5).upper()
        trace = Trace(hostname, "127.0.0.1", None, hostname, "local", queue_id)
        await deliver(
            self.store,
            raw,
            sender=self.sender,
            recipients=local,
            trace=trace,
            separator=separator,
            remote=remote,
        )
        log.info("%s: %s to %s", queue_id, what, ", ".join(f"<{a}>" for a in to))
        if remote and self.wake is not None:
            self.wake()


class ReportScheduler:
    """Sends the previous UTC day's reports once soon after the start, then every hour: a
    run for a day already sent costs a look at the store and sends nothing, and one that
    found the DNS failing gets another chance.

    ``wake`` (the queue runner's) is called when report mail was queued, so that it leaves
    at once rather than at the queue's next scan."""

    #: Seconds between runs.
    interval: float = 3600.0

    def __init__(
        self, settings: Settings, store: Store, wake: Callable[[], None] | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.wake = wake
        self.resolver = make_resolver(settings)

    async def run_once(self, now: float | None = None) -> list[Report]:
        """Send the reports of the day before ``now`` (UTC) not sent yet."""
        now = time.time() if now is None else now
        return await send_day(
            self.settings,
            self.store,
            previous_day(now),
            resolver=self.resolver,
            wake=self.wake,
            now=now,
        )

    async def run(self) -> None:
        """Until cancelled; nothing when ``mailauth.reports`` is off."""
        if not self.settings.mailauth.reports:
            return
        while True:
            try:
                await self.run_once()
            except Exception:
                # The reports are not worth stopping the server for: try again next time.
                log.exception("reports: the run failed; trying again in an hour")
            await asyncio.sleep(self.interval)

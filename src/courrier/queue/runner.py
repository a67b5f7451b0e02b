"""The queue workers: take due recipients, deliver them, write down what happened.

One :class:`QueueRunner` per process, woken when mail is queued (:meth:`QueueRunner.wake`) and
at least every ``queue.scan_interval`` seconds. Each pass leases up to ``queue.batch`` due
recipients (the store's leases: several workers or nodes never hold the same recipient) and
groups them by message and destination domain: one connection and one transaction per group,
at most ``queue.concurrency`` at a time. A group's hosts (:mod:`courrier.queue.routing`) are
tried in order until one holds a conversation. How each host's TLS is judged comes from
:mod:`courrier.queue.tlspolicy`: DANE where the DNS says so (RFC 7672), else the domain's
MTA-STS policy (RFC 8461), else STARTTLS whenever offered (opportunistic, RFC 7435: the
certificate is not checked, clear text when TLS fails); a host that fails an enforced check
is not used, and every session's TLS outcome is counted for TLS-RPT (RFC 8460). A REQUIRETLS
message goes only to hosts authenticated by DANE or MTA-STS (RFC 8689 §4.2.1). Each recipient
then ends ``sent``,
``failed`` (a 5xx, or a domain that takes no mail) or is tried again after
``retry_min``·2^attempts seconds (at most ``retry_max``) until the message is
``queue.lifetime`` old, when it fails (RFC 5321 §4.5.4.1). Every attempt is logged with the
queue id and ``status=``, as Postfix does. The recipients of a message that failed in a pass
(and whose NOTIFY asks for it, RFC 3461) go back to its sender in one RFC 3464 report, sent
with the null reverse-path, before the outcome is written; recipients still retried once the
message is ``queue.delay_warning`` old get one delay report each, once. A message from the
null reverse-path gets none (RFC 5321 §4.5.5: no bounce loops).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import os
import re
import secrets
import time
from typing import Literal

from courrier.config import Settings, parse_hostport
from courrier.delivery.local import LocalRecipient, Trace, deliver
from courrier.delivery.recipients import resolve
from courrier.message import dsn
from courrier.queue.routing import (
    Host,
    LookupFailed,
    NoMail,
    addresses_of,
    make_resolver,
    route,
)
from courrier.queue.tlspolicy import (
    HostPlan,
    Mismatch,
    Report,
    TransportSecurity,
    classify,
    opportunistic,
)
from courrier.smtp.client import SMTPClient, SMTPClientError, TLSFailed
from courrier.smtp.client_proto import BodyType, Envelope, Outcome, Recipient
from courrier.store import (
    LeasedMessage,
    LeasedRecipient,
    RecipientResult,
    Relay,
    Store,
    StoreError,
)
from courrier.store.queue import OutboundRecipient
from courrier.store.transport import TLSSession

log = logging.getLogger("courrier.queue")

#: Through a smarthost: its own TLS rules (queue.relay_*), no per-domain policy.
_NO_REPORT = Report("no-policy-found")
_BODY_TYPES: dict[str | None, BodyType] = {"8BITMIME": "8BITMIME", "BINARYMIME": "BINARYMIME"}
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


class PolicyRefused(SMTPClientError):
    """The host failed a check its transport security plan enforces: not used, mail waits.
    The message starts with the enhanced status code for the deferral."""


class QueueRunner:
    def __init__(self, settings: Settings, store: Store, *, owner: str | None = None) -> None:
        self.settings = settings
        self.store = store
        self.owner = owner or f"{settings.server.hostname}:{os.getpid()}"
        self.resolver = make_resolver(settings)
        self.tls = opportunistic()
        self.security = TransportSecurity(settings, store, self.resolver)
        q = settings.queue
        #: The smarthost for all mail (queue.relayhost), unless its sender's domain has its own
        #: (``courrier domain relay``, read at each pass).
        self.relay: Relay | None = None
        if q.relayhost:
            host, port = parse_hostport(q.relayhost, 587, key="queue.relayhost")
            self.relay = Relay(
                host,
                port,
                q.relay_security,
                q.relay_verify,
                q.relay_username,
                q.relay_password,
            )
        self.domain_relays: dict[str, Relay] = {}
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look at the queue now (mail was just queued)."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled."""
        while True:
            try:
                while await self.run_once():
                    pass  # a full batch: there may be more due
            except StoreError as exc:
                log.warning("queue: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.queue.scan_interval)
            self._wake.clear()

    async def run_once(self) -> bool:
        """One pass; True when it took a full batch."""
        q = self.settings.queue
        now = int(time.time())
        leased = await self.store.lease_queue(self.owner, now, now + q.lease, q.batch)
        if leased:
            self.domain_relays = await self.store.list_domain_relays()
        groups = [
            (message, [r for r in message.recipients if r.domain == domain])
            for message in leased
            for domain in dict.fromkeys(r.domain for r in message.recipients)
        ]
        slots = asyncio.Semaphore(q.concurrency)

        async def attempt(message: LeasedMessage, recipients: list[LeasedRecipient]) -> None:
            async with slots:
                results, answered_by = await self._deliver(message, recipients)
            await self._finish(message, recipients, results, answered_by)

        await asyncio.gather(*(attempt(m, rs) for m, rs in groups))
        return sum(len(m.recipients) for m in leased) >= q.batch

    async def _finish(
        self,
        message: LeasedMessage,
        recipients: list[LeasedRecipient],
        results: list[RecipientResult],
        answered_by: str | None,
    ) -> None:
        """Report the failures to the sender, then write the outcomes, at once for each
        destination: a crash after a server's 250 can then repeat one delivery at most.
        ``answered_by``: the server that gave the replies (the reports' Remote-MTA)."""
        failed = [
            (r, result)
            for r, result in zip(recipients, results, strict=True)
            if result.state == "failed" and dsn.wanted(r.notify, "failed")
        ]
        if failed and message.sender:
            await self._bounce(message, failed, "failed", answered_by)
        warning = self.settings.queue.delay_warning
        if warning and message.sender and time.time() - message.created_at >= warning:
            delayed = [
                (r, result)
                for r, result in zip(recipients, results, strict=True)
                if result.state == "queued" and not r.warned and dsn.wanted(r.notify, "delayed")
            ]
            if delayed and await self._bounce(message, delayed, "delayed", answered_by):
                warned = {r.id for r, _ in delayed}
                results = [
                    dataclasses.replace(x, warned=True) if x.recipient_id in warned else x
                    for x in results
                ]
        for queue_id in await self.store.record_queue(results):
            log.info("%s: removed", queue_id)

    async def _deliver(
        self, message: LeasedMessage, recipients: list[LeasedRecipient]
    ) -> tuple[list[RecipientResult], str | None]:
        """One attempt for recipients of one domain: their results, and the name of the
        server that answered (None when none did)."""
        domain = recipients[0].domain
        # Postfix's sender_dependent_relayhost_maps: the sender's domain may have its own.
        relay = self.domain_relays.get(message.sender.rpartition("@")[2].lower(), self.relay)
        try:
            if relay is not None:
                relay_name = relay.host
                try:
                    relay_addresses = (
                        (relay_name,)
                        if _is_address(relay_name)
                        else await addresses_of(relay_name, self.resolver)
                    )
                except NoMail as exc:  # our relay's name: a setting to fix, not a bounce
                    raise LookupFailed(str(exc)) from exc
                hosts = [Host(relay_name, relay_addresses)]
            else:
                hosts = await route(domain, self.resolver)
        except NoMail as exc:
            code = 556 if exc.code == "5.1.10" else 550
            reply = f"{code} {exc.code} {exc}"
            return self._all(message, recipients, reply, "failed", "-"), None
        except LookupFailed as exc:
            return self._all(message, recipients, f"451 4.4.3 {exc}", "queued", "-"), None
        content = await self.store.read_queued(message.id)
        envelope = Envelope(
            message.sender,
            tuple(Recipient(r.address, r.notify, r.orcpt) for r in recipients),
            body=_BODY_TYPES.get(message.body, "7BIT"),
            smtputf8=message.smtputf8,
            requiretls=message.requiretls,
            envid=message.envid,
            ret=message.ret,
        )
        if relay is not None:
            plans = [HostPlan(h, "may", False, _NO_REPORT) for h in hosts]
            sessions: list[TLSSession] = []
        else:
            plan = await self.security.plan(domain, hosts, requiretls=message.requiretls)
            plans, sessions = plan.hosts, plan.sessions
        errors = []
        refusals = 0
        try:
            for host_plan in plans:
                host = host_plan.host
                if host_plan.refused is not None:
                    log.info(
                        "%s: relay=%s: not used: %s", message.queue_id, host.name, host_plan.refused
                    )
                    errors.append(f"{host.name}: {host_plan.refused}")
                    refusals += 1
                    continue
                for address in host.addresses:
                    where = f"{host.name}[{address}]"
                    try:
                        if relay is not None:
                            outcomes = await self._relay(relay, address, envelope, content)
                        else:
                            outcomes = await self._attempt(
                                address, domain, host_plan, envelope, content, sessions
                            )
                    except SMTPClientError as exc:
                        log.info("%s: relay=%s: %s", message.queue_id, where, exc)
                        errors.append(f"{where}: {exc}")
                        refusals += isinstance(exc, PolicyRefused)
                        continue
                    results = [
                        self._result(message, r, o, where)
                        for r, o in zip(recipients, outcomes, strict=True)
                    ]
                    return results, host.name
        finally:
            await self._count_sessions(sessions)
        # Every host refused on security grounds: 4.7.5 (cryptographic failure) or the
        # REQUIRETLS code, rather than a connection problem.
        status = "4.4.1"
        if errors and refusals == len(errors):
            status = "4.7.10" if message.requiretls else "4.7.5"
        reply = f"451 {status} " + "; ".join(errors)
        return self._all(message, recipients, reply, "queued", "-"), None

    async def _count_sessions(self, sessions: list[TLSSession]) -> None:
        try:
            await self.store.record_tls_sessions(sessions)
        except StoreError as exc:
            log.warning("queue: TLS-RPT results not stored: %s", exc)

    async def _attempt(
        self,
        address: str,
        domain: str,
        plan: HostPlan,
        envelope: Envelope,
        content: bytes,
        sessions: list[TLSSession],
        *,
        tls: Literal["plan", "may", "none"] = "plan",
    ) -> list[Outcome]:
        """One connection to ``address`` under the host's ``plan``: its session is counted in
        ``sessions``. A failure the plan does not enforce is recorded and the mail goes on as
        before: with any certificate on a new connection (``tls="may"``), or in clear."""
        name = plan.host.name
        async with await SMTPClient.connect(
            address, self.settings.queue.outbound_port, local_name=self.settings.server.hostname
        ) as client:
            await client.hello()
            if tls == "none":
                return await self._send(client, envelope, content)
            failure, broken = await self._starttls(client, plan, checked=tls == "plan")
            if tls == "plan":
                sessions.append(
                    self.security.session(domain, plan, address, client.local_address, failure)
                )
            if failure is not None and (plan.enforced or envelope.requiretls):
                # RFC 8461 §5 enforce, RFC 7672 §2.2 DANE, RFC 8689 §4.2.1 REQUIRETLS: this
                # host is not used, and the mail never goes in clear or unauthenticated.
                raise PolicyRefused(f"{failure.result_type}: {failure.reason}")
            if failure is not None:
                log.info("%s[%s]: %s: %s", name, address, failure.result_type, failure.reason)
            if broken:
                # Opportunistic TLS (RFC 7435 §3, Postfix's "may"), or an MTA-STS policy in
                # "testing" (RFC 8461 §5): a server whose TLS fails still gets the mail, on a
                # new connection, with any certificate or else in clear.
                client.close()
                fallback: Literal["may", "none"] = (
                    "may" if tls == "plan" and plan.level != "may" else "none"
                )
                return await self._attempt(
                    address, domain, plan, envelope, content, sessions, tls=fallback
                )
            return await self._send(client, envelope, content)

    async def _starttls(
        self, client: SMTPClient, plan: HostPlan, *, checked: bool
    ) -> tuple[Mismatch | None, bool]:
        """STARTTLS with the plan's context and checks (``checked``) or any certificate: what
        failed, if anything, and whether the connection is lost with it."""
        if "STARTTLS" not in client.extensions:
            return Mismatch("starttls-not-supported", "the server offers no STARTTLS"), False
        context = self.security.context(plan) if checked else self.tls
        try:
            await client.starttls(context, plan.host.name)
        except TLSFailed as exc:
            return classify(exc), True
        return (self.security.check(plan, client.peer_chain()) if checked else None), False

    async def _send(self, client: SMTPClient, envelope: Envelope, content: bytes) -> list[Outcome]:
        if envelope.requiretls and not client.tls:
            # RFC 8689 §4.2.1: a REQUIRETLS message never travels in clear.
            raise SMTPClientError("REQUIRETLS, and the server offers no TLS")
        return await client.send(envelope, content)

    async def _relay(
        self, relay: Relay, address: str, envelope: Envelope, content: bytes
    ) -> list[Outcome]:
        """Through a smarthost: TLS always (implicit or STARTTLS, its certificate checked
        against its name unless ``verify`` is off), then AUTH when it has credentials."""
        context = self.security.verify if relay.verify else self.tls
        implicit = relay.security == "tls"
        async with await SMTPClient.connect(
            address,
            relay.port,
            local_name=self.settings.server.hostname,
            tls=context if implicit else None,
            server_hostname=relay.host,
        ) as client:
            await client.hello()
            if not implicit:
                await client.starttls(context, relay.host)
            if relay.username:
                await client.authenticate(relay.username, relay.password)
            return await client.send(envelope, content)

    def _result(
        self, message: LeasedMessage, recipient: LeasedRecipient, outcome: Outcome, relay: str
    ) -> RecipientResult:
        state = {True: "sent", False: "failed", None: "queued"}[outcome.delivered]
        return self._record(message, recipient, str(outcome.reply), state, relay)

    def _all(
        self,
        message: LeasedMessage,
        recipients: list[LeasedRecipient],
        reply: str,
        state: str,
        relay: str,
    ) -> list[RecipientResult]:
        return [self._record(message, r, reply, state, relay) for r in recipients]

    def _record(
        self,
        message: LeasedMessage,
        recipient: LeasedRecipient,
        reply: str,
        state: str,
        relay: str,
    ) -> RecipientResult:
        q = self.settings.queue
        now = int(time.time())
        next_attempt = 0
        if state == "queued":
            if now - message.created_at >= q.lifetime:
                state, reply = "failed", f"{reply} (gave up after {q.lifetime // 3600} hours)"
            else:
                next_attempt = now + min(q.retry_max, q.retry_min * 2**recipient.attempts)
        status = {"sent": "sent", "failed": "bounced", "queued": "deferred"}[state]
        log.info(
            "%s: to=<%s> relay=%s status=%s (%s)",
            message.queue_id,
            recipient.address,
            relay,
            status,
            reply,
        )
        return RecipientResult(recipient.id, state, reply, next_attempt)

    async def _bounce(
        self,
        message: LeasedMessage,
        failed: list[tuple[LeasedRecipient, RecipientResult]],
        action: dsn.Action,
        remote_mta: str | None,
    ) -> bool:
        """Send ``message``'s sender the report on ``failed`` (or ``delayed``): into its
        mailbox when the sender is ours, through the queue otherwise. False if it was not
        stored."""
        hostname = self.settings.server.hostname
        separator = self.settings.accounts.plus_separator
        failures = []
        for recipient, result in failed:
            status = _STATUS.search(result.reply)
            failures.append(
                dsn.Failure(
                    recipient.address,
                    status[1] if status else "5.0.0",
                    result.reply,
                    remote_mta=remote_mta,
                    original_recipient=recipient.orcpt,
                    action=action,
                )
            )
        queue_id = secrets.token_hex(5).upper()
        try:
            original = await self.store.read_queued(message.id)
            report = dsn.compose(
                reporting_mta=hostname,
                sender=message.sender,
                original=original,
                failures=failures,
                arrival=message.created_at,
                envid=message.envid,
                ret=message.ret,
                now=time.time(),
            )
            found = await resolve(self.store, message.sender, separator=separator)
            local = [LocalRecipient(message.sender, account) for account in found.accounts]
            remote = [OutboundRecipient(a) for a in found.forwards]
            if not found.local_domain:
                remote = [OutboundRecipient(message.sender)]
            if not local and not remote:
                log.warning(
                    "%s: sender <%s> unknown: report dropped", message.queue_id, message.sender
                )
                return False
            trace = Trace(hostname, "127.0.0.1", None, hostname, "local", queue_id)
            await deliver(
                self.store,
                report,
                sender="",
                recipients=local,
                trace=trace,
                separator=separator,
                remote=remote,
            )
        except StoreError as exc:
            log.warning("%s: report to <%s> not stored: %s", message.queue_id, message.sender, exc)
            return False
        log.info(
            "%s: sender %s notification: %s (to <%s>)",
            message.queue_id,
            "delay" if action == "delayed" else "non-delivery",
            queue_id,
            message.sender,
        )
        if remote:
            self.wake()
        return True


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True

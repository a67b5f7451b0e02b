"""The queue workers: take due recipients, deliver them, write down what happened.

One :class:`QueueRunner` per process, woken when mail is queued (:meth:`QueueRunner.wake`) and
at least every ``queue.scan_interval`` seconds. Each pass leases up to ``queue.batch`` due
recipients (the store's leases: several workers or nodes never hold the same recipient) and
groups them by message and destination domain: one transaction per group. The groups that go
the same way (a domain's MX hosts, REQUIRETLS mail apart; or a smarthost, whatever the domain)
share one route (:mod:`courrier.queue.routing`) and one security plan per pass, and are dealt
over a few connections, each sending its share one message after another (at most
``queue.concurrency`` connections at a time in all). A share's hosts are tried in order until
one holds a conversation; what a connection that fails leaves unanswered goes on to the next
address, what was answered keeps its outcome. How each host's TLS is judged comes from
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
from courrier.dns.resolver import make_resolver
from courrier.message import dsn
from courrier.queue.routing import (
    Host,
    LookupFailed,
    NoMail,
    addresses_of,
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
#: A destination gets one more connection (up to ``queue.concurrency``) for each this many
#: messages of a pass; fewer go one after another on one connection. Its setup (connect,
#: greeting, EHLO, STARTTLS, EHLO) costs more round trips than a pipelined transaction.
MESSAGES_PER_NEW_CONNECTION = 10
#: At most this many transactions on one connection, then QUIT (the messages beyond get
#: connections of their own, waiting for a free slot): what one slow or broken session can
#: hold up or send elsewhere stays bounded. Postfix bounds reuse by time instead
#: (smtp_connection_reuse_time_limit, 300 s; smtp_connection_reuse_count_limit is off).
MAX_MESSAGES_PER_CONNECTION = 100


class PolicyRefused(SMTPClientError):
    """The host failed a check its transport security plan enforces: not used, mail waits.
    The message starts with the enhanced status code for the deferral."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Group:
    """One message's recipients in one domain: one transaction."""

    message: LeasedMessage
    recipients: list[LeasedRecipient]


@dataclasses.dataclass(slots=True)
class _Destination:
    """A pass's groups that go the same way: a smarthost's (whatever their domain), or a
    domain's MX hosts, REQUIRETLS mail apart (its security plan differs, RFC 8689 §4.2.1)."""

    relay: Relay | None
    domain: str  # "" through a smarthost
    requiretls: bool
    groups: list[_Group] = dataclasses.field(default_factory=list)


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
        slots = asyncio.Semaphore(q.concurrency)
        await asyncio.gather(*(self._deliver(d, slots) for d in self._destinations(leased)))
        return sum(len(m.recipients) for m in leased) >= q.batch

    def _destinations(self, leased: list[LeasedMessage]) -> list[_Destination]:
        """The pass's (message, domain) groups by the way they go."""
        found: dict[tuple[Relay | None, str, bool], _Destination] = {}
        for message in leased:
            # Postfix's sender_dependent_relayhost_maps: the sender's domain may have its own.
            relay = self.domain_relays.get(message.sender.rpartition("@")[2].lower(), self.relay)
            for domain in dict.fromkeys(r.domain for r in message.recipients):
                group = _Group(message, [r for r in message.recipients if r.domain == domain])
                # A smarthost takes every domain alike; an MX host's plan depends on REQUIRETLS.
                key: tuple[Relay | None, str, bool] = (relay, "", False)
                if relay is None:
                    key = (None, domain, message.requiretls)
                found.setdefault(key, _Destination(*key)).groups.append(group)
        return list(found.values())

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

    async def _deliver(self, destination: _Destination, slots: asyncio.Semaphore) -> None:
        """One attempt for a destination's groups: its hosts and their security plan, found
        once, then the groups dealt over its connections (:func:`_shares`)."""
        try:
            async with slots:
                plans, sessions = await self._plan(destination)
        except NoMail as exc:
            code = 556 if exc.code == "5.1.10" else 550
            await self._finish_all(destination.groups, f"{code} {exc.code} {exc}", "failed")
            return
        except LookupFailed as exc:
            await self._finish_all(destination.groups, f"451 4.4.3 {exc}", "queued")
            return
        shares = _shares(destination.groups, self.settings.queue.concurrency)
        try:
            await asyncio.gather(
                *(self._share(destination, plans, s, sessions, slots) for s in shares)
            )
        finally:
            await self._count_sessions(sessions)

    async def _plan(self, destination: _Destination) -> tuple[list[HostPlan], list[TLSSession]]:
        """The hosts to try in order and how, with the TLS-RPT sessions counted before any
        connection. Raises :class:`NoMail` or :class:`LookupFailed`."""
        relay = destination.relay
        if relay is not None:
            try:
                addresses = (
                    (relay.host,)
                    if _is_address(relay.host)
                    else await addresses_of(relay.host, self.resolver)
                )
            except NoMail as exc:  # our relay's name: a setting to fix, not a bounce
                raise LookupFailed(str(exc)) from exc
            return [HostPlan(Host(relay.host, addresses), "may", False, _NO_REPORT)], []
        domain = destination.domain
        hosts = await route(domain, self.resolver)
        plan = await self.security.plan(domain, hosts, requiretls=destination.requiretls)
        return plan.hosts, plan.sessions

    async def _share(
        self,
        destination: _Destination,
        plans: list[HostPlan],
        groups: list[_Group],
        sessions: list[TLSSession],
        slots: asyncio.Semaphore,
    ) -> None:
        """Some of a destination's groups, over one connection at a time: the hosts' addresses
        in turn until every group is answered. A connection that fails leaves its groups not
        yet answered to the next address; those answered keep their outcome."""
        pending = list(groups)
        errors: list[str] = []
        refusals = 0
        async with slots:
            for host_plan in plans:
                host = host_plan.host
                if host_plan.refused is not None:
                    self._log(pending, f"relay={host.name}: not used: {host_plan.refused}")
                    errors.append(f"{host.name}: {host_plan.refused}")
                    refusals += 1
                    continue
                for address in host.addresses:
                    where = f"{host.name}[{address}]"
                    try:
                        if destination.relay is not None:
                            await self._relay(destination.relay, address, pending)
                        else:
                            await self._attempt(address, destination, host_plan, pending, sessions)
                    except SMTPClientError as exc:
                        self._log(pending, f"relay={where}: {exc}")
                        errors.append(f"{where}: {exc}")
                        refusals += isinstance(exc, PolicyRefused)
                    if not pending:
                        return
        # Every host refused on security grounds: 4.7.5 (cryptographic failure) or the
        # REQUIRETLS code, rather than a connection problem.
        status = "4.4.1"
        if errors and refusals == len(errors):
            status = "4.7.10" if destination.requiretls else "4.7.5"
        await self._finish_all(pending, f"451 {status} " + "; ".join(errors), "queued")

    async def _finish_all(self, groups: list[_Group], reply: str, state: str) -> None:
        """The same outcome for every recipient of ``groups``, no server having answered."""
        await asyncio.gather(
            *(
                self._finish(g.message, g.recipients, self._all(g, reply, state, "-"), None)
                for g in groups
            )
        )

    async def _count_sessions(self, sessions: list[TLSSession]) -> None:
        try:
            await self.store.record_tls_sessions(sessions)
        except StoreError as exc:
            log.warning("queue: TLS-RPT results not stored: %s", exc)

    async def _attempt(
        self,
        address: str,
        destination: _Destination,
        plan: HostPlan,
        pending: list[_Group],
        sessions: list[TLSSession],
        *,
        tls: Literal["plan", "may", "none"] = "plan",
    ) -> None:
        """One connection to ``address`` under the host's ``plan`` for the ``pending`` groups
        (:meth:`_transactions`); its session is counted in ``sessions``. A failure the plan
        does not enforce is recorded and the mail goes on as before: with any certificate on
        a new connection (``tls="may"``), or in clear."""
        name = plan.host.name
        requiretls = destination.requiretls
        async with await SMTPClient.connect(
            address, self.settings.queue.outbound_port, local_name=self.settings.server.hostname
        ) as client:
            await client.hello()
            if tls != "none":
                failure, broken = await self._starttls(client, plan, checked=tls == "plan")
                if tls == "plan":
                    sessions.append(
                        self.security.session(
                            destination.domain, plan, address, client.local_address, failure
                        )
                    )
                if failure is not None and (plan.enforced or requiretls):
                    # RFC 8461 §5 enforce, RFC 7672 §2.2 DANE, RFC 8689 §4.2.1 REQUIRETLS:
                    # this host is not used, and the mail never goes in clear or
                    # unauthenticated.
                    raise PolicyRefused(f"{failure.result_type}: {failure.reason}")
                if failure is not None:
                    log.info("%s[%s]: %s: %s", name, address, failure.result_type, failure.reason)
                if broken:
                    # Opportunistic TLS (RFC 7435 §3, Postfix's "may"), or an MTA-STS policy
                    # in "testing" (RFC 8461 §5): a server whose TLS fails still gets the
                    # mail, on a new connection, with any certificate or else in clear.
                    client.close()
                    fallback: Literal["may", "none"] = (
                        "may" if tls == "plan" and plan.level != "may" else "none"
                    )
                    await self._attempt(address, destination, plan, pending, sessions, tls=fallback)
                    return
            if requiretls and not client.tls:
                # RFC 8689 §4.2.1: a REQUIRETLS message never travels in clear.
                raise SMTPClientError("REQUIRETLS, and the server offers no TLS")
            await self._transactions(client, pending, name, address)

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

    async def _relay(self, relay: Relay, address: str, pending: list[_Group]) -> None:
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
            await self._transactions(client, pending, relay.host, address)

    async def _transactions(
        self, client: SMTPClient, pending: list[_Group], server: str, address: str
    ) -> None:
        """The ``pending`` groups one after another on ``client``, each taken off the list
        and finished once answered, before the next starts: a crash after a 250 repeats one
        delivery per connection at most. No RSET here: :meth:`SMTPClient.send` resets a
        transaction it leaves open (RFC 5321 §4.1.1.5), so each starts afresh."""
        where = f"{server}[{address}]"
        while pending:
            group = pending[0]
            content = await self.store.read_queued(group.message.id)
            outcomes = await client.send(_envelope(group), content)
            del pending[0]
            results = [
                self._result(group.message, r, o, where)
                for r, o in zip(group.recipients, outcomes, strict=True)
            ]
            await self._finish(group.message, group.recipients, results, server)

    def _result(
        self, message: LeasedMessage, recipient: LeasedRecipient, outcome: Outcome, relay: str
    ) -> RecipientResult:
        state = {True: "sent", False: "failed", None: "queued"}[outcome.delivered]
        return self._record(message, recipient, str(outcome.reply), state, relay)

    def _all(self, group: _Group, reply: str, state: str, relay: str) -> list[RecipientResult]:
        return [self._record(group.message, r, reply, state, relay) for r in group.recipients]

    @staticmethod
    def _log(groups: list[_Group], what: str) -> None:
        for group in groups:
            log.info("%s: %s", group.message.queue_id, what)

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


def _shares(groups: list[_Group], concurrency: int) -> list[list[_Group]]:
    """A destination's groups dealt over its connections, in turn (the oldest first on
    each): one per MESSAGES_PER_NEW_CONNECTION, at most ``concurrency`` of them, unless
    that puts more than MAX_MESSAGES_PER_CONNECTION on one."""
    count = min(concurrency, -(-len(groups) // MESSAGES_PER_NEW_CONNECTION))
    count = max(count, -(-len(groups) // MAX_MESSAGES_PER_CONNECTION))
    return [groups[i::count] for i in range(count)]


def _envelope(group: _Group) -> Envelope:
    message = group.message
    return Envelope(
        message.sender,
        tuple(Recipient(r.address, r.notify, r.orcpt) for r in group.recipients),
        body=_BODY_TYPES.get(message.body, "7BIT"),
        smtputf8=message.smtputf8,
        requiretls=message.requiretls,
        envid=message.envid,
        ret=message.ret,
    )

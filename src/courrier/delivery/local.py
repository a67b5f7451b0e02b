"""Local delivery: the one way a message enters mailboxes (SMTP; later APPEND, webmail, imports).

Given the message and the accounts it is for, this picks each account's mailbox (INBOX, or the
folder named by a ``+tag`` when the account has one, as Dovecot's ``lda_mailbox_autocreate=no``
+ subaddress delivery does), writes the trace headers (``Return-Path``, RFC 5321 §4.4, and
``Received``) in front of the content, and stores it for everyone in one transaction,
together with the outbound queue entry for remote recipients and the sender's copy in Sent:
when this returns, every accepted copy is durable, so the SMTP server can say 250.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Sequence
from dataclasses import dataclass

from courrier.store import Account, Appended, Flag, NotFound, Store, StoreError, Target
from courrier.store.dmarcresults import DmarcRow
from courrier.store.queue import Outbound, OutboundRecipient


@dataclass(frozen=True, slots=True)
class LocalRecipient:
    """An accepted recipient: the address the client gave and the account it resolved to."""

    address: str
    account: Account


@dataclass(frozen=True, slots=True)
class Trace:
    """What the ``Received:`` header tells about how the message came (RFC 5321 §4.4)."""

    helo: str
    client_ip: str
    client_name: str | None
    by: str
    #: RFC 3848 "with" keyword: ESMTP, ESMTPS, ESMTPA, ESMTPSA, UTF8SMTPS, …
    protocol: str
    queue_id: str
    tls: str | None = None

    def received(self, recipient: str | None, when: float | None = None) -> str:
        source = f"{self.client_name} " if self.client_name else ""
        date = email.utils.formatdate(when if when is not None else time.time(), localtime=True)
        line = (
            f"Received: from {self.helo} ({source}[{self.client_ip}])\r\n"
            f"\tby {self.by} (courrier) with {self.protocol} id {self.queue_id}"
        )
        if self.tls:
            line += f"\r\n\t({self.tls})"
        if recipient:
            line += f"\r\n\tfor <{recipient}>"
        return f"{line}; {date}\r\n"


@dataclass(frozen=True, slots=True)
class AuthVerdict:
    """What the inbound checks (``courrier.mailauth``) decided for local copies: the header
    fields to add (Authentication-Results, Received-SPF), whether to file them in Junk, and
    the DMARC aggregate report's row to count."""

    headers: str = ""
    junk: bool = False
    report: DmarcRow | None = None


@dataclass(frozen=True, slots=True)
class MailParams:
    """What MAIL FROM asked of the hops after us, kept with queued mail: RFC 3461 ENVID and
    RET (for bounces), RFC 6152 BODY and RFC 6531 SMTPUTF8 (what the next server must
    support), RFC 8689 REQUIRETLS."""

    envid: str | None = None
    ret: str | None = None
    body: str | None = None
    smtputf8: bool = False
    requiretls: bool = False


def tag_of(address: str, separator: str) -> str | None:
    """The ``tag`` of ``user+tag@domain`` (RFC 5233 subaddress), if any."""
    local = address.rpartition("@")[0]
    if not separator or separator not in local:
        return None
    return local.split(separator, 1)[1] or None


async def deliver(
    store: Store,
    raw: bytes,
    *,
    sender: str,
    recipients: Sequence[LocalRecipient],
    trace: Trace,
    separator: str,
    remote: Sequence[OutboundRecipient] = (),
    params: MailParams = MailParams(),
    account_id: int | None = None,
    sent_copy: bool = False,
    verdict: AuthVerdict | None = None,
    forward_headers: bytes = b"",
) -> list[tuple[LocalRecipient, Appended | StoreError]]:
    """Store ``raw`` once for every recipient's account (each account once), queue it for the
    ``remote`` recipients and, with ``sent_copy``, file it (seen) in the Sent mailbox of the
    sender's account ``account_id``, all in one transaction; returns each account's first
    recipient with its outcome. With a ``verdict`` of the inbound checks, its header fields
    go in front of each local copy, the copies go to Junk when it says so, and its DMARC
    report row is counted in the same transaction. ``forward_headers`` (an ARC set) go in
    front of the queued copy."""
    targets: list[Target] = []
    delivered: list[LocalRecipient] = []
    seen: set[int] = set()
    single = len({r.account.id for r in recipients}) == 1
    for recipient in recipients:
        if recipient.account.id in seen:
            continue
        seen.add(recipient.account.id)
        delivered.append(recipient)
        prefix = (
            f"Return-Path: <{sender}>\r\n"
            + (verdict.headers if verdict else "")
            + trace.received(recipient.address if single else None)
        )
        if verdict is not None and verdict.junk:
            mailbox_id = await _junk_for(store, recipient, separator)
        else:
            mailbox_id = await _mailbox_for(store, recipient, separator)
        targets.append(Target(mailbox_id, prefix.encode("utf-8")))
    if sent_copy and account_id is not None:
        sent = await store.directory.special_mailbox_id(account_id, "\\Sent")
        if sent is not None:
            targets.append(Target(sent, flags=Flag.SEEN))
    outbound = None
    if remote:
        outbound = Outbound(
            queue_id=trace.queue_id,
            sender=sender,
            recipients=tuple(remote),
            prefix=forward_headers
            + trace.received(remote[0].address if len(remote) == 1 else None).encode(),
            envid=params.envid,
            ret=params.ret,
            body=params.body,
            smtputf8=params.smtputf8,
            requiretls=params.requiretls,
            account_id=account_id,
        )
    if not targets and outbound is None:
        return []
    results = await store.deliver(
        raw, targets, outbound=outbound, dmarc=verdict.report if verdict else None
    )
    return list(zip(delivered, results[: len(delivered)], strict=True))


async def _junk_for(store: Store, recipient: LocalRecipient, separator: str) -> int:
    """The account's Junk mailbox (special-use \\Junk, RFC 6154), or where it would go."""
    found = await store.directory.special_mailbox_id(recipient.account.id, "\\Junk")
    return found if found is not None else await _mailbox_for(store, recipient, separator)


async def _mailbox_for(store: Store, recipient: LocalRecipient, separator: str) -> int:
    """INBOX, or the folder named by the address's ``+tag`` when the account has one."""
    account_id = recipient.account.id
    tag = tag_of(recipient.address, separator)
    if tag:
        found = await store.directory.mailbox_id(account_id, tag)
        if found is not None:
            return found
    inbox = await store.directory.mailbox_id(account_id, "INBOX")
    if inbox is None:
        raise NotFound("The account has no INBOX.")
    return inbox

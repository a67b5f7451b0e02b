"""What the SMTP server answers to MAIL and RCPT: relay control, recipients, quotas, senders.

Decided while the client is still connected, so that we never accept and then bounce
(backscatter): an unknown local recipient gets 550 5.1.1, a full mailbox 452 4.2.2 (or 552 5.2.2
when the declared SIZE can never fit), a recipient elsewhere 554 5.7.1 unless the client
authenticated. On submission the envelope sender must be the login or one of its aliases.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from courrier.delivery.recipients import resolve
from courrier.smtp.addresses import RELAY_DENIED, AddressError, parse_mailbox
from courrier.store import Account, Store

Reply = tuple[int, str, str]

OK: Reply = (250, "2.1.5", "Ok")


@dataclass(slots=True)
class RcptDecision:
    reply: Reply
    #: Local accounts the address resolved to (empty when refused or remote).
    accounts: list[Account] = field(default_factory=list)
    #: Addresses to hand to the outbound queue (a remote recipient, or forwards of an alias).
    remote: list[str] = field(default_factory=list)


async def check_recipient(
    store: Store,
    path: str,
    *,
    authenticated: Account | None,
    size: int | None,
    separator: str,
) -> RcptDecision:
    """Decide on ``RCPT TO:<path>``."""
    try:
        mailbox = parse_mailbox(path)
    except AddressError as exc:
        return RcptDecision((exc.code, exc.enhanced, exc.text))
    found = None
    if not mailbox.is_literal:  # address literals are never one of our domains
        found = await resolve(store, mailbox.address, separator=separator)
    if found is None or not found.local_domain:
        if authenticated is None:
            return RcptDecision(RELAY_DENIED)
        return RcptDecision(OK, remote=[mailbox.address])
    if not found:
        return RcptDecision((550, "5.1.1", f"<{mailbox.address}>: Recipient address rejected"))
    for account in found.accounts:
        if account.disabled:
            return RcptDecision((550, "5.2.1", f"<{mailbox.address}>: Mailbox disabled"))
        if account.quota_bytes:
            if size is not None and size > account.quota_bytes:
                # RFC 3463: 5.2.2 when the message can never fit, 4.2.2 while it is full.
                return RcptDecision((552, "5.2.2", f"<{mailbox.address}>: Mailbox full"))
            used = await store.used_bytes(account.id)
            if used + (size or 0) > account.quota_bytes:
                return RcptDecision((452, "4.2.2", f"<{mailbox.address}>: Mailbox full"))
    return RcptDecision(OK, accounts=list(found.accounts), remote=list(found.forwards))


async def check_sender(store: Store, path: str, *, authenticated: Account | None) -> Reply:
    """Decide on ``MAIL FROM:<path>``; on submission the sender must be the login's own."""
    if authenticated is None:
        if path == "":
            return (250, "2.1.0", "Ok")
        try:
            parse_mailbox(path, allow_routing=True)
        except AddressError as exc:
            return (exc.code, exc.enhanced.replace("5.1.3", "5.1.7"), exc.text)
        return (250, "2.1.0", "Ok")
    try:
        sender = parse_mailbox(path).address if path else ""
    except AddressError as exc:
        return (exc.code, exc.enhanced, exc.text)
    if sender == authenticated.address:
        return (250, "2.1.0", "Ok")
    alias = await store.directory.alias(sender) if sender else None
    if alias is not None and authenticated.address in alias.targets:
        return (250, "2.1.0", "Ok")
    return (
        553,
        "5.7.1",
        f"<{path}>: Sender address rejected: not owned by user {authenticated.address}",
    )

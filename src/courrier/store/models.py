"""Records the store hands out: plain frozen dataclasses, no database handles inside."""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import NamedTuple


class Flag(IntFlag):
    """IMAP system flags (RFC 9051 §2.3.2), kept as a bit set; keywords are kept as text."""

    SEEN = 1
    ANSWERED = 2
    FLAGGED = 4
    DELETED = 8
    DRAFT = 16


FLAG_NAMES: dict[str, Flag] = {
    "\\seen": Flag.SEEN,
    "\\answered": Flag.ANSWERED,
    "\\flagged": Flag.FLAGGED,
    "\\deleted": Flag.DELETED,
    "\\draft": Flag.DRAFT,
}


class ChangeKind(IntEnum):
    """What a change-log entry records."""

    APPEND = 1
    FLAGS = 2
    EXPUNGE = 3
    MAILBOX = 4


@dataclass(frozen=True, slots=True)
class Domain:
    id: int
    name: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    domain_id: int
    address: str
    password_hash: str
    scram_sha256: str
    role: str
    quota_bytes: int
    used_bytes: int
    highestmodseq: int
    disabled: bool
    created_at: int


@dataclass(frozen=True, slots=True)
class Alias:
    """One address and every target it forwards to (``@domain`` is the catch-all)."""

    address: str
    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Mailbox:
    id: int
    account_id: int
    name: str
    special_use: str | None
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    subscribed: bool
    #: IMAP4rev1 \Recent: messages from this UID on are new to every session.
    first_recent_uid: int = 1
    messages: int = 0
    unseen: int = 0
    size: int = 0


class Message(NamedTuple):
    """A message's row: everything IMAP FETCH needs without reading the blob.

    A named tuple: FETCH and SEARCH build ten thousand of these per command, and a tuple is
    made in a fraction of a frozen dataclass's time.
    """

    id: int
    mailbox_id: int
    uid: int
    modseq: int
    flags: Flag
    keywords: tuple[str, ...]
    internal_date: int
    size: int
    blob_id: int
    envelope: bytes
    bodystructure: bytes
    body: bytes
    subject: str
    from_: str
    to: str
    cc: str
    bcc: str
    sent_date: int | None
    message_id: str
    in_reply_to: str
    references: str
    preview: str
    #: RFC 5256 sort keys: base subject, first mailbox (local part) of From, To and Cc.
    sort_subject: str = ""
    sort_from: str = ""
    sort_to: str = ""
    sort_cc: str = ""


@dataclass(frozen=True, slots=True)
class MailboxView:
    """What selecting a mailbox needs (RFC 9051 §6.3.2), without an object per message."""

    #: The messages' UIDs, ascending (4 octets each).
    uids: array[int]
    #: Every keyword set on a message of the mailbox.
    keywords: frozenset[str]
    #: The lowest UID without \Seen; None when every message is seen.
    first_unseen: int | None
    #: The highest MODSEQ of a message of the mailbox (0: empty).
    highest_modseq: int


@dataclass(frozen=True, slots=True)
class MessageState:
    """A message's UID, MODSEQ and flags, without its content."""

    uid: int
    modseq: int
    flags: Flag
    keywords: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Appended:
    """What an append returns: where the message went (RFC 4315 APPENDUID needs both)."""

    mailbox_id: int
    uidvalidity: int
    uid: int
    modseq: int
    message_id: int


@dataclass(frozen=True, slots=True)
class Change:
    modseq: int
    mailbox_id: int
    uid: int
    kind: ChangeKind


@dataclass(frozen=True, slots=True)
class QueuedRecipient:
    recipient: str
    state: str
    attempts: int
    next_attempt: int
    last_reply: str
    #: RFC 3461 DSN parameters as given at RCPT.
    notify: str | None = None
    orcpt: str | None = None


@dataclass(frozen=True, slots=True)
class LeasedRecipient:
    """A queued recipient a worker holds for one delivery attempt."""

    id: int
    address: str
    domain: str
    attempts: int
    notify: str | None
    orcpt: str | None
    warned: bool = False


@dataclass(frozen=True, slots=True)
class LeasedMessage:
    """A queued message and those of its recipients a worker holds."""

    id: int
    queue_id: str
    sender: str
    blob_id: int
    created_at: int
    recipients: tuple[LeasedRecipient, ...]
    envid: str | None = None
    ret: str | None = None
    body: str | None = None
    smtputf8: bool = False
    requiretls: bool = False


@dataclass(frozen=True, slots=True)
class RecipientResult:
    """What one attempt did for a leased recipient: ``state`` is "sent", "failed" or "queued"
    (try again at ``next_attempt``), with the server's reply or our reason."""

    recipient_id: int
    state: str
    reply: str
    next_attempt: int = 0
    #: A delay report was sent for it (RFC 3461 NOTIFY=DELAY): never again.
    warned: bool = False


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message in the outbound queue, with each recipient's state."""

    id: int
    queue_id: str
    sender: str
    size: int
    created_at: int
    recipients: tuple[QueuedRecipient, ...]
    #: What MAIL FROM asked of later hops: RFC 3461 ENVID and RET, RFC 6152 BODY,
    #: RFC 6531 SMTPUTF8, RFC 8689 REQUIRETLS.
    envid: str | None = None
    ret: str | None = None
    body: str | None = None
    smtputf8: bool = False
    requiretls: bool = False


@dataclass(frozen=True, slots=True)
class DkimKey:
    """A DKIM selector of a domain: its private key (PKCS #8 PEM), the public key as the
    ``p=`` of its TXT record, and from when it signs."""

    id: int
    domain: str
    selector: str
    algorithm: str
    private_key: str
    public_key: str
    created_at: int
    active_at: int


@dataclass(frozen=True, slots=True)
class Relay:
    """A smarthost: ``security`` is "starttls" or "tls" (implicit, RFC 8314); ``verify``
    checks its certificate against ``host``; AUTH when ``username`` is set."""

    host: str
    port: int = 587
    security: str = "starttls"
    verify: bool = True
    username: str = ""
    password: str = ""

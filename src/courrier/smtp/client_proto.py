"""Sans-IO SMTP client core: replies out of bytes, commands into bytes, outcomes per recipient.

What a client needs that does not depend on sockets or a clock: the reply reader (RFC 5321
§4.2, multi-line replies, bounded), the EHLO keywords (:class:`Extensions`), the MAIL and RCPT
commands with their parameters (SIZE, BODY, SMTPUTF8, REQUIRETLS, RFC 3461 DSN in xtext), the
message content as DATA (dot-stuffed, CRLF line ends) or BDAT (RFC 3030), and the rule that
turns a transaction's replies into one outcome per recipient (RFC 2920 §3.1: with PIPELINING
the replies come in the order of the commands). The asyncio client (:mod:`courrier.smtp.client`)
sends and reads; the timeouts it applies are named here (RFC 5321 §4.5.3.2).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

__all__ = [
    "TIMEOUTS",
    "BodyType",
    "Envelope",
    "Extensions",
    "Outcome",
    "Recipient",
    "Reply",
    "ReplyError",
    "ReplyReader",
    "bdat_chunks",
    "data_content",
    "mail_command",
    "needs",
    "outcomes",
    "rcpt_command",
    "xtext",
]

BodyType = Literal["7BIT", "8BITMIME", "BINARYMIME"]

#: RFC 5321 §4.5.3.2: how long (seconds) to wait for each reply.
TIMEOUTS: Final = {
    "greeting": 300.0,  # §4.5.3.2.1 initial 220
    "command": 300.0,  # EHLO, STARTTLS, AUTH, RSET, QUIT (no figure: MAIL's)
    "mail": 300.0,  # §4.5.3.2.2
    "rcpt": 300.0,  # §4.5.3.2.3
    "data": 120.0,  # §4.5.3.2.4 DATA initiation (354)
    "block": 180.0,  # §4.5.3.2.5 each write of the content
    "final": 600.0,  # §4.5.3.2.6 after the "." or BDAT LAST
}

#: RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets; servers send longer ones, so
#: allow some room, but not without bound.
MAX_REPLY_LINE: Final = 4096
MAX_REPLY_LINES: Final = 128


class ReplyError(Exception):
    """The server's bytes are not an SMTP reply (RFC 5321 §4.2)."""


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    #: The text of each line, without the code and its separator.
    lines: tuple[str, ...]

    @property
    def enhanced(self) -> str | None:
        """The RFC 3463 status code of the first line (``5.1.1``), if it starts with one of
        the same class as the reply code (RFC 2034 §4)."""
        match = _ENHANCED.match(self.lines[0]) if self.lines else None
        if match is None or match[1] != str(self.code)[0]:
            return None
        return match[0]

    @property
    def text(self) -> str:
        return " ".join(self.lines)

    @property
    def positive(self) -> bool:
        return 200 <= self.code < 400

    @property
    def transient(self) -> bool:
        return 400 <= self.code < 500

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


_ENHANCED = re.compile(r"([245])\.\d{1,3}\.\d{1,3}(?= |$)")
_REPLY_LINE = re.compile(rb"([2-5][0-9][0-9])([ -])?(.*)")


class ReplyReader:
    """Complete replies out of the bytes received, in order."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._lines: list[str] = []
        self._code: int | None = None

    def receive(self, data: bytes) -> None:
        self._buffer += data

    @property
    def pending(self) -> bool:
        """Whether bytes of an unfinished reply are buffered."""
        return bool(self._buffer) or self._code is not None

    def next_reply(self) -> Reply | None:
        """The next complete reply, or None until more bytes arrive."""
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_REPLY_LINE:
                    raise ReplyError("reply line too long")
                return None
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[: end + 1]
            if len(line) > MAX_REPLY_LINE:
                raise ReplyError("reply line too long")
            match = _REPLY_LINE.fullmatch(line)
            if match is None:
                raise ReplyError(f"not a reply line: {line[:80]!r}")
            code = int(match[1])
            if self._code is not None and code != self._code:
                raise ReplyError("reply code changed within a multi-line reply")
            self._code = code
            self._lines.append(match[3].decode("utf-8", "replace"))
            if len(self._lines) > MAX_REPLY_LINES:
                raise ReplyError("reply has too many lines")
            if match[2] != b"-":
                reply = Reply(code, tuple(self._lines))
                self._code, self._lines = None, []
                return reply


@dataclass(frozen=True, slots=True)
class Extensions:
    """What the server's EHLO reply says it supports (RFC 5321 §4.1.1.1)."""

    #: Keyword (upper case) → its parameters as written.
    keywords: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_ehlo(cls, reply: Reply) -> Extensions:
        keywords: dict[str, str] = {}
        for line in reply.lines[1:]:  # the first line is the server's name and greeting
            keyword, _, params = line.strip().partition(" ")
            if keyword:
                keywords[keyword.upper()] = params.strip()
        return cls(keywords)

    def __contains__(self, keyword: str) -> bool:
        return keyword.upper() in self.keywords

    @property
    def size(self) -> int | None:
        """RFC 1870: the largest message accepted; None when unknown or unlimited (0)."""
        value = self.keywords.get("SIZE", "")
        return int(value) if value.isdigit() and int(value) > 0 else None

    @property
    def auth(self) -> frozenset[str]:
        return frozenset(self.keywords.get("AUTH", "").upper().split())


@dataclass(frozen=True, slots=True)
class Recipient:
    address: str
    #: RFC 3461 §4.1 NOTIFY value as given (``SUCCESS,FAILURE``, ``NEVER``), or None.
    notify: str | None = None
    #: RFC 3461 §4.2 ORCPT as ``addr-type;address`` (not yet xtext-encoded), or None.
    orcpt: str | None = None


@dataclass(frozen=True, slots=True)
class Envelope:
    sender: str  # "" for the null reverse-path
    recipients: tuple[Recipient, ...]
    body: BodyType = "7BIT"
    smtputf8: bool = False
    requiretls: bool = False
    envid: str | None = None
    ret: str | None = None  # RFC 3461 §4.3: FULL or HDRS


def needs(envelope: Envelope, extensions: Extensions, size: int) -> tuple[str, str] | None:
    """Why this server cannot take the message as it is, as (enhanced code, reason), or None.

    8-bit or binary content without 8BITMIME / BINARYMIME+CHUNKING, non-ASCII addresses
    without SMTPUTF8 (RFC 6531 §3.4: 5.6.7), REQUIRETLS without the server's (RFC 8689 §4.2),
    more than its SIZE (RFC 1870: 5.3.4)."""
    if envelope.smtputf8 and "SMTPUTF8" not in extensions:
        return "5.6.7", "the server does not take non-ASCII addresses (no SMTPUTF8)"
    if envelope.body == "8BITMIME" and "8BITMIME" not in extensions:
        return "5.6.3", "the server does not take 8-bit content (no 8BITMIME)"
    if envelope.body == "BINARYMIME" and not (
        "BINARYMIME" in extensions and "CHUNKING" in extensions
    ):
        return "5.6.3", "the server does not take binary content (no BINARYMIME)"
    if envelope.requiretls and "REQUIRETLS" not in extensions:
        return "5.7.30", "REQUIRETLS was asked for and the server does not support it"
    limit = extensions.size
    if limit is not None and size > limit:
        return "5.3.4", f"the message ({size} octets) is larger than the server takes ({limit})"
    return None


def xtext(value: str) -> str:
    """RFC 3461 §4: every octet outside "!".."~", and "+" and "=", as "+XX"."""
    return "".join(
        chr(b) if 33 <= b <= 126 and b not in (43, 61) else f"+{b:02X}"
        for b in value.encode("utf-8")
    )


def mail_command(envelope: Envelope, extensions: Extensions, size: int) -> bytes:
    """``MAIL FROM:<…>`` with the parameters this server understands."""
    params = []
    if "SIZE" in extensions:
        params.append(f"SIZE={size}")  # RFC 1870 §6
    if envelope.body != "7BIT" and envelope.body in extensions:
        params.append(f"BODY={envelope.body}")
    if envelope.smtputf8:
        params.append("SMTPUTF8")
    if envelope.requiretls:
        params.append("REQUIRETLS")
    if "DSN" in extensions:  # RFC 3461 §4.3, §4.4: only to a server that relays them
        if envelope.ret:
            params.append(f"RET={envelope.ret}")
        if envelope.envid:
            params.append(f"ENVID={xtext(envelope.envid)}")
    return _command(f"MAIL FROM:<{envelope.sender}>", params)


def rcpt_command(recipient: Recipient, extensions: Extensions) -> bytes:
    params = []
    if "DSN" in extensions:
        if recipient.notify:
            params.append(f"NOTIFY={recipient.notify}")
        if recipient.orcpt:
            kind, _, address = recipient.orcpt.partition(";")
            params.append(f"ORCPT={kind};{xtext(address)}")
    return _command(f"RCPT TO:<{recipient.address}>", params)


def _command(head: str, params: Sequence[str]) -> bytes:
    return (" ".join([head, *params]) + "\r\n").encode("utf-8")


_BARE_LF = re.compile(rb"(?<!\r)\n")
_DOT_LINE = re.compile(rb"^\.", re.MULTILINE)


def data_content(content: bytes) -> bytes:
    """The message as DATA sends it: bare LF made CRLF (RFC 5321 §2.3.8), lines starting
    with "." doubled (§4.5.2), a final CRLF added if missing, then ".CRLF"."""
    content = _BARE_LF.sub(b"\r\n", content)
    content = _DOT_LINE.sub(b"..", content)
    if content and not content.endswith(b"\r\n"):
        content += b"\r\n"
    return content + b".\r\n"


def bdat_chunks(content: bytes, size: int = 1 << 20) -> list[bytes]:
    """The message as BDAT commands with their chunks (RFC 3030 §2): sent as stored, the
    last marked LAST; an empty message is one ``BDAT 0 LAST``."""
    pieces = [content[i : i + size] for i in range(0, len(content), size)] or [b""]
    return [
        b"BDAT %d%s\r\n" % (len(piece), b" LAST" if n == len(pieces) else b"") + piece
        for n, piece in enumerate(pieces, 1)
    ]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one recipient in one transaction."""

    recipient: Recipient
    reply: Reply
    #: True: delivered (the final 250 covers it); False: refused for good (5xx); None: try
    #: again later (4xx).
    delivered: bool | None


def outcomes(
    recipients: Sequence[Recipient],
    mail: Reply,
    rcpts: Sequence[Reply],
    final: Reply | None,
) -> list[Outcome]:
    """Each recipient's outcome from the transaction's replies (RFC 5321 §3.3): a refused MAIL
    decides for all; a refused RCPT for its recipient; the reply to the content (``final``,
    None when no recipient was accepted or the content was never sent) for the others."""
    out: list[Outcome] = []
    for n, recipient in enumerate(recipients):
        reply = mail if not mail.positive else rcpts[n] if n < len(rcpts) else mail
        if reply.positive:
            reply = final if final is not None else reply
        if reply.positive and final is None:
            # Accepted at RCPT but the content never went: not delivered, try again.
            reply = Reply(451, ("4.3.0 the message content was not sent",))
        out.append(Outcome(recipient, reply, True if reply.positive else _retry(reply)))
    return out


def _retry(reply: Reply) -> bool | None:
    return None if reply.transient else False

"""Sans-IO SMTP server protocol core (RFC 5321 and the extensions we advertise).

This module owns the SMTP conversation of one server connection, and nothing else: it parses
command lines, message content (DATA and BDAT) and SASL exchange lines out of the bytes it is
given, enforces command sequencing and resource limits, and formats every reply. It does no
I/O, reads no clock and makes no policy decision: whenever one is needed (MAIL, RCPT, a complete
message, STARTTLS, an AUTH step) :meth:`ServerConnection.next_event` returns an event and parses
nothing more until the application answers it (:meth:`~ServerConnection.reply`,
:meth:`~ServerConnection.tls_started`, :meth:`~ServerConnection.auth_challenge`,
:meth:`~ServerConnection.auth_result`). Calling ``next_event`` before answering raises
:class:`ProtocolError`. Replies accumulate in :meth:`~ServerConnection.data_to_send`, so a
pipelined batch of commands is answered in one write (RFC 2920).

Memory is bounded: when ``next_event`` returns :data:`NEED_DATA`, at most one partial line
(``max_command_line`` octets, 12288 during AUTH per RFC 4954 §4) and the message content
accepted so far (at most ``max_message_size`` octets; content beyond it is counted, not kept)
are buffered. A driver that reads only after ``NEED_DATA`` therefore holds at most that plus one
read, also while an answer is pending: it simply does not read then.

Not here: address validation and policy (:mod:`courrier.smtp.addresses`,
:mod:`courrier.smtp.policy`), SASL mechanisms, TLS, sockets.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

__all__ = [
    "AUTH_LINE_LIMIT",
    "NEED_DATA",
    "AuthAborted",
    "AuthResponse",
    "AuthStart",
    "BodyType",
    "Closed",
    "Envelope",
    "Event",
    "MailFrom",
    "MessageReceived",
    "NeedData",
    "ProtocolError",
    "RcptTo",
    "ServerConfig",
    "ServerConnection",
    "StartTLS",
    "State",
]

#: RFC 4954 §4: an AUTH command or SASL response line may be 12288 octets long.
AUTH_LINE_LIMIT: Final = 12288

BodyType: TypeAlias = Literal["7BIT", "8BITMIME", "BINARYMIME"]
_BODY_TYPES: Final[dict[str, BodyType]] = {
    "7BIT": "7BIT",
    "8BITMIME": "8BITMIME",
    "BINARYMIME": "BINARYMIME",
}
_NOTIFY_VALUES: Final = frozenset({"SUCCESS", "FAILURE", "DELAY"})
# RFC 4422 §3.1: SASL mechanism names.
_MECHANISM = re.compile(r"[A-Z0-9_-]{1,20}\Z")


class ProtocolError(RuntimeError):
    """The application used the connection out of turn (a bug in the driver, never the peer)."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What one listener offers; shared by all its connections."""

    hostname: str
    #: Largest message accepted, in octets; advertised as ``SIZE`` (RFC 1870).
    max_message_size: int
    #: RFC 5321 §4.5.3.1.8: at least 100 recipients MUST be accepted; the next gets 452 4.5.3.
    max_recipients: int = 100
    #: Error replies tolerated before ``421 4.7.0`` and disconnection.
    max_errors: int = 10
    #: Longest command line, CRLF included (RFC 5321 §4.5.3.1.4 requires at least 512).
    max_command_line: int = 4096
    #: STARTTLS is offered (a certificate is loaded) on this listener.
    tls_available: bool = False
    #: SASL mechanisms offered, upper case; empty means no AUTH (port 25).
    auth_mechanisms: tuple[str, ...] = ()
    #: AUTH is offered and accepted only once the connection is encrypted.
    auth_requires_tls: bool = True
    #: Submission: MAIL is refused with 530 5.7.0 until the client authenticated.
    require_auth_for_mail: bool = False
    #: The connection is TLS from its first octet (port 465): no STARTTLS.
    implicit_tls: bool = False

    def __post_init__(self) -> None:
        if not self.hostname or not self.hostname.isascii() or not self.hostname.isprintable():
            raise ValueError(f"invalid hostname {self.hostname!r}")
        if " " in self.hostname:
            raise ValueError(f"invalid hostname {self.hostname!r}")
        if self.max_message_size < 1 or self.max_recipients < 1 or self.max_errors < 1:
            raise ValueError("max_message_size, max_recipients and max_errors must be positive")
        if self.max_command_line < 512:
            raise ValueError("max_command_line must be at least 512 (RFC 5321 §4.5.3.1.4)")
        for mechanism in self.auth_mechanisms:
            if not _MECHANISM.match(mechanism):
                raise ValueError(f"invalid SASL mechanism name {mechanism!r}")


class State(enum.Enum):
    """Where the conversation stands."""

    #: Greeted; no EHLO/HELO yet (again so after STARTTLS, RFC 3207 §4.2).
    INITIAL = "initial"
    #: EHLO/HELO done, no mail transaction.
    READY = "ready"
    #: MAIL accepted, no recipient accepted yet.
    MAIL = "mail"
    #: At least one recipient accepted (BDAT chunks may have been received).
    RCPT = "rcpt"
    #: Receiving DATA content.
    DATA = "data"
    #: In a SASL exchange.
    AUTH = "auth"
    CLOSED = "closed"


class NeedData(enum.Enum):
    """Type of the :data:`NEED_DATA` sentinel."""

    NEED_DATA = "NEED_DATA"


#: Returned by :meth:`ServerConnection.next_event` when it must read more input.
NEED_DATA: Final = NeedData.NEED_DATA


@dataclass(frozen=True, slots=True)
class MailFrom:
    """``MAIL FROM``; answer with :meth:`ServerConnection.reply` (2xx starts the transaction)."""

    #: The reverse-path between ``<`` and ``>``, source route removed; "" for ``<>``.
    address: str
    #: Every parameter, keyword upper-cased, value as sent (None when absent).
    params: dict[str, str | None]
    size: int | None = None
    body: BodyType | None = None
    smtputf8: bool = False
    #: RFC 3461 §4.3.
    ret: Literal["FULL", "HDRS"] | None = None
    #: RFC 3461 §4.4, xtext-decoded.
    envid: str | None = None
    #: RFC 4954 §5, xtext-decoded; "<>" when the submitter is unknown.
    auth: str | None = None
    #: RFC 8689 §4: the message must only travel over TLS.
    requiretls: bool = False


@dataclass(frozen=True, slots=True)
class RcptTo:
    """``RCPT TO``; answer with :meth:`ServerConnection.reply` (2xx adds the recipient)."""

    #: The forward-path between ``<`` and ``>``, source route removed.
    address: str
    params: dict[str, str | None]
    #: RFC 3461 §4.1: ("NEVER",) or a subset of SUCCESS, FAILURE, DELAY.
    notify: tuple[str, ...] | None = None
    #: RFC 3461 §4.2: "addr-type;address", the address xtext-decoded.
    orcpt: str | None = None


@dataclass(frozen=True, slots=True)
class Envelope:
    """Everything the SMTP conversation says about one message."""

    #: The reverse-path, "" for the null reverse-path.
    mail_from: str
    mail: MailFrom
    #: The accepted recipients, in order.
    recipients: tuple[RcptTo, ...]
    helo_name: str
    esmtp: bool
    tls: bool
    authenticated_as: str | None


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A complete message (DATA ended, or BDAT LAST); reply 250 only once it is stored durably."""

    envelope: Envelope
    #: The content, dot-unstuffed (DATA) or verbatim (BDAT), lines ending in CRLF.
    data: bytes


@dataclass(frozen=True, slots=True)
class StartTLS:
    """``220`` was queued: flush it, handshake, then call :meth:`ServerConnection.tls_started`."""


@dataclass(frozen=True, slots=True)
class AuthStart:
    """``AUTH``: answer with ``auth_challenge`` or ``auth_result``."""

    #: Upper case, one of the configured mechanisms.
    mechanism: str
    #: The decoded initial response (RFC 4954 §4: "=" is empty), None when none was sent.
    initial: bytes | None


@dataclass(frozen=True, slots=True)
class AuthResponse:
    """The client's decoded answer to a challenge: ``auth_challenge`` or ``auth_result`` again."""

    data: bytes


@dataclass(frozen=True, slots=True)
class AuthAborted:
    """The SASL exchange ended without a result (already answered 501); drop its state."""

    reason: Literal["cancelled", "invalid"]


@dataclass(frozen=True, slots=True)
class Closed:
    """The conversation is over: flush ``data_to_send`` and close the connection."""

    #: "quit", "eof", "too many errors", "bdat syntax" or "421" (the application replied 421).
    reason: str


Event: TypeAlias = (
    MailFrom | RcptTo | MessageReceived | StartTLS | AuthStart | AuthResponse | AuthAborted | Closed
)
_Pending: TypeAlias = MailFrom | RcptTo | MessageReceived | StartTLS | AuthStart | AuthResponse


class _Reject(Exception):
    """An error reply to the command being parsed."""

    def __init__(self, code: int, enhanced: str, text: str) -> None:
        super().__init__(code, enhanced, text)
        self.code = code
        self.enhanced = enhanced
        self.text = text


@dataclass(slots=True)
class _Chunk:
    """A BDAT chunk being read (RFC 3030 §2): its octets are consumed even when refused."""

    remaining: int
    size: int
    last: bool
    refusal: tuple[int, str, str] | None


# RFC 5321 §4.1.2: Path = "<" [ A-d-l ":" ] Mailbox ">"; a quoted local part may hold spaces
# and ">". Anything else in the mailbox is left to courrier.smtp.addresses.
_PATH = re.compile(r'<((?:"(?:[^"\\\r\n]|\\.)*"|[^"<>\s])*)>')
# RFC 5321 §4.1.1.3 and appendix C: a source route is accepted and ignored.
_SOURCE_ROUTE = re.compile(r"@[^,:@<>\s]+(?:,@[^,:@<>\s]+)*:")
_FROM = re.compile(r" *FROM: *", re.IGNORECASE)
_TO = re.compile(r" *TO: *", re.IGNORECASE)
# RFC 5321 §4.1.2: esmtp-keyword ["=" esmtp-value], value = 1*(%d33-60 / %d62-126).
_PARAM = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*)(?:=([!-<>-~]+))?\Z")
# RFC 3461 §4: xtext = *( xchar / hexchar ), xchar = "!".."~" but "+" and "=".
_XTEXT = re.compile(r"(?:[!-*,-<>-~]|\+[0-9A-F]{2})*\Z")
_HEXCHAR = re.compile(r"\+([0-9A-F]{2})")
_ADDR_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")
_BDAT = re.compile(r"([0-9]{1,20})(?: +(LAST))? *\Z", re.IGNORECASE)
_ENHANCED = re.compile(r"([245])\.[0-9]{1,3}\.[0-9]{1,3}\Z")
# RFC 4648 §4, padded, nothing else (binascii tolerates excess padding).
_BASE64 = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\Z")


def _base64(data: bytes) -> bytes:
    if not _BASE64.match(data):
        raise _Reject(501, "5.5.2", "Invalid base64 data")
    return binascii.a2b_base64(data)


def _xtext(value: str) -> str:
    """Decode RFC 3461 §4 xtext (hexchars carry octets, taken as UTF-8)."""
    if not _XTEXT.match(value):
        raise _Reject(501, "5.5.4", "Invalid xtext in parameter")
    if "+" not in value:
        return value
    octets = _HEXCHAR.sub(lambda m: chr(int(m[1], 16)), value).encode("latin-1")
    try:
        return octets.decode("utf-8")
    except UnicodeDecodeError:
        raise _Reject(501, "5.5.4", "Invalid xtext in parameter") from None


def _parse_path(
    arg: str, keyword: re.Pattern[str], syntax: str
) -> tuple[str, dict[str, str | None]]:
    """Split ``FROM:<path> params`` (or ``TO:``) into the path contents and raw parameters."""
    head = keyword.match(arg)
    path = _PATH.match(arg, head.end()) if head else None
    if path is None:
        raise _Reject(501, "5.5.4", syntax)
    rest = arg[path.end() :]
    if rest and rest[0] != " ":
        raise _Reject(501, "5.5.4", syntax)
    params: dict[str, str | None] = {}
    for token in rest.split(" "):
        if not token:
            continue
        param = _PARAM.match(token)
        if param is None:
            raise _Reject(501, "5.5.4", "Invalid parameter syntax")
        key = param[1].upper()
        if key in params:
            raise _Reject(501, "5.5.4", f"Duplicate {key} parameter")
        params[key] = param[2]
    address = path[1]
    route = _SOURCE_ROUTE.match(address)
    if route is not None:
        address = address[route.end() :]
    return address, params


def _check_address(address: str, smtputf8: bool) -> None:
    """RFC 6531 §3.4: non-ASCII addresses only in SMTPUTF8 transactions, and valid UTF-8."""
    if address.isascii():
        return
    if not smtputf8:
        raise _Reject(553, "5.6.7", "Non-ASCII address requires SMTPUTF8")
    try:
        address.encode("utf-8")
    except UnicodeEncodeError:  # surrogate-escaped octets: not UTF-8
        raise _Reject(501, "5.5.2", "Invalid UTF-8 in address") from None


def _has_bare_cr_or_lf(data: bytes | bytearray) -> bool:
    crlf = data.count(b"\r\n")
    return data.count(b"\r") != crlf or data.count(b"\n") != crlf


class ServerConnection:
    """The server side of one SMTP connection; the greeting is queued at construction."""

    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        self._in = bytearray()
        self._out = bytearray()
        self._eof = False
        self._closed: Closed | None = None
        self._pending: _Pending | None = None
        self._state = State.INITIAL
        self._tls = config.implicit_tls
        self._helo: str | None = None
        self._esmtp = False
        self._auth_id: str | None = None
        self._errors = 0
        self._skipping_line = False
        self._chunk: _Chunk | None = None
        # The mail transaction (RFC 5321 §3.3).
        self._mail: MailFrom | None = None
        self._rcpts: list[RcptTo] = []
        self._rcpt_attempted = False
        self._bdat_used = False
        #: DATA: the raw content so far after a b"\r\n" sentinel; BDAT: the chunks so far.
        self._msg = bytearray()
        self._oversize = False
        self._out += f"220 {config.hostname} ESMTP courrier\r\n".encode()

    # --- public state -------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def tls_active(self) -> bool:
        return self._tls

    @property
    def authenticated_as(self) -> str | None:
        return self._auth_id

    @property
    def helo_name(self) -> str | None:
        return self._helo

    @property
    def esmtp(self) -> bool:
        """The client greeted with EHLO (extensions in use), not HELO."""
        return self._esmtp

    @property
    def buffered_bytes(self) -> int:
        """Input octets held: unparsed input plus message content received so far."""
        return len(self._in) + len(self._msg)

    # --- I/O side -----------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Add input. Ignored once closed, after EOF, and between StartTLS and tls_started()
        (RFC 3207 §4.2: nothing sent in clear after STARTTLS may be acted upon)."""
        if self._closed is None and not self._eof and not isinstance(self._pending, StartTLS):
            self._in += data

    def receive_eof(self) -> None:
        """The client closed its side: what is buffered is still parsed, then Closed("eof");
        an unfinished message is lost."""
        self._eof = True

    def data_to_send(self) -> bytes:
        """Replies queued since the last call."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> Event | NeedData:
        """The next event, or NEED_DATA. Returns the same Closed event forever once closed.

        Raises ProtocolError while an event still awaits the application's answer."""
        if self._pending is not None and self._closed is None:
            raise ProtocolError(f"{self._pending!r} has not been answered")
        while self._closed is None:
            if self._chunk is not None:
                event = self._step_chunk()
            elif self._state is State.DATA:
                event = self._step_data()
            else:
                event = self._step_line()
            if event is NEED_DATA:
                if not self._eof:
                    return NEED_DATA
                self._close("eof")
            elif event is not None:
                return event
        return self._closed

    # --- application answers ------------------------------------------------------------

    def reply(self, code: int, enhanced: str, text: str) -> None:
        """Answer the pending MailFrom, RcptTo or MessageReceived. ``code`` 2xx accepts; 421
        also closes the connection (RFC 5321 §3.8). The text is one line."""
        event = self._pending
        if not isinstance(event, MailFrom | RcptTo | MessageReceived):
            raise ProtocolError(f"reply() does not answer {event!r}")
        status = _ENHANCED.match(enhanced)
        if status is None or not 200 <= code < 600 or int(status[1]) != code // 100:
            raise ValueError(f"invalid reply code {code} {enhanced}")
        if "\r" in text or "\n" in text:
            raise ValueError("reply text must be a single line")
        self._pending = None
        self._send(code, enhanced, text)
        if isinstance(event, MessageReceived):
            self._reset_transaction()
        elif code < 300 and isinstance(event, MailFrom):
            self._mail = event
            self._state = State.MAIL
        elif code < 300 and isinstance(event, RcptTo):
            self._rcpts.append(event)
            self._state = State.RCPT
        if code == 421:
            self._close("421")

    def tls_started(self) -> None:
        """The TLS handshake after StartTLS succeeded. RFC 3207 §4.2: the server forgets all it
        learnt from the client (EHLO, authentication) and expects a new EHLO."""
        if not isinstance(self._pending, StartTLS):
            raise ProtocolError("tls_started() without a pending StartTLS")
        self._pending = None
        self._tls = True
        self._helo = None
        self._esmtp = False
        self._auth_id = None
        self._in.clear()
        self._reset_transaction()

    def auth_challenge(self, data: bytes) -> None:
        """Send a SASL challenge (``334 <base64>``, RFC 4954 §4)."""
        if not isinstance(self._pending, AuthStart | AuthResponse):
            raise ProtocolError("auth_challenge() without a pending AUTH step")
        self._pending = None
        self._out += b"334 " + base64.b64encode(data) + b"\r\n"

    def auth_result(self, ok: bool, identity: str | None = None) -> None:
        """End the SASL exchange: ``235 2.7.0`` (ok, ``identity`` required) or ``535 5.7.8``
        (counted as an error)."""
        if not isinstance(self._pending, AuthStart | AuthResponse):
            raise ProtocolError("auth_result() without a pending AUTH step")
        if ok and not identity:
            raise ValueError("a successful authentication needs an identity")
        self._pending = None
        self._state = State.READY
        if ok:
            self._auth_id = identity
            self._send(235, "2.7.0", "Authentication successful")
        else:
            self._error(535, "5.7.8", "Authentication credentials invalid")

    # --- internals: replies and state ---------------------------------------------------

    def _send(self, code: int, enhanced: str, text: str) -> None:
        self._out += f"{code} {enhanced} {text}\r\n".encode()

    def _error(self, code: int, enhanced: str, text: str) -> None:
        """Send an error reply; every one the core makes counts towards max_errors."""
        self._send(code, enhanced, text)
        self._errors += 1
        if self._errors >= self._config.max_errors and self._closed is None:
            self._send(421, "4.7.0", f"{self._config.hostname} Too many errors, closing connection")
            self._close("too many errors")

    def _close(self, reason: str) -> None:
        self._closed = Closed(reason)
        self._state = State.CLOSED
        self._pending = None
        self._chunk = None
        self._in.clear()
        self._msg = bytearray()

    def _reset_transaction(self) -> None:
        """RFC 5321 §4.1.1.5: RSET (and EHLO, end of message) discards the transaction."""
        self._mail = None
        self._rcpts = []
        self._rcpt_attempted = False
        self._bdat_used = False
        self._msg = bytearray()
        self._oversize = False
        self._state = State.READY if self._helo is not None else State.INITIAL

    @property
    def _auth_offered(self) -> bool:
        return bool(self._config.auth_mechanisms) and (
            self._tls or not self._config.auth_requires_tls
        )

    def _message(self, data: bytes) -> MessageReceived:
        mail, helo = self._mail, self._helo
        assert mail is not None and helo is not None  # a transaction needs both
        envelope = Envelope(
            mail_from=mail.address,
            mail=mail,
            recipients=tuple(self._rcpts),
            helo_name=helo,
            esmtp=self._esmtp,
            tls=self._tls,
            authenticated_as=self._auth_id,
        )
        event = MessageReceived(envelope, data)
        self._msg = bytearray()
        self._pending = event
        return event

    # --- internals: input -----------------------------------------------------------------

    def _read_line(self) -> bytes | None:
        """The next line without its CRLF, None if incomplete. RFC 5321 §2.3.8: only CRLF ends
        a line. An overlong line is answered 500 and dropped as it arrives, never buffered."""
        buf = self._in
        if self._skipping_line:
            end = buf.find(b"\n")
            if end < 0:
                buf.clear()
                return None
            del buf[: end + 1]
            self._skipping_line = False
            raise _Reject(500, "5.5.2", "Line too long")
        limit = self._config.max_command_line
        if self._config.auth_mechanisms and (
            self._state is State.AUTH or buf[:5].upper() == b"AUTH "
        ):
            limit = max(limit, AUTH_LINE_LIMIT)
        end = buf.find(b"\n", 0, limit)
        if end < 0:
            if len(buf) < limit:
                return None
            del buf[:limit]
            self._skipping_line = True
            return self._read_line()
        line = bytes(buf[: end - 1]) if end and buf[end - 1] == 0x0D else None
        del buf[: end + 1]
        if line is None:
            raise _Reject(500, "5.5.2", "Bare LF in command; lines end with CRLF")
        if b"\r" in line or b"\x00" in line:
            raise _Reject(500, "5.5.2", "Invalid character in command")
        return line

    def _step_line(self) -> Event | NeedData | None:
        try:
            line = self._read_line()
            if line is None:
                return NEED_DATA
        except _Reject as reject:
            self._error(reject.code, reject.enhanced, reject.text)
            if self._state is State.AUTH:
                self._state = State.READY
                return AuthAborted("invalid")
            return None
        if self._state is State.AUTH:
            return self._auth_line(line)
        try:
            return self._command(line)
        except _Reject as reject:
            self._error(reject.code, reject.enhanced, reject.text)
            return None

    def _step_data(self) -> Event | NeedData | None:
        """DATA content (RFC 5321 §4.1.1.4). Only CRLF "." CRLF ends it: the content starts
        after the DATA line's CRLF, kept as a sentinel, so one search finds the terminator
        anywhere, split across reads in any way. Any other line ending (bare LF or CR, hence
        "\\n.\\n", "\\r\\n.\\n", ...) never ends DATA and gets the message refused: SMTP
        smuggling cannot split one message into two."""
        msg = self._msg
        start = max(len(msg) - 4, 0)
        msg += self._in
        self._in.clear()
        end = msg.find(b"\r\n.\r\n", start)
        if end < 0:
            if len(msg) - 2 > self._config.max_message_size:
                # RFC 1870 §6.3: keep reading, keep nothing but what may begin the terminator.
                self._oversize = True
                del msg[:-4]
            return NEED_DATA
        self._in += msg[end + 5 :]
        del msg[end + 2 :]
        if self._oversize or len(msg) - 2 > self._config.max_message_size:
            # The size counted is the one on the wire, dot-stuffing included.
            self._reset_transaction()
            self._error(552, "5.3.4", "Message size exceeds fixed maximum message size")
            return None
        if _has_bare_cr_or_lf(msg):
            # Postfix answers "521 5.5.2" and disconnects (smtpd_forbid_bare_newline = reject);
            # the input is in sync (DATA really ended), so refuse only this message.
            self._reset_transaction()
            self._error(550, "5.5.2", "Bare CR or LF in message content not allowed")
            return None
        # RFC 5321 §4.5.2: a line starting with "." loses it.
        content = msg.replace(b"\r\n.", b"\r\n")
        del content[:2]
        return self._message(bytes(content))

    def _step_chunk(self) -> Event | NeedData | None:
        chunk = self._chunk
        assert chunk is not None
        take = min(chunk.remaining, len(self._in))
        if take:
            if chunk.refusal is None:
                self._msg += self._in[:take]
            del self._in[:take]
            chunk.remaining -= take
        if chunk.remaining:
            return NEED_DATA
        self._chunk = None
        if chunk.refusal is not None:
            if chunk.refusal[0] == 552:
                self._reset_transaction()
            self._error(*chunk.refusal)
            return None
        if not chunk.last:
            self._send(250, "2.0.0", f"{chunk.size} octets received")
            return None
        mail = self._mail
        assert mail is not None
        # RFC 3030 leaves no room for smuggling, but content relayed later with DATA could
        # carry it: line-oriented bodies (all but BINARYMIME) must use CRLF here too.
        if mail.body != "BINARYMIME" and _has_bare_cr_or_lf(self._msg):
            self._reset_transaction()
            self._error(550, "5.5.2", "Bare CR or LF in message content not allowed")
            return None
        return self._message(bytes(self._msg))

    def _auth_line(self, line: bytes) -> Event:
        """A client line in a SASL exchange (RFC 4954 §4)."""
        if line == b"*":
            self._state = State.READY
            self._send(501, "5.7.0", "Authentication cancelled")
            return AuthAborted("cancelled")
        try:
            data = _base64(line)
        except _Reject as reject:
            self._state = State.READY
            self._error(reject.code, reject.enhanced, reject.text)
            return AuthAborted("invalid")
        event = AuthResponse(data)
        self._pending = event
        return event

    # --- internals: commands --------------------------------------------------------------

    def _command(self, line: bytes) -> Event | None:
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            text = line.decode("utf-8", "surrogateescape")
        verb, _, arg = text.partition(" ")
        verb = verb.upper()
        if not text.isascii() and verb not in ("MAIL", "RCPT"):
            raise _Reject(500, "5.5.2", "Non-ASCII characters in command")
        match verb:
            case "EHLO" | "HELO":
                self._hello(verb, arg.strip(" "))
            case "MAIL":
                return self._mail_from(arg)
            case "RCPT":
                return self._rcpt_to(arg)
            case "DATA":
                self._data(arg)
            case "BDAT":
                self._bdat(arg)
            case "RSET":
                if arg:
                    raise _Reject(501, "5.5.4", "Syntax: RSET")
                self._reset_transaction()
                self._send(250, "2.0.0", "Ok")
            case "NOOP":  # RFC 5321 §4.1.1.9: an argument is allowed and ignored.
                self._send(250, "2.0.0", "Ok")
            case "QUIT":
                self._send(221, "2.0.0", "Bye")
                self._close("quit")
            case "VRFY":  # RFC 5321 §3.5.3: 252 when we will not say.
                if not arg.strip(" "):
                    raise _Reject(501, "5.5.4", "Syntax: VRFY address")
                self._send(
                    252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"
                )
            case "EXPN":  # RFC 5321 §3.5.2: MAY be disabled; list harvesting is all it serves.
                raise _Reject(502, "5.5.1", "EXPN not supported")
            case "HELP":
                self._send(
                    214,
                    "2.0.0",
                    "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY STARTTLS AUTH",
                )
            case "STARTTLS":
                return self._starttls(arg)
            case "AUTH":
                return self._auth(arg)
            case "":
                raise _Reject(500, "5.5.2", "Syntax error")
            case _:
                raise _Reject(500, "5.5.1", "Command unrecognized")
        return None

    def _hello(self, verb: str, name: str) -> None:
        if not name:
            raise _Reject(501, "5.5.4", f"Syntax: {verb} hostname")
        # RFC 5321 §4.1.4: EHLO/HELO in a transaction resets it, as RSET.
        self._helo = name
        self._esmtp = verb == "EHLO"
        self._reset_transaction()
        config = self._config
        if not self._esmtp:
            self._out += f"250 {config.hostname}\r\n".encode()
            return
        lines = [
            config.hostname,
            "PIPELINING",
            f"SIZE {config.max_message_size}",
            "8BITMIME",
            "SMTPUTF8",
            "CHUNKING",
            "BINARYMIME",
            "DSN",
            "ENHANCEDSTATUSCODES",
        ]
        if config.tls_available and not self._tls:
            lines.append("STARTTLS")
        if self._auth_offered:
            lines.append("AUTH " + " ".join(config.auth_mechanisms))
        if self._tls:  # RFC 8689 §4: offered only over TLS.
            lines.append("REQUIRETLS")
        last = lines.pop()
        self._out += "".join([f"250-{line}\r\n" for line in lines] + [f"250 {last}\r\n"]).encode()

    def _mail_from(self, arg: str) -> MailFrom:
        if self._helo is None:
            raise _Reject(503, "5.5.1", "Send HELO/EHLO first")
        if self._mail is not None:
            raise _Reject(503, "5.5.1", "Nested MAIL command")
        if self._config.require_auth_for_mail and self._auth_id is None:
            raise _Reject(530, "5.7.0", "Authentication required")
        address, params = _parse_path(arg, _FROM, "Syntax: MAIL FROM:<address>")
        if params and not self._esmtp:
            raise _Reject(555, "5.5.4", "Parameters require EHLO")
        size: int | None = None
        body: BodyType | None = None
        smtputf8 = requiretls = False
        ret: Literal["FULL", "HDRS"] | None = None
        envid: str | None = None
        auth: str | None = None
        for key, value in params.items():
            if key == "SIZE":  # RFC 1870 §6
                if value is None or not value.isdigit() or len(value) > 20:
                    raise _Reject(501, "5.5.4", "Invalid SIZE value")
                size = int(value)
                if size > self._config.max_message_size:
                    raise _Reject(552, "5.3.4", "Message size exceeds fixed maximum message size")
            elif key == "BODY":  # RFC 6152, RFC 3030 §3
                body = _BODY_TYPES.get((value or "").upper())
                if body is None:
                    raise _Reject(501, "5.5.4", "Invalid BODY value")
            elif key == "SMTPUTF8" and value is None:  # RFC 6531 §3.4
                smtputf8 = True
            elif key == "RET":  # RFC 3461 §4.3
                upper = (value or "").upper()
                if upper == "FULL":
                    ret = "FULL"
                elif upper == "HDRS":
                    ret = "HDRS"
                else:
                    raise _Reject(501, "5.5.4", "Invalid RET value")
            elif key == "ENVID":  # RFC 3461 §4.4
                if value is None or len(value) > 100:
                    raise _Reject(501, "5.5.4", "Invalid ENVID value")
                envid = _xtext(value)
            elif key == "AUTH" and self._auth_offered:  # RFC 4954 §5
                if value is None:
                    raise _Reject(501, "5.5.4", "Invalid AUTH value")
                auth = "<>" if value == "<>" else _xtext(value)
            elif key == "REQUIRETLS" and value is None:
                # RFC 8689 §2: only in a TLS session; X.7.10 is "Encryption needed" (RFC 5248).
                if not self._tls:
                    raise _Reject(530, "5.7.10", "REQUIRETLS requires a TLS connection")
                requiretls = True
            elif key in ("SMTPUTF8", "REQUIRETLS"):
                raise _Reject(501, "5.5.4", f"{key} takes no value")
            else:  # RFC 5321 §4.1.1.11
                raise _Reject(555, "5.5.4", f"Unsupported parameter {key}")
        _check_address(address, smtputf8)
        event = MailFrom(address, dict(params), size, body, smtputf8, ret, envid, auth, requiretls)
        self._pending = event
        return event

    def _rcpt_to(self, arg: str) -> RcptTo | None:
        mail = self._mail
        if mail is None:
            raise _Reject(503, "5.5.1", "Need MAIL command")
        address, params = _parse_path(arg, _TO, "Syntax: RCPT TO:<address>")
        if not address:
            raise _Reject(501, "5.5.4", "Syntax: RCPT TO:<address>")
        if params and not self._esmtp:
            raise _Reject(555, "5.5.4", "Parameters require EHLO")
        notify: tuple[str, ...] | None = None
        orcpt: str | None = None
        for key, value in params.items():
            if key == "NOTIFY":  # RFC 3461 §4.1
                items = tuple((value or "").upper().split(","))
                if items != ("NEVER",) and not (
                    _NOTIFY_VALUES.issuperset(items) and len(set(items)) == len(items)
                ):
                    raise _Reject(501, "5.5.4", "Invalid NOTIFY value")
                notify = items
            elif key == "ORCPT":  # RFC 3461 §4.2: addr-type ";" xtext
                addr_type, semicolon, original = (value or "").partition(";")
                if not semicolon or not _ADDR_TYPE.match(addr_type) or not original:
                    raise _Reject(501, "5.5.4", "Invalid ORCPT value")
                orcpt = f"{addr_type};{_xtext(original)}"
            else:
                raise _Reject(555, "5.5.4", f"Unsupported parameter {key}")
        _check_address(address, mail.smtputf8)
        self._rcpt_attempted = True
        if len(self._rcpts) >= self._config.max_recipients:
            self._send(452, "4.5.3", "Too many recipients")  # RFC 5321 §4.5.3.1.10
            return None
        event = RcptTo(address, dict(params), notify, orcpt)
        self._pending = event
        return event

    def _no_recipients(self) -> tuple[int, str, str] | None:
        if self._mail is None:
            return (503, "5.5.1", "Need MAIL command")
        if self._rcpts:
            return None
        if self._rcpt_attempted:
            return (554, "5.5.1", "No valid recipients")
        return (503, "5.5.1", "Need RCPT command")

    def _data(self, arg: str) -> None:
        refusal = self._no_recipients()
        if refusal is not None:
            raise _Reject(*refusal)
        assert self._mail is not None
        if self._bdat_used:  # RFC 3030 §2: one transaction, one way of sending content.
            raise _Reject(503, "5.5.1", "DATA not allowed after BDAT")
        if self._mail.body == "BINARYMIME":  # RFC 3030 §3
            raise _Reject(503, "5.5.1", "BODY=BINARYMIME requires BDAT")
        if arg:
            raise _Reject(501, "5.5.4", "Syntax: DATA")
        self._out += b"354 End data with <CR><LF>.<CR><LF>\r\n"
        self._state = State.DATA
        self._msg = bytearray(b"\r\n")
        self._oversize = False

    def _bdat(self, arg: str) -> None:
        """RFC 3030 §2: exactly <size> octets follow, read (and discarded when the command is
        refused) before the reply; a 4xx/5xx for a chunk fails the transaction."""
        syntax = _BDAT.match(arg)
        if syntax is None:
            # The chunk's length is unknown: its octets would be read as commands. Give up.
            self._error(501, "5.5.4", "Syntax: BDAT size [LAST]")
            if self._closed is None:
                self._send(421, "4.5.0", f"{self._config.hostname} Cannot resynchronise")
                self._close("bdat syntax")
            return
        size = int(syntax[1])
        refusal = self._no_recipients()
        if refusal is None and not self._esmtp:
            refusal = (503, "5.5.1", "BDAT requires EHLO")
        if refusal is None and len(self._msg) + size > self._config.max_message_size:
            refusal = (552, "5.3.4", "Message size exceeds fixed maximum message size")
        if refusal is None:
            self._bdat_used = True
        self._chunk = _Chunk(size, size, syntax[2] is not None, refusal)

    def _starttls(self, arg: str) -> StartTLS:
        if self._tls:
            raise _Reject(503, "5.5.1", "TLS already active")
        if not self._config.tls_available:
            raise _Reject(502, "5.5.1", "STARTTLS not available")
        if arg:
            raise _Reject(501, "5.5.4", "Syntax: STARTTLS")  # RFC 3207 §4
        if self._mail is not None:
            raise _Reject(503, "5.5.1", "STARTTLS not permitted during a mail transaction")
        self._send(220, "2.0.0", "Ready to start TLS")
        # RFC 3207 §4.2, CVE-2011-0411: whatever followed STARTTLS in clear is discarded.
        self._in.clear()
        event = StartTLS()
        self._pending = event
        return event

    def _auth(self, arg: str) -> AuthStart:
        config = self._config
        if not config.auth_mechanisms:
            raise _Reject(502, "5.5.1", "AUTH not available")
        if not self._esmtp:
            raise _Reject(503, "5.5.1", "Send EHLO first")
        if self._auth_id is not None:  # RFC 4954 §4
            raise _Reject(503, "5.5.1", "Already authenticated")
        if self._mail is not None:
            raise _Reject(503, "5.5.1", "AUTH not permitted during a mail transaction")
        args = arg.split(" ")
        if not args[0] or len(args) > 2:
            raise _Reject(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]")
        if not self._auth_offered:  # RFC 4954 §6
            raise _Reject(
                538, "5.7.11", "Encryption required for requested authentication mechanism"
            )
        mechanism = args[0].upper()
        if mechanism not in config.auth_mechanisms:
            raise _Reject(504, "5.5.4", "Unrecognized authentication type")
        initial: bytes | None = None
        if len(args) == 2:
            initial = b"" if args[1] == "=" else _base64(args[1].encode())
        self._state = State.AUTH
        event = AuthStart(mechanism, initial)
        self._pending = event
        return event

"""Sans-IO POP3 server protocol core (RFC 1939, with CAPA RFC 2449, STLS RFC 2595, AUTH RFC 5034).

This module owns the POP3 conversation of one server connection, and nothing else: it splits
the bytes it is given into command lines, enforces the states of RFC 1939 §3 (AUTHORIZATION,
TRANSACTION, UPDATE) and the input limits, keeps the maildrop's message numbers and deletion
marks for the session, and formats every response, message content dot-stuffed (§3). It does no
I/O, reads no clock and knows no store: whenever the application is needed (a password to
check, a SASL step, a message's content, the deletions to commit at QUIT, STLS)
:meth:`ServerConnection.next_event` returns an event and parses nothing more until the
application answers it (:meth:`~ServerConnection.accept_login`,
:meth:`~ServerConnection.refuse_login`, :meth:`~ServerConnection.auth_challenge`,
:meth:`~ServerConnection.send_message`, :meth:`~ServerConnection.update_done`,
:meth:`~ServerConnection.tls_started`, …). Calling ``next_event`` before answering raises
:class:`ProtocolError`. Responses accumulate in the output queue, so a pipelined batch of
commands (RFC 2449 §6.6) is answered in one write.

Memory is bounded: when ``next_event`` returns :data:`NEED_DATA`, at most one partial line
(``max_command_line`` octets, ``max_auth_line`` for AUTH) is buffered; a longer line is
answered ``-ERR`` and dropped as it arrives. Output is bounded too: once :data:`FLUSH_AT` octets
are queued, ``next_event`` returns :class:`Flush` until the application took them, so a client
pipelining thousands of ``LIST`` commands cannot make the server buffer their answers. Message
content is queued as slices of the application's bytes, never as a dot-stuffed second copy.

Not here: passwords and SASL mechanisms (:mod:`courrier.security.sasl`), the maildrop lock,
timeouts and delays, TLS, sockets (:mod:`courrier.pop3.server`).
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

__all__ = [
    "FLUSH_AT",
    "NEED_DATA",
    "AuthAborted",
    "AuthResponse",
    "AuthStart",
    "Chunk",
    "Closed",
    "Entry",
    "Event",
    "Flush",
    "Login",
    "NeedData",
    "ProtocolError",
    "Retrieve",
    "ServerConfig",
    "ServerConnection",
    "StartTLS",
    "State",
    "Update",
    "dot_stuffed",
]

#: Queued output (octets) past which :meth:`ServerConnection.next_event` returns :class:`Flush`.
FLUSH_AT: Final = 64 * 1024

# RFC 4422 §3.1: SASL mechanism names.
_MECHANISM = re.compile(r"[A-Z0-9_-]{1,20}\Z")
# RFC 1939 §7 (UIDL): a unique-id is 1 to 70 characters in the range 0x21 to 0x7E.
_UNIQUE_ID = re.compile(r"[!-~]{1,70}\Z")
# RFC 4648 §4, padded, nothing else (binascii tolerates excess padding).
_BASE64 = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\Z")
# Message numbers and TOP line counts: a few digits are plenty (RFC 1939 §3: "nonnegative").
_NUMBER = re.compile(r"[0-9]{1,10}\Z")


class ProtocolError(RuntimeError):
    """The application used the connection out of turn (a bug in the driver, never the peer)."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What one listener offers; shared by all its connections."""

    #: STLS is offered (a certificate is loaded) on this listener.
    tls_available: bool = True
    #: The connection is TLS from its first octet (port 995, RFC 8314): no STLS.
    implicit_tls: bool = False
    #: SASL mechanisms (upper case) offered once plaintext passwords are allowed; PLAIN is
    #: left out of CAPA and refused until then, as USER/PASS are.
    mechanisms: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256")
    #: Protocol errors (unknown commands, syntax, lines too long) before the server hangs up.
    max_errors: int = 10
    #: Failed logins before the server hangs up.
    max_auth_failures: int = 3
    #: Longest command line, CRLF included: RFC 2449 §4 says 255 octets.
    max_command_line: int = 255
    #: Longest AUTH command or SASL response line: RFC 5034 §4 lifts the 255-octet limit for
    #: them (a PLAIN response with a long passphrase, SCRAM's proof).
    max_auth_line: int = 1024
    #: The IMPLEMENTATION capability (RFC 2449 §6.9); no version, nothing to fingerprint.
    implementation: str = "courrier"

    def __post_init__(self) -> None:
        for mechanism in self.mechanisms:
            if not _MECHANISM.match(mechanism):
                raise ValueError(f"invalid SASL mechanism name {mechanism!r}")
        if self.max_errors < 1 or self.max_auth_failures < 1:
            raise ValueError("max_errors and max_auth_failures must be positive")
        if self.max_command_line < 255:
            raise ValueError("max_command_line must be at least 255 (RFC 2449 §4)")
        if self.max_auth_line < self.max_command_line:
            raise ValueError("max_auth_line must be at least max_command_line")
        if not self.implementation.isascii() or not self.implementation.isprintable():
            raise ValueError(f"invalid implementation {self.implementation!r}")


class State(enum.Enum):
    """Where the conversation stands (RFC 1939 §3)."""

    #: Greeted, not logged in (again after STLS, RFC 2595 §4).
    AUTHORIZATION = "authorization"
    #: In a SASL exchange (RFC 5034 §4); still the AUTHORIZATION state of RFC 1939.
    AUTH = "auth"
    #: Logged in: the maildrop is locked and numbered.
    TRANSACTION = "transaction"
    #: QUIT in TRANSACTION: the marked messages are being removed (RFC 1939 §6).
    UPDATE = "update"
    CLOSED = "closed"


class NeedData(enum.Enum):
    """Type of the :data:`NEED_DATA` sentinel."""

    NEED_DATA = "NEED_DATA"


#: Returned by :meth:`ServerConnection.next_event` when it must read more input.
NEED_DATA: Final = NeedData.NEED_DATA


@dataclass(frozen=True, slots=True)
class Entry:
    """One message of the maildrop, as the application describes it at login."""

    #: The application's handle for the message (the store's message id).
    key: int
    #: Exact size in octets (RFC 1939 §5: what LIST and STAT count).
    size: int
    #: The UIDL unique-id (RFC 1939 §7): the same for this message in every session, forever.
    unique_id: str


@dataclass(frozen=True, slots=True)
class Login:
    """``USER`` then ``PASS``: answer with ``accept_login`` or ``refuse_login``."""

    username: str
    password: str


@dataclass(frozen=True, slots=True)
class AuthStart:
    """``AUTH``: answer with ``auth_challenge``, ``accept_login`` or ``refuse_login``."""

    #: Upper case, one of the mechanisms offered now.
    mechanism: str
    #: The decoded initial response (RFC 5034 §4: "=" is empty), None when none was sent.
    initial: bytes | None


@dataclass(frozen=True, slots=True)
class AuthResponse:
    """The client's decoded answer to a challenge; answered like :class:`AuthStart`."""

    data: bytes


@dataclass(frozen=True, slots=True)
class AuthAborted:
    """The SASL exchange ended without a result (already answered ``-ERR``); drop its state."""

    reason: Literal["cancelled", "invalid"]


@dataclass(frozen=True, slots=True)
class StartTLS:
    """``+OK`` was queued: flush it, handshake, then call :meth:`ServerConnection.tls_started`."""


@dataclass(frozen=True, slots=True)
class Retrieve:
    """``RETR`` (``lines`` None) or ``TOP`` (``lines`` body lines): answer with
    ``send_message`` (the whole message; the core cuts TOP), ``message_gone`` or
    ``retrieve_failed``."""

    #: The message number in this session (RFC 1939 §3: from 1).
    number: int
    entry: Entry
    lines: int | None


@dataclass(frozen=True, slots=True)
class Update:
    """``QUIT`` in TRANSACTION with messages marked: remove them all, durably, then call
    ``update_done`` (RFC 1939 §6: the ``+OK`` says they are gone)."""

    deleted: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class Flush:
    """At least :data:`FLUSH_AT` octets are queued: write them before the next ``next_event``."""


@dataclass(frozen=True, slots=True)
class Closed:
    """The conversation is over: write what is queued and close the connection."""

    #: "quit", "eof", "too many errors" or "too many failed logins".
    reason: str


Event: TypeAlias = (
    Login | AuthStart | AuthResponse | AuthAborted | StartTLS | Retrieve | Update | Flush | Closed
)
_Pending: TypeAlias = Login | AuthStart | AuthResponse | StartTLS | Retrieve | Update
Chunk: TypeAlias = bytes | memoryview


class _Reject(Exception):
    """A ``-ERR`` for a protocol error: counted towards ``max_errors``."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class _Fail(Exception):
    """A ``-ERR`` for a well-formed command that cannot be done (no such message, …)."""

    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


def _base64(data: str) -> bytes:
    raw = data.encode("ascii", "replace")
    if not _BASE64.match(raw):
        raise _Reject("Invalid base64 data")
    return binascii.a2b_base64(raw)


def _top_end(data: bytes, lines: int) -> int:
    """Where ``TOP n`` stops (RFC 1939 §7): after the header, the empty line that ends it,
    and ``lines`` lines of the body. A message without an empty line is all header."""
    pos, size = 0, len(data)
    while pos < size:
        newline = data.find(b"\n", pos)
        end = size if newline < 0 else newline + 1
        empty = end - pos == 1 or (end - pos == 2 and data[pos] == 0x0D)
        pos = end
        if empty:
            break
    for _ in range(lines):
        if pos >= size:
            break
        newline = data.find(b"\n", pos)
        pos = size if newline < 0 else newline + 1
    return pos


def dot_stuffed(data: bytes, end: int | None = None) -> list[Chunk]:
    """``data[:end]`` as the content of a multi-line response (RFC 1939 §3): a "." starting a
    line gets another "." in front, the last line ends with CRLF, and the ".CRLF" terminator
    follows. The pieces are slices of ``data``, not a copy of it.

    A line starts after any LF: with the CRLF line ends stored messages have, that is the
    RFC's rule; a bare LF (which a client may also take for a line end) gets the same care, so
    no line of content can ever read as the terminator."""
    if end is None:
        end = len(data)
    view = memoryview(data)
    pieces: list[Chunk] = []
    start = 0
    if end and data[:1] == b".":
        pieces.append(b".")
    while True:
        found = data.find(b"\n.", start, end)
        if found < 0:
            break
        pieces.append(view[start : found + 1])
        pieces.append(b".")
        start = found + 1
    if start < end:
        pieces.append(view[start:end])
    if end and not data.endswith(b"\r\n", 0, end):
        pieces.append(b"\r\n")
    pieces.append(b".\r\n")
    return pieces


class ServerConnection:
    """The server side of one POP3 connection; the greeting is queued at construction.

    ``plaintext_allowed``: USER/PASS and AUTH PLAIN are accepted before TLS on this
    connection (loopback with ``plaintext_on_loopback``); otherwise only once encrypted."""

    def __init__(self, config: ServerConfig, *, plaintext_allowed: bool = False) -> None:
        self._config = config
        self._plaintext_allowed = plaintext_allowed
        self._in = bytearray()
        self._out: list[Chunk] = []
        self._out_size = 0
        self._eof = False
        self._closed: Closed | None = None
        self._pending: _Pending | None = None
        self._state = State.AUTHORIZATION
        self._tls = config.implicit_tls
        self._errors = 0
        self._auth_failures = 0
        self._skipping_line = False
        #: The name of a USER command that awaits its PASS.
        self._user: str | None = None
        self._maildrop: tuple[Entry, ...] = ()
        self._deleted: set[int] = set()
        # RFC 1939 §4: the greeting; no APOP timestamp (passwords are stored hashed).
        self._ok("courrier POP3 server ready")

    # --- public state -------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def tls_active(self) -> bool:
        return self._tls

    @property
    def plaintext_ok(self) -> bool:
        """Passwords may be sent in clear now (RFC 2595 §4, RFC 8314 §3)."""
        return self._tls or self._plaintext_allowed

    @property
    def auth_failures(self) -> int:
        """Failed logins so far (the driver may wait longer after each)."""
        return self._auth_failures

    @property
    def maildrop(self) -> tuple[Entry, ...]:
        """The messages as numbered at login (number n is ``maildrop[n - 1]``)."""
        return self._maildrop

    @property
    def deleted(self) -> frozenset[int]:
        """The message numbers marked by DELE (and not unmarked by RSET)."""
        return frozenset(self._deleted)

    @property
    def buffered_bytes(self) -> int:
        """Unparsed input octets held."""
        return len(self._in)

    @property
    def queued_bytes(self) -> int:
        """Output octets queued and not yet taken."""
        return self._out_size

    # --- I/O side -----------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Add input. Ignored once closed, after EOF, and between StartTLS and tls_started()
        (RFC 2595 §4: nothing sent in clear after STLS may be acted upon)."""
        if self._closed is None and not self._eof and not isinstance(self._pending, StartTLS):
            self._in += data

    def receive_eof(self) -> None:
        """The client closed its side: what is buffered is still parsed, then Closed("eof").
        RFC 1939 §6: without QUIT there is no UPDATE state, so nothing is deleted."""
        self._eof = True

    def chunks_to_send(self) -> list[Chunk]:
        """The output queued since the last call, as pieces (message content is sliced from
        the application's bytes, not copied)."""
        out = self._out
        self._out = []
        self._out_size = 0
        return out

    def data_to_send(self) -> bytes:
        """The output queued since the last call, in one piece."""
        return b"".join(self.chunks_to_send())

    def next_event(self) -> Event | NeedData:
        """The next event, or NEED_DATA. Returns the same Closed event forever once closed.

        Raises ProtocolError while an event still awaits the application's answer."""
        if self._pending is not None and self._closed is None:
            raise ProtocolError(f"{self._pending!r} has not been answered")
        while self._closed is None:
            if self._out_size >= FLUSH_AT:
                return Flush()
            event = self._step()
            if event is NEED_DATA:
                if not self._eof:
                    return NEED_DATA
                self._close("eof")
            elif event is not None:
                return event
        return self._closed

    # --- application answers ------------------------------------------------------------

    def accept_login(self, maildrop: Sequence[Entry]) -> None:
        """Answer a Login or the last SASL step: the credentials are good and the maildrop is
        locked. ``maildrop`` is the messages in order, numbered from 1 for the whole session
        (RFC 1939 §5); messages arriving later are not part of it."""
        for entry in maildrop:
            if not _UNIQUE_ID.match(entry.unique_id):
                raise ValueError(f"invalid unique-id {entry.unique_id!r} (RFC 1939 §7)")
            if entry.size < 0:
                raise ValueError("a message size cannot be negative")
        self._answer_login()
        self._maildrop = tuple(maildrop)
        self._deleted = set()
        self._state = State.TRANSACTION
        count, octets = self._totals()
        self._ok(f"Logged in, maildrop has {count} messages ({octets} octets)")

    def refuse_login(self, code: Literal["AUTH", "IN-USE", "SYS/TEMP"] = "AUTH") -> None:
        """Answer a Login or SASL step with ``-ERR``: ``AUTH`` bad credentials (RFC 3206 §4,
        counted: the last allowed failure also closes the connection), ``IN-USE`` another
        POP3 session holds the maildrop (RFC 2449 §8.1.1), ``SYS/TEMP`` a temporary failure
        (RFC 3206 §4)."""
        self._answer_login()
        self._state = State.AUTHORIZATION
        if code == "IN-USE":
            self._err("Maildrop already in use by another POP3 session", "IN-USE")
        elif code == "SYS/TEMP":
            self._err("Temporary failure, try again later", "SYS/TEMP")
        else:
            self._auth_failures += 1
            if self._auth_failures >= self._config.max_auth_failures:
                self._err("Authentication failed; too many failures, closing connection", "AUTH")
                self._close("too many failed logins")
            else:
                self._err("Authentication failed", "AUTH")

    def auth_challenge(self, data: bytes) -> None:
        """Send a SASL challenge (``+ <base64>``, RFC 5034 §4) and wait for the answer.

        RFC 5034 has no additional data with ``+OK``: SCRAM's server-final message goes as a
        last challenge, which the client answers with an empty line (RFC 4422 §3.6)."""
        if not isinstance(self._pending, AuthStart | AuthResponse):
            raise ProtocolError("auth_challenge() without a pending AUTH step")
        self._pending = None
        self._queue(b"+ " + base64.b64encode(data) + b"\r\n")

    def tls_started(self) -> None:
        """The TLS handshake after StartTLS succeeded; the session starts afresh in
        AUTHORIZATION (RFC 2595 §4)."""
        if not isinstance(self._pending, StartTLS):
            raise ProtocolError("tls_started() without a pending StartTLS")
        self._pending = None
        self._tls = True
        self._user = None
        self._in.clear()

    def send_message(self, data: bytes) -> None:
        """Answer a Retrieve with the message exactly as stored (lines ending in CRLF): all of
        it for RETR, the header and the first lines of the body for TOP (RFC 1939 §7)."""
        event = self._pending
        if not isinstance(event, Retrieve):
            raise ProtocolError("send_message() without a pending Retrieve")
        self._pending = None
        if event.lines is None:
            self._ok(f"{len(data)} octets")
            end = len(data)
        else:
            self._ok("Top of message follows")
            end = _top_end(data, event.lines)
        for piece in dot_stuffed(data, end):
            self._queue(piece)

    def message_gone(self) -> None:
        """Answer a Retrieve: the message was removed meanwhile (by an IMAP session)."""
        event = self._pending
        if not isinstance(event, Retrieve):
            raise ProtocolError("message_gone() without a pending Retrieve")
        self._pending = None
        self._err(f"Message {event.number} was removed by another session")

    def retrieve_failed(self) -> None:
        """Answer a Retrieve: the message cannot be read now (store failure)."""
        if not isinstance(self._pending, Retrieve):
            raise ProtocolError("retrieve_failed() without a pending Retrieve")
        self._pending = None
        self._err("Cannot read the message now, try again later", "SYS/TEMP")

    def update_done(self, ok: bool) -> None:
        """Answer an Update once the removal is durable (``ok``) or failed; either way the
        connection then closes (RFC 1939 §6)."""
        event = self._pending
        if not isinstance(event, Update):
            raise ProtocolError("update_done() without a pending Update")
        self._pending = None
        if ok:
            self._ok(f"courrier POP3 server signing off ({len(event.deleted)} messages deleted)")
        else:
            self._err("Some deleted messages not removed, try again later", "SYS/TEMP")
        self._close("quit")

    # --- internals: output and state ----------------------------------------------------

    def _queue(self, data: Chunk) -> None:
        self._out.append(data)
        self._out_size += len(data)

    def _ok(self, text: str) -> None:
        self._queue((f"+OK {text}\r\n" if text else "+OK\r\n").encode())

    def _err(self, text: str, code: str | None = None) -> None:
        # RFC 2449 §8: a response code goes in brackets right after "-ERR".
        self._queue((f"-ERR [{code}] {text}\r\n" if code else f"-ERR {text}\r\n").encode())

    def _error(self, text: str) -> None:
        """A protocol error; the last one allowed also closes the connection."""
        self._errors += 1
        if self._errors >= self._config.max_errors:
            self._err(f"{text}; too many errors, closing connection")
            self._close("too many errors")
        else:
            self._err(text)

    def _multiline(self, first: str, lines: Sequence[str]) -> None:
        """A multi-line response whose lines cannot start with "." (RFC 1939 §3)."""
        body = "".join([f"+OK {first}\r\n", *(("\r\n".join(lines), "\r\n") if lines else ())])
        self._queue(f"{body}.\r\n".encode())

    def _close(self, reason: str) -> None:
        self._closed = Closed(reason)
        self._state = State.CLOSED
        self._pending = None
        self._in.clear()

    def _answer_login(self) -> None:
        if not isinstance(self._pending, Login | AuthStart | AuthResponse):
            raise ProtocolError("no pending login to answer")
        self._pending = None

    def _totals(self) -> tuple[int, int]:
        """Messages and octets not marked as deleted (RFC 1939 §5, STAT)."""
        live = [e.size for n, e in enumerate(self._maildrop, 1) if n not in self._deleted]
        return len(live), sum(live)

    def _capabilities(self) -> list[str]:
        """RFC 2449 §5: what is offered in the current state."""
        caps = ["TOP"]
        before_login = self._state is State.AUTHORIZATION
        if before_login and self.plaintext_ok:
            caps.append("USER")
        caps += ["UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"]
        if before_login:
            mechanisms = self._mechanisms()
            if mechanisms:
                caps.append("SASL " + " ".join(mechanisms))
            if self._config.tls_available and not self._tls:
                caps.append("STLS")
        caps.append(f"IMPLEMENTATION {self._config.implementation}")
        return caps

    def _mechanisms(self) -> list[str]:
        return [m for m in self._config.mechanisms if m != "PLAIN" or self.plaintext_ok]

    # --- internals: input ---------------------------------------------------------------

    def _read_line(self) -> bytes | None:
        """The next line without its line end, None if incomplete. RFC 1939 §3 ends lines
        with CRLF; a bare LF is taken too (no smuggling to fear here, unlike SMTP). An
        overlong line is answered ``-ERR`` and dropped as it arrives, never buffered."""
        buf = self._in
        if self._skipping_line:
            end = buf.find(b"\n")
            if end < 0:
                buf.clear()
                return None
            del buf[: end + 1]
            self._skipping_line = False
            raise _Reject("Line too long")
        limit = self._config.max_command_line
        if self._state is State.AUTH or buf[:5].upper() == b"AUTH ":
            limit = self._config.max_auth_line
        end = buf.find(b"\n", 0, limit)
        if end < 0:
            if len(buf) < limit:
                return None
            del buf[:limit]
            self._skipping_line = True
            return self._read_line()
        line = bytes(buf[:end])
        del buf[: end + 1]
        if line.endswith(b"\r"):
            line = line[:-1]
        if b"\r" in line or b"\x00" in line:
            raise _Reject("Invalid character in command")
        return line

    def _step(self) -> Event | NeedData | None:
        try:
            line = self._read_line()
        except _Reject as reject:
            self._error(reject.text)
            if self._state is State.AUTH and self._closed is None:
                self._state = State.AUTHORIZATION
                return AuthAborted("invalid")
            return None
        if line is None:
            return NEED_DATA
        if self._state is State.AUTH:
            return self._auth_line(line)
        try:
            return self._command(line)
        except _Reject as reject:
            self._error(reject.text)
        except _Fail as fail:
            self._err(fail.text, fail.code)
        return None

    def _auth_line(self, line: bytes) -> Event:
        """A client line in a SASL exchange (RFC 5034 §4): base64, or "*" to cancel."""
        self._state = State.AUTHORIZATION
        if line == b"*":
            self._err("Authentication cancelled")
            return AuthAborted("cancelled")
        try:
            data = _base64(line.decode("ascii", "replace"))
        except _Reject as reject:
            self._error(reject.text)
            return AuthAborted("invalid")
        self._state = State.AUTH
        event = AuthResponse(data)
        self._pending = event
        return event

    # --- internals: commands ------------------------------------------------------------

    def _command(self, line: bytes) -> Event | None:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self._user = None
            raise _Reject("Invalid UTF-8 in command") from None
        keyword, _, arg = text.partition(" ")
        keyword = keyword.upper()
        user, self._user = self._user, None  # RFC 1939 §7: PASS must follow USER directly
        # User names and passwords may be UTF-8; nothing else may (RFC 2449 §3).
        if not text.isascii() and keyword not in ("USER", "PASS"):
            raise _Reject("Non-ASCII characters in command")
        if not keyword.isascii() or not keyword.isalnum():
            raise _Reject("Unknown command")
        args = [a for a in arg.split(" ") if a]
        if keyword in _ANY_STATE:
            if keyword == "CAPA":
                self._no_args(keyword, args)
                self._multiline("Capability list follows", self._capabilities())
                return None
            return self._quit()
        if self._state is State.AUTHORIZATION:
            if keyword in _TRANSACTION:
                raise _Reject(f"{keyword} is not allowed before login")
            match keyword:
                case "USER":
                    self._user_command(arg)
                    return None
                case "PASS":
                    return self._pass(user, arg)
                case "AUTH":
                    return self._auth(args)
                case "STLS":
                    return self._stls(args)
                case "APOP":  # RFC 1939 §7: optional; it needs the password in clear here
                    raise _Fail("APOP not supported, use USER/PASS or AUTH over TLS")
        else:
            if keyword in _AUTHORIZATION:
                raise _Reject(f"{keyword} is not allowed after login")
            if keyword in _TRANSACTION:
                return self._transaction(keyword, args)
        raise _Reject(f"Unknown command {keyword[:20]}")

    @staticmethod
    def _no_args(keyword: str, args: list[str]) -> None:
        if args:
            raise _Reject(f"Syntax: {keyword}")

    def _quit(self) -> Event | None:
        if self._state is State.TRANSACTION and self._deleted:
            # RFC 1939 §6: the UPDATE state; the +OK waits for the removal.
            self._state = State.UPDATE
            deleted = tuple(self._maildrop[n - 1] for n in sorted(self._deleted))
            event = Update(deleted)
            self._pending = event
            return event
        self._ok("courrier POP3 server signing off")
        self._close("quit")
        return None

    # AUTHORIZATION state (RFC 1939 §4, §7; RFC 2595 §4; RFC 5034 §4)

    def _plaintext_refused(self) -> _Fail:
        return _Fail("Plaintext authentication disallowed without TLS, use STLS first", "AUTH")

    def _user_command(self, arg: str) -> None:
        name = arg.strip(" ")
        if not name:
            raise _Reject("Syntax: USER name")
        if not self.plaintext_ok:
            raise self._plaintext_refused()
        self._user = name
        # The same answer for every name: whether an account exists is not told.
        self._ok("Send your password")

    def _pass(self, user: str | None, arg: str) -> Login:
        if user is None:
            raise _Reject("Send USER first")
        if not arg:
            raise _Reject("Syntax: PASS password")
        if not self.plaintext_ok:
            raise self._plaintext_refused()
        # RFC 1939 §7: the password is the rest of the line, spaces included.
        event = Login(user, arg)
        self._pending = event
        return event

    def _auth(self, args: list[str]) -> AuthStart | None:
        if not args:
            # Not in RFC 5034 but widespread (from RFC 1734 days): bare AUTH lists mechanisms.
            self._multiline("Supported mechanisms follow", self._mechanisms())
            return None
        if len(args) > 2:
            raise _Reject("Syntax: AUTH mechanism [initial-response]")
        mechanism = args[0].upper()
        if mechanism not in self._config.mechanisms:
            raise _Fail("Unsupported authentication mechanism")
        if mechanism not in self._mechanisms():
            raise self._plaintext_refused()
        initial: bytes | None = None
        if len(args) == 2:
            initial = b"" if args[1] == "=" else _base64(args[1])
        self._state = State.AUTH
        event = AuthStart(mechanism, initial)
        self._pending = event
        return event

    def _stls(self, args: list[str]) -> StartTLS:
        self._no_args("STLS", args)
        if self._tls:
            raise _Fail("TLS already active")
        if not self._config.tls_available:
            raise _Fail("STLS not available")
        self._ok("Begin TLS negotiation")
        # RFC 2595 §4 (CVE-2011-0411): whatever followed STLS in clear is discarded.
        self._in.clear()
        event = StartTLS()
        self._pending = event
        return event

    # TRANSACTION state (RFC 1939 §5, §7)

    def _transaction(self, keyword: str, args: list[str]) -> Retrieve | None:
        match keyword:
            case "STAT":
                self._no_args(keyword, args)
                count, octets = self._totals()
                self._ok(f"{count} {octets}")
            case "LIST" | "UIDL":
                if len(args) > 1:
                    raise _Reject(f"Syntax: {keyword} [message]")
                sizes = keyword == "LIST"
                if args:
                    number = self._number(args[0])
                    entry = self._maildrop[number - 1]
                    self._ok(f"{number} {entry.size if sizes else entry.unique_id}")
                else:
                    count, octets = self._totals()
                    deleted = self._deleted
                    listing = enumerate(self._maildrop, 1)
                    self._multiline(
                        f"{count} messages ({octets} octets)",
                        [f"{n} {e.size}" for n, e in listing if n not in deleted]
                        if sizes
                        else [f"{n} {e.unique_id}" for n, e in listing if n not in deleted],
                    )
            case "RETR":
                if len(args) != 1:
                    raise _Reject("Syntax: RETR message")
                number = self._number(args[0])
                return self._retrieve(number, None)
            case "TOP":
                if len(args) != 2:
                    raise _Reject("Syntax: TOP message lines")
                number = self._number(args[0])
                if not _NUMBER.match(args[1]):
                    raise _Reject("Invalid number of lines")
                return self._retrieve(number, int(args[1]))
            case "DELE":
                if len(args) != 1:
                    raise _Reject("Syntax: DELE message")
                number = self._number(args[0])
                self._deleted.add(number)
                self._ok(f"Message {number} deleted")
            case "RSET":
                self._no_args(keyword, args)
                self._deleted.clear()
                count, octets = self._totals()
                self._ok(f"Maildrop has {count} messages ({octets} octets)")
            case "NOOP":
                self._no_args(keyword, args)
                self._ok("")
        return None

    def _retrieve(self, number: int, lines: int | None) -> Retrieve:
        event = Retrieve(number, self._maildrop[number - 1], lines)
        self._pending = event
        return event

    def _number(self, arg: str) -> int:
        """A message-number argument (RFC 1939 §3): in the maildrop and not deleted."""
        if not _NUMBER.match(arg):
            raise _Reject("Invalid message number")
        number = int(arg)
        if not 1 <= number <= len(self._maildrop):
            raise _Fail(f"No such message, only {len(self._maildrop)} messages in maildrop")
        if number in self._deleted:
            raise _Fail(f"Message {number} already deleted")
        return number


_ANY_STATE: Final = frozenset({"CAPA", "QUIT"})
_AUTHORIZATION: Final = frozenset({"USER", "PASS", "APOP", "AUTH", "STLS"})
_TRANSACTION: Final = frozenset({"STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL"})

"""Sans-IO IMAP command reader: octets in, parsed commands out (RFC 9051 §9 grammar; the
IMAP4rev1 spellings of RFC 3501 parse to the same values).

This module owns the client half of the IMAP wire format on a server connection: splitting the
input into command lines and literals (RFC 9051 §4.3, LITERAL+/LITERAL- of RFC 7888, literal8
of RFC 3516), enforcing size limits, and parsing each complete command into the vocabulary of
:mod:`courrier.imap.types`. It does no I/O, keeps no clock and knows nothing of session state:
whether a command is allowed now, whether a capability was advertised or enabled, whether a
charset is supported, is for the session to decide.

Use: :meth:`CommandReader.receive` what was read, then call :meth:`CommandReader.next_event`
until it returns :data:`NEED_DATA`:

- a :class:`~courrier.imap.types.Command`: a complete command. Syntax errors give
  :class:`~courrier.imap.types.Invalid` with a reason for the tagged BAD; bad input never
  raises.
- :class:`Continuation`: the client announced a synchronizing literal that will be accepted;
  write ``+ Ready for literal data`` (RFC 9051 §7.5) and keep calling ``next_event``.
- :class:`LiteralTooBig`: a literal above ``max_literal`` (or one that would make the command
  larger than ``command_limit``). For a synchronizing literal the client sends nothing more of
  that command, the reader has dropped it and goes on with the next line: answer
  ``NO [TOOBIG]`` (RFC 7888 §4, RFC 4469 §5). For a non-synchronizing one the octets are coming
  anyway: answer BAD and close (RFC 7888 §4); the reader ignores all further input.
- :class:`LineTooLong`: a line above ``max_line`` octets or a command above ``command_limit``
  octets (a non-synchronizing literal included): answer BAD and close; the reader ignores all
  further input.
- :class:`Closed`: the peer closed the connection (:meth:`~CommandReader.receive_eof`) and no
  complete command is left; an incomplete one is dropped.

Lines end in CRLF; a bare LF is accepted as well, as Dovecot and Cyrus accept it.

Memory is bounded: when ``next_event`` returns :data:`NEED_DATA`, the reader holds at most one
partial line (``max_line`` + 1 octets) and the command read so far, literals included (each at
most ``max_literal``), at most :attr:`~CommandReader.command_limit` octets: ``max_command``, or
one line and one largest literal if that is more, so that raising ``max_literal`` to the
APPENDLIMIT after login is enough to accept messages of that size. A driver that calls
``receive`` only after ``NEED_DATA`` therefore holds at most that plus one read. Whatever the
driver does, unread input never exceeds ``command_limit + max_line + 2`` octets (beyond that the
reader gives up), and once the reader has given up (:attr:`~CommandReader.broken`) it keeps
nothing.

Raw lines: :meth:`~CommandReader.read_line` returns the next line as is (IDLE's ``DONE``,
AUTHENTICATE responses), between commands only. :meth:`~CommandReader.pending` and
:meth:`~CommandReader.discard` give and drop the unread input: COMPRESS hands it to the
decompressor; STARTTLS drops it, since nothing a client pipelined behind STARTTLS may be taken
as sent under TLS (the command injection of CVE-2011-0411).
"""

from __future__ import annotations

import datetime
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from courrier.imap import mutf7
from courrier.imap.types import (
    AgeKey,
    AllKey,
    AndKey,
    Append,
    AppendMessage,
    Authenticate,
    Command,
    Compress,
    CopyMove,
    DateKey,
    Enable,
    Fetch,
    FetchAttr,
    FetchItem,
    FetchName,
    FetchSection,
    FlagKey,
    HeaderKey,
    Id,
    Invalid,
    ListCommand,
    Login,
    MailboxCommand,
    ModSeqKey,
    NotKey,
    OrKey,
    Quota,
    RecentKey,
    Rename,
    Search,
    SearchKey,
    Select,
    SequenceSet,
    SetKey,
    Simple,
    SizeKey,
    Sort,
    Status,
    StoreFlags,
    TextKey,
    ThreadCommand,
    UidExpunge,
)
from courrier.message.text import decode_charset

__all__ = [
    "MAX_SEARCH_DEPTH",
    "NEED_DATA",
    "Closed",
    "CommandReader",
    "Continuation",
    "Event",
    "LineTooLong",
    "LiteralTooBig",
    "NeedData",
]

#: Nesting of parenthesised lists, NOT and OR in a search program beyond which it is refused.
MAX_SEARCH_DEPTH: Final = 100


class NeedData(enum.Enum):
    """Type of the :data:`NEED_DATA` sentinel."""

    NEED_DATA = "NEED_DATA"


#: Returned by :meth:`CommandReader.next_event` when it must be given more input.
NEED_DATA: Final = NeedData.NEED_DATA


@dataclass(frozen=True, slots=True)
class Continuation:
    """A synchronizing literal was announced and will be read: send ``+ Ready for literal
    data`` (RFC 9051 §7.5), then keep calling ``next_event``."""


@dataclass(frozen=True, slots=True)
class LiteralTooBig:
    """A literal of ``size`` octets is refused.

    ``nonsync`` False: the client waits for a continuation that will not come; the command is
    dropped, answer ``tag NO [TOOBIG]`` and go on. ``nonsync`` True (``{n+}``, RFC 7888): its
    octets are on their way; answer ``tag BAD`` and close the connection (RFC 7888 §4).
    """

    tag: str
    size: int
    nonsync: bool


@dataclass(frozen=True, slots=True)
class LineTooLong:
    """A line above ``max_line`` or a command above ``max_command``: answer BAD and close. The
    tag is "*" when none could be read."""

    tag: str


@dataclass(frozen=True, slots=True)
class Closed:
    """The client closed its side and no complete command is left."""


Event: TypeAlias = NeedData | Command | Continuation | LiteralTooBig | LineTooLong | Closed

# -- lexical classes (RFC 9051 §9) -------------------------------------------------------------
# CHAR is %x01-7F; CTL is %x00-1F / %x7F; atom-specials are "(" / ")" / "{" / SP / CTL /
# list-wildcards ("%" / "*") / quoted-specials (DQUOTE / "\") / resp-specials ("]").
_ATOM = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\\]]+')
# ASTRING-CHAR = ATOM-CHAR / resp-specials
_ASTRING_ATOM = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\]+')
# tag = 1*<any ASTRING-CHAR except "+">
_TAG = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\+]+')
# list-char = ATOM-CHAR / list-wildcards / resp-specials
_LIST_ATOM = re.compile(rb'[^\x00-\x20\x7f-\xff(){"\\]+')
# quoted = DQUOTE *QUOTED-CHAR DQUOTE; QUOTED-CHAR is a TEXT-CHAR (no CR, LF; NUL is no CHAR)
# other than quoted-specials, an escaped quoted-special, or UTF-8 (checked when decoded).
_QUOTED = re.compile(rb'"((?:[^"\\\r\n\x00]|\\["\\])*+)"')
_QUOTED_ESCAPE = re.compile(rb'\\(["\\])')
_DIGITS = re.compile(rb"[0-9]+")
_SEQUENCE = re.compile(rb"[0-9:*,$]+")
# A fetch item name before its "[" or the next separator.
_ITEM_NAME = re.compile(rb"[A-Za-z0-9.+-]+")
_SECTION_WORD = re.compile(rb"[A-Za-z.]+")
_PREVIEW_LAZY = re.compile(rb" \((?i:LAZY)[ )]")
# RFC 4648 base64 as the SASL initial response (RFC 9051 §9 initial-resp, RFC 4959).
_BASE64 = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
# date-text = date-day "-" date-month "-" date-year (date-day = 1*2DIGIT)
_DATE = re.compile(rb"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})")
# date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE;
# date-day-fixed is (SP DIGIT) / 2DIGIT, and a single digit is accepted too.
_DATE_TIME = re.compile(
    rb"( ?[0-9]|[0-9]{2})-([A-Za-z]{3})-([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) "
    rb"([+-])([0-9]{2})([0-9]{2})"
)
_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        b"JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), start=1
    )
}

_DIGIT_OCTETS: Final = frozenset(b"0123456789")
_SP = 0x20
_LPAREN = 0x28
_RPAREN = 0x29
_DQUOTE = 0x22
_BACKSLASH = 0x5C
_LBRACKET = 0x5B
_RBRACKET = 0x5D
_LANGLE = 0x3C

_NUMBER_MAX: Final = 2**32 - 1  # number, nz-number: unsigned 32-bit
_NUMBER64_MAX: Final = 2**63 - 1  # number64, mod-sequence-value: unsigned 63-bit

# RFC 9051 §2.3.2 system flags (and rev1's \Recent), matched case-insensitively (§9 note 1).
_SYSTEM_FLAGS: Final = {
    flag.upper(): flag
    for flag in ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent")
}
# RFC 6154 §2 (and RFC 8457 \Important) special-use attributes, in their registered spelling.
_SPECIAL_USE: Final = {
    attr.upper(): attr
    for attr in (
        "\\All",
        "\\Archive",
        "\\Drafts",
        "\\Flagged",
        "\\Junk",
        "\\Sent",
        "\\Trash",
        "\\Important",
    )
}
_SIMPLE: Final = frozenset(
    {
        "CAPABILITY",
        "NOOP",
        "LOGOUT",
        "STARTTLS",
        "CHECK",
        "CLOSE",
        "UNSELECT",
        "EXPUNGE",
        "IDLE",
        "NAMESPACE",
    }
)
# RFC 9051 §6.3.11, RFC 3501 RECENT, RFC 7162 HIGHESTMODSEQ, RFC 7889 APPENDLIMIT.
_STATUS_ITEMS: Final = frozenset(
    {
        "MESSAGES",
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "DELETED",
        "SIZE",
        "RECENT",
        "HIGHESTMODSEQ",
        "APPENDLIMIT",
    }
)
# RFC 5258 §3.1 (RFC 9051 §6.3.9.1) and RFC 6154 §3 selection options.
_LIST_SELECT: Final = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
_LIST_BASE_SELECT: Final = frozenset({"SUBSCRIBED", "SPECIAL-USE"})
# RFC 5258 §3.2, RFC 6154 §3, RFC 5819 (STATUS, parsed apart).
_LIST_RETURN: Final = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE"})
# RFC 9051 §6.4.4 result options (RFC 4731 ESEARCH, RFC 5182 SAVE); RFC 5267 ESORT.
_SEARCH_RETURN: Final = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})
# RFC 5256 §3 sort keys, RFC 5957 DISPLAYFROM/DISPLAYTO.
_SORT_KEYS: Final = frozenset(
    {"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"}
)
_THREAD_ALGORITHMS: Final = frozenset({"REFERENCES", "ORDEREDSUBJECT"})
_FETCH_ATTRS: Final[dict[str, FetchName]] = {
    "UID": "UID",
    "FLAGS": "FLAGS",
    "INTERNALDATE": "INTERNALDATE",
    "RFC822.SIZE": "RFC822.SIZE",
    "ENVELOPE": "ENVELOPE",
    "BODYSTRUCTURE": "BODYSTRUCTURE",
    "BODY": "BODY",
    "MODSEQ": "MODSEQ",  # RFC 7162 §3.1.4
    "RFC822": "RFC822",  # RFC 3501 §6.4.5
    "RFC822.HEADER": "RFC822.HEADER",
    "RFC822.TEXT": "RFC822.TEXT",
    "PREVIEW": "PREVIEW",  # RFC 8970
    "SAVEDATE": "SAVEDATE",  # RFC 8514
    "EMAILID": "EMAILID",  # RFC 8474
    "THREADID": "THREADID",
}
# RFC 9051 §6.4.5 macros.
_FAST: Final = (FetchAttr("FLAGS"), FetchAttr("INTERNALDATE"), FetchAttr("RFC822.SIZE"))
_FETCH_MACROS: Final[dict[str, tuple[FetchItem, ...]]] = {
    "FAST": _FAST,
    "ALL": (*_FAST, FetchAttr("ENVELOPE")),
    "FULL": (*_FAST, FetchAttr("ENVELOPE"), FetchAttr("BODY")),
}
_QResync: TypeAlias = tuple[int, int, SequenceSet | None, tuple[SequenceSet, SequenceSet] | None]
_SectionText: TypeAlias = Literal["HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"]
_SECTION_TEXTS: Final[dict[str, _SectionText]] = {
    "HEADER": "HEADER",
    "HEADER.FIELDS": "HEADER.FIELDS",
    "HEADER.FIELDS.NOT": "HEADER.FIELDS.NOT",
    "TEXT": "TEXT",
    "MIME": "MIME",
}
# RFC 9051 §6.4.4 search keys without arguments.
_FLAG_KEYS: Final = {
    "ANSWERED": ("\\Answered", True),
    "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True),
    "FLAGGED": ("\\Flagged", True),
    "SEEN": ("\\Seen", True),
    "UNANSWERED": ("\\Answered", False),
    "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False),
    "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}
_HEADER_KEYS: Final = frozenset({"BCC", "CC", "FROM", "SUBJECT", "TO"})
_DateOp: TypeAlias = Literal["before", "on", "since"]
_DATE_KEYS: Final[dict[str, tuple[_DateOp, bool]]] = {
    "BEFORE": ("before", False),
    "ON": ("on", False),
    "SINCE": ("since", False),
    "SENTBEFORE": ("before", True),
    "SENTON": ("on", True),
    "SENTSINCE": ("since", True),
}

# Search keys followed by arguments (the date keys too, below).
_ARGUMENT_KEYS: Final = _HEADER_KEYS | {
    "BODY",
    "TEXT",
    "BEFORE",
    "ON",
    "SINCE",
    "SENTBEFORE",
    "SENTON",
    "SENTSINCE",
    "KEYWORD",
    "UNKEYWORD",
    "LARGER",
    "SMALLER",
    "OLDER",
    "YOUNGER",
    "HEADER",
    "UID",
    "NOT",
    "OR",
    "MODSEQ",
}


class _Bad(Exception):
    """A syntax error in the command being parsed; becomes Invalid."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Literal:
    data: bytes
    binary: bool  # literal8, ~{n}


def _shown(word: bytes | str, limit: int = 40) -> str:
    """A token for an error message: printable ASCII, shortened."""
    text = word.decode("ascii", "replace") if isinstance(word, bytes) else word
    text = "".join(c if " " < c <= "~" else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_tag(line: bytes, *, cut: bool = False) -> str:
    """The tag a command line starts with, "*" if it has no valid one. In the start of a line
    ``cut`` short, the tag must be seen to end (with a space)."""
    match = _TAG.match(line)
    if match is None:
        return "*"
    if match.end() == len(line) and not cut:
        return match.group().decode("ascii")
    if match.end() < len(line) and line[match.end()] == _SP:
        return match.group().decode("ascii")
    return "*"


def _literal_marker(line: bytes) -> tuple[int, int, bool, bool] | None:
    """If ``line`` ends with a literal announcement ``{n}``, ``{n+}``, ``~{n}`` or ``~{n+}``
    (RFC 9051 §4.3, RFC 7888, RFC 3516): (where it starts, n, non-synchronizing, literal8).

    Only a literal can end a line with ``{digits}`` (``{`` is no ATOM-CHAR and quoted strings
    end before CRLF), so a line ending so is always taken as announcing one, even when it is
    otherwise malformed: reading the octets keeps the reader in step with the client.
    """
    if not line.endswith(b"}"):
        return None
    start = line.rfind(b"{")
    if start < 0:
        return None
    inner = line[start + 1 : -1]
    nonsync = inner.endswith(b"+")
    digits = inner[:-1] if nonsync else inner
    if not digits or not digits.isdigit():
        return None
    # number64 has at most 19 digits; a longer count is absurd, count it as the largest.
    size = int(digits) if len(digits) <= 19 else _NUMBER64_MAX
    binary = start > 0 and line[start - 1] == 0x7E  # "~"
    return (start - 1 if binary else start), size, nonsync, binary


class CommandReader:
    """Parses the commands of one IMAP connection from the octets the client sends."""

    def __init__(
        self, *, max_line: int = 65536, max_literal: int = 8192, max_command: int = 262144
    ) -> None:
        #: Longest line, CRLF excluded.
        self.max_line = max_line
        #: Largest literal accepted; the session raises it to APPENDLIMIT after login.
        self.max_literal = max_literal
        #: Largest command, lines and literals together.
        self.max_command = max_command
        #: Mailbox names are UTF-8 (IMAP4rev2, UTF8=ACCEPT) rather than modified UTF-7.
        self.utf8 = False
        self._buf = bytearray()
        self._scanned = 0  # octets of _buf already searched for LF
        self._eof = False
        self._dead = False  # after LineTooLong or a refused non-synchronizing literal
        self._queued: Event | None = None
        self._overflow = b""  # the start of a line found too long, for its tag
        # The command being read.
        self._lines: list[bytes] = []
        self._literals: list[_Literal] = []
        self._size = 0
        self._tag = "*"
        # The literal being read.
        self._literal: bytearray | None = None
        self._literal_remaining = 0
        self._literal_binary = False

    # -- input ---------------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Add octets read from the client (ignored once the reader has given up).

        Unread input beyond one whole command and a line (``command_limit + max_line + 2``)
        makes the reader give up with :class:`LineTooLong`: a driver that drains
        ``next_event`` between reads never gets there, one that does not (say, inflating a
        deflate bomb of pipelined commands) cannot make the reader hold more.
        """
        if self._eof or self._dead:
            return
        if len(self._buf) + len(data) > self.command_limit + self.max_line + 2:
            self._queued = LineTooLong(self._tag if self._lines else "*")
            self._give_up(None)
            return
        self._buf += data

    def receive_eof(self) -> None:
        """The client closed its side of the connection."""
        self._eof = True

    def pending(self) -> bytes:
        """The octets received but not consumed yet."""
        return bytes(self._buf)

    def discard(self) -> None:
        """Drop the unread input and any command partly read (after STARTTLS: nothing
        pipelined behind it may be taken as sent under TLS)."""
        self._buf.clear()
        self._scanned = 0
        self._reset_command()

    @property
    def command_limit(self) -> int:
        """The largest command accepted: ``max_command``, but never less than one line and one
        literal of the largest size, so that raising ``max_literal`` alone (to APPENDLIMIT)
        lets an APPEND of that size through."""
        return max(self.max_command, self.max_literal + self.max_line + 2)

    @property
    def broken(self) -> bool:
        """True once the reader has given up (a line or command too long, a refused
        non-synchronizing literal): the connection must be closed. ``read_line`` returning None
        then means "never", not "not yet"."""
        return self._dead

    @property
    def buffered(self) -> int:
        """Octets held: unread input, the command read so far and the literal being read."""
        held = len(self._buf) + sum(map(len, self._lines))
        held += sum(len(literal.data) for literal in self._literals)
        if self._literal is not None:
            held += len(self._literal)
        return held

    # -- output --------------------------------------------------------------------------

    def read_line(self) -> bytes | None:
        """The next line as is, without its CRLF, or None when no whole line is there yet.

        For IDLE's ``DONE`` and AUTHENTICATE responses, between commands. A line above
        ``max_line`` makes the reader give up: this returns None and ``next_event`` then
        returns :class:`LineTooLong`.
        """
        if self._dead or self._queued is not None:
            return None
        line = self._take_line()
        if line is None and self._dead:
            self._queued = LineTooLong("*")
        return line

    def next_event(self) -> Event:
        """The next thing the session must act on (see the module docstring)."""
        queued = self._queued
        if queued is not None:
            self._queued = None
            return queued
        while not self._dead:
            if self._literal is not None:
                if not self._read_literal():
                    break
                continue
            first = not self._lines
            tag = self._tag
            line = self._take_line()
            if line is None:
                if self._dead:
                    return LineTooLong(_read_tag(self._overflow, cut=True) if first else tag)
                break
            if first:
                if not line:
                    continue  # an empty line between commands is ignored
                self._tag = _read_tag(line)
            self._size += len(line) + 2
            if self._size > self.command_limit:
                return self._give_up(LineTooLong(self._tag))
            marker = _literal_marker(line)
            if marker is None:
                self._lines.append(line)
                return self._parse()
            start, size, nonsync, binary = marker
            self._lines.append(line[:start])
            event = self._start_literal(size, nonsync=nonsync, binary=binary)
            if event is not None:
                return event
        return Closed() if self._eof else NEED_DATA

    # -- framing -------------------------------------------------------------------------

    def _take_line(self) -> bytes | None:
        """The next line without its line end; None when incomplete, or when it is too long
        (the reader is then dead and ``_overflow`` holds the line's first octets)."""
        buf = self._buf
        end = buf.find(b"\n", self._scanned)
        if end < 0:
            if len(buf) > self.max_line + 1:  # +1: a CR waiting for its LF
                self._overflow = bytes(buf[:1024])
                self._give_up(None)
                return None
            self._scanned = len(buf)
            return None
        line = bytes(buf[:end])
        del buf[: end + 1]
        self._scanned = 0
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > self.max_line:
            self._overflow = line[:1024]
            self._give_up(None)
            return None
        return line

    def _start_literal(self, size: int, *, nonsync: bool, binary: bool) -> Event | None:
        if not nonsync:
            # RFC 9051 §7.5: a command already known to be bad is answered at once, without
            # asking for the literal (the client then sends none of it).
            refusal = _precheck(self._lines[0], binary)
            if refusal is not None:
                self._reset_command()
                return refusal
        if size > self.max_literal or self._size + size > self.command_limit:
            if nonsync:
                if size > self.max_literal:
                    return self._give_up(LiteralTooBig(self._tag, size, True))
                return self._give_up(LineTooLong(self._tag))
            tag = self._tag
            self._reset_command()
            return LiteralTooBig(tag, size, False)
        self._literal = bytearray()
        self._literal_remaining = size
        self._literal_binary = binary
        self._size += size
        return None if nonsync else Continuation()

    def _read_literal(self) -> bool:
        """Move literal octets out of the buffer; True once the literal is complete."""
        assert self._literal is not None
        take = min(self._literal_remaining, len(self._buf))
        if take:
            self._literal += self._buf[:take]
            del self._buf[:take]
            self._literal_remaining -= take
        if self._literal_remaining:
            return False
        self._literals.append(_Literal(bytes(self._literal), self._literal_binary))
        self._literal = None
        self._scanned = 0
        return True

    def _give_up(self, event: LineTooLong | LiteralTooBig | None) -> Event:
        self._dead = True
        self._buf.clear()
        self._scanned = 0
        self._reset_command()
        return event if event is not None else NEED_DATA

    def _reset_command(self) -> None:
        self._lines = []
        self._literals = []
        self._size = 0
        self._tag = "*"
        self._literal = None
        self._literal_remaining = 0

    def _parse(self) -> Command:
        lines, literals = self._lines, self._literals
        self._reset_command()
        return _Parser(lines, literals, utf8=self.utf8).command()


def _precheck(line: bytes, binary: bool) -> Invalid | None:
    """Invalid when a command announcing a literal is already known to be wrong from its first
    line: bad tag, unknown command, or literal8 outside APPEND."""
    parser = _Parser([line], [], utf8=False)
    try:
        parser.tag_and_name()
    except _Bad as exc:
        return Invalid(parser.tag, parser.name, exc.reason)
    if parser.name not in _HANDLERS:
        return Invalid(parser.tag, parser.name, "Unknown command")
    if binary and parser.name != "APPEND":
        return Invalid(parser.tag, parser.name, "literal8 is only allowed in APPEND data")
    return None


class _Cursor:
    """Position in a command made of lines with literals between them."""

    __slots__ = ("index", "line", "lines", "literals", "pos")

    def __init__(self, lines: list[bytes], literals: list[_Literal]) -> None:
        self.lines = lines
        self.literals = literals
        self.index = 0
        self.line = lines[0]
        self.pos = 0

    def peek(self) -> int:
        """The next octet of the current line, -1 at its end."""
        return self.line[self.pos] if self.pos < len(self.line) else -1

    def at_end(self) -> bool:
        return self.pos == len(self.line) and self.index == len(self.literals)

    def literal_next(self) -> bool:
        return self.pos == len(self.line) and self.index < len(self.literals)

    def take_literal(self) -> _Literal:
        literal = self.literals[self.index]
        self.index += 1
        self.line = self.lines[self.index]
        self.pos = 0
        return literal

    def advance(self) -> None:
        self.pos += 1

    def expect(self, octet: int, what: str) -> None:
        if self.peek() != octet:
            raise _Bad(f"Expected {what}")
        self.pos += 1

    def sp(self) -> None:
        self.expect(_SP, "a space")

    def match(self, pattern: re.Pattern[bytes]) -> bytes | None:
        found = pattern.match(self.line, self.pos)
        if found is None:
            return None
        self.pos = found.end()
        return found.group()

    def look(self, pattern: re.Pattern[bytes]) -> bytes | None:
        found = pattern.match(self.line, self.pos)
        return None if found is None else found.group()


def _int(digits: bytes, low: int, high: int, what: str) -> int:
    if not digits.isdigit() or len(digits) > 20:
        raise _Bad(f"Invalid {what}")
    value = int(digits)
    if not low <= value <= high:
        raise _Bad(f"Invalid {what}")
    return value


def _text(value: bytes) -> str:
    """A string argument as text: UTF-8 (RFC 9051 §4.3), no NUL."""
    if b"\x00" in value:
        raise _Bad("NUL is not allowed in a string")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise _Bad("Invalid UTF-8 in a string") from None


def _dedupe(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


class _Parser:
    """Recursive-descent parser of one complete command (RFC 9051 §9)."""

    def __init__(self, lines: list[bytes], literals: list[_Literal], *, utf8: bool) -> None:
        self.cur = _Cursor(lines, literals)
        self.utf8 = utf8
        self.tag = "*"
        self.name = ""
        self.charset: str | None = None  # of the search strings being parsed

    def command(self) -> Command:
        try:
            self.tag_and_name()
            handler = _HANDLERS.get(self.name)
            if handler is None:
                return Invalid(self.tag, self.name, "Unknown command")
            command = handler(self)
            if not self.cur.at_end():
                raise _Bad("Unexpected data after the command")
        except _Bad as exc:
            return Invalid(self.tag, self.name, exc.reason)
        return command

    def tag_and_name(self) -> None:
        cur = self.cur
        tag = cur.match(_TAG)
        if tag is None or cur.peek() not in (_SP, -1) or cur.literal_next():
            raise _Bad("Invalid tag")
        self.tag = tag.decode("ascii")
        if cur.at_end():
            raise _Bad("Missing command name")
        cur.sp()
        name = cur.match(_ATOM)
        if name is None:
            raise _Bad("Missing command name")
        self.name = _shown(name.upper(), 64)
        if self.name == "UID":
            if cur.at_end():
                raise _Bad("Missing command after UID")
            cur.sp()
            sub = cur.match(_ATOM)
            if sub is None:
                raise _Bad("Missing command after UID")
            self.name = "UID " + _shown(sub.upper(), 64)

    # -- tokens ----------------------------------------------------------------------------

    def atom(self, what: str = "an atom") -> str:
        word = self.cur.match(_ATOM)
        if word is None:
            raise _Bad(f"Expected {what}")
        return word.decode("ascii")

    def quoted(self) -> bytes:
        raw = self.cur.match(_QUOTED)
        if raw is None:
            raise _Bad("Invalid quoted string")
        return _QUOTED_ESCAPE.sub(rb"\1", raw[1:-1])

    def literal(self) -> bytes:
        literal = self.cur.take_literal()
        if literal.binary:
            raise _Bad("literal8 is only allowed in APPEND data")
        return literal.data

    def string(self) -> bytes:
        """string = quoted / literal"""
        if self.cur.peek() == _DQUOTE:
            return self.quoted()
        if self.cur.literal_next():
            return self.literal()
        raise _Bad("Expected a string")

    def astring(self) -> bytes:
        """astring = 1*ASTRING-CHAR / string"""
        cur = self.cur
        if cur.peek() == _DQUOTE:
            return self.quoted()
        if cur.literal_next():
            return self.literal()
        word = cur.match(_ASTRING_ATOM)
        if word is None:
            raise _Bad("Expected a string")
        return word

    def nstring(self) -> bytes | None:
        """nstring = string / nil"""
        if self.cur.peek() == _DQUOTE or self.cur.literal_next():
            return self.string()
        if self.atom("a string or NIL").upper() != "NIL":
            raise _Bad("Expected a string or NIL")
        return None

    def number(self, what: str, *, low: int = 0, high: int = _NUMBER_MAX) -> int:
        digits = self.cur.match(_DIGITS)
        if digits is None:
            raise _Bad(f"Expected {what}")
        return _int(digits, low, high, what)

    def mailbox(self, *, new: bool = False) -> str:
        """mailbox = "INBOX" / astring, decoded; INBOX in any case is "INBOX" (§9). ``new``:
        the name of a mailbox to be made (CREATE, RENAME's second name), see
        :meth:`mailbox_name`."""
        return self.mailbox_name(self.astring(), new=new)

    def mailbox_name(self, raw: bytes, *, new: bool = False) -> str:
        """A mailbox name as text: UTF-8 when the client uses it, else modified UTF-7 (RFC
        3501 §5.1.3).

        A rev1 name that is not valid modified UTF-7 (``&`` starting no valid shift, 8-bit
        octets) names the mailbox spelt that way, as text, so that SELECT, STATUS, APPEND and
        the like answer NO for a mailbox that does not exist instead of BAD for a command
        that is well-formed (imaptest's atoms test; Dovecot answers NO too). Only a name to be
        made (``new``) must be valid, so that every mailbox has one spelling on the wire.
        """
        if self.utf8:
            name = _text(raw)
        else:
            try:
                name = mutf7.decode(raw.decode("ascii"))
            except ValueError:
                if new:
                    raise _Bad("Invalid modified UTF-7 mailbox name") from None
                name = _text(raw)
        return "INBOX" if name.upper() == "INBOX" else name

    def list_mailbox(self) -> str:
        """list-mailbox = 1*list-char / string, decoded like a mailbox name (not INBOX); a
        rev1 pattern that is not valid modified UTF-7 is taken as it is spelt, and matches
        what such a mailbox name would."""
        cur = self.cur
        if cur.peek() == _DQUOTE:
            raw = self.quoted()
        elif cur.literal_next():
            raw = self.literal()
        else:
            word = cur.match(_LIST_ATOM)
            if word is None:
                raise _Bad("Expected a mailbox pattern")
            raw = word
        if self.utf8:
            return _text(raw)
        try:
            return mutf7.decode(raw.decode("ascii"))
        except ValueError:
            return _text(raw)

    def open_list(self) -> bool:
        """Consume "("; then True if the list is empty (its ")" consumed too)."""
        self.cur.expect(_LPAREN, "'('")
        if self.cur.peek() == _RPAREN:
            self.cur.advance()
            return True
        return False

    def list_next(self) -> bool:
        """After a list element: True if another follows (SP consumed), False at ")"."""
        octet = self.cur.peek()
        if octet == _RPAREN:
            self.cur.advance()
            return False
        if octet == _SP:
            self.cur.advance()
            return True
        raise _Bad("Expected a space or ')'")

    def atom_list(self, what: str, *, empty: bool = True) -> list[str]:
        """ "(" [atom *(SP atom)] ")", upper-cased."""
        items: list[str] = []
        if self.open_list():
            if not empty:
                raise _Bad(f"Empty {what} list")
            return items
        while True:
            items.append(self.atom(what).upper())
            if not self.list_next():
                return items

    def sequence_set(self) -> SequenceSet:
        """sequence-set (§9), or "$" (RFC 5182 seq-last-command)."""
        raw = self.cur.match(_SEQUENCE)
        if raw is None:
            raise _Bad("Expected a sequence set")
        if raw == b"$":
            return SequenceSet(saved=True)
        ranges: list[tuple[int | None, int | None]] = []
        for item in raw.split(b","):
            ends = item.split(b":")
            if len(ends) > 2:
                raise _Bad("Invalid sequence set")
            first, last = (self.seq_number(end) for end in (ends[0], ends[-1]))
            ranges.append((first, last))
        return SequenceSet(tuple(ranges))

    @staticmethod
    def seq_number(raw: bytes) -> int | None:
        """seq-number = nz-number / "*" (None)."""
        if raw == b"*":
            return None
        return _int(raw, 1, _NUMBER_MAX, "sequence set")

    def flag(self) -> str:
        """flag = "\\" atom (system flags in their RFC spelling) / atom (keyword, as sent)."""
        if self.cur.peek() == _BACKSLASH:
            self.cur.advance()
            flag = "\\" + self.atom("a flag")
            return _SYSTEM_FLAGS.get(flag.upper(), flag)
        return self.atom("a flag")

    def flag_list(self) -> tuple[str, ...]:
        """flag-list = "(" [flag *(SP flag)] ")" """
        flags: list[str] = []
        if self.open_list():
            return ()
        while True:
            flags.append(self.flag())
            if not self.list_next():
                return tuple(flags)

    def date(self) -> datetime.date:
        """date = date-text / DQUOTE date-text DQUOTE"""
        raw = self.quoted() if self.cur.peek() == _DQUOTE else self.cur.match(_ATOM)
        found = None if raw is None else _DATE.fullmatch(raw)
        if found is None:
            raise _Bad("Invalid date")
        month = _MONTHS.get(found[2].upper())
        if month is None:
            raise _Bad("Invalid date")
        try:
            return datetime.date(int(found[3]), month, int(found[1]))
        except ValueError:
            raise _Bad("Invalid date") from None

    def date_time(self) -> datetime.datetime:
        """date-time (§9), in quotes, with its zone as a fixed offset."""
        found = _DATE_TIME.fullmatch(self.quoted())
        month = None if found is None else _MONTHS.get(found[2].upper())
        if found is None or month is None:
            raise _Bad("Invalid date-time")
        hours, minutes = int(found[8]), int(found[9])
        if minutes > 59:
            raise _Bad("Invalid date-time")
        offset = datetime.timedelta(hours=hours, minutes=minutes)
        try:
            zone = datetime.timezone(-offset if found[7] == b"-" else offset)
            return datetime.datetime(
                int(found[3]),
                month,
                int(found[1]),
                int(found[4]),
                int(found[5]),
                int(found[6]),
                tzinfo=zone,
            )
        except ValueError:
            raise _Bad("Invalid date-time") from None

    def peek_word(self) -> str:
        """The upper-cased atom at the cursor, not consumed ("" if none)."""
        word = self.cur.look(_ATOM)
        return "" if word is None else word.decode("ascii").upper()

    def end_or_sp(self) -> bool:
        """True at the end of the command; else consume the SP before more arguments."""
        if self.cur.at_end():
            return True
        self.cur.sp()
        return False

    # -- commands without arguments and with simple ones -------------------------------------

    def simple(self) -> Command:
        if not self.cur.at_end():
            raise _Bad("Unexpected arguments")
        return Simple(self.tag, self.name)

    def login(self) -> Command:
        self.cur.sp()
        user = _text(self.astring())
        self.cur.sp()
        password = _text(self.astring())
        return Login(self.tag, self.name, user, password)

    def authenticate(self) -> Command:
        self.cur.sp()
        mechanism = self.atom("a SASL mechanism").upper()
        initial = None
        if not self.end_or_sp():
            # SASL-IR (RFC 4959): initial-resp = base64 / "="
            raw = self.cur.match(_ATOM)
            if raw is None or (raw != b"=" and not _BASE64.fullmatch(raw)):
                raise _Bad("Invalid initial response")
            initial = raw.decode("ascii")
        return Authenticate(self.tag, self.name, mechanism, initial)

    def enable(self) -> Command:
        capabilities = []
        self.cur.sp()
        while True:
            capabilities.append(self.atom("a capability").upper())
            if self.end_or_sp():
                return Enable(self.tag, self.name, _dedupe(capabilities))

    def id_command(self) -> Command:
        """RFC 2971 §3.3: id_params_list = "(" #(string SPACE nstring) ")" / nil"""
        self.cur.sp()
        if self.cur.peek() != _LPAREN:
            if self.atom("NIL or a list").upper() != "NIL":
                raise _Bad("Expected NIL or a list")
            return Id(self.tag, self.name, None)
        params: list[tuple[str, str | None]] = []
        if not self.open_list():
            while True:
                field = self.string().decode("utf-8", "replace")
                self.cur.sp()
                value = self.nstring()
                params.append((field, None if value is None else value.decode("utf-8", "replace")))
                if not self.list_next():
                    break
        return Id(self.tag, self.name, tuple(params))

    def compress(self) -> Command:
        self.cur.sp()
        return Compress(self.tag, self.name, self.atom("a compression mechanism").upper())

    # -- mailboxes ---------------------------------------------------------------------------

    def select(self) -> Command:
        self.cur.sp()
        mailbox = self.mailbox()
        condstore = False
        qresync: _QResync | None = None
        if not self.end_or_sp():
            # RFC 4466 select-params; RFC 7162 §3.1.8 CONDSTORE, §3.2.5 QRESYNC.
            if self.open_list():
                raise _Bad("Empty SELECT parameter list")
            while True:
                parameter = self.atom("a SELECT parameter").upper()
                if parameter == "CONDSTORE":
                    condstore = True
                elif parameter == "QRESYNC":
                    self.cur.sp()
                    qresync = self.qresync()
                else:
                    raise _Bad(f"Unknown SELECT parameter {_shown(parameter)}")
                if not self.list_next():
                    break
        return Select(self.tag, self.name, mailbox, condstore, qresync)

    def qresync(self) -> _QResync:
        """ "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")" """
        self.cur.expect(_LPAREN, "'('")
        uidvalidity = self.number("a UIDVALIDITY", low=1)
        self.cur.sp()
        modseq = self.number("a mod-sequence", high=_NUMBER64_MAX)
        known: SequenceSet | None = None
        match: tuple[SequenceSet, SequenceSet] | None = None
        if self.list_next():
            if self.cur.peek() != _LPAREN:
                known = self.sequence_set()
                more = self.list_next()
            else:
                more = True
            if more:
                # seq-match-data = "(" known-sequence-set SP known-uid-set ")"
                self.cur.expect(_LPAREN, "'('")
                sequences = self.sequence_set()
                self.cur.sp()
                uids = self.sequence_set()
                self.cur.expect(_RPAREN, "')'")
                match = (sequences, uids)
                self.cur.expect(_RPAREN, "')'")
        return uidvalidity, modseq, known, match

    def create(self) -> Command:
        self.cur.sp()
        mailbox = self.mailbox(new=True)
        special: list[str] = []
        if not self.end_or_sp():
            # RFC 4466 create-params; RFC 6154 §3: "USE" SP "(" [use-attr *(SP use-attr)] ")"
            if self.open_list():
                raise _Bad("Empty CREATE parameter list")
            while True:
                if self.atom("a CREATE parameter").upper() != "USE":
                    raise _Bad("Unknown CREATE parameter")
                self.cur.sp()
                if not self.open_list():
                    while True:
                        self.cur.expect(_BACKSLASH, "a special-use attribute")
                        attr = "\\" + self.atom("a special-use attribute")
                        special.append(_SPECIAL_USE.get(attr.upper(), attr))
                        if not self.list_next():
                            break
                if not self.list_next():
                    break
        return MailboxCommand(self.tag, self.name, mailbox, _dedupe(special))

    def mailbox_command(self) -> Command:
        self.cur.sp()
        return MailboxCommand(self.tag, self.name, self.mailbox())

    def rename(self) -> Command:
        self.cur.sp()
        old = self.mailbox()
        self.cur.sp()
        return Rename(self.tag, self.name, old, self.mailbox(new=True))

    def getquota(self) -> Command:
        self.cur.sp()
        return Quota(self.tag, self.name, _text(self.astring()))

    def setquota(self) -> Command:
        """RFC 9208 §4.2: quota-root-name SP "(" [resource SP number64 *(SP ...)] ")" """
        self.cur.sp()
        root = _text(self.astring())
        self.cur.sp()
        if not self.open_list():
            while True:
                self.atom("a resource name")
                self.cur.sp()
                self.number("a resource limit", high=_NUMBER64_MAX)
                if not self.list_next():
                    break
        return Quota(self.tag, self.name, root)

    def list_command(self) -> Command:
        """RFC 5258 / RFC 9051 §6.3.9 LIST, RFC 6154 §3 SPECIAL-USE, RFC 5819 STATUS."""
        self.cur.sp()
        select: list[str] = []
        extended = False
        if self.cur.peek() == _LPAREN:
            extended = True
            for option in self.atom_list("selection option"):
                if option not in _LIST_SELECT:
                    raise _Bad(f"Unknown LIST selection option {_shown(option)}")
                select.append(option)
            # RFC 5258 §3.1: RECURSIVEMATCH needs a base option; BAD otherwise.
            if "RECURSIVEMATCH" in select and not _LIST_BASE_SELECT & set(select):
                raise _Bad("RECURSIVEMATCH needs another selection option")
            self.cur.sp()
        reference = self.mailbox()
        self.cur.sp()
        patterns: list[str] = []
        if self.cur.peek() == _LPAREN:
            extended = True
            if self.open_list():
                raise _Bad("Empty mailbox pattern list")
            while True:
                patterns.append(self.list_mailbox())
                if not self.list_next():
                    break
        else:
            patterns.append(self.list_mailbox())
        returns: list[str] = []
        status: list[str] = []
        if not self.end_or_sp():
            extended = True
            if self.atom("RETURN").upper() != "RETURN":
                raise _Bad("Expected RETURN")
            self.cur.sp()
            if not self.open_list():
                while True:
                    option = self.atom("a return option").upper()
                    if option == "STATUS":
                        self.cur.sp()
                        status.extend(self.status_items())
                    elif option in _LIST_RETURN:
                        returns.append(option)
                    else:
                        raise _Bad(f"Unknown LIST return option {_shown(option)}")
                    if not self.list_next():
                        break
        if extended:
            # RFC 5258 §3: in the extended syntax empty patterns are ignored (no special
            # meaning), so only a basic LIST reaches the session with the "" pattern.
            patterns = [pattern for pattern in patterns if pattern]
        return ListCommand(
            self.tag,
            self.name,
            reference,
            tuple(patterns),
            _dedupe(select),
            _dedupe(returns),
            _dedupe(status),
        )

    def lsub(self) -> Command:
        self.cur.sp()
        reference = self.mailbox()
        self.cur.sp()
        return ListCommand(self.tag, self.name, reference, (self.list_mailbox(),))

    def status_items(self) -> list[str]:
        items = self.atom_list("status item", empty=False)
        for item in items:
            if item not in _STATUS_ITEMS:
                raise _Bad(f"Unknown status item {_shown(item)}")
        return items

    def status(self) -> Command:
        self.cur.sp()
        mailbox = self.mailbox()
        self.cur.sp()
        return Status(self.tag, self.name, mailbox, _dedupe(self.status_items()))

    def append(self) -> Command:
        """APPEND mailbox 1*([SP flag-list] [SP date-time] SP literal) (RFC 3502 MULTIAPPEND;
        literal8 of RFC 3516 for binary messages)."""
        self.cur.sp()
        mailbox = self.mailbox()
        messages: list[AppendMessage] = []
        while True:
            self.cur.sp()
            flags: tuple[str, ...] = ()
            date: datetime.datetime | None = None
            if self.cur.peek() == _LPAREN:
                flags = self.flag_list()
                self.cur.sp()
            if self.cur.peek() == _DQUOTE:
                date = self.date_time()
                self.cur.sp()
            if not self.cur.literal_next():
                word = self.peek_word()
                if word in ("CATENATE", "UTF8"):
                    raise _Bad(f"APPEND {word} is not supported")
                raise _Bad("Expected the message as a literal")
            literal = self.cur.take_literal()
            messages.append(AppendMessage(flags, date, literal.data, literal.binary))
            if self.cur.at_end():
                return Append(self.tag, self.name, mailbox, tuple(messages))

    # -- selected state ----------------------------------------------------------------------

    def copy_move(self, *, uid: bool) -> Command:
        self.cur.sp()
        sequence = self.sequence_set()
        self.cur.sp()
        return CopyMove(self.tag, self.name, sequence, self.mailbox(), uid)

    def uid_expunge(self) -> Command:
        self.cur.sp()
        return UidExpunge(self.tag, self.name, self.sequence_set())

    def store(self, *, uid: bool) -> Command:
        """STORE sequence-set [SP "(" UNCHANGEDSINCE SP n ")"] SP store-att-flags
        (RFC 9051 §6.4.6, RFC 7162 §3.1.3)."""
        self.cur.sp()
        sequence = self.sequence_set()
        self.cur.sp()
        unchanged_since = None
        if self.cur.peek() == _LPAREN:
            if self.open_list():
                raise _Bad("Empty STORE modifier list")
            while True:
                if self.atom("a STORE modifier").upper() != "UNCHANGEDSINCE":
                    raise _Bad("Unknown STORE modifier")
                self.cur.sp()
                unchanged_since = self.number("a mod-sequence", high=_NUMBER64_MAX)
                if not self.list_next():
                    break
            self.cur.sp()
        item = self.cur.match(_ITEM_NAME)
        operation = b"" if item is None else item.upper()
        mode: Literal["add", "remove", "replace"] = "replace"
        if operation[:1] in (b"+", b"-"):
            mode = "add" if operation[:1] == b"+" else "remove"
            operation = operation[1:]
        if operation not in (b"FLAGS", b"FLAGS.SILENT"):
            raise _Bad("Expected FLAGS, +FLAGS or -FLAGS")
        silent = operation == b"FLAGS.SILENT"
        self.cur.sp()
        if self.cur.peek() == _LPAREN:
            flags = self.flag_list()
        else:
            found = [self.flag()]
            while not self.end_or_sp():
                found.append(self.flag())
            flags = tuple(found)
        return StoreFlags(self.tag, self.name, sequence, mode, silent, flags, uid, unchanged_since)

    def fetch(self, *, uid: bool) -> Command:
        """FETCH sequence-set SP (macro / fetch-att / "(" fetch-att *(SP fetch-att) ")")
        [SP "(" fetch-modifier *(SP fetch-modifier) ")"] (RFC 9051 §6.4.5, RFC 7162)."""
        self.cur.sp()
        sequence = self.sequence_set()
        self.cur.sp()
        items: list[FetchItem] = []
        if self.cur.peek() == _LPAREN:
            if self.open_list():
                raise _Bad("Empty fetch item list")
            while True:
                items.append(self.fetch_item())
                if not self.list_next():
                    break
        else:
            macro = self.peek_word()
            if macro in _FETCH_MACROS:
                self.atom()
                items.extend(_FETCH_MACROS[macro])
            else:
                items.append(self.fetch_item())
        changed_since = None
        vanished = False
        if not self.end_or_sp():
            if self.open_list():
                raise _Bad("Empty FETCH modifier list")
            while True:
                modifier = self.atom("a FETCH modifier").upper()
                if modifier == "CHANGEDSINCE":
                    self.cur.sp()
                    changed_since = self.number("a mod-sequence", high=_NUMBER64_MAX)
                elif modifier == "VANISHED":
                    vanished = True
                else:
                    raise _Bad(f"Unknown FETCH modifier {_shown(modifier)}")
                if not self.list_next():
                    break
            # RFC 7162 §3.2.6: VANISHED only in UID FETCH, and only with CHANGEDSINCE.
            if vanished and not uid:
                raise _Bad("VANISHED is only allowed in UID FETCH")
            if vanished and changed_since is None:
                raise _Bad("VANISHED requires CHANGEDSINCE")
        return Fetch(self.tag, self.name, sequence, tuple(items), uid, changed_since, vanished)

    def fetch_item(self) -> FetchItem:
        raw = self.cur.match(_ITEM_NAME)
        name = "" if raw is None else raw.decode("ascii").upper()
        if self.cur.peek() == _LBRACKET and name in (
            "BODY",
            "BODY.PEEK",
            "BINARY",
            "BINARY.PEEK",
            "BINARY.SIZE",
        ):
            return self.fetch_section(name)
        if name in _FETCH_ATTRS:
            if name == "PREVIEW" and self.cur.look(_PREVIEW_LAZY):
                # RFC 8970 §3: PREVIEW (LAZY); previews are computed at delivery anyway.
                self.cur.sp()
                for modifier in self.atom_list("preview modifier", empty=False):
                    if modifier != "LAZY":
                        raise _Bad("Unknown PREVIEW modifier")
            return FetchAttr(_FETCH_ATTRS[name])
        if name in _FETCH_MACROS:
            raise _Bad(f"The {name} macro cannot be combined with other items")
        if not name:
            raise _Bad("Expected a fetch item")
        raise _Bad(f"Unknown fetch item {_shown(name)}")

    def fetch_section(self, name: str) -> FetchSection:
        """section = "[" [section-spec] "]", section-binary = "[" [section-part] "]" and
        partial = "<" number64 "." nz-number64 ">" (RFC 9051 §9)."""
        binary = name.startswith("BINARY")
        self.cur.expect(_LBRACKET, "'['")
        part: list[int] = []
        text: _SectionText | None = None
        fields: list[str] = []
        # section-spec = section-msgtext / (section-part ["." section-text])
        need_text = self.cur.peek() != _RBRACKET
        if self.cur.peek() in _DIGIT_OCTETS:
            need_text = False
            part.append(self.number("a section part", low=1))
            while self.cur.peek() == 0x2E:  # "."
                self.cur.advance()
                if self.cur.peek() not in _DIGIT_OCTETS:
                    need_text = True
                    break
                part.append(self.number("a section part", low=1))
        if need_text:
            if binary:
                raise _Bad("BINARY sections have part numbers only")
            word = self.cur.match(_SECTION_WORD)
            text = _SECTION_TEXTS.get("" if word is None else word.decode("ascii").upper())
            if text is None or (text == "MIME" and not part):
                raise _Bad("Invalid section")
            if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
                self.cur.sp()
                if self.open_list():
                    raise _Bad("Empty header list")
                while True:
                    fields.append(_text(self.astring()).upper())
                    if not self.list_next():
                        break
        self.cur.expect(_RBRACKET, "']'")
        partial = None
        if self.cur.peek() == _LANGLE:
            if name == "BINARY.SIZE":
                raise _Bad("BINARY.SIZE takes no partial range")
            self.cur.advance()
            origin = self.number("a partial origin", high=_NUMBER64_MAX)
            self.cur.expect(0x2E, "'.'")
            count = self.number("a partial length", low=1, high=_NUMBER64_MAX)
            self.cur.expect(0x3E, "'>'")
            partial = (origin, count)
        return FetchSection(
            part=tuple(part),
            text=text,
            fields=tuple(fields),
            partial=partial,
            peek=name.endswith(".PEEK"),
            binary=binary,
            size_only=name == "BINARY.SIZE",
        )

    # -- search, sort, thread ----------------------------------------------------------------

    def search_returns(self) -> tuple[str, ...]:
        """RETURN SP "(" [search-return-opt *(SP search-return-opt)] ")" (RFC 4731)"""
        self.atom()
        self.cur.sp()
        options = self.atom_list("search return option")
        for option in options:
            if option not in _SEARCH_RETURN:
                raise _Bad(f"Unknown search return option {_shown(option)}")
        return _dedupe(options)

    def charset_name(self) -> str:
        """charset = atom / quoted"""
        raw = self.quoted() if self.cur.peek() == _DQUOTE else self.cur.match(_ATOM)
        if not raw or not raw.isascii():
            raise _Bad("Invalid charset")
        return raw.decode("ascii").upper()

    def search(self, *, uid: bool) -> Command:
        """SEARCH [SP RETURN (...)] SP [CHARSET SP charset SP] search-key *(SP search-key)
        (RFC 9051 §6.4.4; RETURN after CHARSET is accepted too)."""
        self.cur.sp()
        returns = None
        charset = None
        for _ in range(2):
            word = self.peek_word()
            if word == "RETURN" and returns is None:
                returns = self.search_returns()
                self.cur.sp()
            elif word == "CHARSET" and charset is None:
                self.atom()
                self.cur.sp()
                charset = self.charset_name()
                self.cur.sp()
        self.charset = charset
        return Search(self.tag, self.name, self.search_program(), charset, returns, uid)

    def search_program(self) -> SearchKey:
        keys = [self.search_key(0)]
        while not self.cur.at_end():
            self.cur.sp()
            keys.append(self.search_key(0))
        return keys[0] if len(keys) == 1 else AndKey(tuple(keys))

    def sort(self, *, uid: bool) -> Command:
        """RFC 5256 §3: SORT SP sort-criteria SP search-criteria; RFC 5267 ESORT RETURN."""
        self.cur.sp()
        returns = None
        if self.peek_word() == "RETURN":
            returns = self.search_returns()
            self.cur.sp()
        criteria: list[tuple[str, bool]] = []
        if self.open_list():
            raise _Bad("Empty sort criteria")
        while True:
            sort_key = self.atom("a sort key").upper()
            reverse = sort_key == "REVERSE"
            if reverse:
                self.cur.sp()
                sort_key = self.atom("a sort key").upper()
            if sort_key not in _SORT_KEYS:
                raise _Bad(f"Unknown sort key {_shown(sort_key)}")
            criteria.append((sort_key, reverse))
            if not self.list_next():
                break
        self.cur.sp()
        charset = self.charset_name()
        self.charset = charset
        self.cur.sp()
        key = self.search_program()
        return Sort(self.tag, self.name, tuple(criteria), charset, key, returns, uid)

    def thread(self, *, uid: bool) -> Command:
        """RFC 5256 §3: THREAD SP algorithm SP search-criteria"""
        self.cur.sp()
        algorithm = self.atom("a threading algorithm").upper()
        if algorithm not in _THREAD_ALGORITHMS:
            raise _Bad(f"Unknown threading algorithm {_shown(algorithm)}")
        self.cur.sp()
        charset = self.charset_name()
        self.charset = charset
        self.cur.sp()
        return ThreadCommand(self.tag, self.name, algorithm, charset, self.search_program(), uid)

    def search_string(self) -> str:
        """An astring argument of a search key, decoded in the command's CHARSET (an unknown
        one decodes as UTF-8: the session refuses it with NO [BADCHARSET] anyway)."""
        return decode_charset(self.astring(), self.charset)

    def search_key(self, depth: int) -> SearchKey:
        """search-key (RFC 9051 §9, RFC 7162 MODSEQ, RFC 5032 OLDER/YOUNGER)."""
        if depth >= MAX_SEARCH_DEPTH:
            raise _Bad("Search keys nested too deeply")
        cur = self.cur
        octet = cur.peek()
        if octet == _LPAREN:
            cur.advance()
            keys = [self.search_key(depth + 1)]
            while self.list_next():
                keys.append(self.search_key(depth + 1))
            return keys[0] if len(keys) == 1 else AndKey(tuple(keys))
        if octet in _DIGIT_OCTETS or octet in (0x2A, 0x24):  # digit, "*", "$"
            return SetKey(self.sequence_set())
        word = cur.match(_ATOM)
        if word is None:
            raise _Bad("Expected a search key")
        key = word.decode("ascii").upper()
        if key == "ALL":
            return AllKey()
        # RFC 3501 §6.4.4: RECENT, NEW = RECENT UNSEEN, OLD = NOT RECENT.
        if key == "RECENT":
            return RecentKey()
        if key == "NEW":
            return AndKey((RecentKey(), FlagKey("\\Seen", False)))
        if key == "OLD":
            return NotKey(RecentKey())
        if key in _FLAG_KEYS:
            flag, present = _FLAG_KEYS[key]
            return FlagKey(flag, present)
        if key not in _ARGUMENT_KEYS:
            raise _Bad(f"Unknown search key {_shown(key)}")
        cur.sp()
        if key in _HEADER_KEYS:
            return HeaderKey(key.lower(), self.search_string())
        if key in ("BODY", "TEXT"):
            return TextKey(self.search_string(), "body" if key == "BODY" else "text")
        if key in _DATE_KEYS:
            op, sent = _DATE_KEYS[key]
            return DateKey(op, self.date(), sent)
        if key in ("KEYWORD", "UNKEYWORD"):
            return FlagKey(self.atom("a keyword"), key == "KEYWORD")
        if key in ("LARGER", "SMALLER"):
            size = self.number("a size", high=_NUMBER64_MAX)
            return SizeKey("larger" if key == "LARGER" else "smaller", size)
        if key in ("OLDER", "YOUNGER"):
            seconds = self.number("an interval", low=1)
            return AgeKey("older" if key == "OLDER" else "younger", seconds)
        if key == "HEADER":
            field = _text(self.astring()).lower()
            cur.sp()
            return HeaderKey(field, self.search_string())
        if key == "UID":
            return SetKey(self.sequence_set(), uid=True)
        if key == "NOT":
            return NotKey(self.search_key(depth + 1))
        if key == "OR":
            left = self.search_key(depth + 1)
            cur.sp()
            return OrKey(left, self.search_key(depth + 1))
        # MODSEQ, RFC 7162 §3.1.5: [SP entry-name SP entry-type-req] SP mod-sequence-valzer
        if cur.peek() == _DQUOTE:
            self.quoted()
            cur.sp()
            if self.atom("an entry type").upper() not in ("PRIV", "SHARED", "ALL"):
                raise _Bad("Invalid MODSEQ entry type")
            cur.sp()
        return ModSeqKey(self.number("a mod-sequence", high=_NUMBER64_MAX))


_HANDLERS: Final[dict[str, Callable[[_Parser], Command]]] = {
    **{name: _Parser.simple for name in _SIMPLE},
    "LOGIN": _Parser.login,
    "AUTHENTICATE": _Parser.authenticate,
    "ENABLE": _Parser.enable,
    "ID": _Parser.id_command,
    "COMPRESS": _Parser.compress,
    "SELECT": _Parser.select,
    "EXAMINE": _Parser.select,
    "CREATE": _Parser.create,
    "DELETE": _Parser.mailbox_command,
    "SUBSCRIBE": _Parser.mailbox_command,
    "UNSUBSCRIBE": _Parser.mailbox_command,
    "GETQUOTAROOT": _Parser.mailbox_command,
    "RENAME": _Parser.rename,
    "GETQUOTA": _Parser.getquota,
    "SETQUOTA": _Parser.setquota,
    "LIST": _Parser.list_command,
    "LSUB": _Parser.lsub,
    "STATUS": _Parser.status,
    "APPEND": _Parser.append,
    "COPY": lambda parser: parser.copy_move(uid=False),
    "MOVE": lambda parser: parser.copy_move(uid=False),
    "UID COPY": lambda parser: parser.copy_move(uid=True),
    "UID MOVE": lambda parser: parser.copy_move(uid=True),
    "STORE": lambda parser: parser.store(uid=False),
    "UID STORE": lambda parser: parser.store(uid=True),
    "FETCH": lambda parser: parser.fetch(uid=False),
    "UID FETCH": lambda parser: parser.fetch(uid=True),
    "SEARCH": lambda parser: parser.search(uid=False),
    "UID SEARCH": lambda parser: parser.search(uid=True),
    "SORT": lambda parser: parser.sort(uid=False),
    "UID SORT": lambda parser: parser.sort(uid=True),
    "THREAD": lambda parser: parser.thread(uid=False),
    "UID THREAD": lambda parser: parser.thread(uid=True),
    "UID EXPUNGE": _Parser.uid_expunge,
}

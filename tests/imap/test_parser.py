"""The IMAP command reader: the client commands of RFC 9051's examples (and of the extensions'
RFCs) parse to the right values; literals are framed right however the input is split; limits
hold; malformed input gives Invalid with a reason and never an exception."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from courrier.imap.parser import (
    MAX_SEARCH_DEPTH,
    NEED_DATA,
    Closed,
    CommandReader,
    Continuation,
    Event,
    LineTooLong,
    LiteralTooBig,
)
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


def drain(reader: CommandReader) -> list[Event]:
    """Every event up to NEED_DATA or Closed (that one excluded for NEED_DATA)."""
    events: list[Event] = []
    while True:
        event = reader.next_event()
        if event is NEED_DATA:
            return events
        events.append(event)
        if isinstance(event, Closed):
            return events


def feed(data: bytes, reader: CommandReader | None = None, **limits: int) -> list[Event]:
    reader = reader if reader is not None else CommandReader(**limits)
    reader.receive(data)
    return drain(reader)


def commands(data: bytes, *, utf8: bool = False) -> list[Command]:
    """The commands in ``data``, continuations left out; nothing else may happen."""
    reader = CommandReader()
    reader.utf8 = utf8
    found: list[Command] = []
    for event in feed(data, reader):
        if isinstance(event, Continuation):
            continue
        assert isinstance(event, Command), event
        found.append(event)
    return found


def parse(line: str | bytes, *, utf8: bool = False) -> Command:
    """One command line (CRLF added) as parsed."""
    data = line.encode() if isinstance(line, str) else line
    found = commands(data + b"\r\n", utf8=utf8)
    assert len(found) == 1, found
    return found[0]


def invalid(line: str | bytes, *, utf8: bool = False) -> Invalid:
    command = parse(line, utf8=utf8)
    assert isinstance(command, Invalid), command
    assert command.reason
    return command


def seq(*ranges: tuple[int | None, int | None]) -> SequenceSet:
    return SequenceSet(ranges)


ALL_SET = seq((1, None))


# -- RFC 9051 §6 examples ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # §6.1: any state
        ("a441 CAPABILITY", Simple("a441", "CAPABILITY")),
        ("a047 NOOP", Simple("a047", "NOOP")),
        ("A023 LOGOUT", Simple("A023", "LOGOUT")),
        # §6.2
        ("a001 STARTTLS", Simple("a001", "STARTTLS")),
        ("a000 starttls", Simple("a000", "STARTTLS")),  # §8, lower case
        ("A001 AUTHENTICATE GSSAPI", Authenticate("A001", "AUTHENTICATE", "GSSAPI")),
        (
            "A03 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=",
            Authenticate("A03", "AUTHENTICATE", "PLAIN", "dGVzdAB0ZXN0AHRlc3Q="),
        ),
        ("A01 AUTHENTICATE EXTERNAL =", Authenticate("A01", "AUTHENTICATE", "EXTERNAL", "=")),
        (
            "A001 AUTHENTICATE SCRAM-SHA-256 biwsbj11c2VyLHI9ck9wck5HZndFYmVSV2diTkVrcU8=",
            Authenticate(
                "A001",
                "AUTHENTICATE",
                "SCRAM-SHA-256",
                "biwsbj11c2VyLHI9ck9wck5HZndFYmVSV2diTkVrcU8=",
            ),
        ),
        ("a001 LOGIN SMITH SESAME", Login("a001", "LOGIN", "SMITH", "SESAME")),
        ('b LOGIN "fred" "foo"', Login("b", "LOGIN", "fred", "foo")),  # §7.1
        # §6.3
        (
            "t2 ENABLE CONDSTORE X-GOOD-IDEA",
            Enable("t2", "ENABLE", ("CONDSTORE", "X-GOOD-IDEA")),
        ),
        ("babc ENABLE IMAP4rev2", Enable("babc", "ENABLE", ("IMAP4REV2",))),  # §8
        ("A142 SELECT INBOX", Select("A142", "SELECT", "INBOX")),
        ("A143 SELECT Drafts", Select("A143", "SELECT", "Drafts")),
        ("a002 select inbox", Select("a002", "SELECT", "INBOX")),  # §8
        ("A932 EXAMINE blurdybloop", Select("A932", "EXAMINE", "blurdybloop")),
        ("A003 CREATE owatagusiam/", MailboxCommand("A003", "CREATE", "owatagusiam/")),
        (
            "A004 CREATE owatagusiam/blurdybloop",
            MailboxCommand("A004", "CREATE", "owatagusiam/blurdybloop"),
        ),
        ('A002 CREATE "INBOX.Sent Mail"', MailboxCommand("A002", "CREATE", "INBOX.Sent Mail")),
        ("A683 DELETE blurdybloop", MailboxCommand("A683", "DELETE", "blurdybloop")),
        ("A685 DELETE foo/bar", MailboxCommand("A685", "DELETE", "foo/bar")),
        ("A683 RENAME blurdybloop sarasoop", Rename("A683", "RENAME", "blurdybloop", "sarasoop")),
        ("Z433 RENAME INBOX old-mail", Rename("Z433", "RENAME", "INBOX", "old-mail")),
        (
            "A002 SUBSCRIBE #news.comp.mail.mime",
            MailboxCommand("A002", "SUBSCRIBE", "#news.comp.mail.mime"),
        ),
        (
            "A002 UNSUBSCRIBE #news.comp.mail.mime",
            MailboxCommand("A002", "UNSUBSCRIBE", "#news.comp.mail.mime"),
        ),
        ("A001 NAMESPACE", Simple("A001", "NAMESPACE")),
        (
            "A042 STATUS blurdybloop (UIDNEXT MESSAGES)",
            Status("A042", "STATUS", "blurdybloop", ("UIDNEXT", "MESSAGES")),
        ),
        (
            'k2 status "/archive/projects/experiment-iv" (messages)',  # §7.1 CLIENTBUG
            Status("k2", "STATUS", "/archive/projects/experiment-iv", ("MESSAGES",)),
        ),
        ("A002 IDLE", Simple("A002", "IDLE")),
        # §6.4
        ("A341 CLOSE", Simple("A341", "CLOSE")),
        ("A342 UNSELECT", Simple("A342", "UNSELECT")),
        ("A202 EXPUNGE", Simple("A202", "EXPUNGE")),
        ("A003 COPY 2:4 MEETING", CopyMove("A003", "COPY", seq((2, 4)), "MEETING")),
        ("A006 COPY 2 funny", CopyMove("A006", "COPY", seq((2, 2)), "funny")),
        (
            "A005 UID COPY 305:310 meeting",
            CopyMove("A005", "UID COPY", seq((305, 310)), "meeting", uid=True),
        ),
        ("a UID MOVE 42:69 foo", CopyMove("a", "UID MOVE", seq((42, 69)), "foo", uid=True)),
        (
            'E283 COPY $ "Other Messages"',
            CopyMove("E283", "COPY", SequenceSet(saved=True), "Other Messages"),
        ),
        ("A003 UID EXPUNGE 3000:3002", UidExpunge("A003", "UID EXPUNGE", seq((3000, 3002)))),
        (
            "A003 STORE 2:4 +FLAGS (\\Deleted)",
            StoreFlags("A003", "STORE", seq((2, 4)), "add", False, ("\\Deleted",)),
        ),
        (
            "a005 store 12 +flags \\deleted",  # §8: a bare flag, lower case
            StoreFlags("a005", "STORE", seq((12, 12)), "add", False, ("\\Deleted",)),
        ),
        (
            "F284 STORE $ +FLAGS.Silent (\\Deleted)",
            StoreFlags("F284", "STORE", SequenceSet(saved=True), "add", True, ("\\Deleted",)),
        ),
        (
            "m STORE 42 FLAGS f1 f2 f3",  # §7.1 LIMIT
            StoreFlags("m", "STORE", seq((42, 42)), "replace", False, ("f1", "f2", "f3")),
        ),
        (
            "A999 UID FETCH 4827313:4828442 FLAGS",
            Fetch("A999", "UID FETCH", seq((4827313, 4828442)), (FetchAttr("FLAGS"),), uid=True),
        ),
        (
            "A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])",
            Fetch(
                "A654",
                "FETCH",
                seq((2, 4)),
                (
                    FetchAttr("FLAGS"),
                    FetchSection(text="HEADER.FIELDS", fields=("DATE", "FROM")),
                ),
            ),
        ),
        (
            "a003 fetch 12 full",  # §8
            Fetch(
                "a003",
                "FETCH",
                seq((12, 12)),
                (
                    FetchAttr("FLAGS"),
                    FetchAttr("INTERNALDATE"),
                    FetchAttr("RFC822.SIZE"),
                    FetchAttr("ENVELOPE"),
                    FetchAttr("BODY"),
                ),
            ),
        ),
        (
            "a004 fetch 12 body[header]",  # §8
            Fetch("a004", "FETCH", seq((12, 12)), (FetchSection(text="HEADER"),)),
        ),
        (
            "A003 FETCH 4 ALL",  # §6.3.13
            Fetch(
                "A003",
                "FETCH",
                seq((4, 4)),
                (
                    FetchAttr("FLAGS"),
                    FetchAttr("INTERNALDATE"),
                    FetchAttr("RFC822.SIZE"),
                    FetchAttr("ENVELOPE"),
                ),
            ),
        ),
        (
            "A283 FETCH $ (UID INTERNALDATE FLAGS BODY.PEEK[HEADER])",
            Fetch(
                "A283",
                "FETCH",
                SequenceSet(saved=True),
                (
                    FetchAttr("UID"),
                    FetchAttr("INTERNALDATE"),
                    FetchAttr("FLAGS"),
                    FetchSection(text="HEADER", peek=True),
                ),
            ),
        ),
        ("a006 logout", Simple("a006", "LOGOUT")),
    ],
)
def test_rfc_9051_examples(line: str, expected: Command) -> None:
    assert parse(line) == expected


FLAGGED = FlagKey("\\Flagged")
SINCE_FEB_1994 = DateKey("since", datetime.date(1994, 2, 1))
NOT_SMITH = NotKey(HeaderKey("from", "Smith"))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            'A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"',
            Search(
                "A282",
                "SEARCH",
                AndKey((FLAGGED, SINCE_FEB_1994, NOT_SMITH)),
                returns=("MIN", "COUNT"),
            ),
        ),
        (
            'A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"',
            Search("A283", "SEARCH", AndKey((FLAGGED, SINCE_FEB_1994, NOT_SMITH)), returns=()),
        ),
        (
            'A284 SEARCH TEXT "string not in mailbox"',
            Search("A284", "SEARCH", TextKey("string not in mailbox", "text")),
        ),
        (
            "A284 SEARCH RETURN (MIN) UNSEEN",
            Search("A284", "SEARCH", FlagKey("\\Seen", False), returns=("MIN",)),
        ),
        (
            "A285 UID SEARCH RETURN (MIN MAX) 1:5000",
            Search(
                "A285",
                "UID SEARCH",
                SetKey(seq((1, 5000))),
                returns=("MIN", "MAX"),
                uid=True,
            ),
        ),
        (
            "A286 SEARCH RETURN (COUNT) DELETED",
            Search("A286", "SEARCH", FlagKey("\\Deleted"), returns=("COUNT",)),
        ),
        (
            "A301 UID SEARCH UID $ SMALLER 4096",
            Search(
                "A301",
                "UID SEARCH",
                AndKey((SetKey(SequenceSet(saved=True), uid=True), SizeKey("smaller", 4096))),
                uid=True,
            ),
        ),
        (
            "A301 UID SEARCH $ SMALLER 4096",
            Search(
                "A301",
                "UID SEARCH",
                AndKey((SetKey(SequenceSet(saved=True)), SizeKey("smaller", 4096))),
                uid=True,
            ),
        ),
        (
            "F282 SEARCH RETURN (SAVE) KEYWORD $Junk",
            Search("F282", "SEARCH", FlagKey("$Junk"), returns=("SAVE",)),
        ),
        (
            'C286 SEARCH RETURN (MAX SAVE MIN COUNT) SINCE 12-Feb-2006 NOT FROM "Smith"',
            Search(
                "C286",
                "SEARCH",
                AndKey((DateKey("since", datetime.date(2006, 2, 12)), NOT_SMITH)),
                returns=("MAX", "SAVE", "MIN", "COUNT"),
            ),
        ),
        (
            "h search from maria@example.com",  # §7.1 EXPUNGEISSUED
            Search("h", "SEARCH", HeaderKey("from", "maria@example.com")),
        ),
    ],
)
def test_rfc_9051_search_examples(line: str, expected: Search) -> None:
    assert parse(line) == expected


def test_search_with_synchronizing_literal_in_utf8() -> None:
    # §6.4.4: A285 SEARCH CHARSET UTF-8 TEXT {12} / отпуск
    reader = CommandReader()
    reader.receive(b"A285 SEARCH CHARSET UTF-8 TEXT {12}\r\n")
    assert drain(reader) == [Continuation()]
    reader.receive("отпуск".encode() + b"\r\n")
    assert drain(reader) == [
        Search("A285", "SEARCH", TextKey("отпуск", "text"), charset="UTF-8"),
    ]


def test_search_with_saved_result_and_non_synchronizing_literal() -> None:
    # §6.4.4.4 example 4: P283 SEARCH CHARSET UTF-8 (OR $ 1,3000:3021) TEXT {8+} / мать
    data = b"P283 SEARCH CHARSET UTF-8 (OR $ 1,3000:3021) TEXT {8+}\r\n" + "мать".encode()
    assert feed(data + b"\r\n") == [
        Search(
            "P283",
            "SEARCH",
            AndKey(
                (
                    OrKey(SetKey(SequenceSet(saved=True)), SetKey(seq((1, 1), (3000, 3021)))),
                    TextKey("мать", "text"),
                )
            ),
            charset="UTF-8",
        )
    ]


def test_search_return_before_charset() -> None:
    # §6.4.4.4 example 5 (the session answers NO [BADCHARSET]: the parser keeps the name).
    data = b"B283 SEARCH RETURN (SAVE) CHARSET KOI8-R (OR $ 1,3000:3021) TEXT {4}\r\nXXXX\r\n"
    assert feed(data)[-1] == Search(
        "B283",
        "SEARCH",
        AndKey(
            (
                OrKey(SetKey(SequenceSet(saved=True)), SetKey(seq((1, 1), (3000, 3021)))),
                TextKey("XXXX", "text"),
            )
        ),
        charset="KOI8-R",
        returns=("SAVE",),
    )


def test_search_strings_decode_in_their_charset() -> None:
    data = b"a SEARCH CHARSET ISO-8859-1 SUBJECT {4}\r\ncaf\xe9\r\n"
    assert feed(data)[-1] == Search(
        "a", "SEARCH", HeaderKey("subject", "café"), charset="ISO-8859-1"
    )


def test_search_charset_after_return_is_accepted_in_either_order() -> None:
    assert parse("a SEARCH CHARSET UTF-8 RETURN (ALL) ALL") == Search(
        "a", "SEARCH", AllKey(), charset="UTF-8", returns=("ALL",)
    )


# -- LIST (RFC 9051 §6.3.9, RFC 5258, RFC 5819, RFC 6154) ------------------------------------


def lst(
    tag: str,
    reference: str,
    *patterns: str,
    select: tuple[str, ...] = (),
    returns: tuple[str, ...] = (),
    status: tuple[str, ...] = (),
) -> ListCommand:
    return ListCommand(tag, "LIST", reference, patterns, select, returns, status)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('A101 LIST "" ""', lst("A101", "", "")),  # basic: "" asks for the delimiter
        ('A102 LIST #news.comp.mail.misc ""', lst("A102", "#news.comp.mail.misc", "")),
        ('A103 LIST /usr/staff/jones ""', lst("A103", "/usr/staff/jones", "")),
        ("A202 LIST ~/Mail/ %", lst("A202", "~/Mail/", "%")),
        ('A682 LIST "" *', lst("A682", "", "*")),
        ('A01 LIST "" "*"', lst("A01", "", "*")),
        ('A02 LIST (SUBSCRIBED) "" "*"', lst("A02", "", "*", select=("SUBSCRIBED",))),
        ('A03 LIST () "" "%" RETURN (CHILDREN)', lst("A03", "", "%", returns=("CHILDREN",))),
        (
            'A04 LIST (REMOTE) "" "%" RETURN (CHILDREN)',
            lst("A04", "", "%", select=("REMOTE",), returns=("CHILDREN",)),
        ),
        (
            'A05 LIST (REMOTE SUBSCRIBED) "" "*"',
            lst("A05", "", "*", select=("REMOTE", "SUBSCRIBED")),
        ),
        (
            'A06 LIST (REMOTE) "" "*" RETURN (SUBSCRIBED)',
            lst("A06", "", "*", select=("REMOTE",), returns=("SUBSCRIBED",)),
        ),
        (
            'C04 LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (CHILDREN)',
            lst(
                "C04",
                "",
                "%",
                select=("SUBSCRIBED", "RECURSIVEMATCH"),
                returns=("CHILDREN",),
            ),
        ),
        (
            'D03 LIST (RECURSIVEMATCH SUBSCRIBED) "" "*2"',
            lst("D03", "", "*2", select=("RECURSIVEMATCH", "SUBSCRIBED")),
        ),
        ('a1 LIST "" ("foo")', lst("a1", "", "foo")),
        (
            'a3 LIST (SUBSCRIBED RECURSIVEMATCH) "" foo RETURN (CHILDREN)',
            lst(
                "a3",
                "",
                "foo",
                select=("SUBSCRIBED", "RECURSIVEMATCH"),
                returns=("CHILDREN",),
            ),
        ),
        ('a3.1 LIST "" (% music/rock)', lst("a3.1", "", "%", "music/rock")),
        (
            'A01 LIST "" % RETURN (STATUS (MESSAGES UNSEEN))',
            lst("A01", "", "%", status=("MESSAGES", "UNSEEN")),
        ),
        (
            'A02 LIST (SUBSCRIBED RECURSIVEMATCH) "" % RETURN (STATUS (MESSAGES))',
            lst("A02", "", "%", select=("SUBSCRIBED", "RECURSIVEMATCH"), status=("MESSAGES",)),
        ),
        (
            'A002 LIST (SPECIAL-USE) "" "*"',  # §6.3.10 example 6, RFC 6154 §5.1
            lst("A002", "", "*", select=("SPECIAL-USE",)),
        ),
        ('A003 LIST (SPECIAL-USE) "#mh/" "*"', lst("A003", "#mh/", "*", select=("SPECIAL-USE",))),
        ('A002 LIST "" "~mark/%"', lst("A002", "", "~mark/%")),
        (
            't1 LIST "" "%" RETURN (SPECIAL-USE)',  # RFC 6154 §5.1
            lst("t1", "", "%", returns=("SPECIAL-USE",)),
        ),
        (
            'a LIST (SUBSCRIBED) "" "*" RETURN (CHILDREN STATUS (MESSAGES UNSEEN))',
            lst(
                "a",
                "",
                "*",
                select=("SUBSCRIBED",),
                returns=("CHILDREN",),
                status=("MESSAGES", "UNSEEN"),
            ),
        ),
        ('a LIST "" ("INBOX" "Sent*")', lst("a", "", "INBOX", "Sent*")),
        ('a list (subscribed subscribed) "" x', lst("a", "", "x", select=("SUBSCRIBED",))),
        # Extended syntax: empty patterns are ignored, not a delimiter request (RFC 5258 §3).
        ('a LIST () "" ""', lst("a", "")),
        ('a LIST "" ("" "x")', lst("a", "", "x")),
        ('a LIST "" "]x]"', lst("a", "", "]x]")),
        ('a LIST "" x]y', lst("a", "", "x]y")),
        ('a LIST inbox "*"', lst("a", "INBOX", "*")),
    ],
)
def test_list(line: str, expected: ListCommand) -> None:
    assert parse(line) == expected


def test_lsub() -> None:
    assert parse('a LSUB "#news." "comp.mail.*"') == ListCommand(
        "a", "LSUB", "#news.", ("comp.mail.*",)
    )


def test_list_patterns_decode_modified_utf7() -> None:
    assert parse('a LIST "" "&ZeVnLIqe-/*"') == lst("a", "", "日本語/*")


@pytest.mark.parametrize(
    "line",
    [
        'a LIST (RECURSIVEMATCH) "" "*"',  # RFC 5258 §3.1: needs a base option: BAD
        'a LIST (REMOTE RECURSIVEMATCH) "" "*"',
        'a LIST (FOO) "" "*"',
        'a LIST "" "*" RETURN (FOO)',
        'a LIST "" "*" RETURN (STATUS ())',
        'a LIST "" "*" RETURN (STATUS (BOGUS))',
        'a LIST "" "*" RETURNS (CHILDREN)',
        'a LIST "" ()',
        'a LIST ""',
        "a LIST",
        'a LIST "" "*" RETURN CHILDREN',
    ],
)
def test_list_errors(line: str) -> None:
    assert invalid(line).name == "LIST"


# -- other commands ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # RFC 7162 §3.1.8, §3.2.5 (CONDSTORE, QRESYNC)
        ("A142 SELECT INBOX (CONDSTORE)", Select("A142", "SELECT", "INBOX", condstore=True)),
        (
            "A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))",
            Select(
                "A02",
                "SELECT",
                "INBOX",
                qresync=(67890007, 20050715194045000, seq((41, 41), (43, 211), (214, 541)), None),
            ),
        ),
        (
            "B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 "
            "(5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,"
            "29985,29988,29991,29994,29997)))",
            Select(
                "B04",
                "SELECT",
                "INBOX",
                qresync=(
                    67890007,
                    90060115194045000,
                    seq((1, 29997)),
                    (
                        seq((5000, 5000), (7500, 7500), (9000, 9000), (9990, 9999)),
                        seq(*((n, n) for n in (15000, 22500, 27000, *range(29970, 29998, 3)))),
                    ),
                ),
            ),
        ),
        (
            "a SELECT INBOX (QRESYNC (1 2))",
            Select("a", "SELECT", "INBOX", qresync=(1, 2, None, None)),
        ),
        (
            "a SELECT INBOX (QRESYNC (1 2 (1:2 3:4)) CONDSTORE)",
            Select(
                "a",
                "SELECT",
                "INBOX",
                condstore=True,
                qresync=(1, 2, None, (seq((1, 2)), seq((3, 4)))),
            ),
        ),
        (
            "a EXAMINE INBOX (CONDSTORE)",
            Select("a", "EXAMINE", "INBOX", condstore=True),
        ),
        # RFC 6154 §5.2
        (
            "t1 CREATE MySpecial (USE (\\Drafts \\Sent))",
            MailboxCommand("t1", "CREATE", "MySpecial", ("\\Drafts", "\\Sent")),
        ),
        (
            "t1 CREATE x (USE (\\junk \\X-Thing))",
            MailboxCommand("t1", "CREATE", "x", ("\\Junk", "\\X-Thing")),
        ),
        ("t1 CREATE x (USE ())", MailboxCommand("t1", "CREATE", "x")),
        # RFC 9208 QUOTA
        ("G0001 GETQUOTAROOT INBOX", MailboxCommand("G0001", "GETQUOTAROOT", "INBOX")),
        ('G0002 GETQUOTA ""', Quota("G0002", "GETQUOTA", "")),
        ('S0000 GETQUOTA "#user/alice"', Quota("S0000", "GETQUOTA", "#user/alice")),
        ('S0001 SETQUOTA "#user/alice" (STORAGE 510)', Quota("S0001", "SETQUOTA", "#user/alice")),
        ('S0002 SETQUOTA "" ()', Quota("S0002", "SETQUOTA", "")),
        # RFC 2971 ID
        (
            'a023 ID ("name" "sodr" "version" "19.34" "vendor" "Pink Floyd Music Limited")',
            Id(
                "a023",
                "ID",
                (
                    ("name", "sodr"),
                    ("version", "19.34"),
                    ("vendor", "Pink Floyd Music Limited"),
                ),
            ),
        ),
        ("a ID NIL", Id("a", "ID", None)),
        ("a ID ()", Id("a", "ID", ())),
        ('a ID ("os" NIL)', Id("a", "ID", (("os", None),))),
        # RFC 4978 COMPRESS
        ("a COMPRESS DEFLATE", Compress("a", "COMPRESS", "DEFLATE")),
        ("a compress deflate", Compress("a", "COMPRESS", "DEFLATE")),
        # Rev1 spellings
        ("a CHECK", Simple("a", "CHECK")),
        ('a LOGIN "a\\"b" "c\\\\d"', Login("a", "LOGIN", 'a"b', "c\\d")),
        ("a LOGIN ]user] pa]ss", Login("a", "LOGIN", "]user]", "pa]ss")),
        ('a LOGIN "" ""', Login("a", "LOGIN", "", "")),
        ('a LOGIN "élise" "mot de passe"', Login("a", "LOGIN", "élise", "mot de passe")),
        ("a ENABLE UTF8=ACCEPT", Enable("a", "ENABLE", ("UTF8=ACCEPT",))),
        (
            "a STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT "
            "HIGHESTMODSEQ APPENDLIMIT MESSAGES)",
            Status(
                "a",
                "STATUS",
                "INBOX",
                (
                    "MESSAGES",
                    "UIDNEXT",
                    "UIDVALIDITY",
                    "UNSEEN",
                    "DELETED",
                    "SIZE",
                    "RECENT",
                    "HIGHESTMODSEQ",
                    "APPENDLIMIT",
                ),
            ),
        ),
        ("a MOVE 1:* Archive", CopyMove("a", "MOVE", ALL_SET, "Archive")),
        (
            "a UID COPY 5,*:3 Trash",
            CopyMove("a", "UID COPY", seq((5, 5), (None, 3)), "Trash", True),
        ),
    ],
)
def test_other_commands(line: str, expected: Command) -> None:
    assert parse(line) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # RFC 7162 §3.1.3
        (
            "a103 UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted)",
            StoreFlags(
                "a103",
                "UID STORE",
                seq((6, 6), (4, 4), (8, 8)),
                "add",
                True,
                ("\\Deleted",),
                uid=True,
                unchanged_since=12121230045,
            ),
        ),
        (
            "d105 STORE 7,5,9 (UNCHANGEDSINCE 320162338) -FLAGS.SILENT ($MDNSent)",
            StoreFlags(
                "d105",
                "STORE",
                seq((7, 7), (5, 5), (9, 9)),
                "remove",
                True,
                ("$MDNSent",),
                unchanged_since=320162338,
            ),
        ),
        (
            "a STORE 1 FLAGS ()",
            StoreFlags("a", "STORE", seq((1, 1)), "replace", False, ()),
        ),
        (
            "a STORE 1 flags.silent (\\SEEN \\answered \\Flagged \\draft \\DELETED $Forwarded)",
            StoreFlags(
                "a",
                "STORE",
                seq((1, 1)),
                "replace",
                True,
                ("\\Seen", "\\Answered", "\\Flagged", "\\Draft", "\\Deleted", "$Forwarded"),
            ),
        ),
        (
            "a STORE 1 -FLAGS \\Seen NonJunk",
            StoreFlags("a", "STORE", seq((1, 1)), "remove", False, ("\\Seen", "NonJunk")),
        ),
    ],
)
def test_store(line: str, expected: StoreFlags) -> None:
    assert parse(line) == expected


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ("FAST", (FetchAttr("FLAGS"), FetchAttr("INTERNALDATE"), FetchAttr("RFC822.SIZE"))),
        (
            "(UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY MODSEQ RFC822 "
            "RFC822.HEADER RFC822.TEXT PREVIEW SAVEDATE EMAILID THREADID)",
            tuple(
                FetchAttr(name)
                for name in (
                    "UID",
                    "FLAGS",
                    "INTERNALDATE",
                    "RFC822.SIZE",
                    "ENVELOPE",
                    "BODYSTRUCTURE",
                    "BODY",
                    "MODSEQ",
                    "RFC822",
                    "RFC822.HEADER",
                    "RFC822.TEXT",
                    "PREVIEW",
                    "SAVEDATE",
                    "EMAILID",
                    "THREADID",
                )
            ),
        ),
        ("rfc822.size", (FetchAttr("RFC822.SIZE"),)),
        ("BODY[]", (FetchSection(),)),
        ("BODY.PEEK[]<0.2048>", (FetchSection(partial=(0, 2048), peek=True),)),
        ("(BODY[TEXT]<100.50>)", (FetchSection(text="TEXT", partial=(100, 50)),)),
        ("BODY[1]", (FetchSection(part=(1,)),)),
        ("BODY[1.2.3]", (FetchSection(part=(1, 2, 3)),)),
        ("BODY[4.1.MIME]", (FetchSection(part=(4, 1), text="MIME"),)),
        ("BODY[3.HEADER]", (FetchSection(part=(3,), text="HEADER"),)),
        ("BODY[4.2.TEXT]", (FetchSection(part=(4, 2), text="TEXT"),)),
        (
            "BODY.PEEK[1.HEADER.FIELDS.NOT (Received x-spam)]",
            (
                FetchSection(
                    part=(1,), text="HEADER.FIELDS.NOT", fields=("RECEIVED", "X-SPAM"), peek=True
                ),
            ),
        ),
        (
            'BODY[HEADER.FIELDS ("Subject" From)]',
            (FetchSection(text="HEADER.FIELDS", fields=("SUBJECT", "FROM")),),
        ),
        ("BINARY[]", (FetchSection(binary=True),)),
        ("BINARY[1.2]<0.10>", (FetchSection(part=(1, 2), binary=True, partial=(0, 10)),)),
        ("BINARY.PEEK[3]", (FetchSection(part=(3,), binary=True, peek=True),)),
        ("BINARY.SIZE[1]", (FetchSection(part=(1,), binary=True, size_only=True),)),
        ("(PREVIEW (LAZY) UID)", (FetchAttr("PREVIEW"), FetchAttr("UID"))),
        ("PREVIEW (lazy)", (FetchAttr("PREVIEW"),)),
    ],
)
def test_fetch_items(items: str, expected: tuple[FetchAttr | FetchSection, ...]) -> None:
    assert parse(f"a FETCH 1 {items}") == Fetch("a", "FETCH", seq((1, 1)), expected)


def test_fetch_modifiers() -> None:
    # RFC 7162 §3.1.4.1, §3.2.6
    assert parse("s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)") == Fetch(
        "s100", "UID FETCH", ALL_SET, (FetchAttr("FLAGS"),), uid=True, changed_since=12345
    )
    assert parse("s101 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)") == Fetch(
        "s101",
        "UID FETCH",
        seq((300, 500)),
        (FetchAttr("FLAGS"),),
        uid=True,
        changed_since=12345,
        vanished=True,
    )
    assert parse("a FETCH 1 FLAGS (CHANGEDSINCE 1)") == Fetch(
        "a", "FETCH", seq((1, 1)), (FetchAttr("FLAGS"),), changed_since=1
    )
    assert parse("a FETCH 1 PREVIEW (CHANGEDSINCE 1)") == Fetch(
        "a", "FETCH", seq((1, 1)), (FetchAttr("PREVIEW"),), changed_since=1
    )


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("a FETCH 1 (FLAGS) (VANISHED)", "VANISHED"),
        ("a UID FETCH 1 (FLAGS) (VANISHED)", "CHANGEDSINCE"),
        ("a FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)", "UID FETCH"),
        ("a FETCH 1 (ALL)", "macro"),
        ("a FETCH 1 (FLAGS FAST)", "macro"),
        ("a FETCH 1 BOGUS", "Unknown fetch item"),
        ("a FETCH 1 ()", "Empty"),
        ("a FETCH 1 BODY[", ""),
        ("a FETCH 1 BODY[MIME]", "section"),  # MIME needs a part number
        ("a FETCH 1 BODY[0]", "section part"),
        ("a FETCH 1 BODY[1.]", "section"),
        ("a FETCH 1 BODY[1.X]", "section"),
        ("a FETCH 1 BODY[HEADER.FIELDS]", "space"),
        ("a FETCH 1 BODY[HEADER.FIELDS ()]", "Empty"),
        ("a FETCH 1 BINARY[TEXT]", "BINARY"),
        ("a FETCH 1 BINARY[1.MIME]", ""),
        ("a FETCH 1 BINARY.SIZE[1]<0.5>", "partial"),
        ("a FETCH 1 BODY[]<0.0>", "partial length"),
        ("a FETCH 1 BODY[]<1>", ""),
        ("a FETCH 1 BODY.PEEK", "Unknown fetch item"),
        ("a FETCH 1 BINARY", "Unknown fetch item"),
        ("a FETCH 1 (PREVIEW (FUZZY))", ""),
        ("a FETCH 1 FLAGS (FOO 1)", "Unknown FETCH modifier"),
        ("a FETCH 0 FLAGS", "sequence set"),
        ("a FETCH 4294967296 FLAGS", "sequence set"),
        ("a FETCH 1:2:3 FLAGS", "sequence set"),
        ("a FETCH 1,,2 FLAGS", "sequence set"),
        ("a FETCH $,1 FLAGS", "sequence set"),
        ("a FETCH FLAGS", "sequence set"),
        ("a FETCH 1", "space"),
        ("a FETCH 1  FLAGS", ""),
        ("a FETCH 1 FLAGS ", ""),
    ],
)
def test_fetch_errors(line: str, reason: str) -> None:
    command = invalid(line)
    assert command.tag == "a" and command.name in ("FETCH", "UID FETCH")
    assert reason in command.reason


# -- APPEND, MULTIAPPEND, literal8 -------------------------------------------------------------

RFC_MESSAGE = (
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
    b"From: Fred Foobar <foobar@Blurdybloop.example>\r\n"
    b"Subject: afternoon meeting\r\n"
    b"To: mooch@owatagu.siam.edu.example\r\n"
    b"Message-Id: <B27397-0100000@Blurdybloop.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    b"\r\n"
    b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
)


def test_rfc_9051_append_example() -> None:
    assert len(RFC_MESSAGE) == 326
    reader = CommandReader(max_literal=1000)
    reader.receive(b"A003 APPEND saved-messages (\\Seen) {326}\r\n")
    assert drain(reader) == [Continuation()]
    reader.receive(RFC_MESSAGE + b"\r\n")
    assert drain(reader) == [
        Append("A003", "APPEND", "saved-messages", (AppendMessage(("\\Seen",), None, RFC_MESSAGE),))
    ]


def test_rfc_9051_non_synchronizing_append_then_copy() -> None:
    data = b"A003 APPEND saved-messages (\\Seen) {%d+}\r\n%s\r\nA004 COPY 2:4 meeting\r\n" % (
        len(RFC_MESSAGE),
        RFC_MESSAGE,
    )
    assert feed(data, max_literal=1000) == [
        Append(
            "A003", "APPEND", "saved-messages", (AppendMessage(("\\Seen",), None, RFC_MESSAGE),)
        ),
        CopyMove("A004", "COPY", seq((2, 4)), "meeting"),
    ]


def test_multiappend_three_messages() -> None:
    # RFC 3502 §6.3.11, with a date-time, a non-synchronizing literal and a literal8 (RFC 3516).
    one, two, three = b"Subject: one\r\n\r\n1\r\n", b"Subject: two\r\n\r\n2\r\n", b"\x00\x01bin"
    reader = CommandReader()
    reader.receive(b"A003 APPEND saved-messages (\\Seen) {%d}\r\n" % len(one))
    assert drain(reader) == [Continuation()]
    reader.receive(one + b' (\\Seen $Forwarded) " 7-Feb-1994 22:43:04 -0800" {%d+}\r\n' % len(two))
    assert drain(reader) == []  # no continuation for {n+}
    reader.receive(two + b" ~{%d}\r\n" % len(three))
    assert drain(reader) == [Continuation()]
    reader.receive(three + b"\r\n")
    date = datetime.datetime(
        1994, 2, 7, 22, 43, 4, tzinfo=datetime.timezone(datetime.timedelta(hours=-8))
    )
    assert drain(reader) == [
        Append(
            "A003",
            "APPEND",
            "saved-messages",
            (
                AppendMessage(("\\Seen",), None, one),
                AppendMessage(("\\Seen", "$Forwarded"), date, two),
                AppendMessage((), None, three, binary=True),
            ),
        )
    ]


@pytest.mark.parametrize(
    ("date_time", "expected"),
    [
        ("23-Nov-2026 10:00:00 +0100", (2026, 11, 23, 10, 0, 0, 60)),
        (" 7-Feb-1994 21:52:25 -0800", (1994, 2, 7, 21, 52, 25, -480)),
        ("7-feb-1994 21:52:25 +0000", (1994, 2, 7, 21, 52, 25, 0)),
        ("01-JAN-2000 00:00:00 +0530", (2000, 1, 1, 0, 0, 0, 330)),
        ("29-Feb-2024 23:59:59 -1200", (2024, 2, 29, 23, 59, 59, -720)),
    ],
)
def test_append_date_time(date_time: str, expected: tuple[int, ...]) -> None:
    year, month, day, hour, minute, second, minutes = expected
    zone = datetime.timezone(datetime.timedelta(minutes=minutes))
    command = feed(b'a APPEND x "%s" {1+}\r\nM\r\n' % date_time.encode())[0]
    assert isinstance(command, Append)
    date = command.messages[0].date
    assert date == datetime.datetime(year, month, day, hour, minute, second, tzinfo=zone)
    assert date is not None and date.utcoffset() == zone.utcoffset(None)


@pytest.mark.parametrize(
    "date_time",
    [
        "30-Feb-2024 10:00:00 +0000",
        "23-Foo-2026 10:00:00 +0100",
        "23-Nov-2026 24:00:00 +0100",
        "23-Nov-2026 10:60:00 +0100",
        "23-Nov-2026 10:00:00 +2400",
        "23-Nov-2026 10:00:00 +0160",
        "23-Nov-2026 10:00:00",
        "23-Nov-2026",
        "123-Nov-2026 10:00:00 +0100",
        "23-Nov-26 10:00:00 +0100",
    ],
)
def test_append_bad_date_time(date_time: str) -> None:
    events = feed(b'a APPEND x "%s" {1+}\r\nM\r\n' % date_time.encode())
    assert len(events) == 1 and isinstance(events[0], Invalid), events
    assert events[0].reason == "Invalid date-time"


@pytest.mark.parametrize(
    "data",
    [
        b"a APPEND x\r\n",
        b"a APPEND x (\\Seen)\r\n",
        b'a APPEND x "hello"\r\n',
        b"a APPEND x (\\Seen) {1+}\r\nM extra\r\n",
        b"a APPEND x {1+}\r\nM (\\Seen)\r\n",
        b"a APPEND x CATENATE (TEXT {1+}\r\nM)\r\n",
        b"a APPEND x UTF8 (~{1+}\r\nM)\r\n",
        b"a APPEND x (\\Seen {1+}\r\nM\r\n",
        b"a APPEND {1+}\r\nx{1+}\r\nM\r\n",  # no SP between mailbox and message
        b"a APPEND x  {1+}\r\nM\r\n",
    ],
)
def test_append_errors(data: bytes) -> None:
    events = [event for event in feed(data) if not isinstance(event, Continuation)]
    assert len(events) == 1 and isinstance(events[0], Invalid), events
    assert events[0].name == "APPEND" and events[0].reason


def test_literal8_outside_append_is_refused_before_it_is_sent() -> None:
    assert feed(b"a LOGIN ~{3}\r\n") == [
        Invalid("a", "LOGIN", "literal8 is only allowed in APPEND data")
    ]
    events = feed(b"a LOGIN ~{3+}\r\nabc x\r\n")
    assert events == [Invalid("a", "LOGIN", "literal8 is only allowed in APPEND data")]


# -- SEARCH keys (§6.4.4 and extensions) -------------------------------------------------------

DAY = datetime.date(2026, 11, 23)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ("ALL", AllKey()),
        ("OLD", NotKey(RecentKey())),
        ("NEW", AndKey((RecentKey(), FlagKey("\\Seen", False)))),
        ("RECENT", RecentKey()),
        ("ANSWERED", FlagKey("\\Answered")),
        ("DELETED", FlagKey("\\Deleted")),
        ("DRAFT", FlagKey("\\Draft")),
        ("FLAGGED", FlagKey("\\Flagged")),
        ("SEEN", FlagKey("\\Seen")),
        ("UNANSWERED", FlagKey("\\Answered", False)),
        ("UNDELETED", FlagKey("\\Deleted", False)),
        ("UNDRAFT", FlagKey("\\Draft", False)),
        ("UNFLAGGED", FlagKey("\\Flagged", False)),
        ("unseen", FlagKey("\\Seen", False)),
        ("KEYWORD $Forwarded", FlagKey("$Forwarded")),
        ("UNKEYWORD Junk", FlagKey("Junk", False)),
        ('BCC "x"', HeaderKey("bcc", "x")),
        ("CC y", HeaderKey("cc", "y")),
        ('FROM "Smith"', HeaderKey("from", "Smith")),
        ('SUBJECT ""', HeaderKey("subject", "")),
        ("TO z@example.org", HeaderKey("to", "z@example.org")),
        ('HEADER Message-ID "<a@b>"', HeaderKey("message-id", "<a@b>")),
        ('HEADER "X-Spam" ""', HeaderKey("x-spam", "")),
        ('BODY "swim"', TextKey("swim", "body")),
        ('TEXT "é"', TextKey("é", "text")),
        ("BEFORE 23-Nov-2026", DateKey("before", DAY)),
        ('ON "23-Nov-2026"', DateKey("on", DAY)),
        ("SINCE 1-Feb-1994", DateKey("since", datetime.date(1994, 2, 1))),
        ("SENTBEFORE 23-nov-2026", DateKey("before", DAY, sent=True)),
        ("SENTON 23-NOV-2026", DateKey("on", DAY, sent=True)),
        ("SENTSINCE 05-Mar-2000", DateKey("since", datetime.date(2000, 3, 5), sent=True)),
        ("LARGER 1000", SizeKey("larger", 1000)),
        ("SMALLER 4096", SizeKey("smaller", 4096)),
        ("OLDER 3600", AgeKey("older", 3600)),  # RFC 5032
        ("YOUNGER 259200", AgeKey("younger", 259200)),
        ("UID 443:557", SetKey(seq((443, 557)), uid=True)),
        ("1:100 UID 443:557", AndKey((SetKey(seq((1, 100))), SetKey(seq((443, 557)), uid=True)))),
        ("2,4:7,9,12:*", SetKey(seq((2, 2), (4, 7), (9, 9), (12, None)))),
        ("*:4,5:7", SetKey(seq((None, 4), (5, 7)))),
        ("$", SetKey(SequenceSet(saved=True))),
        ("NOT SEEN", NotKey(FlagKey("\\Seen"))),
        ("OR SEEN FLAGGED", OrKey(FlagKey("\\Seen"), FlagKey("\\Flagged"))),
        ("(SEEN)", FlagKey("\\Seen")),
        ("(SEEN FLAGGED)", AndKey((FlagKey("\\Seen"), FlagKey("\\Flagged")))),
        (
            "OR (SEEN FLAGGED) NOT (OR 1 2)",
            OrKey(
                AndKey((FlagKey("\\Seen"), FlagKey("\\Flagged"))),
                NotKey(OrKey(SetKey(seq((1, 1))), SetKey(seq((2, 2))))),
            ),
        ),
        ("NOT NOT NOT ALL", NotKey(NotKey(NotKey(AllKey())))),
        ("MODSEQ 620162338", ModSeqKey(620162338)),  # RFC 7162 §3.1.5
        ('MODSEQ "/flags/\\\\draft" all 620162338', ModSeqKey(620162338)),
        ('MODSEQ "/flags/$Junk" priv 0', ModSeqKey(0)),
        (
            "DELETED FROM smith SINCE 1-Feb-1994",  # §6.4.4
            AndKey(
                (
                    FlagKey("\\Deleted"),
                    HeaderKey("from", "smith"),
                    DateKey("since", datetime.date(1994, 2, 1)),
                )
            ),
        ),
    ],
)
def test_search_keys(keys: str, expected: SearchKey) -> None:
    assert parse(f"a SEARCH {keys}") == Search("a", "SEARCH", expected)


@pytest.mark.parametrize(
    ("keys", "reason"),
    [
        ("", "space"),
        ("FOO", "Unknown search key FOO"),
        ("FROM", "space"),
        ("BEFORE 31-Nov-2026", "Invalid date"),
        ("BEFORE 1-Nov-26", "Invalid date"),
        ("SINCE 1-Foo-2026", "Invalid date"),
        ("SINCE 1994-02-01", "Invalid date"),
        ("LARGER -1", "size"),
        ("LARGER x", "size"),
        ("OLDER 0", "interval"),
        ("KEYWORD \\Seen", "keyword"),
        ("()", "search key"),
        ("(SEEN", "')'"),
        ("SEEN)", "space"),
        ("OR SEEN", "space"),
        ("NOT", "space"),
        ("UID", "space"),
        ("UID ALL", "sequence set"),
        ('MODSEQ "/flags/x" bogus 1', "entry type"),
        ("MODSEQ x", "mod-sequence"),
        ("SEEN  FLAGGED", "search key"),
        ("CHARSET", "space"),
        ("RETURN (FOO) ALL", "Unknown search return option"),
        ("RETURN ALL", "'('"),
        ("1:0", "sequence set"),
        ('TEXT "unterminated', "quoted"),
        ('TEXT "bad \\q escape"', "quoted"),
    ],
)
def test_search_errors(keys: str, reason: str) -> None:
    command = invalid(f"a SEARCH {keys}".rstrip())
    assert command.name == "SEARCH"
    assert reason in command.reason


def test_deep_nesting_is_invalid_not_a_recursion_error() -> None:
    for keys in (
        "(" * 5000 + "ALL" + ")" * 5000,
        "NOT " * 5000 + "ALL",
        "OR " * 5000 + "ALL " * 5001,
        "(NOT " * 2000 + "ALL" + ")" * 2000,
    ):
        command = invalid(f"a SEARCH {keys}".rstrip())
        assert command.reason == "Search keys nested too deeply"


def test_nesting_just_below_the_bound_parses() -> None:
    depth = MAX_SEARCH_DEPTH - 1
    command = parse("a SEARCH " + "NOT " * depth + "ALL")
    assert isinstance(command, Search)
    key = command.key
    for _ in range(depth):
        assert isinstance(key, NotKey)
        key = key.key
    assert key == AllKey()
    assert isinstance(parse("a SEARCH " + "(" * depth + "ALL" + ")" * depth), Search)


def test_many_top_level_keys_are_fine() -> None:
    command = parse("a SEARCH " + " ".join(["SEEN"] * 3000))
    assert isinstance(command, Search) and isinstance(command.key, AndKey)
    assert len(command.key.keys) == 3000


# -- SORT and THREAD (RFC 5256, RFC 5267, RFC 5957) -------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994",
            Sort("A282", "SORT", (("SUBJECT", False),), "UTF-8", SINCE_FEB_1994),
        ),
        (
            "A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL",
            Sort("A283", "SORT", (("SUBJECT", False), ("DATE", True)), "UTF-8", AllKey()),
        ),
        (
            'A284 SORT (SUBJECT) US-ASCII TEXT "not in mailbox"',
            Sort(
                "A284", "SORT", (("SUBJECT", False),), "US-ASCII", TextKey("not in mailbox", "text")
            ),
        ),
        (
            "a UID SORT (DISPLAYFROM reverse displayto ARRIVAL CC FROM SIZE TO) utf-8 UNSEEN",
            Sort(
                "a",
                "UID SORT",
                (
                    ("DISPLAYFROM", False),
                    ("DISPLAYTO", True),
                    ("ARRIVAL", False),
                    ("CC", False),
                    ("FROM", False),
                    ("SIZE", False),
                    ("TO", False),
                ),
                "UTF-8",
                FlagKey("\\Seen", False),
                uid=True,
            ),
        ),
        (
            "C1 UID SORT RETURN (COUNT MIN) (DATE) UTF-8 1:500",  # RFC 5267 ESORT
            Sort(
                "C1",
                "UID SORT",
                (("DATE", False),),
                "UTF-8",
                SetKey(seq((1, 500))),
                returns=("COUNT", "MIN"),
                uid=True,
            ),
        ),
        (
            "A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000",
            ThreadCommand(
                "A283",
                "THREAD",
                "ORDEREDSUBJECT",
                "UTF-8",
                DateKey("since", datetime.date(2000, 3, 5)),
            ),
        ),
        (
            'A284 THREAD ORDEREDSUBJECT US-ASCII TEXT "gewp"',
            ThreadCommand("A284", "THREAD", "ORDEREDSUBJECT", "US-ASCII", TextKey("gewp", "text")),
        ),
        (
            "a UID THREAD references UTF-8 (SEEN UNDELETED)",
            ThreadCommand(
                "a",
                "UID THREAD",
                "REFERENCES",
                "UTF-8",
                AndKey((FlagKey("\\Seen"), FlagKey("\\Deleted", False))),
                uid=True,
            ),
        ),
    ],
)
def test_sort_and_thread(line: str, expected: Command) -> None:
    assert parse(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "a SORT () UTF-8 ALL",
        "a SORT (BOGUS) UTF-8 ALL",
        "a SORT (REVERSE) UTF-8 ALL",
        "a SORT (REVERSE REVERSE DATE) UTF-8 ALL",
        "a SORT (DATE) ALL",
        "a SORT (DATE) UTF-8",
        "a SORT DATE UTF-8 ALL",
        "a THREAD BOGUS UTF-8 ALL",
        "a THREAD REFERENCES UTF-8",
        "a THREAD REFERENCES",
    ],
)
def test_sort_and_thread_errors(line: str) -> None:
    assert invalid(line).name in ("SORT", "THREAD")


# -- mailbox names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("INBOX", "INBOX"),
        ("inbox", "INBOX"),
        ('"InBoX"', "INBOX"),
        ("{5+}\r\niNbOx", "INBOX"),
        ("INBOX/sub", "INBOX/sub"),
        ("INBOXES", "INBOXES"),
        ('"~peter/mail/&U,BTFw-/&ZeVnLIqe-"', "~peter/mail/台北/日本語"),
        ("Tom&-Jerry", "Tom&Jerry"),
        ('"with space"', "with space"),
        ("a]b", "a]b"),
    ],
)
def test_mailbox_names_in_modified_utf7(raw: str, expected: str) -> None:
    assert parse(f"a SELECT {raw}") == Select("a", "SELECT", expected)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('"~peter/mail/台北/日本語"', "~peter/mail/台北/日本語"),
        ('"Tom&-Jerry"', "Tom&-Jerry"),  # "&" is just "&" in UTF-8 names
        ('"&U,BTFw-"', "&U,BTFw-"),
        ('"inbox"', "INBOX"),
    ],
)
def test_mailbox_names_in_utf8(raw: str, expected: str) -> None:
    assert parse(f"a SELECT {raw}", utf8=True) == Select("a", "SELECT", expected)


@pytest.mark.parametrize(
    "raw",
    [
        '"&U,BTFw"',  # unterminated shift
        "&AGE-",  # encodes printable ASCII
        '"&AOk-&AOk-"',  # shifts to merge
        '"台北"',  # raw UTF-8 from a client that has not enabled it
        '"tab\there"',  # a control character must be encoded
    ],
)
def test_invalid_modified_utf7(raw: str) -> None:
    # A name to be made must be valid: one spelling on the wire for every mailbox.
    command = invalid(f"a CREATE {raw}")
    assert command.name == "CREATE" and "modified UTF-7" in command.reason
    command = invalid(f"a RENAME Old {raw}")
    assert command.name == "RENAME" and "modified UTF-7" in command.reason


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('"&U,BTFw"', "&U,BTFw"),
        ("&AGE-", "&AGE-"),
        ('"&AOk-&AOk-"', "&AOk-&AOk-"),
        ('"台北"', "台北"),
        ('"tab\there"', "tab\there"),
        # imaptest's atoms test: every ATOM-CHAR, with a "&" that starts no valid shift.
        ("!#$&'+,-.0123456789:;<=>?@^_`|[}", "!#$&'+,-.0123456789:;<=>?@^_`|[}"),
        ('"inbox&"', "inbox&"),
    ],
)
def test_invalid_modified_utf7_names_a_mailbox_spelt_so(raw: str, expected: str) -> None:
    # Any other command names the mailbox spelt that way, which the session does not find
    # (NO [NONEXISTENT], as Dovecot answers NO), rather than BAD for a well-formed command.
    assert parse(f"a SELECT {raw}") == Select("a", "SELECT", expected)
    assert parse(f"a STATUS {raw} (MESSAGES)") == Status("a", "STATUS", expected, ("MESSAGES",))
    assert parse(f"a RENAME {raw} New") == Rename("a", "RENAME", expected, "New")
    listed = parse(f'a LIST "" {raw}')
    assert isinstance(listed, ListCommand) and listed.patterns == (expected,)
    listed = parse(f"a LIST {raw} %")
    assert isinstance(listed, ListCommand) and listed.reference == expected


def test_invalid_modified_utf7_list_pattern() -> None:
    # imaptest's atoms test: LIST with such a pattern is OK and lists nothing.
    line = 'a LIST "" !#$&\'+,-.0123456789:;<=>?@^_`|[}%*'
    listed = parse(line)
    assert isinstance(listed, ListCommand)
    assert listed.patterns == ("!#$&'+,-.0123456789:;<=>?@^_`|[}%*",)
    assert parse('a LIST "" "&U,BTFw"') == parse('a LIST "" "&U,BTFw"', utf8=True)


def test_invalid_utf8_mailbox_name() -> None:
    events = feed(b"a SELECT {2+}\r\n\xc3\x28\r\n")
    assert len(events) == 1 and isinstance(events[0], Invalid)
    reader = CommandReader()
    reader.utf8 = True
    events = feed(b'a SELECT "\xff"\r\n', reader)
    assert events == [Invalid("a", "SELECT", "Invalid UTF-8 in a string")]


def test_rename_and_copy_decode_both_names() -> None:
    assert parse("a RENAME &ZeVnLIqe- inbox") == Rename("a", "RENAME", "日本語", "INBOX")
    assert parse('a UID MOVE 1 "&U,BTFw-"') == CopyMove("a", "UID MOVE", seq((1, 1)), "台北", True)


# -- malformed commands ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "tag", "name", "reason"),
    [
        ("a BLURDYBLOOP", "a", "BLURDYBLOOP", "Unknown command"),
        ("a UID FOO 1", "a", "UID FOO", "Unknown command"),
        ("a UID", "a", "UID", "Missing command after UID"),
        ("a UID NOOP", "a", "UID NOOP", "Unknown command"),
        ("a", "a", "", "Missing command name"),
        ("* NOOP", "*", "", "Invalid tag"),
        ("+a NOOP", "*", "", "Invalid tag"),
        ("a+ NOOP", "*", "", "Invalid tag"),
        ("(a) NOOP", "*", "", "Invalid tag"),
        (" NOOP", "*", "", "Invalid tag"),
        ("a\tNOOP", "*", "", "Invalid tag"),
        ("a  NOOP", "a", "", "Missing command name"),
        ("a (NOOP)", "a", "", "Missing command name"),
        ("a NOOP ", "a", "NOOP", "Unexpected arguments"),
        ("a NOOP x", "a", "NOOP", "Unexpected arguments"),
        ("a CAPABILITY now", "a", "CAPABILITY", "Unexpected arguments"),
        ("a LOGIN", "a", "LOGIN", "Expected a space"),
        ("a LOGIN user", "a", "LOGIN", "Expected a space"),
        ("a LOGIN user pass extra", "a", "LOGIN", "Unexpected data after the command"),
        ("a LOGIN (user) pass", "a", "LOGIN", "Expected a string"),
        ('a LOGIN "us\rer" pass', "a", "LOGIN", "Invalid quoted string"),  # CR: no TEXT-CHAR
        ("a AUTHENTICATE", "a", "AUTHENTICATE", "Expected a space"),
        ("a AUTHENTICATE PLAIN ===", "a", "AUTHENTICATE", "Invalid initial response"),
        ("a AUTHENTICATE PLAIN abc", "a", "AUTHENTICATE", "Invalid initial response"),
        ("a AUTHENTICATE PLAIN a b", "a", "AUTHENTICATE", "Invalid initial response"),
        ("a ENABLE", "a", "ENABLE", "Expected a space"),
        ("a ENABLE (X)", "a", "ENABLE", "capability"),
        ("a ID", "a", "ID", "Expected a space"),
        ("a ID name", "a", "ID", "NIL or a list"),
        ('a ID ("name")', "a", "ID", "space"),
        ('a ID ("name" x)', "a", "ID", "string or NIL"),
        ("a SELECT", "a", "SELECT", "Expected a space"),
        ("a SELECT INBOX ()", "a", "SELECT", "Empty SELECT parameter list"),
        ("a SELECT INBOX (FOO)", "a", "SELECT", "Unknown SELECT parameter FOO"),
        ("a SELECT INBOX (QRESYNC)", "a", "SELECT", "space"),
        ("a SELECT INBOX (QRESYNC (0 1))", "a", "SELECT", "UIDVALIDITY"),
        ("a SELECT INBOX (QRESYNC (1))", "a", "SELECT", ""),
        ("a SELECT INBOX (QRESYNC (1 2 3 (4)))", "a", "SELECT", ""),
        ("a SELECT INBOX (QRESYNC (1 99999999999999999999))", "a", "SELECT", "mod-sequence"),
        ("a SELECT INBOX CONDSTORE", "a", "SELECT", "'('"),
        ("a EXAMINE", "a", "EXAMINE", "Expected a space"),
        ("a CREATE x ()", "a", "CREATE", "Empty CREATE parameter list"),
        ("a CREATE x (FOO (\\Sent))", "a", "CREATE", "Unknown CREATE parameter"),
        ("a CREATE x (USE (Sent))", "a", "CREATE", "special-use attribute"),
        ("a DELETE", "a", "DELETE", "Expected a space"),
        ("a RENAME x", "a", "RENAME", "Expected a space"),
        ("a STATUS INBOX", "a", "STATUS", "Expected a space"),
        ("a STATUS INBOX ()", "a", "STATUS", "Empty status item list"),
        ("a STATUS INBOX (BOGUS)", "a", "STATUS", "Unknown status item BOGUS"),
        ("a STATUS INBOX MESSAGES", "a", "STATUS", "'('"),
        ("a STORE 1 +FLAGS", "a", "STORE", "Expected a space"),
        ("a STORE 1 FLAGZ (\\Seen)", "a", "STORE", "Expected FLAGS"),
        ("a STORE 1 +-FLAGS (\\Seen)", "a", "STORE", "Expected FLAGS"),
        ("a STORE 1 +FLAGS (\\Seen", "a", "STORE", ""),
        ("a STORE 1 +FLAGS (\\)", "a", "STORE", "flag"),
        ("a STORE 1 +FLAGS (\\*)", "a", "STORE", "flag"),
        ("a STORE 1 +FLAGS (a]b)", "a", "STORE", ""),
        ("a STORE 1 () +FLAGS (x)", "a", "STORE", "Empty STORE modifier list"),
        ("a STORE 1 (FOO 1) +FLAGS (x)", "a", "STORE", "Unknown STORE modifier"),
        ("a STORE 1 (UNCHANGEDSINCE x) +FLAGS (x)", "a", "STORE", "mod-sequence"),
        ("a COPY 1", "a", "COPY", "Expected a space"),
        ("a COPY x y", "a", "COPY", "sequence set"),
        ("a UID EXPUNGE", "a", "UID EXPUNGE", "Expected a space"),
        ("a UID EXPUNGE x", "a", "UID EXPUNGE", "sequence set"),
        ("a GETQUOTA", "a", "GETQUOTA", "Expected a space"),
        ('a SETQUOTA "" (STORAGE)', "a", "SETQUOTA", "space"),
        ('a SETQUOTA "" (STORAGE x)', "a", "SETQUOTA", "resource limit"),
        ("a COMPRESS", "a", "COMPRESS", "Expected a space"),
        ("a LSUB x", "a", "LSUB", "Expected a space"),
        ('a LOGIN "a\x00b" c', "a", "LOGIN", ""),
    ],
)
def test_malformed(line: str, tag: str, name: str, reason: str) -> None:
    command = invalid(line)
    assert (command.tag, command.name) == (tag, name)
    assert reason in command.reason


def test_nul_in_a_literal_string_is_refused() -> None:
    assert feed(b"a LOGIN {3+}\r\na\x00b c\r\n") == [
        Invalid("a", "LOGIN", "NUL is not allowed in a string")
    ]


def test_very_long_command_name_is_shortened_in_invalid() -> None:
    command = invalid("a " + "X" * 5000)
    assert command.reason == "Unknown command" and len(command.name) <= 64


def test_huge_numbers_are_invalid_not_errors() -> None:
    for line in (
        "a FETCH " + "9" * 5000 + " FLAGS",
        "a SEARCH LARGER " + "9" * 5000,
        "a FETCH 1 BODY[]<" + "9" * 5000 + ".1>",
        "a STORE 1 (UNCHANGEDSINCE 9223372036854775808) FLAGS ()",
    ):
        assert invalid(line).tag == "a"


# -- framing: literals, splits, continuations ---------------------------------------------------

LOGIN_LITERALS = b"A001 LOGIN {11}\r\nFRED FOOBAR {7}\r\nfat man\r\n"


def test_rfc_9051_literal_example() -> None:
    # §7.5: each synchronizing literal gets its continuation before its octets are read.
    reader = CommandReader()
    reader.receive(b"A001 LOGIN {11}\r\n")
    assert drain(reader) == [Continuation()]
    reader.receive(b"FRED FOOBAR {7}\r\n")
    assert drain(reader) == [Continuation()]
    reader.receive(b"fat man\r\n")
    assert drain(reader) == [Login("A001", "LOGIN", "FRED FOOBAR", "fat man")]


def test_unknown_command_with_literal_is_refused_at_once() -> None:
    # §7.5: "A044 BLURDYBLOOP {102856}" gets BAD without a continuation (and no TOOBIG).
    reader = CommandReader(max_literal=10**6)
    reader.receive(b"A044 BLURDYBLOOP {102856}\r\n")
    assert drain(reader) == [Invalid("A044", "BLURDYBLOOP", "Unknown command")]
    reader.receive(b"A045 NOOP\r\n")
    assert drain(reader) == [Simple("A045", "NOOP")]


def test_invalid_tag_with_literal_is_refused_at_once() -> None:
    assert feed(b"+x LOGIN {5}\r\n") == [Invalid("*", "", "Invalid tag")]


def test_unknown_command_is_refused_at_its_first_synchronizing_literal() -> None:
    reader = CommandReader()
    reader.receive(b"a FOO {3+}\r\nabc {5}\r\n")
    assert drain(reader) == [Invalid("a", "FOO", "Unknown command")]
    reader.receive(b"b NOOP\r\n")
    assert drain(reader) == [Simple("b", "NOOP")]


def test_literal_fed_byte_by_byte() -> None:
    reader = CommandReader()
    events: list[Event] = []
    for octet in LOGIN_LITERALS:
        reader.receive(bytes([octet]))
        events.extend(drain(reader))
    assert events == [
        Continuation(),
        Continuation(),
        Login("A001", "LOGIN", "FRED FOOBAR", "fat man"),
    ]


def test_literal_containing_crlf_and_braces() -> None:
    payload = b"line1\r\n{3}\r\nx\r\n"
    data = b"a LOGIN {%d+}\r\n%s {2+}\r\n}{\r\n" % (len(payload), payload)
    assert feed(data) == [Login("a", "LOGIN", payload.decode(), "}{")]


def test_empty_literals() -> None:
    assert feed(b"a LOGIN {0}\r\n {0+}\r\n\r\n") == [Continuation(), Login("a", "LOGIN", "", "")]


def test_non_synchronizing_literal_has_no_continuation() -> None:
    assert feed(b"a LOGIN {4+}\r\nuser {4+}\r\npass\r\n") == [Login("a", "LOGIN", "user", "pass")]


def test_pipelined_commands() -> None:
    data = b"a NOOP\r\nb LOGIN {1+}\r\nx y\r\nc CAPABILITY\r\n"
    assert feed(data) == [
        Simple("a", "NOOP"),
        Login("b", "LOGIN", "x", "y"),
        Simple("c", "CAPABILITY"),
    ]


def test_bare_lf_ends_a_line_and_empty_lines_are_ignored() -> None:
    assert feed(b"\r\n\na NOOP\n\r\nb LOGIN {1}\nx y\n") == [
        Simple("a", "NOOP"),
        Continuation(),
        Login("b", "LOGIN", "x", "y"),
    ]


def test_cr_alone_does_not_end_a_line() -> None:
    assert feed(b"a NOOP\rb NOOP\r\n") == [Invalid("a", "NOOP", "Unexpected arguments")]


def test_announced_literal_with_absurd_size() -> None:
    events = feed(b"a LOGIN {" + b"9" * 200 + b"}\r\n")
    assert events == [LiteralTooBig("a", 2**63 - 1, False)]


# A command that exercises every kind of token; splitting it anywhere must not matter.
EVERYTHING = (
    b't1 APPEND "&U,BTFw-" (\\Seen $x) " 7-Feb-1994 22:43:04 -0800" {5}\r\nHello'
    b" ~{3+}\r\n\x00\xff\r\r\n"
    b't2 UID SEARCH RETURN (ALL) CHARSET UTF-8 OR (FROM {3+}\r\nbob 1:*) NOT TEXT "a\\"b"\r\n'
    b"t3 FETCH 1:2 (BODY.PEEK[1.HEADER.FIELDS (A {1}\r\nB)]<0.10> FLAGS)\r\n"
    b"t4 NOOP\r\n"
)


def reference_events() -> list[Event]:
    return feed(EVERYTHING)


def test_everything_reference() -> None:
    events = reference_events()
    assert [type(event).__name__ for event in events] == [
        "Continuation",
        "Append",
        "Search",
        "Continuation",
        "Fetch",
        "Simple",
    ]
    append = events[1]
    assert isinstance(append, Append)
    assert append.mailbox == "台北"
    assert [m.data for m in append.messages] == [b"Hello", b"\x00\xff\r"]
    assert [m.binary for m in append.messages] == [False, True]
    fetch = events[4]
    assert isinstance(fetch, Fetch)
    assert fetch.items[0] == FetchSection(
        part=(1,), text="HEADER.FIELDS", fields=("A", "B"), partial=(0, 10), peek=True
    )


@given(st.lists(st.integers(min_value=0, max_value=len(EVERYTHING)), max_size=30))
def test_splitting_never_changes_the_events(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    reader = CommandReader()
    events: list[Event] = []
    for start, end in zip([0, *points], [*points, len(EVERYTHING)], strict=True):
        reader.receive(EVERYTHING[start:end])
        events.extend(drain(reader))
    assert events == reference_events()


def test_byte_by_byte_everything() -> None:
    reader = CommandReader()
    events: list[Event] = []
    for octet in EVERYTHING:
        reader.receive(bytes([octet]))
        events.extend(drain(reader))
    assert events == reference_events()


# -- limits --------------------------------------------------------------------------------


def test_synchronizing_literal_too_big_drops_the_command_and_goes_on() -> None:
    reader = CommandReader(max_literal=100)
    reader.receive(b"a APPEND INBOX {101}\r\n")
    assert drain(reader) == [LiteralTooBig("a", 101, False)]
    assert not reader.broken
    reader.receive(b"b APPEND INBOX {100}\r\n")
    assert drain(reader) == [Continuation()]
    reader.receive(b"x" * 100 + b"\r\n")
    assert drain(reader) == [Append("b", "APPEND", "INBOX", (AppendMessage((), None, b"x" * 100),))]


def test_second_literal_too_big_drops_the_whole_command() -> None:
    reader = CommandReader(max_literal=10)
    reader.receive(b"a LOGIN {3}\r\n")
    assert drain(reader) == [Continuation()]
    reader.receive(b"bob {11}\r\n")
    assert drain(reader) == [LiteralTooBig("a", 11, False)]
    reader.receive(b"b NOOP\r\n")
    assert drain(reader) == [Simple("b", "NOOP")]


def test_non_synchronizing_literal_too_big_gives_up() -> None:
    reader = CommandReader(max_literal=100)
    reader.receive(b"a APPEND INBOX {101+}\r\n" + b"x" * 50)
    assert drain(reader) == [LiteralTooBig("a", 101, True)]
    assert reader.broken and reader.buffered == 0
    reader.receive(b"x" * 51 + b"\r\nb NOOP\r\n")  # ignored: the session closes
    assert drain(reader) == []
    assert reader.buffered == 0
    reader.receive_eof()
    assert drain(reader) == [Closed()]


def test_literal_plus_above_4096_is_fine_when_max_literal_allows() -> None:
    # LITERAL- (RFC 7888 §5) is only a ceiling for clients; our ceiling is max_literal.
    data = b"a APPEND x {5000+}\r\n" + b"y" * 5000 + b"\r\n"
    events = feed(data, max_literal=8192)
    assert len(events) == 1 and isinstance(events[0], Append)


def test_line_too_long_is_reported_with_its_tag() -> None:
    reader = CommandReader(max_line=100)
    reader.receive(b"tag1 SEARCH " + b"x" * 200)
    assert drain(reader) == [LineTooLong("tag1")]
    assert reader.broken and reader.buffered == 0


def test_line_too_long_without_a_tag() -> None:
    assert feed(b"x" * 200, max_line=100) == [LineTooLong("*")]  # no end of tag seen
    assert feed(b"(" * 200, max_line=100) == [LineTooLong("*")]
    assert feed(b"+a " + b"x" * 200, max_line=100) == [LineTooLong("*")]


def test_line_of_exactly_max_line() -> None:
    line = b"a LOGIN x " + b"y" * 90
    assert len(line) == 100
    assert feed(line + b"\r\n", max_line=100) == [Login("a", "LOGIN", "x", "y" * 90)]
    assert feed(line + b"\r", max_line=100) == []  # a CR may be waiting for its LF
    assert feed(line + b"y\r\n", max_line=100) == [LineTooLong("a")]


def test_ten_megabytes_without_crlf_are_not_kept() -> None:
    reader = CommandReader()
    chunk = b"a SEARCH TEXT " + b"x" * (65536 - 14)
    reported: list[Event] = []
    for _ in range(160):  # 10 MiB in 64 KiB reads, drained after each as a driver does
        reader.receive(chunk)
        reported.extend(drain(reader))
        assert reader.buffered <= reader.max_line + 1
    assert reported == [LineTooLong("a")]
    assert reader.broken and reader.buffered == 0 and reader.pending() == b""


def test_ten_megabytes_in_one_read_are_dropped_once_seen() -> None:
    reader = CommandReader()
    reader.receive(b"x" * (10 * 2**20))
    assert drain(reader) == [LineTooLong("*")]
    assert reader.buffered == 0
    reader.receive(b"y" * 2**20)
    assert reader.buffered == 0


def test_unread_input_is_capped_even_without_draining() -> None:
    # A driver feeding many reads without calling next_event (inflating a deflate bomb).
    reader = CommandReader(max_line=100, max_literal=50, max_command=1000)
    cap = reader.command_limit + reader.max_line + 2
    for _ in range(1000):
        reader.receive(b"a NOOP\r\n" * 10)
        assert len(reader.pending()) <= cap
    assert reader.broken and reader.buffered == 0
    assert drain(reader) == [LineTooLong("*")]


def test_whole_command_in_one_read_is_within_the_cap() -> None:
    reader = CommandReader(max_line=100, max_literal=1000, max_command=100)
    data = b"a APPEND x {1000+}\r\n" + b"m" * 1000 + b"\r\n"
    assert len(data) <= reader.command_limit + reader.max_line + 2
    reader.receive(data)
    assert [type(event) for event in drain(reader)] == [Append]


def test_continuation_line_too_long() -> None:
    reader = CommandReader(max_line=50)
    reader.receive(b"a LOGIN {3+}\r\nbob " + b"p" * 100)
    assert drain(reader) == [LineTooLong("a")]


def test_command_too_long_across_lines_and_literals() -> None:
    reader = CommandReader(max_line=100, max_literal=50, max_command=200)
    assert reader.command_limit == 200
    part = b"x" * 40
    data = b"a SEARCH TEXT {40+}\r\n" + part
    data += b" TEXT {40+}\r\n" + part + b" TEXT {40+}\r\n" + part
    data += b" TEXT {40+}\r\n" + part + b"\r\n"
    assert feed(data, reader) == [LineTooLong("a")]
    assert reader.broken


def test_synchronizing_literal_beyond_the_command_limit_is_too_big() -> None:
    reader = CommandReader(max_line=100, max_literal=50, max_command=150)
    assert reader.command_limit == 152  # one line and one literal at least
    reader.receive(b"a SEARCH TEXT {50}\r\n")
    assert drain(reader) == [Continuation()]
    reader.receive(b"y" * 50 + b" TEXT {50}\r\n")
    assert drain(reader) == [Continuation()]
    reader.receive(b"y" * 50 + b" TEXT {50}\r\n")
    assert drain(reader) == [LiteralTooBig("a", 50, False)]
    assert not reader.broken
    reader.receive(b"b NOOP\r\n")
    assert drain(reader) == [Simple("b", "NOOP")]


def test_raising_max_literal_alone_admits_large_appends() -> None:
    reader = CommandReader()
    reader.receive(b"a APPEND INBOX {1000000}\r\n")
    assert drain(reader) == [LiteralTooBig("a", 1000000, False)]
    reader.max_literal = 50 * 2**20  # the session does this after login (APPENDLIMIT)
    assert reader.command_limit > 50 * 2**20
    message = b"z" * 1000000
    reader.receive(b"b APPEND INBOX {1000000}\r\n")
    assert drain(reader) == [Continuation()]
    reader.receive(message + b"\r\n")
    assert drain(reader) == [Append("b", "APPEND", "INBOX", (AppendMessage((), None, message),))]


# -- end of input, raw lines, pending input ----------------------------------------------------


def test_closed_after_eof() -> None:
    reader = CommandReader()
    reader.receive(b"a NOOP\r\nb NOOP")
    reader.receive_eof()
    assert drain(reader) == [Simple("a", "NOOP"), Closed()]
    assert reader.next_event() == Closed()
    reader.receive(b"\r\n")  # nothing after EOF counts
    assert reader.next_event() == Closed()


def test_closed_in_the_middle_of_a_literal() -> None:
    reader = CommandReader()
    reader.receive(b"a LOGIN {10+}\r\nabc")
    reader.receive_eof()
    assert drain(reader) == [Closed()]


def test_read_line() -> None:
    reader = CommandReader()
    reader.receive(b"a IDLE\r\nDO")
    assert reader.next_event() == Simple("a", "IDLE")
    assert reader.read_line() is None
    reader.receive(b"NE\r\nb NOOP\r\n")
    assert reader.read_line() == b"DONE"
    assert drain(reader) == [Simple("b", "NOOP")]
    reader.receive(b"dGVzdA==\nx\r\n\r\n")
    assert reader.read_line() == b"dGVzdA=="
    assert reader.read_line() == b"x"
    assert reader.read_line() == b""
    assert reader.read_line() is None


def test_read_line_too_long() -> None:
    reader = CommandReader(max_line=100)
    reader.receive(b"x" * 200)
    assert reader.read_line() is None
    assert reader.broken
    assert reader.next_event() == LineTooLong("*")
    assert reader.read_line() is None
    assert reader.buffered == 0


def test_pending_and_discard_after_starttls() -> None:
    reader = CommandReader()
    reader.receive(b"a STARTTLS\r\nb LOGIN injected {5}\r\n")
    assert reader.next_event() == Simple("a", "STARTTLS")
    assert reader.pending() == b"b LOGIN injected {5}\r\n"
    reader.discard()
    assert reader.pending() == b""
    assert reader.next_event() is NEED_DATA
    reader.receive(b"c CAPABILITY\r\n")
    assert drain(reader) == [Simple("c", "CAPABILITY")]


def test_discard_drops_a_partly_read_command() -> None:
    reader = CommandReader()
    reader.receive(b"a LOGIN {3}\r\nab")
    assert drain(reader) == [Continuation()]
    reader.discard()
    assert reader.buffered == 0
    reader.receive(b"b NOOP\r\n")
    assert drain(reader) == [Simple("b", "NOOP")]


def test_utf8_switch_applies_to_later_commands() -> None:
    reader = CommandReader()
    reader.receive(b'a SELECT "&ZeVnLIqe-"\r\n')
    assert drain(reader) == [Select("a", "SELECT", "日本語")]
    reader.utf8 = True
    reader.receive(b'b SELECT "&ZeVnLIqe-"\r\nc SELECT "\xe6\x97\xa5"\r\n')
    assert drain(reader) == [Select("b", "SELECT", "&ZeVnLIqe-"), Select("c", "SELECT", "日")]


# -- properties ----------------------------------------------------------------------------

LIMITS = {"max_line": 64, "max_literal": 32, "max_command": 256}


def run_chunks(chunks: list[bytes], reader: CommandReader) -> list[Event]:
    """Feed ``chunks`` as a driver does (drain after each read) checking the memory bound."""
    bound = reader.max_line + 1 + reader.command_limit
    events: list[Event] = []
    for chunk in chunks:
        reader.receive(chunk)
        while True:
            event = reader.next_event()
            assert event is NEED_DATA or isinstance(
                event, Command | Continuation | LiteralTooBig | LineTooLong | Closed
            )
            if isinstance(event, Invalid):
                assert event.reason and event.tag
            if event is NEED_DATA:
                assert reader.buffered <= bound
                if reader.broken:
                    assert reader.buffered == 0
                break
            events.append(event)
        if reader.read_line() is not None:  # raw line mode never upsets the reader either
            events.append(Simple("*", "RAW"))
    reader.receive_eof()
    assert drain(reader)[-1:] == [Closed()]
    return events


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=80), max_size=20))
def test_arbitrary_bytes_never_raise_nor_overflow(chunks: list[bytes]) -> None:
    run_chunks(chunks, CommandReader(**LIMITS))


@settings(max_examples=100)
@given(st.lists(st.binary(min_size=1, max_size=4096), max_size=8))
def test_arbitrary_bytes_with_default_limits(chunks: list[bytes]) -> None:
    run_chunks(chunks, CommandReader())


# Fragments of command lines: a fuzzer that reaches deep into the grammar.
TOKEN = st.sampled_from(
    [
        b"a",
        b"UID",
        b"FETCH",
        b"STORE",
        b"SEARCH",
        b"SORT",
        b"THREAD",
        b"LIST",
        b"LSUB",
        b"SELECT",
        b"EXAMINE",
        b"APPEND",
        b"LOGIN",
        b"AUTHENTICATE",
        b"STATUS",
        b"CREATE",
        b"ID",
        b"ENABLE",
        b"COPY",
        b"MOVE",
        b"EXPUNGE",
        b"SETQUOTA",
        b"GETQUOTA",
        b"RENAME",
        b"COMPRESS",
        b"INBOX",
        b"NIL",
        b"RETURN",
        b"CHARSET",
        b"UTF-8",
        b"ALL",
        b"FAST",
        b"FULL",
        b"OR",
        b"NOT",
        b"MODSEQ",
        b"HEADER",
        b"FROM",
        b"SINCE",
        b"1-Feb-1994",
        b'"23-Nov-2026 10:00:00 +0100"',
        b"KEYWORD",
        b"LARGER",
        b"OLDER",
        b"BODY[",
        b"BODY.PEEK[",
        b"BINARY[",
        b"BINARY.SIZE[",
        b"HEADER.FIELDS",
        b"HEADER.FIELDS.NOT",
        b"TEXT",
        b"MIME",
        b"]",
        b"<0.10>",
        b"1.2",
        b".",
        b"(",
        b")",
        b"1",
        b"0",
        b"*",
        b"$",
        b"1:*",
        b"2,4:7",
        b"\\Seen",
        b"\\",
        b"+FLAGS",
        b"-FLAGS.SILENT",
        b"FLAGS",
        b"(UNCHANGEDSINCE",
        b"CHANGEDSINCE",
        b"VANISHED",
        b"CONDSTORE",
        b"QRESYNC",
        b"USE",
        b"SUBSCRIBED",
        b"RECURSIVEMATCH",
        b"CHILDREN",
        b"STATUS",
        b"MESSAGES",
        b"REVERSE",
        b"DATE",
        b"REFERENCES",
        b'""',
        b'"x y"',
        b'"\\"',
        b'"&U,BTFw-"',
        b"&AGE-",
        b"=",
        b"dGVzdA==",
        b"PREVIEW",
        b"(LAZY)",
        b"\xc3\xa9",
        b"{3}\r\nabc",
        b"{2+}\r\nxy",
        b"~{1}\r\n\x00",
        b"{0}\r\n",
        b"{99}",
        b"\r\n",
        b"\n",
    ]
)
SEPARATOR = st.sampled_from([b" ", b" ", b" ", b"", b"  "])


@st.composite
def command_soup(draw: st.DrawFn) -> bytes:
    tokens = draw(st.lists(st.tuples(TOKEN, SEPARATOR), min_size=1, max_size=25))
    return b"".join(token + separator for token, separator in tokens) + b"\r\n"


@settings(max_examples=500)
@given(st.lists(command_soup(), min_size=1, max_size=4), st.data())
def test_command_soup_never_raises(lines: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(lines)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=5))
    points = sorted(set(cuts))
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    reader = CommandReader(max_line=120, max_literal=64, max_command=400)
    reader.utf8 = data.draw(st.booleans())
    run_chunks(chunks, reader)


@settings(max_examples=300)
@given(command_soup())
def test_command_soup_splitting_is_irrelevant(line: bytes) -> None:
    whole = feed(line)
    reader = CommandReader()
    pieces: list[Event] = []
    for octet in line:
        reader.receive(bytes([octet]))
        pieces.extend(drain(reader))
    assert pieces == whole

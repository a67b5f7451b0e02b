"""The sans-IO POP3 core: every command in each state, responses byte for byte, dot-stuffing,
TOP, AUTH, STLS, limits, and (with hypothesis) arbitrary input never raising nor buffering
past the documented bound."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courrier.pop3.proto import (
    FLUSH_AT,
    NEED_DATA,
    AuthAborted,
    AuthResponse,
    AuthStart,
    Closed,
    Entry,
    Event,
    Flush,
    Login,
    ProtocolError,
    Retrieve,
    ServerConfig,
    ServerConnection,
    StartTLS,
    State,
    Update,
    dot_stuffed,
)
from tests.pop3 import GOOD_PLAIN, MESSAGES, PASSWORD, USER, Driver, b64, config, maildrop

TLS = config(implicit_tls=True)
CAPS_COMMON = ["UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"]
LOGGED_IN = f"+OK Logged in, maildrop has 3 messages ({sum(map(len, MESSAGES.values()))} octets)"


def client_unstuff(response: bytes) -> bytes:
    """What a client makes of a multi-line response body (RFC 1939 §3), terminator checked."""
    lines = response.split(b"\r\n")
    assert lines[-2:] == [b".", b""], response[-20:]
    body = lines[:-2]
    assert b"." not in body, "a content line reads as the terminator"
    return b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n" for line in body)


# --- greeting, CAPA ---------------------------------------------------------------------


def test_greeting_and_capa_before_tls() -> None:
    driver = Driver.start()
    assert driver.replies() == ["+OK courrier POP3 server ready"]
    assert driver.conn.state is State.AUTHORIZATION and not driver.conn.tls_active
    driver.feed(b"CAPA\r\n")
    # No USER and no PLAIN before TLS (RFC 2595 §4, RFC 8314); SCRAM sends no password.
    assert driver.replies() == [
        "+OK Capability list follows",
        "TOP",
        *CAPS_COMMON,
        "SASL SCRAM-SHA-256",
        "STLS",
        "IMPLEMENTATION courrier",
        ".",
    ]


def test_capa_over_tls_and_plaintext_allowed_and_after_login() -> None:
    over_tls = Driver.start(TLS)
    over_tls.output()
    over_tls.feed(b"capa\r\n")
    assert over_tls.replies()[1:] == [
        "TOP",
        "USER",
        *CAPS_COMMON,
        "SASL PLAIN SCRAM-SHA-256",
        "IMPLEMENTATION courrier",
        ".",
    ]
    loopback = Driver.start(plaintext_allowed=True)
    loopback.feed(b"CAPA\r\n")
    caps = loopback.replies()
    assert "USER" in caps and "SASL PLAIN SCRAM-SHA-256" in caps and "STLS" in caps
    no_tls = Driver.start(config(tls_available=False))
    no_tls.feed(b"CAPA\r\n")
    assert "STLS" not in no_tls.replies()
    logged_in = Driver.logged_in()
    logged_in.feed(b"CAPA\r\n")
    assert logged_in.replies() == [
        "+OK Capability list follows",
        "TOP",
        *CAPS_COMMON,
        "IMPLEMENTATION courrier",
        ".",
    ]


def test_capa_takes_no_argument() -> None:
    driver = Driver.start()
    driver.output()
    driver.feed(b"CAPA x\r\n")
    assert driver.replies() == ["-ERR Syntax: CAPA"]


# --- USER / PASS --------------------------------------------------------------------------


def test_user_pass_login() -> None:
    driver = Driver.start(TLS)
    driver.output()
    events = driver.feed(f"USER {USER}\r\n".encode(), f"PASS {PASSWORD}\r\n".encode())
    assert events == [Login(USER, PASSWORD)]  # spaces in the password kept (RFC 1939 §7)
    assert driver.replies() == [
        "+OK Send your password",
        LOGGED_IN,
    ]
    assert driver.conn.state is State.TRANSACTION
    assert driver.conn.maildrop == tuple(maildrop())


def test_user_pass_refused_before_tls() -> None:
    driver = Driver.start()
    driver.output()
    assert driver.feed(f"USER {USER}\r\nPASS {PASSWORD}\r\n".encode()) == []
    assert driver.replies() == [
        "-ERR [AUTH] Plaintext authentication disallowed without TLS, use STLS first",
        "-ERR Send USER first",
    ]
    allowed = Driver.start(plaintext_allowed=True)
    assert allowed.feed(f"USER {USER}\r\nPASS {PASSWORD}\r\n".encode()) == [Login(USER, PASSWORD)]


def test_pass_must_follow_user() -> None:
    driver = Driver.start(TLS)
    driver.output()
    events = driver.feed(
        b"PASS x\r\n",
        b"USER bob\r\nCAPA\r\nPASS x\r\n",  # RFC 1939 §7: immediately after USER
        b"USER\r\nPASS\r\n",
    )
    assert events == []
    replies = driver.replies()
    assert replies[0] == "-ERR Send USER first"
    assert replies[1] == "+OK Send your password"
    assert replies[-3:] == [
        "-ERR Send USER first",
        "-ERR Syntax: USER name",
        "-ERR Send USER first",
    ]


def test_utf8_password_and_bad_bytes() -> None:
    driver = Driver.start(TLS)
    events = driver.feed("USER bob\r\nPASS mot de passe déjà vu\r\n".encode())
    assert events == [Login("bob", "mot de passe déjà vu")]
    driver.output()
    driver.feed(b"USER \xff\xfe\r\n", "NOOP é\r\n".encode(), b"NO\x00OP\r\n", b"NOOP\rX\r\n")
    assert driver.replies() == [
        "-ERR Invalid UTF-8 in command",
        "-ERR Non-ASCII characters in command",
        "-ERR Invalid character in command",
        "-ERR Invalid character in command",
    ]


def test_failed_logins_then_disconnect() -> None:
    driver = Driver.start(TLS)
    driver.output()
    for attempt in range(3):
        assert driver.conn.auth_failures == attempt
        driver.feed(b"USER bob\r\nPASS wrong\r\n")
    assert driver.replies() == [
        "+OK Send your password",
        "-ERR [AUTH] Authentication failed",
        "+OK Send your password",
        "-ERR [AUTH] Authentication failed",
        "+OK Send your password",
        "-ERR [AUTH] Authentication failed; too many failures, closing connection",
    ]
    assert driver.events[-1] == Closed("too many failed logins")
    assert driver.conn.state is State.CLOSED


def test_in_use_and_temporary_failure_are_not_failures() -> None:
    answers = iter(["IN-USE", "SYS/TEMP", "IN-USE", "IN-USE"])

    def refuse(event: Any) -> bytes | bool:
        return False

    driver = Driver.start(TLS, auth=refuse)
    driver.output()
    conn = driver.conn
    for _ in range(4):
        conn.receive_data(b"USER bob\r\nPASS x\r\n")
        assert isinstance(conn.next_event(), Login)
        conn.refuse_login(next(answers))  # type: ignore[arg-type]
    assert conn.auth_failures == 0 and conn.state is State.AUTHORIZATION
    assert driver.replies()[:4] == [
        "+OK Send your password",
        "-ERR [IN-USE] Maildrop already in use by another POP3 session",
        "+OK Send your password",
        "-ERR [SYS/TEMP] Temporary failure, try again later",
    ]


def test_apop_is_not_supported() -> None:
    driver = Driver.start(TLS)
    driver.output()
    driver.feed(b"APOP bob c4c9334bac560ecc979e58001b3e22fb\r\n")
    assert driver.replies() == ["-ERR APOP not supported, use USER/PASS or AUTH over TLS"]


# --- AUTH (RFC 5034) ----------------------------------------------------------------------


def test_auth_plain_with_initial_response() -> None:
    driver = Driver.start(TLS)
    driver.output()
    events = driver.feed(f"AUTH PLAIN {b64(GOOD_PLAIN)}\r\n".encode())
    assert events == [AuthStart("PLAIN", GOOD_PLAIN)]
    assert driver.replies()[0].startswith("+OK Logged in")
    assert driver.conn.state is State.TRANSACTION


def test_auth_plain_with_challenge() -> None:
    driver = Driver.start(TLS)
    driver.output()
    events = driver.feed(b"auth plain\r\n", f"{b64(GOOD_PLAIN)}\r\n".encode())
    assert events == [AuthStart("PLAIN", None), AuthResponse(GOOD_PLAIN)]
    assert driver.replies()[0] == "+ "
    assert driver.conn.state is State.TRANSACTION


def test_auth_empty_initial_response_cancel_and_bad_base64() -> None:
    driver = Driver.start(TLS)
    driver.output()
    events = driver.feed(b"AUTH PLAIN =\r\n")
    assert events == [AuthStart("PLAIN", b"")]  # RFC 5034 §4: "=" is an empty response
    assert driver.replies() == ["-ERR [AUTH] Authentication failed"]
    events = driver.feed(b"AUTH SCRAM-SHA-256\r\n", b"*\r\n")
    assert events == [AuthStart("SCRAM-SHA-256", None), AuthAborted("cancelled")]
    assert driver.replies() == ["+ ", "-ERR Authentication cancelled"]
    events = driver.feed(b"AUTH PLAIN\r\n", b"not base64!\r\n", b"AUTH PLAIN abc\r\n")
    assert events == [AuthStart("PLAIN", None), AuthAborted("invalid")]
    assert driver.replies() == ["+ ", "-ERR Invalid base64 data", "-ERR Invalid base64 data"]
    assert driver.conn.state is State.AUTHORIZATION


def test_auth_empty_line_is_an_empty_response() -> None:
    """SCRAM's server-final message is a last challenge, answered by an empty line."""
    driver = Driver.start(
        TLS, auth=lambda event: b"v=sig" if isinstance(event, AuthStart) else True
    )
    events = driver.feed(b"AUTH SCRAM-SHA-256 biws\r\n", b"\r\n")
    assert events == [AuthStart("SCRAM-SHA-256", b"n,,"), AuthResponse(b"")]
    assert driver.replies()[1:] == [
        f"+ {b64(b'v=sig')}",
        LOGGED_IN,
    ]


def test_auth_mechanisms_and_refusals() -> None:
    driver = Driver.start()
    driver.output()
    assert (
        driver.feed(b"AUTH\r\n", b"AUTH PLAIN\r\n", b"AUTH CRAM-MD5\r\n", b"AUTH A B C\r\n") == []
    )
    assert driver.replies() == [
        "+OK Supported mechanisms follow",
        "SCRAM-SHA-256",
        ".",
        "-ERR [AUTH] Plaintext authentication disallowed without TLS, use STLS first",
        "-ERR Unsupported authentication mechanism",
        "-ERR Syntax: AUTH mechanism [initial-response]",
    ]
    tls = Driver.start(TLS)
    tls.output()
    tls.feed(b"AUTH\r\n")
    assert tls.replies() == ["+OK Supported mechanisms follow", "PLAIN", "SCRAM-SHA-256", "."]


def test_auth_lines_may_be_longer_than_commands() -> None:
    long_response = b64(b"\0bob\0" + b"p" * 600)  # over 255 octets, under max_auth_line
    driver = Driver.start(TLS)
    driver.output()
    events = driver.feed(f"AUTH PLAIN {long_response}\r\n".encode())
    assert isinstance(events[0], AuthStart)
    events = driver.feed(b"AUTH PLAIN\r\n", f"{long_response}\r\n".encode())
    assert isinstance(events[-1], AuthResponse)
    driver.output()
    events = driver.feed(b"AUTH PLAIN\r\n", b"A" * 2000 + b"\r\n")
    assert events[-1] == AuthAborted("invalid")
    assert driver.replies() == ["+ ", "-ERR Line too long"]


def test_auth_after_login_is_refused() -> None:
    driver = Driver.logged_in()
    driver.feed(b"AUTH PLAIN\r\nUSER bob\r\nPASS x\r\nSTLS\r\nAPOP a b\r\n")
    assert driver.replies() == [
        f"-ERR {verb} is not allowed after login"
        for verb in ("AUTH", "USER", "PASS", "STLS", "APOP")
    ]


# --- STLS (RFC 2595 §4) ---------------------------------------------------------------------


def test_stls_discards_pipelined_input_and_starts_afresh() -> None:
    conn = ServerConnection(config(), plaintext_allowed=False)
    conn.data_to_send()
    conn.receive_data(b"USER bob\r\nSTLS\r\nUSER injected\r\n")
    assert conn.next_event() == StartTLS()
    conn.receive_data(b"PASS injected\r\n")  # before tls_started(): ignored
    with pytest.raises(ProtocolError):
        conn.next_event()
    assert conn.data_to_send() == (
        b"-ERR [AUTH] Plaintext authentication disallowed without TLS, use STLS first\r\n"
        b"+OK Begin TLS negotiation\r\n"
    )
    conn.tls_started()
    assert conn.tls_active and conn.buffered_bytes == 0
    conn.receive_data(b"PASS x\r\nSTLS\r\n")
    assert conn.next_event() is NEED_DATA
    assert conn.data_to_send() == b"-ERR Send USER first\r\n-ERR TLS already active\r\n"


def test_stls_refusals() -> None:
    driver = Driver.start(config(tls_available=False))
    driver.output()
    driver.feed(b"STLS\r\n", b"STLS now\r\n")
    assert driver.replies() == ["-ERR STLS not available", "-ERR Syntax: STLS"]
    implicit = Driver.start(TLS)
    implicit.output()
    implicit.feed(b"STLS\r\n")
    assert implicit.replies() == ["-ERR TLS already active"]


# --- TRANSACTION ----------------------------------------------------------------------------


def test_transaction_commands_need_login() -> None:
    driver = Driver.start(TLS)
    driver.output()
    verbs = ["STAT", "LIST", "RETR 1", "DELE 1", "NOOP", "RSET", "TOP 1 1", "UIDL"]
    driver.feed(*(f"{verb}\r\n".encode() for verb in verbs))
    assert driver.replies() == [
        f"-ERR {verb.split()[0]} is not allowed before login" for verb in verbs
    ]
    assert not any(isinstance(e, Retrieve) for e in driver.events)


def test_stat_list_uidl() -> None:
    driver = Driver.logged_in()
    sizes = [len(MESSAGES[n]) for n in (1, 2, 3)]
    driver.feed(b"STAT\r\nLIST\r\nLIST 2\r\nUIDL\r\nUIDL 3\r\nNOOP\r\n")
    assert driver.replies() == [
        f"+OK 3 {sum(sizes)}",
        f"+OK 3 messages ({sum(sizes)} octets)",
        f"1 {sizes[0]}",
        f"2 {sizes[1]}",
        f"3 {sizes[2]}",
        ".",
        f"+OK 2 {sizes[1]}",
        f"+OK 3 messages ({sum(sizes)} octets)",
        "1 1700000000.1",
        "2 1700000000.2",
        "3 1700000000.3",
        ".",
        "+OK 3 1700000000.3",
        "+OK",
    ]


def test_dele_rset_and_deleted_messages() -> None:
    driver = Driver.logged_in()
    sizes = [len(MESSAGES[n]) for n in (1, 2, 3)]
    driver.feed(b"DELE 2\r\nSTAT\r\nLIST\r\nUIDL\r\n")
    assert driver.replies() == [
        "+OK Message 2 deleted",
        f"+OK 2 {sizes[0] + sizes[2]}",
        f"+OK 2 messages ({sizes[0] + sizes[2]} octets)",
        f"1 {sizes[0]}",
        f"3 {sizes[2]}",
        ".",
        f"+OK 2 messages ({sizes[0] + sizes[2]} octets)",
        "1 1700000000.1",
        "3 1700000000.3",
        ".",
    ]
    assert driver.conn.deleted == {2}
    events = driver.feed(b"DELE 2\r\nRETR 2\r\nTOP 2 0\r\nLIST 2\r\nUIDL 2\r\n")
    assert events == []
    assert driver.replies() == ["-ERR Message 2 already deleted"] * 5
    driver.feed(b"RSET\r\nSTAT\r\n")
    assert driver.replies() == [
        f"+OK Maildrop has 3 messages ({sum(sizes)} octets)",
        f"+OK 3 {sum(sizes)}",
    ]
    assert driver.conn.deleted == frozenset()


def test_message_number_errors() -> None:
    driver = Driver.logged_in(config(implicit_tls=True, max_errors=50))
    driver.feed(
        b"RETR 0\r\nRETR 4\r\nRETR x\r\nRETR -1\r\nRETR\r\nRETR 1 2\r\nRETR 99999999999\r\n"
        b"LIST 1 2\r\nDELE\r\nTOP 1\r\nTOP 1 x\r\nTOP 1 -1\r\nSTAT 1\r\nNOOP x\r\nRSET x\r\n"
    )
    assert driver.replies() == [
        "-ERR No such message, only 3 messages in maildrop",
        "-ERR No such message, only 3 messages in maildrop",
        "-ERR Invalid message number",
        "-ERR Invalid message number",
        "-ERR Syntax: RETR message",
        "-ERR Syntax: RETR message",
        "-ERR Invalid message number",
        "-ERR Syntax: LIST [message]",
        "-ERR Syntax: DELE message",
        "-ERR Syntax: TOP message lines",
        "-ERR Invalid number of lines",
        "-ERR Invalid number of lines",
        "-ERR Syntax: STAT",
        "-ERR Syntax: NOOP",
        "-ERR Syntax: RSET",
    ]
    assert not any(isinstance(e, Retrieve) for e in driver.events)


def test_retr_is_byte_exact_and_dot_stuffed() -> None:
    driver = Driver.logged_in()
    events = driver.feed(b"RETR 1\r\n")
    assert events == [Retrieve(1, maildrop()[0], None)]
    out = driver.output()
    head, _, body = out.partition(b"\r\n")
    assert head == b"+OK %d octets" % len(MESSAGES[1])
    assert b"\r\n..second line starts with a dot\r\n" in body
    assert client_unstuff(body) == MESSAGES[1]


def test_top() -> None:
    driver = Driver.logged_in()
    events = driver.feed(b"TOP 2 0\r\n")
    assert events == [Retrieve(2, maildrop()[1], 0)]
    assert driver.replies() == [
        "+OK Top of message follows",
        "Subject: two",
        "From: a@example.net",
        "",
        ".",
    ]
    driver.feed(b"TOP 2 2\r\n")
    assert driver.replies()[4:] == ["l1", "l2", "."]
    driver.feed(b"TOP 2 100\r\n")
    assert driver.replies()[4:] == ["l1", "l2", "l3", "."]
    driver.feed(b"TOP 1 1\r\n")  # the body's first line is stuffed as in RETR
    out = driver.output()
    assert client_unstuff(out.partition(b"\r\n")[2]) == b"Subject: one\r\n\r\nfirst line\r\n"


@pytest.mark.parametrize(
    ("message", "lines", "expected"),
    [
        (b"A: 1\r\nB: 2\r\n", 5, b"A: 1\r\nB: 2\r\n"),  # no body at all: all header
        (b"\r\nbody 1\r\nbody 2\r\n", 1, b"\r\nbody 1\r\n"),  # empty header
        (b"A: 1\r\n\r\n\r\n\r\nx\r\n", 2, b"A: 1\r\n\r\n\r\n\r\n"),  # empty body lines count
        (b"A: 1\r\n\r\n.\r\n..\r\n", 2, b"A: 1\r\n\r\n.\r\n..\r\n"),
        # Bare LF ends a line too; the terminator still gets its CRLF in front.
        (b"A: 1\n\nbare\nlf\n", 1, b"A: 1\n\nbare\n\r\n"),
        (b"A: 1\r\n\r\nno final line end", 3, b"A: 1\r\n\r\nno final line end\r\n"),
    ],
)
def test_top_cuts(message: bytes, lines: int, expected: bytes) -> None:
    driver = Driver.logged_in(messages={1: message})
    driver.feed(b"TOP 1 %d\r\n" % lines)
    assert client_unstuff(driver.output().partition(b"\r\n")[2]) == expected


@pytest.mark.parametrize(
    ("content", "wire"),
    [
        (b"", b".\r\n"),
        (b"a\r\n", b"a\r\n.\r\n"),
        (b".\r\n", b"..\r\n.\r\n"),
        (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"..x\r\n", b"...x\r\n.\r\n"),
        (b"a\r\n.", b"a\r\n..\r\n.\r\n"),  # no final CRLF: one is added before the terminator
        (b"a\n.\n", b"a\n..\n\r\n.\r\n"),  # bare LF: stuffed all the same
        (b"x.y\r\n", b"x.y\r\n.\r\n"),
    ],
)
def test_dot_stuffing(content: bytes, wire: bytes) -> None:
    assert b"".join(dot_stuffed(content)) == wire


def test_dot_stuffing_slices_not_copies() -> None:
    content = b"a\r\n.b\r\n" * 1000
    pieces = dot_stuffed(content)
    assert all(isinstance(p, memoryview) and p.obj is content for p in pieces if len(p) > 3)
    assert sum(map(len, pieces)) == len(content) + 1000 + 3


def test_message_gone_and_retrieve_failed() -> None:
    driver = Driver.logged_in(gone={2})
    driver.feed(b"RETR 2\r\nTOP 2 1\r\nNOOP\r\n")
    assert driver.replies() == [
        "-ERR Message 2 was removed by another session",
        "-ERR Message 2 was removed by another session",
        "+OK",
    ]
    conn = ServerConnection(TLS)
    conn.receive_data(f"USER {USER}\r\nPASS {PASSWORD}\r\nRETR 1\r\n".encode())
    assert isinstance(conn.next_event(), Login)
    conn.accept_login(maildrop())
    assert isinstance(conn.next_event(), Retrieve)
    conn.retrieve_failed()
    assert conn.data_to_send().endswith(
        b"-ERR [SYS/TEMP] Cannot read the message now, try again later\r\n"
    )


# --- QUIT and the UPDATE state (RFC 1939 §6) -------------------------------------------------


def test_quit_in_transaction_removes_marked_messages() -> None:
    driver = Driver.logged_in()
    events = driver.feed(b"DELE 3\r\nDELE 1\r\nQUIT\r\nNOOP\r\n")
    entries = maildrop()
    assert events == [Update((entries[0], entries[2])), Closed("quit")]
    assert driver.replies() == [
        "+OK Message 3 deleted",
        "+OK Message 1 deleted",
        "+OK courrier POP3 server signing off (2 messages deleted)",
    ]
    assert driver.conn.state is State.CLOSED


def test_quit_when_removal_fails() -> None:
    driver = Driver.logged_in(update_ok=False)
    driver.feed(b"DELE 1\r\nQUIT\r\n")
    assert driver.replies()[-1] == (
        "-ERR [SYS/TEMP] Some deleted messages not removed, try again later"
    )
    assert driver.events[-1] == Closed("quit")


def test_quit_without_deletions_and_before_login() -> None:
    driver = Driver.logged_in()
    assert driver.feed(b"DELE 1\r\nRSET\r\nQUIT\r\n") == [Closed("quit")]
    assert driver.replies()[-1] == "+OK courrier POP3 server signing off"
    fresh = Driver.start()
    fresh.output()
    assert fresh.feed(b"QUIT\r\n") == [Closed("quit")]
    assert fresh.replies() == ["+OK courrier POP3 server signing off"]


def test_eof_without_quit_deletes_nothing() -> None:
    driver = Driver.logged_in()
    driver.feed(b"DELE 1\r\nDELE 2\r\n")
    assert driver.eof() == [Closed("eof")]
    assert not any(isinstance(e, Update) for e in driver.events)


def test_commands_buffered_before_eof_are_answered() -> None:
    driver = Driver.logged_in()
    driver.conn.receive_data(b"STAT\r\nNOOP")
    driver.eof()
    assert driver.replies() == [f"+OK 3 {sum(map(len, MESSAGES.values()))}"]
    assert driver.events[-1] == Closed("eof")


# --- input handling and limits ------------------------------------------------------------


def test_pipelined_batch_in_one_read_and_split_lines() -> None:
    driver = Driver.start(TLS)
    driver.output()
    driver.feed(
        f"CAPA\r\nUSER {USER}\r\nPASS {PASSWORD}\r\nSTAT\r\nRETR 3\r\nDELE 3\r\nQUIT\r\n".encode()
    )
    lines = driver.replies()
    assert lines[0] == "+OK Capability list follows"
    assert [line for line in lines if line.startswith(("+OK", "-ERR"))][-5:] == [
        LOGGED_IN,
        f"+OK 3 {sum(map(len, MESSAGES.values()))}",
        f"+OK {len(MESSAGES[3])} octets",
        "+OK Message 3 deleted",
        "+OK courrier POP3 server signing off (1 messages deleted)",
    ]
    split = Driver.logged_in()
    split.feed(b"ST", b"A", b"T\r", b"\nNO", b"OP\n")  # a bare LF ends a line too
    assert split.replies() == [f"+OK 3 {sum(map(len, MESSAGES.values()))}", "+OK"]


def test_unknown_commands_and_too_many_errors() -> None:
    driver = Driver.start(TLS)
    driver.output()
    driver.feed(b"FROB\r\n\r\nHELO x\r\n\x01\r\n")
    assert driver.replies() == [
        "-ERR Unknown command FROB",
        "-ERR Unknown command",
        "-ERR Unknown command HELO",
        "-ERR Unknown command",
    ]
    driver.feed(b"FROB\r\n" * 10)
    replies = driver.replies()
    assert len(replies) == 6
    assert replies[-1] == "-ERR Unknown command FROB; too many errors, closing connection"
    assert driver.events[-1] == Closed("too many errors")


def test_not_found_errors_do_not_count() -> None:
    driver = Driver.logged_in()
    driver.feed(b"RETR 9\r\n" * 50 + b"NOOP\r\n")
    assert driver.replies()[-1] == "+OK"
    assert driver.conn.state is State.TRANSACTION


def test_line_length_limit() -> None:
    driver = Driver.start(TLS)
    driver.output()
    ok_line = b"USER " + b"u" * (255 - 7) + b"\r\n"  # exactly 255 octets with CRLF
    driver.feed(ok_line)
    assert driver.replies() == ["+OK Send your password"]
    driver.feed(b"USER " + b"u" * 300, b"u" * 300, b"\r\nCAPA\r\n")
    replies = driver.replies()
    assert replies[0] == "-ERR Line too long" and replies[1] == "+OK Capability list follows"
    assert driver.conn.buffered_bytes == 0


def test_api_misuse() -> None:
    conn = ServerConnection(TLS)
    answers: list[Callable[[], None]] = [
        lambda: conn.accept_login([]),
        lambda: conn.refuse_login(),
        lambda: conn.auth_challenge(b""),
        lambda: conn.tls_started(),
        lambda: conn.send_message(b""),
        lambda: conn.message_gone(),
        lambda: conn.retrieve_failed(),
        lambda: conn.update_done(True),
    ]
    for answer in answers:
        with pytest.raises(ProtocolError):
            answer()
    conn.receive_data(b"USER a\r\nPASS b\r\n")
    assert isinstance(conn.next_event(), Login)
    with pytest.raises(ProtocolError):
        conn.next_event()
    with pytest.raises(ValueError, match="unique-id"):
        conn.accept_login([Entry(1, 10, "has space")])
    with pytest.raises(ValueError, match="unique-id"):
        conn.accept_login([Entry(1, 10, "x" * 71)])


@pytest.mark.parametrize(
    "overrides",
    [
        {"mechanisms": ("plain",)},
        {"max_errors": 0},
        {"max_auth_failures": 0},
        {"max_command_line": 254},
        {"max_command_line": 2000, "max_auth_line": 1000},
        {"implementation": "two\nlines"},
    ],
)
def test_config_validation(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ServerConfig(**overrides)


def test_output_is_flushed_in_bounded_pieces() -> None:
    many = {n: b"Subject: x\r\n\r\nx\r\n" for n in range(1, 5001)}  # LIST is ~50 KB
    driver = Driver.logged_in(messages=many)
    driver.conn.receive_data(b"LIST\r\n" * 40)
    flushes = 0
    while True:
        event = driver.conn.next_event()
        if not isinstance(event, Flush):
            break
        flushes += 1
        assert driver.conn.queued_bytes < FLUSH_AT + 60_000  # one response past the mark
        driver.conn.data_to_send()
    assert flushes >= 10 and driver.conn.queued_bytes < FLUSH_AT + 60_000


def test_big_message_is_queued_as_slices() -> None:
    big = b"Subject: big\r\n\r\n" + b".line\r\n" * 20_000
    conn = ServerConnection(TLS)
    conn.receive_data(f"USER {USER}\r\nPASS {PASSWORD}\r\nRETR 1\r\n".encode())
    assert isinstance(conn.next_event(), Login)
    conn.accept_login([Entry(1, len(big), "1.1")])
    assert isinstance(conn.next_event(), Retrieve)
    conn.send_message(big)
    chunks = conn.chunks_to_send()
    assert sum(len(c) for c in chunks if isinstance(c, memoryview)) == len(big)
    assert client_unstuff(b"".join(chunks).split(b"octets\r\n", 1)[1]) == big


# --- properties ---------------------------------------------------------------------------

fragment = st.one_of(
    st.sampled_from(
        [
            b"CAPA\r\n",
            f"USER {USER}\r\n".encode(),
            f"PASS {PASSWORD}\r\n".encode(),
            b"PASS wrong\r\n",
            b"STAT\r\n",
            b"LIST\r\n",
            b"LIST 2\r\n",
            b"UIDL\r\n",
            b"UIDL 1\r\n",
            b"RETR 1\r\n",
            b"TOP 2 1\r\n",
            b"DELE 1\r\n",
            b"RSET\r\n",
            b"NOOP\r\n",
            b"STLS\r\n",
            b"AUTH PLAIN\r\n",
            f"AUTH PLAIN {b64(GOOD_PLAIN)}\r\n".encode(),
            f"{b64(GOOD_PLAIN)}\r\n".encode(),
            b"*\r\n",
            b"\r\n",
            b"\n",
            b"x" * 300,
            b"A" * 1100,
            b"QUIT\r\n",
        ]
    ),
    st.binary(max_size=40),
)
session = st.lists(fragment, max_size=30).map(b"".join)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def run(data: bytes, cuts: list[int], eof: bool, cfg: ServerConfig) -> tuple[list[Event], bytes]:
    driver = Driver.start(cfg, plaintext_allowed=True)
    output = bytearray()
    for chunk in split(data, cuts):
        driver.feed(chunk)
        # The documented bound: one partial line, at most max_auth_line octets.
        assert driver.conn.buffered_bytes < cfg.max_auth_line
        output += driver.output()
    if eof:
        driver.eof()
        assert isinstance(driver.events[-1], Closed)
    output += driver.output()
    return driver.events, bytes(output)


@given(session, st.lists(st.integers(min_value=0), max_size=20), st.booleans())
def test_arbitrary_input_never_raises_nor_overbuffers(
    data: bytes, cuts: list[int], eof: bool
) -> None:
    run(data, cuts, eof, config())


@given(session, st.lists(st.integers(min_value=0), max_size=20))
def test_how_input_is_split_never_changes_the_conversation(data: bytes, cuts: list[int]) -> None:
    # Over implicit TLS, so STLS (which discards what follows it in the same read) is refused.
    whole = run(data, [], True, TLS)
    assert run(data, cuts, True, TLS) == whole
    # Every response line is +OK / -ERR / a challenge, or part of a multi-line response.
    assert whole[1] == b"" or whole[1].startswith(b"+OK courrier POP3 server ready\r\n")


@given(st.binary(max_size=400), st.integers(min_value=0, max_value=400))
def test_dot_stuffing_round_trips(content: bytes, end: int) -> None:
    end = min(end, len(content))
    normalized = content[:end].replace(b"\r", b"").replace(b"\n", b"\r\n")
    wire = b"".join(dot_stuffed(normalized))
    # The client's view: the content, with a line end added if it had none.
    expected = (
        normalized if not normalized or normalized.endswith(b"\r\n") else normalized + b"\r\n"
    )
    assert client_unstuff(wire) == expected
    assert wire.endswith(b".\r\n") and (wire == b".\r\n" or wire.endswith(b"\r\n.\r\n"))

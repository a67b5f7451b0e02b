"""The sans-IO SMTP server core: every command path, reply code and limit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from courrier.smtp.proto import (
    NEED_DATA,
    AuthAborted,
    AuthResponse,
    AuthStart,
    Closed,
    MailFrom,
    MessageReceived,
    ProtocolError,
    RcptTo,
    ServerConfig,
    ServerConnection,
    StartTLS,
    State,
)
from tests.smtp import GOOD_PLAIN, Driver, b64, config

EHLO = b"EHLO client.test\r\n"
ENVELOPE = EHLO + b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"


def ready(cfg: ServerConfig | None = None, **policy: Any) -> Driver:
    """A driver past the greeting and EHLO, replies drained."""
    driver = Driver.start(cfg, **policy)
    driver.feed(EHLO)
    driver.replies()
    return driver


def messages(events: Sequence[object]) -> list[bytes]:
    return [e.data for e in events if isinstance(e, MessageReceived)]


# --- greeting, EHLO, HELO, simple commands ---------------------------------------------


def test_greeting_and_ehlo_extensions() -> None:
    driver = Driver.start()
    assert driver.replies() == ["220 mx.example.test ESMTP courrier"]
    assert driver.conn.state is State.INITIAL
    driver.feed(b"ehlo client.test\r\n")
    assert driver.replies() == [
        "250-mx.example.test",
        "250-PIPELINING",
        "250-SIZE 10000",
        "250-8BITMIME",
        "250-SMTPUTF8",
        "250-CHUNKING",
        "250-BINARYMIME",
        "250-DSN",
        "250 ENHANCEDSTATUSCODES",
    ]
    assert driver.conn.helo_name == "client.test"
    assert driver.conn.esmtp
    assert driver.conn.state is State.READY


def extensions(lines: list[str]) -> list[str]:
    return [line[4:] for line in lines if line.startswith("250")][1:]


def test_ehlo_offers_starttls_and_auth_per_tls_state() -> None:
    cfg = config(tls_available=True, auth_mechanisms=("PLAIN", "LOGIN"))
    driver = Driver.start(cfg)
    driver.feed(EHLO)
    offered = extensions(driver.replies())
    assert offered[-1] == "STARTTLS"
    assert not any("AUTH" in line or "REQUIRETLS" in line for line in offered)
    driver.feed(b"STARTTLS\r\n", EHLO)
    lines = driver.replies()
    assert lines[0] == "220 2.0.0 Ready to start TLS"
    assert extensions(lines)[-3:] == ["ENHANCEDSTATUSCODES", "AUTH PLAIN LOGIN", "REQUIRETLS"]
    assert lines[-1] == "250 REQUIRETLS"


def test_auth_offered_without_tls_when_allowed() -> None:
    driver = ready(config(auth_mechanisms=("PLAIN",), auth_requires_tls=False))
    driver.feed(EHLO)
    assert extensions(driver.replies())[-1] == "AUTH PLAIN"


def test_implicit_tls() -> None:
    driver = Driver.start(config(implicit_tls=True, tls_available=True, auth_mechanisms=("PLAIN",)))
    assert driver.conn.tls_active
    driver.feed(EHLO)
    assert extensions(driver.replies())[-3:] == ["ENHANCEDSTATUSCODES", "AUTH PLAIN", "REQUIRETLS"]
    driver.feed(b"STARTTLS\r\n")
    assert driver.replies() == ["503 5.5.1 TLS already active"]


def test_helo() -> None:
    driver = Driver.start()
    driver.replies()
    driver.feed(b"HELO old.test\r\n")
    assert driver.replies() == ["250 mx.example.test"]
    assert not driver.conn.esmtp and driver.conn.helo_name == "old.test"


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"NOOP\r\n", "250 2.0.0 Ok"),
        (b"noop anything\r\n", "250 2.0.0 Ok"),
        (b"RSET\r\n", "250 2.0.0 Ok"),
        (b"RSET x\r\n", "501 5.5.4 Syntax: RSET"),
        (
            b"VRFY bob\r\n",
            "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery",
        ),
        (b"VRFY\r\n", "501 5.5.4 Syntax: VRFY address"),
        (b"EXPN list\r\n", "502 5.5.1 EXPN not supported"),
        (
            b"HELP\r\n",
            "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY STARTTLS AUTH",
        ),
        (b"FOO\r\n", "500 5.5.1 Command unrecognized"),
        (b"\r\n", "500 5.5.2 Syntax error"),
        (b"EHLO\r\n", "501 5.5.4 Syntax: EHLO hostname"),
        (b"HELO  \r\n", "501 5.5.4 Syntax: HELO hostname"),
        (b"MAIL FROM:<a@x>\r\n", "503 5.5.1 Send HELO/EHLO first"),
        (b"RCPT TO:<a@x>\r\n", "503 5.5.1 Need MAIL command"),
        (b"DATA\r\n", "503 5.5.1 Need MAIL command"),
        (b"STARTTLS\r\n", "502 5.5.1 STARTTLS not available"),
        (b"AUTH PLAIN\r\n", "502 5.5.1 AUTH not available"),
        (b"NOOP\n", "500 5.5.2 Bare LF in command; lines end with CRLF"),
        (b"NO\rOP\r\n", "500 5.5.2 Invalid character in command"),
        (b"NOOP \x00\r\n", "500 5.5.2 Invalid character in command"),
        ("NOOP é\r\n".encode(), "500 5.5.2 Non-ASCII characters in command"),
    ],
)
def test_single_commands(line: bytes, reply: str) -> None:
    driver = Driver.start()
    driver.replies()
    assert driver.feed(line) == []
    assert driver.replies() == [reply]


def test_quit() -> None:
    driver = ready()
    events = driver.feed(b"QUIT\r\nNOOP\r\n")
    assert events == [Closed("quit")]
    assert driver.replies() == ["221 2.0.0 Bye"]
    assert driver.conn.state is State.CLOSED
    assert driver.conn.next_event() == Closed("quit")
    driver.conn.receive_data(b"NOOP\r\n")
    assert driver.conn.next_event() == Closed("quit")
    assert driver.replies() == []


def test_eof_loses_unfinished_message() -> None:
    driver = ready()
    driver.feed(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nSubject: x\r\n")
    assert driver.eof() == [Closed("eof")]


def test_eof_after_buffered_commands() -> None:
    driver = Driver.start()
    driver.conn.receive_data(EHLO + b"NOOP\r\n")
    driver.conn.receive_eof()
    driver.conn.receive_data(b"NOOP\r\n")  # ignored after EOF
    driver.pump()
    assert driver.events == [Closed("eof")]
    assert driver.codes() == [220, 250, 250]


# --- a full transaction, pipelining ------------------------------------------------------


def test_pipelined_session_in_one_read() -> None:
    driver = Driver.start()
    driver.replies()
    session = ENVELOPE + b"RCPT TO:<c@y.test>\r\nDATA\r\nSubject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n"
    events = driver.feed(session)
    assert [type(e) for e in events] == [MailFrom, RcptTo, RcptTo, MessageReceived, Closed]
    message = events[3]
    assert isinstance(message, MessageReceived)
    assert message.data == b"Subject: hi\r\n\r\nbody\r\n"
    envelope = message.envelope
    assert envelope.mail_from == "a@x.test"
    assert [r.address for r in envelope.recipients] == ["b@y.test", "c@y.test"]
    assert envelope.helo_name == "client.test" and envelope.esmtp
    assert not envelope.tls and envelope.authenticated_as is None
    assert driver.codes() == [250, 250, 250, 250, 354, 250, 221]


def test_transaction_resets_after_message() -> None:
    driver = ready()
    driver.feed(ENVELOPE[len(EHLO) :] + b"DATA\r\nx\r\n.\r\n")
    assert driver.conn.state is State.READY
    driver.replies()
    driver.feed(b"RCPT TO:<b@y>\r\n")
    assert driver.replies() == ["503 5.5.1 Need MAIL command"]


def test_refused_mail_and_rcpt() -> None:
    driver = ready(
        mail=lambda e: (550, "5.7.1", "No") if e.address == "bad@x" else (250, "2.1.0", "Ok"),
        rcpt=lambda e: (550, "5.1.1", "Unknown user"),
    )
    driver.feed(b"MAIL FROM:<bad@x>\r\nRCPT TO:<b@y>\r\n")
    assert driver.replies() == ["550 5.7.1 No", "503 5.5.1 Need MAIL command"]
    driver.feed(b"MAIL FROM:<a@x>\r\nDATA\r\nRCPT TO:<b@y>\r\nDATA\r\n")
    assert driver.replies() == [
        "250 2.1.0 Ok",
        "503 5.5.1 Need RCPT command",
        "550 5.1.1 Unknown user",
        "554 5.5.1 No valid recipients",
    ]
    assert driver.conn.state is State.MAIL


def test_nested_mail_and_rset() -> None:
    driver = ready()
    driver.feed(b"MAIL FROM:<a@x>\r\nMAIL FROM:<a@x>\r\nRSET\r\nMAIL FROM:<c@x>\r\n")
    assert driver.replies() == [
        "250 2.1.0 Ok",
        "503 5.5.1 Nested MAIL command",
        "250 2.0.0 Ok",
        "250 2.1.0 Ok",
    ]


def test_ehlo_resets_transaction() -> None:
    driver = ready()
    driver.feed(b"MAIL FROM:<a@x>\r\n" + EHLO + b"RCPT TO:<b@y>\r\n")
    assert driver.codes() == [250, 250, 503]


def test_message_refused_by_application_and_421() -> None:
    driver = ready(message=lambda e: (451, "4.3.0", "Try later"))
    driver.feed(ENVELOPE[len(EHLO) :] + b"DATA\r\nx\r\n.\r\n")
    assert driver.replies()[-1] == "451 4.3.0 Try later"
    driver = ready(rcpt=lambda e: (421, "4.3.2", "Shutting down"))
    events = driver.feed(ENVELOPE[len(EHLO) :] + b"NOOP\r\n")
    assert events[-1] == Closed("421")
    assert driver.replies()[-1] == "421 4.3.2 Shutting down"


def test_api_misuse() -> None:
    conn = ServerConnection(config())
    conn.receive_data(EHLO + b"MAIL FROM:<a@x>\r\n")
    event = conn.next_event()
    assert isinstance(event, MailFrom)
    with pytest.raises(ProtocolError):
        conn.next_event()
    with pytest.raises(ProtocolError):
        conn.tls_started()
    with pytest.raises(ProtocolError):
        conn.auth_result(True, "x")
    with pytest.raises(ValueError, match="invalid reply code"):
        conn.reply(250, "5.1.0", "Ok")
    with pytest.raises(ValueError, match="single line"):
        conn.reply(250, "2.1.0", "Ok\r\n250 injected")
    conn.reply(250, "2.1.0", "Ok")
    assert conn.next_event() is NEED_DATA
    with pytest.raises(ProtocolError):
        conn.reply(250, "2.1.0", "Ok")


@pytest.mark.parametrize(
    "overrides",
    [
        {"hostname": ""},
        {"hostname": "a b"},
        {"max_message_size": 0},
        {"max_command_line": 100},
        {"auth_mechanisms": ("plain",)},
        {"max_errors": 0},
    ],
)
def test_config_validation(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        config(**overrides)


# --- MAIL and RCPT syntax and parameters -----------------------------------------------


@pytest.mark.parametrize(
    ("line", "address"),
    [
        (b"MAIL FROM:<a@x.test>", "a@x.test"),
        (b"mail from:<a@x.test>", "a@x.test"),
        (b"MAIL FROM: <a@x.test>", "a@x.test"),
        (b"MAIL FROM:<>", ""),
        (b'MAIL FROM:<"john doe"@x.test>', '"john doe"@x.test'),
        (b'MAIL FROM:<"a>b\\"c"@x.test>', '"a>b\\"c"@x.test'),
        (b"MAIL FROM:<@relay.test,@other.test:a@x.test>", "a@x.test"),
        (b"MAIL FROM:<@relay.test:a@x.test>", "a@x.test"),
    ],
)
def test_mail_from_paths(line: bytes, address: str) -> None:
    driver = ready()
    events = driver.feed(line + b"\r\n")
    assert events == [MailFrom(address, {})]


@pytest.mark.parametrize(
    "line",
    [
        b"MAIL FROM:a@x.test",
        b"MAIL FROM <a@x.test>",
        b"MAIL TO:<a@x.test>",
        b"MAIL FROM:<a@x.test",
        b"MAIL FROM:<a b@x.test>",
        b"MAIL FROM:<a@x.test>SIZE=10",
    ],
)
def test_mail_from_syntax_errors(line: bytes) -> None:
    driver = ready()
    assert driver.feed(line + b"\r\n") == []
    assert driver.replies() == ["501 5.5.4 Syntax: MAIL FROM:<address>"]


def test_mail_parameters() -> None:
    driver = ready()
    (event,) = driver.feed(
        b"MAIL FROM:<a@x> size=500 BODY=8bitmime SMTPUTF8 RET=hdrs ENVID=QQ+2BA+3Db\r\n"
    )
    assert event == MailFrom(
        "a@x",
        {"SIZE": "500", "BODY": "8bitmime", "SMTPUTF8": None, "RET": "hdrs", "ENVID": "QQ+2BA+3Db"},
        size=500,
        body="8BITMIME",
        smtputf8=True,
        ret="HDRS",
        envid="QQ+A=b",
    )


@pytest.mark.parametrize(
    ("params", "reply"),
    [
        (b"SIZE=10001", "552 5.3.4 Message size exceeds fixed maximum message size"),
        (b"SIZE=abc", "501 5.5.4 Invalid SIZE value"),
        (b"SIZE", "501 5.5.4 Invalid SIZE value"),
        (b"BODY=9BIT", "501 5.5.4 Invalid BODY value"),
        (b"RET=ALL", "501 5.5.4 Invalid RET value"),
        (b"ENVID=a+zz", "501 5.5.4 Invalid xtext in parameter"),
        (b"ENVID=" + b"a" * 101, "501 5.5.4 Invalid ENVID value"),
        (b"SMTPUTF8=yes", "501 5.5.4 SMTPUTF8 takes no value"),
        (b"FOO=bar", "555 5.5.4 Unsupported parameter FOO"),
        (b"AUTH=<>", "555 5.5.4 Unsupported parameter AUTH"),
        (b"SIZE=1 size=2", "501 5.5.4 Duplicate SIZE parameter"),
        (b"SIZE==1", "501 5.5.4 Invalid parameter syntax"),
        (b"REQUIRETLS", "530 5.7.10 REQUIRETLS requires a TLS connection"),
    ],
)
def test_mail_parameter_errors(params: bytes, reply: str) -> None:
    driver = ready()
    assert driver.feed(b"MAIL FROM:<a@x> " + params + b"\r\n") == []
    assert driver.replies() == [reply]


def test_params_need_ehlo() -> None:
    driver = Driver.start()
    driver.feed(
        b"HELO c\r\nMAIL FROM:<a@x> SIZE=1\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y> NOTIFY=NEVER\r\n"
    )
    assert driver.replies()[2:] == [
        "555 5.5.4 Parameters require EHLO",
        "250 2.1.0 Ok",
        "555 5.5.4 Parameters require EHLO",
    ]


def test_mail_auth_and_requiretls_over_tls() -> None:
    driver = Driver.start(config(implicit_tls=True, auth_mechanisms=("PLAIN",)))
    driver.feed(EHLO)
    (event,) = driver.feed(b"MAIL FROM:<a@x> AUTH=bob+40x.test REQUIRETLS\r\n")
    assert isinstance(event, MailFrom)
    assert event.auth == "bob@x.test" and event.requiretls
    driver.feed(b"RSET\r\n")
    (event,) = driver.feed(b"MAIL FROM:<a@x> AUTH=<>\r\n")
    assert isinstance(event, MailFrom) and event.auth == "<>"


def test_rcpt_dsn_parameters() -> None:
    driver = ready()
    driver.feed(b"MAIL FROM:<a@x>\r\n")
    (event,) = driver.feed(b"RCPT TO:<b@y> NOTIFY=success,Delay ORCPT=rfc822;b+2Btag@y+C3+A9\r\n")
    assert event == RcptTo(
        "b@y",
        {"NOTIFY": "success,Delay", "ORCPT": "rfc822;b+2Btag@y+C3+A9"},
        notify=("SUCCESS", "DELAY"),
        orcpt="rfc822;b+tag@yé",
    )
    (event,) = driver.feed(b"RCPT TO:<c@y> NOTIFY=NEVER\r\n")
    assert isinstance(event, RcptTo) and event.notify == ("NEVER",)


@pytest.mark.parametrize(
    ("params", "reply"),
    [
        (b"NOTIFY=NEVER,SUCCESS", "501 5.5.4 Invalid NOTIFY value"),
        (b"NOTIFY=SUCCESS,SUCCESS", "501 5.5.4 Invalid NOTIFY value"),
        (b"NOTIFY=SOMETIMES", "501 5.5.4 Invalid NOTIFY value"),
        (b"ORCPT=b@y", "501 5.5.4 Invalid ORCPT value"),
        (b"ORCPT=rfc822;", "501 5.5.4 Invalid ORCPT value"),
        (b"ORCPT=rfc822;a+C3", "501 5.5.4 Invalid xtext in parameter"),
        (b"SIZE=1", "555 5.5.4 Unsupported parameter SIZE"),
    ],
)
def test_rcpt_parameter_errors(params: bytes, reply: str) -> None:
    driver = ready()
    driver.feed(b"MAIL FROM:<a@x>\r\n")
    driver.replies()
    assert driver.feed(b"RCPT TO:<b@y> " + params + b"\r\n") == []
    assert driver.replies() == [reply]


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"RCPT TO:<>", "501 5.5.4 Syntax: RCPT TO:<address>"),
        (b"RCPT TO:b@y", "501 5.5.4 Syntax: RCPT TO:<address>"),
        (b"RCPT FROM:<b@y>", "501 5.5.4 Syntax: RCPT TO:<address>"),
    ],
)
def test_rcpt_syntax_errors(line: bytes, reply: str) -> None:
    driver = ready()
    driver.feed(b"MAIL FROM:<a@x>\r\n")
    driver.replies()
    driver.feed(line + b"\r\n")
    assert driver.replies() == [reply]


def test_smtputf8_rules() -> None:
    driver = ready()
    driver.feed("MAIL FROM:<jöran@x.test>\r\n".encode())
    assert driver.replies() == ["553 5.6.7 Non-ASCII address requires SMTPUTF8"]
    driver.feed(b"MAIL FROM:<j\xff@x.test> SMTPUTF8\r\n")
    assert driver.replies() == ["501 5.5.2 Invalid UTF-8 in address"]
    driver.feed(b"MAIL FROM:<a@x> SIZE=\xc3\xa9\r\n")
    assert driver.replies() == ["501 5.5.4 Invalid parameter syntax"]
    driver.feed(b"MAIL FROM:<a@x>\r\n")
    driver.feed("RCPT TO:<δοκιμή@παράδειγμα.test>\r\n".encode())
    assert driver.replies() == ["250 2.1.0 Ok", "553 5.6.7 Non-ASCII address requires SMTPUTF8"]
    driver.feed(b"RSET\r\n")
    events = driver.feed(
        "MAIL FROM:<jöran@x.test> SMTPUTF8\r\nRCPT TO:<δοκιμή@παράδειγμα.test>\r\n".encode()
    )
    assert [getattr(e, "address", None) for e in events] == [
        "jöran@x.test",
        "δοκιμή@παράδειγμα.test",
    ]


def test_max_recipients() -> None:
    driver = ready()
    rcpts = b"".join(b"RCPT TO:<r%d@y>\r\n" % i for i in range(101))
    events = driver.feed(b"MAIL FROM:<a@x>\r\n" + rcpts + b"DATA\r\nx\r\n.\r\n")
    message = events[-1]
    assert isinstance(message, MessageReceived)
    assert len(message.envelope.recipients) == 100
    assert driver.replies()[101:] == [
        "452 4.5.3 Too many recipients",
        "354 End data with <CR><LF>.<CR><LF>",
        "250 2.0.0 Ok: queued",
    ]


# --- DATA -----------------------------------------------------------------------------------


def data_session(body: bytes) -> Driver:
    driver = ready()
    driver.feed(ENVELOPE[len(EHLO) :] + b"DATA\r\n")
    driver.replies()
    driver.feed(body)
    return driver


def test_data_dot_unstuffing() -> None:
    driver = data_session(b"..leading\r\n.x\r\n...\r\nmid.dle\r\n..\r\n.\r\n")
    assert messages(driver.events) == [b".leading\r\nx\r\n..\r\nmid.dle\r\n.\r\n"]


def test_empty_message() -> None:
    driver = data_session(b".\r\n")
    assert messages(driver.events) == [b""]


def test_data_terminator_split_at_every_position() -> None:
    payload = b"Subject: t\r\n\r\n..dots\r\nline\r\n.\r\nNOOP\r\n"
    expected = b"Subject: t\r\n\r\n.dots\r\nline\r\n"
    for i in range(len(payload) + 1):
        for j in range(i, len(payload) + 1):
            driver = data_session(b"")
            driver.feed(payload[:i], payload[i:j], payload[j:])
            assert messages(driver.events) == [expected], (i, j)
            assert driver.replies() == ["250 2.0.0 Ok: queued", "250 2.0.0 Ok"]


def test_data_byte_by_byte() -> None:
    payload = b"a\r\n.\r\n"
    driver = data_session(b"")
    driver.feed(*[payload[i : i + 1] for i in range(len(payload))])
    assert messages(driver.events) == [b"a\r\n"]


@pytest.mark.parametrize(
    "smuggle",
    [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\r", b"\r.\r\n", b"\n.\r", b"\r.\n"],
)
def test_smuggling_sequences_never_end_data(smuggle: bytes) -> None:
    injected = b"MAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\nDATA\r\nforged\r\n"
    driver = data_session(b"Subject: real\r\n\r\nbody" + smuggle + injected)
    assert driver.events[-1:] == [RcptTo("b@y.test", {})]  # still in DATA
    assert driver.conn.state is State.DATA
    driver.feed(b".\r\nNOOP\r\n")
    assert messages(driver.events) == []
    assert not any(isinstance(e, MailFrom) and e.address == "evil@x" for e in driver.events)
    assert driver.replies() == [
        "550 5.5.2 Bare CR or LF in message content not allowed",
        "250 2.0.0 Ok",
    ]
    assert driver.conn.state is State.READY


@pytest.mark.parametrize("bare", [b"a\nb\r\n", b"a\rb\r\n", b"a\r\r\n", b"x\n\r\n", b"\r\r\n"])
def test_bare_cr_lf_refused(bare: bytes) -> None:
    driver = data_session(bare + b".\r\n")
    assert messages(driver.events) == []
    assert driver.codes() == [550]


def test_data_refusals() -> None:
    driver = ready()
    driver.feed(ENVELOPE[len(EHLO) :] + b"DATA now\r\n")
    assert driver.replies()[-1] == "501 5.5.4 Syntax: DATA"
    driver.feed(b"RSET\r\nMAIL FROM:<a@x> BODY=BINARYMIME\r\nRCPT TO:<b@y>\r\nDATA\r\n")
    assert driver.replies()[-1] == "503 5.5.1 BODY=BINARYMIME requires BDAT"


def test_data_size_limit_discards_content() -> None:
    driver = data_session(b"")
    line = b"x" * 998 + b"\r\n"
    for _ in range(50):  # 50 KB against a 10 KB limit
        driver.feed(line)
        assert driver.conn.buffered_bytes <= 10_000 + 2
    driver.feed(b".\r\nNOOP\r\n")
    assert messages(driver.events) == []
    assert driver.replies() == [
        "552 5.3.4 Message size exceeds fixed maximum message size",
        "250 2.0.0 Ok",
    ]


def test_data_size_limit_exact() -> None:
    body = b"x" * 9998 + b"\r\n"
    driver = data_session(body + b".\r\n")
    assert messages(driver.events) == [body]
    driver = data_session(b"y" + body + b".\r\n")
    assert driver.codes() == [552]


def test_oversize_terminator_split_across_reads() -> None:
    driver = data_session(b"x" * 20_000 + b"\r\n.")
    driver.feed(b"\r", b"\nNOOP\r\n")
    assert driver.codes() == [552, 250]


# --- BDAT -----------------------------------------------------------------------------------


def test_bdat_chunks() -> None:
    driver = ready()
    driver.feed(ENVELOPE[len(EHLO) :])
    driver.replies()
    events = driver.feed(b"BDAT 5\r\nhello", b"BDAT 8\r\n wor", b"ld\r\n", b"BDAT 0 last\r\n")
    assert messages(events) == [b"hello world\r\n"]
    assert driver.replies() == [
        "250 2.0.0 5 octets received",
        "250 2.0.0 8 octets received",
        "250 2.0.0 Ok: queued",
    ]
    assert driver.conn.state is State.READY


def test_bdat_pipelined_in_one_read_with_binary() -> None:
    driver = ready()
    content = bytes(range(256)) + b"\r\n.\r\n"
    events = driver.feed(
        b"MAIL FROM:<a@x> BODY=BINARYMIME\r\nRCPT TO:<b@y>\r\nBDAT %d\r\n" % len(content)
        + content
        + b"BDAT 3 LAST\r\nEND"
        + b"QUIT\r\n"
    )
    assert messages(events) == [content + b"END"]
    assert events[-1] == Closed("quit")


def test_bdat_zero_last_only() -> None:
    driver = ready()
    events = driver.feed(ENVELOPE[len(EHLO) :] + b"BDAT 0 LAST\r\n")
    assert messages(events) == [b""]


def test_bdat_bare_lf_without_binarymime() -> None:
    driver = ready()
    driver.feed(ENVELOPE[len(EHLO) :] + b"BDAT 4 LAST\r\na\nb\n")
    assert driver.replies()[-1] == "550 5.5.2 Bare CR or LF in message content not allowed"
    assert messages(driver.events) == []


def test_bdat_refused_chunk_is_consumed() -> None:
    driver = ready()
    driver.feed(b"BDAT 10\r\nMAIL FROM:NOOP\r\n")
    assert driver.replies() == ["503 5.5.1 Need MAIL command", "250 2.0.0 Ok"]
    assert driver.events == []


def test_bdat_and_data_do_not_mix() -> None:
    driver = ready()
    driver.feed(ENVELOPE[len(EHLO) :] + b"BDAT 2\r\nab" + b"DATA\r\n")
    assert driver.replies()[-2:] == [
        "250 2.0.0 2 octets received",
        "503 5.5.1 DATA not allowed after BDAT",
    ]


def test_bdat_size_limit() -> None:
    driver = ready()
    driver.feed(ENVELOPE[len(EHLO) :])
    driver.replies()
    driver.feed(b"BDAT 6000\r\n" + b"a" * 6000)
    driver.feed(b"BDAT 6000\r\n")
    for _ in range(6):
        driver.feed(b"b" * 1000)
        assert driver.conn.buffered_bytes <= 10_000
    # RFC 3030: the failed transaction is over; pipelined chunks are discarded
    driver.feed(b"BDAT 3 LAST\r\nabc")
    assert driver.replies() == [
        "250 2.0.0 6000 octets received",
        "552 5.3.4 Message size exceeds fixed maximum message size",
        "503 5.5.1 Need MAIL command",
    ]
    assert messages(driver.events) == []


def test_bdat_syntax_error_closes() -> None:
    driver = ready()
    events = driver.feed(ENVELOPE[len(EHLO) :] + b"BDAT x\r\nNOOP\r\n")
    assert events[-1] == Closed("bdat syntax")
    assert driver.replies()[-2:] == [
        "501 5.5.4 Syntax: BDAT size [LAST]",
        "421 4.5.0 mx.example.test Cannot resynchronise",
    ]


def test_bdat_needs_ehlo() -> None:
    driver = Driver.start()
    driver.feed(b"HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 1 LAST\r\nx")
    assert driver.replies()[-1] == "503 5.5.1 BDAT requires EHLO"


# --- limits ----------------------------------------------------------------------------


def test_line_too_long_is_discarded_unbuffered() -> None:
    driver = ready()
    driver.feed(b"NOOP " + b"x" * 5000)
    assert driver.conn.buffered_bytes < 4096
    for _ in range(10):
        driver.feed(b"y" * 10_000)
        assert driver.conn.buffered_bytes == 0
    driver.feed(b"zz\r\nNOOP\r\n")
    assert driver.replies() == ["500 5.5.2 Line too long", "250 2.0.0 Ok"]


def test_line_limit_boundary() -> None:
    driver = ready(config(max_command_line=512))
    driver.feed(b"NOOP " + b"x" * 505 + b"\r\n")  # 512 octets with CRLF
    driver.feed(b"NOOP " + b"x" * 506 + b"\r\n")
    assert driver.replies() == ["250 2.0.0 Ok", "500 5.5.2 Line too long"]


def test_too_many_errors() -> None:
    driver = ready(config(max_errors=3))
    events = driver.feed(b"FOO\r\nBAR\r\nNOOP\r\nBAZ\r\nNOOP\r\n")
    assert events == [Closed("too many errors")]
    assert driver.replies() == [
        "500 5.5.1 Command unrecognized",
        "500 5.5.1 Command unrecognized",
        "250 2.0.0 Ok",
        "500 5.5.1 Command unrecognized",
        "421 4.7.0 mx.example.test Too many errors, closing connection",
    ]


# --- STARTTLS ---------------------------------------------------------------------------


def test_starttls_discards_injected_commands() -> None:
    cfg = config(tls_available=True)
    conn = ServerConnection(cfg)
    conn.receive_data(EHLO + b"STARTTLS\r\nMAIL FROM:<evil@x>\r\nRCPT TO:<v@y>\r\n")
    assert conn.next_event() == StartTLS()
    assert conn.data_to_send().endswith(b"250 STARTTLS\r\n220 2.0.0 Ready to start TLS\r\n")
    conn.receive_data(b"MAIL FROM:<evil2@x>\r\n")  # still clear text: ignored
    conn.tls_started()
    assert conn.tls_active and conn.state is State.INITIAL and conn.helo_name is None
    assert conn.next_event() is NEED_DATA
    assert conn.data_to_send() == b""
    conn.receive_data(b"MAIL FROM:<a@x>\r\n")
    assert conn.next_event() is NEED_DATA
    assert conn.data_to_send() == b"503 5.5.1 Send HELO/EHLO first\r\n"


def test_starttls_refusals() -> None:
    driver = ready(config(tls_available=True))
    driver.feed(b"STARTTLS now\r\nMAIL FROM:<a@x>\r\nSTARTTLS\r\n")
    assert driver.replies() == [
        "501 5.5.4 Syntax: STARTTLS",
        "250 2.1.0 Ok",
        "503 5.5.1 STARTTLS not permitted during a mail transaction",
    ]


def test_starttls_forgets_authentication() -> None:
    cfg = config(tls_available=True, auth_mechanisms=("PLAIN",), auth_requires_tls=False)
    driver = ready(cfg)
    driver.feed(b"AUTH PLAIN " + b64(GOOD_PLAIN) + b"\r\n")
    assert driver.conn.authenticated_as == "alice"
    driver.feed(b"STARTTLS\r\n")
    assert driver.conn.authenticated_as is None and driver.conn.tls_active


# --- AUTH -----------------------------------------------------------------------------------


def auth_ready(**overrides: object) -> Driver:
    values: dict[str, object] = {"implicit_tls": True, "auth_mechanisms": ("PLAIN", "LOGIN")}
    values.update(overrides)
    return ready(config(**values))


def test_auth_initial_response() -> None:
    driver = auth_ready()
    events = driver.feed(b"AUTH plain " + b64(GOOD_PLAIN) + b"\r\n")
    assert events == [AuthStart("PLAIN", GOOD_PLAIN)]
    assert driver.replies() == ["235 2.7.0 Authentication successful"]
    assert driver.conn.authenticated_as == "alice"
    assert driver.conn.state is State.READY
    driver.feed(b"AUTH PLAIN\r\n")
    assert driver.replies() == ["503 5.5.1 Already authenticated"]


def test_auth_multi_step() -> None:
    driver = auth_ready()
    events = driver.feed(b"AUTH PLAIN\r\n")
    assert events == [AuthStart("PLAIN", None)]
    assert driver.replies() == ["334 "]
    assert driver.conn.state is State.AUTH
    events = driver.feed(b64(GOOD_PLAIN) + b"\r\n")
    assert events == [AuthResponse(GOOD_PLAIN)]
    assert driver.replies() == ["235 2.7.0 Authentication successful"]


def test_auth_empty_initial_response_and_challenge_encoding() -> None:
    driver = auth_ready()
    driver.auth = lambda e: b"chall\xff" if isinstance(e, AuthStart) else (False, None)
    assert driver.feed(b"AUTH LOGIN =\r\n") == [AuthStart("LOGIN", b"")]
    assert driver.replies() == ["334 Y2hhbGz/"]
    assert driver.feed(b"\r\n") == [AuthResponse(b"")]
    assert driver.replies() == ["535 5.7.8 Authentication credentials invalid"]
    assert driver.conn.authenticated_as is None


def test_auth_cancel_and_bad_base64() -> None:
    driver = auth_ready()
    assert driver.feed(b"AUTH PLAIN\r\n*\r\n") == [
        AuthStart("PLAIN", None),
        AuthAborted("cancelled"),
    ]
    assert driver.replies() == ["334 ", "501 5.7.0 Authentication cancelled"]
    assert driver.feed(b"AUTH PLAIN\r\n!!!\r\nNOOP\r\n")[-1] == AuthAborted("invalid")
    assert driver.replies() == ["334 ", "501 5.5.2 Invalid base64 data", "250 2.0.0 Ok"]
    driver.feed(b"AUTH PLAIN AGFsaWNl=\r\n")
    assert driver.replies() == ["501 5.5.2 Invalid base64 data"]


def test_auth_long_response_line() -> None:
    driver = auth_ready()
    driver.feed(b"AUTH PLAIN\r\n")
    long_response = b64(b"\0alice\0" + b"p" * 6000)  # > 4096, < 12288 (RFC 4954 §4)
    assert driver.feed(long_response + b"\r\n") == [AuthResponse(b"\0alice\0" + b"p" * 6000)]
    driver.feed(b"AUTH PLAIN\r\n" + b"A" * 13000 + b"\r\n")
    assert driver.events[-1] == AuthAborted("invalid")
    assert driver.replies()[-2:] == ["334 ", "500 5.5.2 Line too long"]


@pytest.mark.parametrize(
    ("overrides", "prelude", "line", "reply"),
    [
        (
            {"implicit_tls": False},
            b"",
            b"AUTH PLAIN",
            "538 5.7.11 Encryption required for requested authentication mechanism",
        ),
        ({}, b"", b"AUTH CRAM-MD5", "504 5.5.4 Unrecognized authentication type"),
        ({}, b"", b"AUTH", "501 5.5.4 Syntax: AUTH mechanism [initial-response]"),
        ({}, b"", b"AUTH PLAIN a b", "501 5.5.4 Syntax: AUTH mechanism [initial-response]"),
        (
            {},
            b"MAIL FROM:<a@x>\r\n",
            b"AUTH PLAIN",
            "503 5.5.1 AUTH not permitted during a mail transaction",
        ),
        ({}, b"HELO c\r\n", b"AUTH PLAIN", "503 5.5.1 Send EHLO first"),
    ],
)
def test_auth_refusals(
    overrides: dict[str, object], prelude: bytes, line: bytes, reply: str
) -> None:
    driver = auth_ready(**overrides)
    driver.feed(prelude)
    driver.replies()
    assert driver.feed(line + b"\r\n") == []
    assert driver.replies() == [reply]


def test_auth_failure_counts_as_error() -> None:
    driver = auth_ready(max_errors=2)
    bad = b"AUTH PLAIN " + b64(b"\0alice\0wrong") + b"\r\n"
    events = driver.feed(bad + bad)
    assert events[-1] == Closed("too many errors")
    assert driver.codes() == [535, 535, 421]


def test_submission_requires_auth_for_mail() -> None:
    driver = auth_ready(require_auth_for_mail=True)
    driver.feed(b"MAIL FROM:<alice@x>\r\n")
    assert driver.replies() == ["530 5.7.0 Authentication required"]
    driver.feed(b"AUTH PLAIN " + b64(GOOD_PLAIN) + b"\r\n")
    events = driver.feed(b"MAIL FROM:<alice@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nhi\r\n.\r\n")
    message = events[-1]
    assert isinstance(message, MessageReceived)
    assert message.envelope.authenticated_as == "alice" and message.envelope.tls

"""Properties of the SMTP core: arbitrary input never raises nor grows memory past the
documented bound, how input is split into reads never changes the conversation, and DATA gives
back exactly the content a client dot-stuffed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from courrier.smtp.proto import Closed, MessageReceived, ServerConfig
from tests.smtp import Driver, config

CFG = config(max_message_size=2000, max_command_line=512, max_recipients=3, max_errors=50)
AUTH_CFG = config(
    max_message_size=2000,
    max_command_line=512,
    implicit_tls=True,
    auth_mechanisms=("PLAIN",),
    max_errors=50,
)
#: ServerConnection's memory bound (module docstring) for these configurations.
BOUND = CFG.max_message_size + 2 + 12288


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def assert_well_formed(output: bytes) -> None:
    assert output.endswith(b"\r\n")
    for line in output.split(b"\r\n")[:-1]:
        assert line[:3].isdigit() and line[3:4] in (b" ", b"-"), line


fragment = st.one_of(
    st.sampled_from(
        [
            b"EHLO c.test\r\n",
            b"HELO c.test\r\n",
            b"MAIL FROM:<a@x.test>\r\n",
            b"MAIL FROM:<> BODY=BINARYMIME SIZE=100 RET=FULL ENVID=a+2Bb\r\n",
            b"MAIL FROM:<a@x> SMTPUTF8\r\n",
            b"RCPT TO:<b@y.test> NOTIFY=SUCCESS ORCPT=rfc822;b@y\r\n",
            b"RCPT TO:<c@y.test>\r\n",
            b"DATA\r\n",
            b"BDAT 5\r\nab\r\nc",
            b"BDAT 0 LAST\r\n",
            b"BDAT 3 LAST\r\n\x00\n\r",
            b"RSET\r\n",
            b"NOOP\r\n",
            b"VRFY x\r\n",
            b"AUTH PLAIN\r\n",
            b"AGFsaWNlAHNlY3JldA==\r\n",
            b"*\r\n",
            b"\r\n.\r\n",
            b".\r\n",
            b"..\r\n",
            b"\n.\n",
            b"\r\n",
            b"x" * 600,
            b"QUIT\r\n",
        ]
    ),
    st.binary(max_size=40),
)
session = st.lists(fragment, max_size=30).map(b"".join)


def run(cfg: ServerConfig, chunks: list[bytes], eof: bool) -> tuple[list[object], bytes]:
    driver = Driver.start(cfg)
    output = bytearray()
    for chunk in chunks:
        driver.feed(chunk)
        assert driver.conn.buffered_bytes <= BOUND
        output += driver.conn.data_to_send()
    if eof:
        driver.eof()
        assert isinstance(driver.events[-1], Closed)
    for event in driver.events:
        if isinstance(event, MessageReceived) and event.envelope.mail.body != "BINARYMIME":
            # no smuggling: every message accepted is made of CRLF-terminated lines
            crlf = event.data.count(b"\r\n")
            assert event.data.count(b"\r") == crlf == event.data.count(b"\n")
    output += driver.conn.data_to_send()
    assert_well_formed(bytes(output))
    return list(driver.events), bytes(output)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=3000), max_size=8), st.booleans(), st.booleans())
def test_arbitrary_bytes_never_raise(chunks: list[bytes], auth: bool, eof: bool) -> None:
    run(AUTH_CFG if auth else CFG, [b"EHLO x\r\n", *chunks], eof)


@settings(max_examples=300, deadline=None)
@given(session, st.lists(st.integers(min_value=0), max_size=12), st.booleans(), st.booleans())
def test_splitting_never_changes_the_conversation(
    data: bytes, cuts: list[int], auth: bool, eof: bool
) -> None:
    cfg = AUTH_CFG if auth else CFG
    assert run(cfg, split(data, cuts), eof) == run(cfg, [data], eof)


def stuff(body: bytes) -> bytes:
    """What a client sends for ``body`` (RFC 5321 §4.5.2)."""
    return b"\r\n".join(
        b"." + line if line.startswith(b".") else line for line in body.split(b"\r\n")
    )


line = st.binary(max_size=60).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
lines = st.lists(st.one_of(line, st.sampled_from([b".", b"..", b".x", b""])), max_size=30).map(
    lambda ls: b"".join(li + b"\r\n" for li in ls)
)


@settings(max_examples=300, deadline=None)
@given(lines, st.lists(st.integers(min_value=0), max_size=10))
def test_data_round_trip(body: bytes, cuts: list[int]) -> None:
    wire = b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n" + stuff(body) + b".\r\n"
    driver = Driver.start(config(max_message_size=100_000))
    driver.feed(*split(wire, cuts))
    assert [e.data for e in driver.events if isinstance(e, MessageReceived)] == [body]

"""The sans-IO SMTP client core: replies, EHLO keywords, commands, content, outcomes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courrier.smtp.client_proto import (
    Envelope,
    Extensions,
    Recipient,
    Reply,
    ReplyError,
    ReplyReader,
    bdat_chunks,
    data_content,
    mail_command,
    needs,
    outcomes,
    rcpt_command,
    xtext,
)


def replies(*chunks: bytes) -> list[Reply]:
    reader = ReplyReader()
    out = []
    for chunk in chunks:
        reader.receive(chunk)
        while (reply := reader.next_reply()) is not None:
            out.append(reply)
    assert not reader.pending
    return out


def test_replies_single_multi_line_and_split_anywhere() -> None:
    wire = b"220 mx.example.net ESMTP\r\n250-mx.example.net\r\n250-PIPELINING\r\n250 SIZE 1000\r\n"
    whole = replies(wire)
    assert whole == [
        Reply(220, ("mx.example.net ESMTP",)),
        Reply(250, ("mx.example.net", "PIPELINING", "SIZE 1000")),
    ]
    assert replies(*(wire[i : i + 1] for i in range(len(wire)))) == whole  # byte by byte
    assert replies(b"354\n") == [Reply(354, ("",))]  # bare LF, no text


def test_enhanced_codes() -> None:
    assert Reply(550, ("5.1.1 No such user",)).enhanced == "5.1.1"
    assert Reply(450, ("4.2.0 Greylisted",)).enhanced == "4.2.0"
    assert Reply(550, ("4.2.0 wrong class",)).enhanced is None  # RFC 2034 §4
    assert Reply(250, ("Ok",)).enhanced is None
    assert Reply(451, ("x",)).transient and not Reply(550, ("x",)).transient


@pytest.mark.parametrize(
    "wire",
    [
        b"hello\r\n",  # no code
        b"600 no such class\r\n",
        b"250-first\r\n550 second\r\n",  # code changes within a reply
        b"250 " + b"x" * 5000 + b"\r\n",
        b"250-x\r\n" * 200,
    ],
)
def test_what_is_no_reply(wire: bytes) -> None:
    reader = ReplyReader()
    reader.receive(wire)
    with pytest.raises(ReplyError):
        while reader.next_reply() is not None:
            pass


def test_a_line_without_end_is_bounded() -> None:
    reader = ReplyReader()
    reader.receive(b"250 " + b"x" * 5000)
    with pytest.raises(ReplyError):
        reader.next_reply()


def test_extensions_from_ehlo() -> None:
    ext = Extensions.from_ehlo(
        Reply(250, ("mx greets you", "pipelining", "SIZE 35882577", "AUTH PLAIN login", "DSN"))
    )
    assert "PIPELINING" in ext and "dsn" in ext and "CHUNKING" not in ext
    assert ext.size == 35882577 and ext.auth == {"PLAIN", "LOGIN"}
    assert Extensions.from_ehlo(Reply(250, ("mx", "SIZE"))).size is None
    assert Extensions.from_ehlo(Reply(250, ("mx", "SIZE 0"))).size is None  # no limit


def test_xtext() -> None:
    assert xtext("QQ314159") == "QQ314159"
    assert xtext("a+b=c d") == "a+2Bb+3Dc+20d"  # RFC 3461 §4
    assert xtext("é") == "+C3+A9"


def test_mail_and_rcpt_parameters_only_when_the_server_knows_them() -> None:
    env = Envelope(
        "a@example.org",
        (Recipient("b@example.net", "FAILURE,DELAY", "rfc822;b+x@example.net"),),
        body="8BITMIME",
        envid="id 1",
        ret="HDRS",
    )
    rich = Extensions({"SIZE": "1000000", "8BITMIME": "", "DSN": ""})
    assert mail_command(env, rich, 1234) == (
        b"MAIL FROM:<a@example.org> SIZE=1234 BODY=8BITMIME RET=HDRS ENVID=id+201\r\n"
    )
    assert rcpt_command(env.recipients[0], rich) == (
        b"RCPT TO:<b@example.net> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b+2Bx@example.net\r\n"
    )
    bare = Extensions({"8BITMIME": ""})
    assert mail_command(env, bare, 1234) == b"MAIL FROM:<a@example.org> BODY=8BITMIME\r\n"
    assert rcpt_command(env.recipients[0], bare) == b"RCPT TO:<b@example.net>\r\n"
    null = Envelope("", (Recipient("b@example.net"),), smtputf8=True, requiretls=True)
    assert mail_command(null, bare, 10) == b"MAIL FROM:<> SMTPUTF8 REQUIRETLS\r\n"


def test_what_a_server_cannot_take() -> None:
    rcpt = (Recipient("b@example.net"),)
    plain = Extensions({"SIZE": "100"})
    assert needs(Envelope("a@x", rcpt), plain, 100) is None
    assert needs(Envelope("a@x", rcpt), plain, 101) == (
        "5.3.4",
        "the message (101 octets) is larger than the server takes (100)",
    )
    assert needs(Envelope("é@x", rcpt, smtputf8=True), plain, 1)[0] == "5.6.7"  # type: ignore[index]
    assert needs(Envelope("a@x", rcpt, body="8BITMIME"), plain, 1)[0] == "5.6.3"  # type: ignore[index]
    assert needs(Envelope("a@x", rcpt, requiretls=True), plain, 1)[0] == "5.7.30"  # type: ignore[index]
    binary = Extensions({"BINARYMIME": "", "CHUNKING": ""})
    assert needs(Envelope("a@x", rcpt, body="BINARYMIME"), binary, 1) is None


def test_data_content_stuffs_dots_and_ends_lines() -> None:
    assert data_content(b"a\r\n.b\r\n..c\r\n.\r\n") == b"a\r\n..b\r\n...c\r\n..\r\n.\r\n"
    assert data_content(b".first\nsecond") == b"..first\r\nsecond\r\n.\r\n"
    assert data_content(b"") == b".\r\n"


@given(st.lists(st.sampled_from([b"", b".", b"..", b"x", b".x", b"a.b", b" ."]), max_size=8))
def test_data_content_unstuffs_to_the_message(lines: list[bytes]) -> None:
    content = b"".join(line + b"\r\n" for line in lines)
    sent = data_content(content)
    assert sent.endswith(b"\r\n.\r\n") or sent == b".\r\n"
    body = sent[: -len(b".\r\n")]
    assert b"\r\n.\r\n" not in b"\r\n" + body  # nothing ends the DATA early
    unstuffed = b"".join(
        (line[1:] if line.startswith(b".") else line) + b"\r\n" for line in body.split(b"\r\n")[:-1]
    )
    assert unstuffed == content


def test_bdat_chunks() -> None:
    assert bdat_chunks(b"abcdef", size=4) == [b"BDAT 4\r\nabcd", b"BDAT 2 LAST\r\nef"]
    assert bdat_chunks(b"") == [b"BDAT 0 LAST\r\n"]


def test_outcomes_per_recipient() -> None:
    a, b, c = Recipient("a@x"), Recipient("b@x"), Recipient("c@x")
    ok, gone, later = Reply(250, ("ok",)), Reply(550, ("5.1.1 no",)), Reply(451, ("4.3.0 later",))
    final = Reply(250, ("2.0.0 queued as X",))
    got = outcomes([a, b, c], ok, [ok, gone, later], final)
    assert [(o.recipient, o.delivered, o.reply) for o in got] == [
        (a, True, final),
        (b, False, gone),
        (c, None, later),
    ]
    # A refused MAIL decides for everyone; a refused content for those accepted.
    assert [o.delivered for o in outcomes([a, b], gone, [], None)] == [False, False]
    assert [o.reply for o in outcomes([a, b], ok, [ok, gone], later)] == [later, gone]
    # Accepted, but the content never went: try again.
    (unsent,) = outcomes([a], ok, [ok], None)
    assert unsent.delivered is None and unsent.reply.code == 451

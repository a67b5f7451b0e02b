"""ENVELOPE and BODYSTRUCTURE of every message in tests/data/messages, written out by hand.

Expected values follow RFC 9051 §7.5.2 (and §9 for the grammar): strings quoted when 7-bit
without CR/LF, literals otherwise; type, subtype and parameter names as the message writes them
(as Dovecot does); "7BIT" when Content-Transfer-Encoding is absent; text parts without a charset
get ("charset" "us-ascii") added (RFC 2045 §5.2, and Dovecot's behaviour); line counts are the
number of LFs in the body (Dovecot's count). Sizes come from ``seg`` and ``size``, never from
the parser.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from courrier.message import parse, parse_mime, part_text

from .corpus import DATA, lit, load, seg, size

NIL10 = b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


def test_corpus_has_the_promised_size() -> None:
    assert len(list(DATA.glob("*.eml"))) >= 25


def test_01_simple_text() -> None:
    raw = load("01-simple.eml")
    body = seg(raw, b"\r\n\r\n")
    alice = b'(("Alice Example" NIL "alice" "example.org"))'
    parsed = parse(raw)
    assert parsed.envelope == (
        b'("Mon, 23 Nov 2026 10:00:00 +0100" "Lunch on Friday?" '
        + alice
        + b" "
        + alice
        + b" "
        + alice
        + b' (("Bob" NIL "bob" "example.net")) NIL NIL NIL "<lunch-1@example.org>")'
    )
    # What Dovecot returns for it too: the header's own "7bit", no default needed.
    assert parsed.bodystructure == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" %s NIL NIL NIL NIL)' % size(body)
    )
    assert parsed.body == b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" %s)' % size(body)
    assert parsed.size == len(raw)
    assert parsed.subject == "Lunch on Friday?"
    assert parsed.from_ == "Alice Example <alice@example.org>"
    assert parsed.to == "Bob <bob@example.net>"
    assert (parsed.cc, parsed.bcc) == ("", "")
    assert (parsed.sort_from, parsed.sort_to, parsed.sort_cc) == ("alice", "bob", "")
    assert parsed.sent_date == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert parsed.message_id == "<lunch-1@example.org>"
    assert parsed.preview == (
        "Hi Bob, Are you free for lunch on Friday? The usual place at noon. Alice"
    )
    assert parsed.text == body.decode().replace("\r\n", "\n")
    assert parsed.headers_text.splitlines()[1] == (
        "Received: from mail.example.org (mail.example.org [192.0.2.1])"
        "\tby mx.example.net with ESMTPS; Mon, 23 Nov 2026 10:00:01 +0100"
    )


def test_02_multipart_alternative() -> None:
    raw = load("02-alternative.eml")
    plain = seg(raw, b"quoted-printable\r\n\r\n", b"\r\n--alt-1")
    html = seg(raw, b"quoted-printable\r\n\r\n", b"\r\n--alt-1--", after=b"text/html")
    shop = b'(("Shop, Online" NIL "news" "shop.example"))'
    parsed = parse(raw)
    assert parsed.envelope == (
        b'("Tue, 24 Nov 2026 08:30:00 -0500" "Your order has shipped" %s %s %s '
        b'((NIL NIL "customer" "example.net")) NIL NIL NIL "<ship-42@shop.example>")'
        % (shop, shop, shop)
    )
    assert parsed.bodystructure == (
        b'(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" %s NIL NIL NIL NIL)'
        b'("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" %s NIL NIL NIL NIL)'
        b' "alternative" ("boundary" "alt-1") NIL NIL NIL)' % (size(plain), size(html))
    )
    assert parsed.body == (
        b'(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" %s)'
        b'("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" %s) "alternative")'
        % (size(plain), size(html))
    )
    assert plain == b"Your order #42 has shipped. Caf=C3=A9 mugs arrive soon.\r\n"
    # Of two alternatives only the plain one is searchable text (no duplicates).
    assert parsed.text == "Your order #42 has shipped. Café mugs arrive soon.\n"
    assert parsed.preview == "Your order #42 has shipped. Café mugs arrive soon."
    assert parsed.from_ == "Shop, Online <news@shop.example>"
    assert parsed.sent_date == datetime(2026, 11, 24, 8, 30, tzinfo=timezone(-timedelta(hours=5)))
    root = parse_mime(raw)
    html_part = root.find([2])
    assert html_part is not None
    assert part_text(raw, html_part) == (
        "Your order #42 has shipped.\nCafé mugs arrive soon."
    )  # the style element is dropped, paragraphs become lines


def test_03_mixed_with_rfc2231_attachment() -> None:
    raw = load("03-mixed-attachment-rfc2231.eml")
    b = b"\r\n------=_Part_0_12345.67890"
    text = seg(raw, b"7bit\r\n\r\n", b)
    pdf = seg(raw, b"base64\r\n\r\n", b)
    notes = seg(raw, b"notes\r\n\r\n", b)
    assert (text, pdf, notes) == (
        b"Please find the quarterly report attached.",
        b"JVBERi0xLjQKJcfsj6IKJSVFT0YK",
        b"Some notes.",
    )
    encoded = b"UTF-8''Quarterly%20report%20%E2%80%94%20%C3%A9t%C3%A9.pdf"
    parsed = parse(raw)
    carol = b'(("Carol" NIL "carol" "example.com"))'
    assert parsed.envelope == (
        b'("Wed, 25 Nov 2026 14:15:16 +0000" "Report attached" %s %s %s '
        b'(("Dave" NIL "dave" "example.com")) '
        b'(("Erin" NIL "erin" "example.com")(NIL NIL "frank" "example.com")) NIL NIL '
        b'"<report-7@example.com>")' % (carol, carol, carol)
    )
    # RFC 2231 continuations are merged; encoded values keep their charset''%XX form and the
    # name gets its "*", as Dovecot writes them. A part without a charset gets none added
    # unless it is text; the filename split in two plain pieces (given out of order) is joined.
    assert parsed.bodystructure == (
        b'(("text" "plain" ("charset" "UTF-8") NIL NIL "7bit" %s NIL NIL NIL NIL)'
        b'("application" "pdf" ("name*" "%s") NIL NIL "base64" %d NIL '
        b'("attachment" ("filename*" "%s" "size" "24")) NIL NIL)'
        b'("text" "plain" ("charset" "us-ascii") NIL "notes" "7BIT" %s NIL '
        b'("attachment" ("filename" "long-filename.txt")) NIL NIL)'
        b' "mixed" ("boundary" "----=_Part_0_12345.67890") NIL NIL NIL)'
        % (size(text), encoded, len(pdf), encoded, size(notes))
    )
    assert parsed.cc == "Erin <erin@example.com>, frank@example.com"
    # Attachments that are text are searchable; the PDF is not.
    assert parsed.text == "Please find the quarterly report attached.\nSome notes."


def test_04_related_inside_alternative() -> None:
    raw = load("04-related-in-alternative.eml")
    plain = seg(raw, b"us-ascii\r\n\r\n", b"\r\n--outer")
    html = seg(raw, b"us-ascii\r\n\r\n", b"\r\n--inner", after=b"--inner")
    png = seg(raw, b'"trip.png"\r\n\r\n', b"\r\n--inner--")
    assert png == b"iVBORw0KGgo=\r\n"
    parsed = parse(raw)
    assert parsed.bodystructure == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" %s NIL NIL NIL NIL)'
        b'(("text" "html" ("charset" "us-ascii") NIL NIL "7BIT" %s NIL NIL NIL NIL)'
        b'("image" "png" NIL "<pic1@example.org>" NIL "base64" %d NIL'
        b' ("inline" ("filename" "trip.png")) NIL NIL)'
        b' "related" ("boundary" "inner" "type" "text/html") NIL NIL NIL)'
        b' "alternative" ("boundary" "outer") NIL NIL NIL)' % (size(plain), size(html), len(png))
    )
    assert parsed.body == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" %s)'
        b'(("text" "html" ("charset" "us-ascii") NIL NIL "7BIT" %s)'
        b'("image" "png" NIL "<pic1@example.org>" NIL "base64" %d) "related") "alternative")'
        % (size(plain), size(html), len(png))
    )
    assert parsed.envelope == (
        b'("Thu, 26 Nov 2026 09:00:00 +0100" "Pictures from the trip" '
        b'(("Newsletter" NIL "news" "example.org")) (("Newsletter" NIL "news" "example.org")) '
        b'(("Newsletter" NIL "news" "example.org")) ((NIL NIL "reader" "example.net")) '
        b'NIL NIL NIL "<trip@example.org>")'
    )
    assert parsed.preview == "See the pictures from the trip."


def test_05_message_rfc822_attachment() -> None:
    raw = load("05-message-rfc822.eml")
    intro = seg(raw, b"us-ascii\r\n\r\n", b"\r\n--fwd")
    inner = seg(raw, b"Content-Disposition: inline\r\n\r\n", b"\r\n--fwd--")
    plain = seg(raw, b"us-ascii\r\n\r\n", b"\r\n--notes-alt", after=b"--notes-alt")
    html = seg(raw, b"us-ascii\r\n\r\n", b"\r\n--notes-alt--", after=b"text/html")
    assert inner.startswith(b"From: Ivan") and inner.endswith(b"--notes-alt--\r\n")
    ivan = b'(("Ivan" NIL "ivan" "example.com"))'
    inner_envelope = (
        b'("Thu, 26 Nov 2026 11:00:00 +0000" "Meeting notes" %s %s %s '
        b'((NIL NIL "team" "example.com")) (("Grace" NIL "grace" "example.org")) NIL '
        b'"<agenda@example.com>" "<notes@example.com>")' % (ivan, ivan, ivan)
    )
    parsed = parse(raw)
    assert parsed.bodystructure == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" %s NIL NIL NIL NIL)'
        b'("message" "rfc822" NIL NIL NIL "7BIT" %d %s '
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" %s NIL NIL NIL NIL)'
        b'("text" "html" ("charset" "us-ascii") NIL NIL "7BIT" %s NIL NIL NIL NIL)'
        b' "alternative" ("boundary" "notes-alt") NIL NIL NIL)'
        b' %d NIL ("inline" NIL) NIL NIL)'
        b' "mixed" ("boundary" "fwd") NIL NIL NIL)'
        % (
            size(intro),
            len(inner),
            inner_envelope,
            size(plain),
            size(html),
            inner.count(b"\n"),
        )
    )
    assert parsed.body == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" %s)'
        b'("message" "rfc822" NIL NIL NIL "7BIT" %d %s '
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" %s)'
        b'("text" "html" ("charset" "us-ascii") NIL NIL "7BIT" %s) "alternative") %d) "mixed")'
        % (size(intro), len(inner), inner_envelope, size(plain), size(html), inner.count(b"\n"))
    )
    # The attached message's text is searchable too (its plain alternative).
    assert parsed.text == (
        "Forwarding the notes below.\n\n1. Budget approved.\n2. Next meeting Monday.\n"
    )
    # The preview does not look inside attached messages.
    assert parsed.preview == "Forwarding the notes below."
    assert parsed.sort_subject == "Meeting notes"


def test_06_digest_defaults_to_message_rfc822() -> None:
    raw = load("06-digest.eml")
    topics = seg(raw, b"text/plain\r\n\r\n", b"\r\n--digest-outer")
    first = seg(raw, b"--digest-inner\r\n\r\n", b"\r\n--digest-inner")
    first_body = seg(first, b"\r\n\r\n")
    second = seg(raw, b"--digest-inner\r\n\r\n", b"\r\n--digest-inner", after=b"everyone")
    second_body = seg(second, b"\r\n\r\n")
    footer = seg(raw, b"text/plain\r\n\r\n", b"\r\n--digest-inner--", after=b"Hi!")
    a = b'((NIL NIL "a" "example.org"))'
    b = b'((NIL NIL "b" "example.org"))'
    leaf = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" %s NIL NIL NIL NIL)'
    parsed = parse(raw)
    assert parsed.bodystructure == (
        b"(%s(" % (leaf % size(topics)) + b'("message" "rfc822" NIL NIL NIL "7BIT" %d '
        b'("Fri, 27 Nov 2026 10:00:00 +0000" "Hello" %s %s %s NIL NIL NIL NIL NIL) '
        b"%s %d NIL NIL NIL NIL)"
        % (len(first), a, a, a, leaf % size(first_body), first.count(b"\n"))
        + b'("message" "rfc822" NIL NIL NIL "7BIT" %d '
        b'("Fri, 27 Nov 2026 11:00:00 +0000" "Re: Hello" %s %s %s NIL NIL NIL NIL NIL) '
        b"%s %d NIL NIL NIL NIL)"
        % (len(second), b, b, b, leaf % size(second_body), second.count(b"\n"))
        + leaf % size(footer)
        + b' "digest" ("boundary" "digest-inner") NIL NIL NIL)'
        b' "mixed" ("boundary" "digest-outer") NIL NIL NIL)'
    )
    root = parse_mime(raw)
    assert root.section([2, 1], "HEADER") is not None
    assert root.section([2, 3], "HEADER") is None  # a text/plain part has no HEADER


def test_07_encoded_words() -> None:
    raw = load("07-encoded-words.eml")
    body = seg(raw, b"\r\n\r\n")
    assert body == "Grüße.\r\n".encode()
    parsed = parse(raw)
    joerg = b'(("=?UTF-8?B?SsO2cmc=?= =?UTF-8?Q?_M=C3=BCller?=" NIL "joerg" "example.de"))'
    # ENVELOPE gives the raw (unfolded) text; clients decode encoded-words themselves.
    assert parsed.envelope == (
        b'("Sun, 29 Nov 2026 12:00:00 +0100" '
        b'"=?UTF-8?B?w4ljaGFudGlsbG9u?= =?ISO-8859-1?Q?_de_caf=E9?= =?UTF-8?Q?_=E2=98=95?= plain"'
        b" %s %s %s "
        b'(("=?ISO-8859-1?Q?Fran=E7ois?=" NIL "francois" "example.fr")) NIL NIL NIL '
        b'"<ew@example.de>")' % (joerg, joerg, joerg)
    )
    assert parsed.bodystructure == (
        b'("text" "plain" ("charset" "utf-8") NIL NIL "8bit" 10 1 NIL NIL NIL NIL)'
    )
    # Adjacent words join without the space between them (RFC 2047 §6.2); text after the
    # last word keeps its space.
    assert parsed.subject == "Échantillon de café ☕ plain"
    assert parsed.from_ == "Jörg Müller <joerg@example.de>"
    assert parsed.to == "François <francois@example.fr>"
    # A character split across two words, and a word with an RFC 2231 language tag.
    assert "Keywords: café, tea" in parsed.headers_text.splitlines()
    assert parsed.text == "Grüße.\n"


def test_08_utf8_headers() -> None:
    raw = load("08-smtputf8.eml")
    joerg = b"((%s NIL %s %s))" % (lit("Jörg Müller"), lit("jörg"), lit("bücher.example"))
    parsed = parse(raw)
    # 8-bit values cannot be quoted strings: they are literals (RFC 9051 §4.3).
    assert parsed.envelope == (
        b'("Mon, 30 Nov 2026 07:00:00 +0100" %s %s %s %s ((%s NIL "sato" %s)) NIL NIL NIL %s)'
        % (
            lit("Grüße aus Köln"),
            joerg,
            joerg,
            joerg,
            lit("佐藤"),
            lit("例え.jp"),
            lit("<utf8@bücher.example>"),
        )
    )
    body = seg(raw, b"\r\n\r\n")
    assert parsed.bodystructure == (
        b'("text" "plain" ("charset" "utf-8") NIL NIL "8bit" %s NIL NIL NIL NIL)' % size(body)
    )
    assert parsed.subject == "Grüße aus Köln"
    assert parsed.from_ == "Jörg Müller <jörg@bücher.example>"
    assert parsed.to == "佐藤 <sato@例え.jp>"
    assert parsed.sort_from == "jörg"
    assert parsed.message_id == "<utf8@bücher.example>"


def test_09_missing_date_from_subject() -> None:
    raw = load("09-missing-headers.eml")
    body = seg(raw, b"\r\n\r\n")
    parsed = parse(raw)
    assert parsed.envelope == (
        b'(NIL NIL NIL NIL NIL ((NIL NIL "someone" "example.net")) NIL NIL NIL '
        b'"<nothing@example.net>")'
    )
    assert parsed.bodystructure == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" %s NIL NIL NIL NIL)' % size(body)
    )
    assert (parsed.subject, parsed.from_, parsed.sent_date) == ("", "", None)


def test_10_duplicate_subject_first_wins() -> None:
    raw = load("10-duplicate-subject.eml")
    a = b'((NIL NIL "a" "example.org"))'
    parsed = parse(raw)
    assert parsed.envelope == (
        b'("Tue, 1 Dec 2026 10:00:00 +0100" "First subject" %s %s %s NIL NIL NIL NIL NIL)'
        % (a, a, a)
    )
    assert parsed.subject == "First subject"
    assert parsed.sent_date == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    lines = parsed.headers_text.splitlines()
    assert "Subject: First subject" in lines and "Subject: Second subject" in lines
    assert parse_mime(raw).headers.get_all("subject") == [b"First subject", b"Second subject"]


def test_11_groups() -> None:
    raw = load("11-groups.eml")
    judy = b'(("Judy" NIL "judy" "example.org"))'
    parsed = parse(raw)
    # A group is (NIL NIL "name" NIL), its members, then (NIL NIL NIL NIL) (RFC 9051 §7.5.2).
    assert parsed.envelope == (
        b'("Wed, 2 Dec 2026 10:00:00 +0100" "Groups" %s %s %s '
        b'((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) '
        b'((NIL NIL "Friends" NIL)("Ken" NIL "ken" "example.org")'
        b'("Lee, L." NIL "lee" "example.org")(NIL NIL NIL NIL)'
        b'(NIL NIL "mallory" "example.org")) '
        b'((NIL NIL "Empty Group" NIL)(NIL NIL NIL NIL)) NIL NIL)' % (judy, judy, judy)
    )
    assert parsed.to == "undisclosed-recipients: ;"
    assert parsed.cc == (
        "Friends: Ken <ken@example.org>, Lee, L. <lee@example.org>;, mallory@example.org"
    )
    assert parsed.sort_cc == "ken"  # the first address, not the group's name
    assert parsed.sort_to == ""


def test_12_route_addresses_comments_missing_domain() -> None:
    raw = load("12-route-address.eml")
    parsed = parse(raw)
    # The source route is the adl (RFC 9051 §7.5.2 "at-domain-list"); a comment names an
    # address that has no display name; an address without a domain gets "" as host
    # (NIL would make it a group start).
    assert parsed.envelope == (
        b'("Thu, 3 Dec 2026 10:00:00 +0100" "Routes and comments" '
        b'((NIL "@relay1.example,@relay2.example" "nancy" "example.org")) '
        b'(("Oscar Operator" NIL "oscar" "example.org")) '
        b'(("Peggy" NIL "peggy" "example.org")) '
        b'((NIL NIL "quentin" "")("Rupert R." NIL "rupert" "example.org")) '
        b'(("Sybil" NIL "sybil" "")) NIL NIL NIL)'
    )
    assert parsed.from_ == "nancy@example.org"
    assert parsed.to == "quentin, Rupert R. <rupert@example.org>"
    assert parsed.cc == "Sybil <sybil>"


def test_13_close_delimiter_missing() -> None:
    raw = load("13-missing-close-delimiter.eml")
    first = seg(raw, b"text/plain\r\n\r\n", b"\r\n--trunc")
    second = seg(raw, b"text/plain\r\n\r\n", after=b"first part")
    assert (first, second) == (b"first part", b"second part, cut short\r\n")
    leaf = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" %s NIL NIL NIL NIL)'
    assert parse(raw).bodystructure == (
        b"(%s%s" % (leaf % size(first), leaf % size(second))
        + b' "mixed" ("boundary" "trunc") NIL NIL NIL)'
    )


def test_14_boundary_lookalikes_are_text() -> None:
    raw = load("14-boundary-in-text.eml")
    # "--bogus", " --b" and "text --b" are not delimiters of "b" (RFC 2046 §5.1.1: the
    # delimiter is "--b" at the start of a line followed only by whitespace), nor is
    # "--b-inner" one of "b". "--b \t" (trailing whitespace) is.
    first = seg(raw, b"text/plain\r\n\r\n", b"\r\n--b-inner")
    assert first.endswith(b"text --b in the middle neither")
    second = seg(raw, b"text/plain\r\n\r\n", b"\r\n--b-inner--", after=b"neither")
    last = seg(raw, b"text/plain\r\n\r\n", b"\r\n--b--", after=b"--b \t")
    leaf = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" %s NIL NIL NIL NIL)'
    assert parse(raw).bodystructure == (
        b"((%s%s" % (leaf % size(first), leaf % size(second))
        + b' "alternative" ("boundary" "b-inner") NIL NIL NIL)'
        + leaf % size(last)
        + b' "mixed" ("boundary" "b") NIL NIL NIL)'
    )
    assert "epilogue" not in parse(raw).text


def test_15_empty_message() -> None:
    parsed = parse(load("15-empty.eml"))
    assert parsed.envelope == NIL10
    assert parsed.bodystructure == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 0 0 NIL NIL NIL NIL)'
    )
    assert parsed.body == b'("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 0 0)'
    assert (parsed.size, parsed.text, parsed.preview, parsed.headers_text) == (0, "", "", "")


def test_16_header_only() -> None:
    raw = load("16-header-only.eml")
    a = b'((NIL NIL "a" "example.org"))'
    parsed = parse(raw)
    assert parsed.envelope == b'(NIL "Only a header" %s %s %s NIL NIL NIL NIL NIL)' % (a, a, a)
    assert parsed.bodystructure == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 0 0 NIL NIL NIL NIL)'
    )
    root = parse_mime(raw)
    assert root.section([], "HEADER") == (0, len(raw))
    assert root.section([], "TEXT") == (len(raw), len(raw))


def test_17_no_empty_line_is_all_header() -> None:
    raw = load("17-no-blank-line.eml")
    assert not raw.endswith(b"\n")
    a = b'((NIL NIL "a" "example.org"))'
    parsed = parse(raw)
    assert parsed.envelope == (
        b'("Sun, 6 Dec 2026 10:00:00 +0100" "No empty line" %s %s %s NIL NIL NIL NIL NIL)'
        % (a, a, a)
    )
    assert parsed.bodystructure == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 0 0 NIL NIL NIL NIL)'
    )
    assert parsed.sent_date == datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def test_18_bare_lf() -> None:
    raw = load("18-bare-lf.eml")
    assert b"\r" not in raw
    plain = seg(raw, b"us-ascii\n\n", b"\n--lf")
    html = seg(raw, b"us-ascii\n\n", b"\n--lf--", after=b"text/html")
    assert plain == b"Unix line endings\neverywhere.\n"
    parsed = parse(raw)
    assert parsed.bodystructure == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" %s NIL NIL NIL NIL)'
        b'("text" "html" ("charset" "us-ascii") NIL NIL "7BIT" %s NIL NIL NIL NIL)'
        b' "alternative" ("boundary" "lf") NIL NIL NIL)' % (size(plain), size(html))
    )
    trent = b'(("Trent" NIL "trent" "example.org"))'
    assert parsed.envelope == (
        b'("Mon, 7 Dec 2026 10:00:00 +0100" "Bare LF" %s %s %s '
        b'((NIL NIL "victor" "example.org")) NIL NIL NIL NIL)' % (trent, trent, trent)
    )
    assert parsed.text == "Unix line endings\neverywhere.\n"


def test_19_nul_bytes() -> None:
    raw = load("19-nul-bytes.eml")
    body = seg(raw, b"\r\n\r\n")
    assert body == b"body with \x00 a NUL\r\n"
    a = b'((NIL NIL "a" "example.org"))'
    parsed = parse(raw)
    # NUL is not a CHAR8 (RFC 9051 §9): the subject goes out as a literal with U+FFFD.
    assert parsed.envelope == (
        b'("Tue, 8 Dec 2026 10:00:00 +0100" %s %s %s %s NIL NIL NIL NIL NIL)'
        % (lit("Nul\ufffdbyte"), a, a, a)
    )
    assert parsed.bodystructure == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" %s NIL NIL NIL NIL)' % size(body)
    )
    assert parsed.subject == "Nul\x00byte"


def test_20_long_folded_headers() -> None:
    raw = load("20-long-header.eml")
    subject = b"\t".join(b"word%d" % i for i in range(200))  # folds removed, WSP kept
    parsed = parse(raw)
    assert parsed.envelope == (
        b'("Wed, 9 Dec 2026 10:00:00 +0100" "%s" %s %s %s NIL NIL NIL NIL NIL)'
        % (subject, *[b'((NIL NIL "a" "example.org"))'] * 3)
    )
    assert parsed.references == " ".join(f"<ref-{i:04d}@example.org>" for i in range(300))
    assert ("X-Long: " + "x" * 20000) in parsed.headers_text.splitlines()
    body = seg(raw, b"\r\n\r\n")
    assert parsed.bodystructure == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" %s NIL NIL NIL NIL)' % size(body)
    )


def test_21_content_type_with_comments_and_odd_case() -> None:
    raw = load("21-content-type-comments.eml")
    body = seg(raw, b"\r\n\r\n")
    parsed = parse(raw)
    # Comments vanish, spaces around "=" are tolerated, names and type keep their case; the
    # Content-Language list loses its comment.
    assert parsed.bodystructure == (
        b'("TEXT" "Plain" ("CHARSET" "ISO-8859-1" "Format" "Flowed") "<odd@example.org>" NIL'
        b' "Quoted-Printable" %s NIL NIL ("en" "de") NIL)' % size(body)
    )
    assert parsed.text == "Café = coffee.\n"


def test_22_unknown_charset() -> None:
    raw = load("22-unknown-charset.eml")
    body = seg(raw, b"\r\n\r\n")
    parsed = parse(raw)
    assert parsed.bodystructure == (
        b'("text" "plain" ("charset" "x-klingon") NIL NIL "8bit" %s NIL NIL NIL NIL)' % size(body)
    )
    assert parsed.envelope.startswith(
        b'("Thu, 10 Dec 2026 10:00:00 +0100" "=?x-klingon?Q?caf=E9?="'
    )
    # An unknown charset is read as UTF-8 if it is, else as Windows-1252/Latin-1.
    assert parsed.subject == "café"
    assert parsed.text == "café naïve\n"


def test_23_first_line_not_a_header() -> None:
    raw = load("23-not-a-header.eml")
    parsed = parse(raw)
    assert parsed.envelope == NIL10
    assert parsed.bodystructure == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" %s NIL NIL NIL NIL)' % size(raw)
    )
    assert parsed.headers_text == ""
    assert parsed.preview.startswith("This message starts with text")


@pytest.mark.parametrize("name", ["24-no-boundary-param.eml", "25-empty-boundary.eml"])
def test_24_25_multipart_without_usable_boundary_is_a_text_leaf(name: str) -> None:
    raw = load(name)
    body = seg(raw, b"\r\n\r\n")
    parsed = parse(raw)
    assert parsed.bodystructure == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" %s NIL NIL NIL NIL)' % size(body)
    )
    assert parse_mime(raw).children == []


def test_26_base64_quoted_printable_html() -> None:
    raw = load("26-base64-qp-html.eml")
    plain = seg(raw, b"base64\r\n\r\n", b"\r\n--enc-alt")
    html = seg(raw, b"quoted-printable\r\n\r\n", b"\r\n--enc-alt--")
    csv = seg(raw, b"base64\r\n\r\n", b"\r\n--enc", after=b"numbers.csv")
    jpeg = seg(raw, b"base64\r\n\r\n", b"\r\n--enc--", after=b"photo.jpg")
    parsed = parse(raw)
    assert parsed.bodystructure == (
        b'((("text" "plain" ("charset" "utf-8") NIL NIL "base64" %s NIL NIL NIL NIL)'
        b'("text" "html" ("charset" "iso-8859-1") NIL NIL "quoted-printable" %s'
        b" NIL NIL NIL NIL)"
        b' "alternative" ("boundary" "enc-alt") NIL NIL NIL)'
        b'("text" "csv" ("charset" "us-ascii" "name" "numbers.csv") NIL NIL "base64" %s NIL'
        b' ("attachment" ("filename" "numbers.csv")) NIL NIL)'
        b'("image" "jpeg" ("name" "photo.jpg") NIL NIL "base64" %d NIL'
        b' ("attachment" ("filename" "photo.jpg")) NIL NIL)'
        b' "mixed" ("boundary" "enc") NIL NIL NIL)'
        % (size(plain), size(html), size(csv), len(jpeg))
    )
    assert parsed.text == (
        "Hello Xavier,\n\nthe numbers are in the attached file. Cheers — Walter\n"
        "\nyear,amount\n2026,42\n"
    )
    assert parsed.preview == "Hello Xavier, the numbers are in the attached file. Cheers — Walter"
    root = parse_mime(raw)
    html_part = root.find([1, 2])
    assert html_part is not None
    # Title, script and comment dropped; entities decoded; soft line breaks joined.
    assert part_text(raw, html_part) == (
        "Hello Xavier,\nthe numbers are in the attached file. Cheers — Walter & co, café"
    )


def test_27_garbage() -> None:
    raw = load("27-garbage.eml")
    parsed = parse(raw)
    # The first line has a colon, but what precedes it is not a field name: all body.
    assert parsed.envelope == NIL10
    assert parsed.bodystructure == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" %s NIL NIL NIL NIL)' % size(raw)
    )


def test_28_message_global() -> None:
    raw = load("28-message-global.eml")
    intro = seg(raw, b"us-ascii\r\n\r\n", b"\r\n--g")
    inner = seg(raw, b"message/global\r\n\r\n", b"\r\n--g--")
    inner_body = seg(inner, b"\r\n\r\n")
    assert inner_body == b"Szia!"
    odon = b'((%s NIL %s "example.hu"))' % (lit("Ödön"), lit("ödön"))
    parsed = parse(raw)
    # message/global (RFC 6532 §3.7) is described like message/rfc822 (RFC 9051 §7.5.2).
    assert parsed.bodystructure == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" %s NIL NIL NIL NIL)'
        b'("message" "global" NIL NIL NIL "7BIT" %d '
        b'("Fri, 11 Dec 2026 09:00:00 +0100" %s %s %s %s NIL NIL NIL NIL NIL) '
        b'("text" "plain" ("charset" "utf-8") NIL NIL "8bit" %s NIL NIL NIL NIL) %d'
        b" NIL NIL NIL NIL)"
        b' "mixed" ("boundary" "g") NIL NIL NIL)'
        % (
            size(intro),
            len(inner),
            lit("Üdvözlet"),
            odon,
            odon,
            odon,
            size(inner_body),
            inner.count(b"\n"),
        )
    )
    assert parsed.text == "See attached.\nSzia!"


def test_29_latin1_header_octets() -> None:
    raw = load("29-latin1-header.eml")
    parsed = parse(raw)
    assert parsed.envelope == (
        b'("Sun, 13 Dec 2026 10:00:00 +0100" %s ((%s NIL "rene" "example.fr"))'
        b' ((%s NIL "rene" "example.fr")) ((%s NIL "rene" "example.fr")) NIL NIL NIL NIL NIL)'
        % (lit(b"R\xe9sum\xe9 for the job"), lit(b"Ren\xe9"), lit(b"Ren\xe9"), lit(b"Ren\xe9"))
    )
    # Not UTF-8 (RFC 6532), so read as Latin-1.
    assert parsed.subject == "Résumé for the job"
    assert parsed.from_ == "René <rene@example.fr>"


@pytest.mark.parametrize("path", sorted(DATA.glob("*.eml")), ids=lambda p: p.name)
def test_parts_nest_inside_their_parents(path: Path) -> None:
    """Across the corpus, parts tile their parent: every part lies inside its parent's body,
    siblings do not overlap, and the header ends where the body starts or before."""
    raw = path.read_bytes()
    root = parse_mime(raw)
    stack = [root]
    while stack:
        part = stack.pop()
        assert part.header_start <= part.header_end <= part.body_start <= part.body_end
        previous_end = part.body_start
        for child in part.children:
            assert previous_end <= child.header_start and child.body_end <= part.body_end
            previous_end = child.body_end
            stack.append(child)
    assert (root.header_start, root.body_end) == (0, len(raw))

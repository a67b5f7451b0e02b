"""SORT (RFC 5256 §3, RFC 5957) and THREAD (RFC 5256 §2) over message rows, and the
thread-list syntax of the THREAD response."""

from __future__ import annotations

import pytest

from courrier.imap.search import ThreadNode, format_threads, sort, sort_address, thread
from courrier.imap.thread import casemap
from courrier.store.models import Message
from tests.imap_search.test_search import mail, make_message, ts

# -- SORT ------------------------------------------------------------------------------------


@pytest.fixture
def rows() -> list[Message]:
    """Four messages (UID = sequence number) with ties on some keys."""
    specs = [
        # from, to, cc, subject, date, internal date, body length
        (
            "Zed <alice@example.org>",
            "bob@example.org",
            "carol@example.org",
            "Re: Banana",
            "Tue, 05 Mar 2024 10:00:00 +0000",
            ts(2024, 3, 9),
            1000,
        ),
        (
            "=?UTF-8?Q?=C3=89mile?= <emile@example.org>",
            "Xavier <xavier@example.org>",
            None,
            "apple",
            "Sun, 03 Mar 2024 11:00:00 +0100",
            ts(2024, 3, 8),
            300,
        ),
        ("bob@example.org", None, None, "[list] Cherry", None, ts(2024, 3, 4), 10),
        (
            "Alice <ALICE@example.org>",
            "dave@example.org",
            None,
            "Apple",
            "Sun, 03 Mar 2024 10:00:00 +0000",
            ts(2024, 3, 8),
            600,
        ),
    ]
    return [
        make_message(
            mail(subject, from_=from_, to=to, cc=cc, date=date, body="x" * length),
            uid,
            internal_date=internal,
        )
        for uid, (from_, to, cc, subject, date, internal, length) in enumerate(specs, 1)
    ]


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ([("ARRIVAL", False)], [3, 2, 4, 1]),
        # REVERSE reverses the criterion, not the sequence order of ties (2 before 4).
        ([("ARRIVAL", True)], [1, 2, 4, 3]),
        # 2 and 4 were both sent at 10:00 UTC; 3 has no Date: its internal date counts.
        ([("DATE", False)], [2, 4, 3, 1]),
        ([("DATE", True)], [1, 3, 2, 4]),
        # addr-mailbox of the first From, without regard to case: "alice" = "ALICE".
        ([("FROM", False)], [1, 4, 3, 2]),
        ([("FROM", True)], [2, 3, 1, 4]),
        # Base subjects: "apple" = "Apple", "Re: " and "[list] " do not count.
        ([("SUBJECT", False)], [2, 4, 1, 3]),
        ([("SUBJECT", True)], [3, 1, 2, 4]),
        ([("TO", False)], [3, 1, 4, 2]),  # no To sorts first
        ([("TO", True)], [2, 4, 1, 3]),
        ([("CC", False)], [2, 3, 4, 1]),
        ([("CC", True)], [1, 2, 3, 4]),
        ([("SIZE", False)], [3, 2, 4, 1]),
        ([("SIZE", True)], [1, 4, 2, 3]),
        # RFC 5957: the display name, else the address: Alice, bob@…, Émile, Zed.
        ([("DISPLAYFROM", False)], [4, 3, 2, 1]),
        ([("DISPLAYFROM", True)], [1, 2, 3, 4]),
        ([("DISPLAYTO", False)], [3, 1, 4, 2]),  # "", bob@…, dave@…, Xavier
        ([("DISPLAYTO", True)], [2, 4, 1, 3]),
        ([("FROM", False), ("DATE", True)], [1, 4, 3, 2]),
        ([("FROM", False), ("DATE", False)], [4, 1, 3, 2]),
        ([("SUBJECT", True), ("ARRIVAL", False)], [3, 1, 2, 4]),
        ([("subject", False), ("size", True)], [4, 2, 1, 3]),
        ([], [1, 2, 3, 4]),
    ],
)
def test_sort(rows: list[Message], criteria: list[tuple[str, bool]], expected: list[int]) -> None:
    assert [m.uid for m in sort(rows, criteria)] == expected


def test_sort_keeps_given_order_for_ties(rows: list[Message]) -> None:
    # Equal keys keep the order given (SEARCH gives messages in sequence order).
    subset = [rows[3], rows[1]]
    assert [m.uid for m in sort(subset, [("SUBJECT", False)])] == [4, 2]
    assert [m.uid for m in sort(subset, [("SUBJECT", True)])] == [4, 2]


def test_sort_unknown_criterion(rows: list[Message]) -> None:
    with pytest.raises(ValueError, match="WEIGHT"):
        sort(rows, [("WEIGHT", False)])


def _rows(**fields: list[str | None]) -> list[Message]:
    """Messages 1, 2, ... with the given header values (one list per field of ``mail``),
    arrived a minute apart in that order."""
    count = len(next(iter(fields.values())))
    return [
        make_message(
            mail(**{name: values[i] for name, values in fields.items()}),  # type: ignore[arg-type]
            i + 1,
            internal_date=ts(2024, 3, 4, 10, i),
        )
        for i in range(count)
    ]


def _order(rows: list[Message], name: str, reverse: bool = False) -> list[int]:
    return [m.uid for m in sort(rows, [(name, reverse)])]


# imaptest's sort-subject messages (their Subject fields; 9 has none).
_IMAPTEST_SUBJECTS: list[str | None] = [
    "a",
    "C",
    "b",
    "_",
    "[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)",
    "b (a)",
    "Re: [FWD: c]",
    "[xyz]",
    None,
    "=?iso-8859-1?q?_?=",
    "Re: =?utf-8?q?b?=",
    "=?iso-8859-1?q?RE:_C?=",
    "=?us-ascii?b?UmU6IGM=?=",
    "Ad: Re: Ad: Re: Ad: x",
    "re: [fwd: [fwd: re: [fwd: babylon]]]",
]


def test_sort_subject_compares_titlecase_as_imaptest_expects() -> None:
    # i;unicode-casemap (RFC 5051 §2) maps letters to titlecase: "[xyz]" (0x5B) and "_" (0x5F)
    # sort after every letter, not before as they would after lower-casing.
    rows = _rows(subject=_IMAPTEST_SUBJECTS)
    assert _order(rows, "SUBJECT") == [9, 10, 1, 14, 3, 5, 11, 6, 15, 2, 7, 12, 13, 8, 4]
    assert _order(rows, "SUBJECT", True) == [4, 8, 2, 7, 12, 13, 15, 6, 3, 5, 11, 14, 1, 9, 10]


def test_casemap() -> None:
    assert casemap("a") == casemap("A") < casemap("[") < casemap("_")
    assert casemap("Émile") == casemap("ÉMILE") == casemap("E\u0301mile")
    assert casemap("ﬁle") == casemap("FILE")
    assert casemap("straße") != casemap("strasse")  # ß has no simple titlecase mapping


def test_sort_addresses_a_group_counts_by_its_name() -> None:
    # imaptest sort-addresses: RFC 5256 §3 sorts on the addr-mailbox of the first address of
    # the ENVELOPE's list, which for a group is its start, the group's name: "user2" here,
    # equal to message 1's "user2@domain2.org" (a tie: sequence order), not "blah".
    rows = _rows(
        from_=["user2@domain2.org", "user2@domain1.org", "user1@domain1.org"],
        to=["foo bar <user2@domain2.org>", "user2@domain1.org", "user1@domain1.org"],
        cc=["user2@domain2.org (foo bar)", "user2: blah@domain1.org;", "user1@domain1.org"],
    )
    for name in ("FROM", "TO", "CC"):
        assert _order(rows, name) == [3, 1, 2], name
        assert _order(rows, name, True) == [1, 2, 3], name
        assert [m.uid for m in sort(rows, [(name, False), ("ARRIVAL", True)])] == [3, 2, 1]
    assert sort_address(rows[1], "cc") == "user2"
    assert sort_address(rows[0], "cc") == "user2"
    # Encoded group names are decoded; an empty group still has its name.
    grouped = _rows(to=["=?utf-8?q?caf=C3=A9?=: x@y;", "empty:;", "Zed: ;, a@b"])
    assert [sort_address(m, "to") for m in grouped] == ["café", "empty", "Zed"]


def test_sort_display_to_groups_by_name() -> None:
    # imaptest sort-display-to (RFC 5957): a group's name is what is displayed for it.
    rows = _rows(
        to=[
            "foo bar <a@b.c>",
            "b@c.d",
            "d",
            "=?iso-8859-1?q?foo_aar?= <e@f.g>",
            "=?iso-8859-1?q?foo_car?= <f@g.h>",
            "a: xx@xx.org, yy@yy.org;",
            "z: aa@aa.org, bb@bb.org;",
            "empty:;",
        ]
    )
    assert _order(rows, "DISPLAYTO") == [6, 2, 3, 8, 4, 1, 5, 7]
    assert _order(rows, "DISPLAYTO", True) == [7, 5, 1, 4, 8, 3, 2, 6]
    froms = _rows(
        from_=[
            "foo bar <a@b.c>",
            "b@c.d",
            "d",
            "=?iso-8859-1?q?foo_aar?= <e@f.g>",
            "=?iso-8859-1?q?foo_car?= <f@g.h>",
        ]
    )
    assert _order(froms, "DISPLAYFROM") == [2, 3, 4, 1, 5]
    assert _order(froms, "DISPLAYFROM", True) == [5, 1, 4, 3, 2]


# -- THREAD=REFERENCES (RFC 5256 §2.2) -------------------------------------------------------


def _msg(
    uid: int,
    subject: str,
    day: int,
    hour: int = 10,
    minute: int = 0,
    *,
    message_id: str | None = None,
    references: str | None = None,
    in_reply_to: str | None = None,
) -> Message:
    return make_message(
        mail(
            subject,
            date=f"{day:02d} Mar 2024 {hour:02d}:{minute:02d}:00 +0000",
            message_id=message_id,
            references=references,
            in_reply_to=in_reply_to,
        ),
        uid,
        internal_date=ts(2024, 4, 1) - uid,  # arrival order unlike the sent dates
    )


def _reference_set() -> list[Message]:
    return [
        _msg(1, "Hello", 1, message_id="<a@x>"),
        _msg(2, "Re: Hello", 1, 11, message_id="<b@x>", references="<a@x>"),
        _msg(3, "Re: Hello", 1, 12, message_id="<c@x>", references="<a@x>\r\n <b@x>"),
        _msg(4, "Re: Hello", 1, 11, 30, message_id="<d@x>", in_reply_to="<a@x>"),
        # Two replies to a message that is not there: a dummy holds them together.
        _msg(5, "Lost", 2, 10, message_id="<e@x>", references="<gone@x>"),
        _msg(6, "Re: Lost", 2, 9, message_id="<f@x>", references="<gone@x>"),
        # One reply to two missing messages: the dummies are pruned.
        _msg(7, "Orphan", 3, message_id="<g@x>", references="<gone2@x> <gone3@x>"),
        # A reply by subject only joins the thread of its base subject.
        _msg(8, "Re: Hello", 4, message_id="<h@x>"),
        # Two non-replies with one base subject: a dummy made to group them.
        _msg(9, "Meeting", 5, message_id="<i@x>"),
        _msg(10, "meeting", 6, message_id="<j@x>"),
        # No Message-ID, and a duplicate one: each gets an ID of its own.
        _msg(11, "Solo", 7),
        _msg(12, "Dup", 8, message_id="<a@x>"),
        # References in a loop: the later link is not made.
        _msg(13, "Loop", 9, message_id="<m@x>", references="<n@x>"),
        _msg(14, "Re: Loop", 10, message_id="<n@x>", references="<m@x>"),
        # A message that references itself.
        _msg(15, "Self", 11, message_id="<o@x>", references="<o@x>"),
        # Same base subject as the dummy of 5 and 6: joins it.
        _msg(16, "Lost", 12, message_id="<p@x>"),
        # A reply first, then its non-reply: the non-reply leads.
        _msg(17, "Re: Topic", 13, message_id="<q@x>"),
        _msg(18, "Topic", 14, message_id="<r@x>"),
    ]


def test_thread_references() -> None:
    threads = thread(_reference_set(), "REFERENCES")
    assert format_threads(threads, uid=True) == (
        "(1 (2 3)(4)(8))((6)(5)(16))(7)((9)(10))(11)(12)(14 13)(15)(18 17)"
    )
    # The structure behind it: a dummy at the top, messages under it.
    lost = threads[1]
    assert lost.message is None
    assert [c.message.uid for c in lost.children if c.message] == [6, 5, 16]


def test_thread_sequence_numbers() -> None:
    messages = _reference_set()[:4]
    seqs = {1: 10, 2: 20, 3: 30, 4: 40}
    text = format_threads(thread(messages, "references"), seq_of=seqs.get)
    assert text == "(10 (20 30)(40))"
    with pytest.raises(ValueError, match="UID 4"):
        format_threads(thread(messages, "REFERENCES"), seq_of={1: 1, 2: 2, 3: 3}.get)


def test_thread_last_reference_is_the_parent() -> None:
    # 3's References put <b@x> (not yet seen) under 1; when <b@x> arrives, its own References
    # name <y@x> as its parent, and that link replaces the guessed one (§2.2 step 1.B).
    messages = [
        _msg(1, "T", 1, message_id="<a@x>"),
        _msg(2, "U", 2, message_id="<y@x>"),
        _msg(3, "Re: U", 4, message_id="<c@x>", references="<a@x> <b@x>"),
        _msg(4, "Re: U", 3, message_id="<b@x>", references="<y@x>"),
    ]
    assert format_threads(thread(messages, "REFERENCES"), uid=True) == "(1)(2 4 3)"


def test_thread_in_reply_to_only_when_no_references() -> None:
    messages = [
        _msg(1, "T", 1, message_id="<a@x>"),
        _msg(2, "U", 2, message_id="<b@x>"),
        # References win over In-Reply-To.
        _msg(3, "V", 3, message_id="<c@x>", references="<b@x>", in_reply_to="<a@x>"),
        # References without a valid ID: In-Reply-To's first ID.
        _msg(4, "W", 4, message_id="<d@x>", references="junk", in_reply_to="x <a@x> <b@x>"),
    ]
    assert format_threads(thread(messages, "REFERENCES"), uid=True) == "(1 4)(2 3)"


def test_thread_message_ids_are_case_sensitive() -> None:
    messages = [
        _msg(1, "T", 1, message_id="<ABC@x>"),
        _msg(2, "U", 2, message_id="<b@x>", references="<abc@x>"),
    ]
    assert format_threads(thread(messages, "REFERENCES"), uid=True) == "(1)(2)"


def test_thread_deep_chains() -> None:
    count = 3000
    chain = [_msg(1, "Deep", 1, message_id="<m1@x>")]
    for n in range(2, count + 1):
        chain.append(
            _msg(n, "Re: Deep", 1, 10, 0, message_id=f"<m{n}@x>", in_reply_to=f"<m{n - 1}@x>")
        )
    text = format_threads(thread(chain, "REFERENCES"), uid=True)
    assert text == "(" + " ".join(str(n) for n in range(1, count + 1)) + ")"
    # A References field of thousands of missing IDs: a chain of dummies, all pruned.
    refs = " ".join(f"<r{n}@x>" for n in range(5000))
    hostile = [_msg(1, "Big", 1, message_id="<big@x>", references=refs), _msg(2, "Other", 2)]
    assert format_threads(thread(hostile, "REFERENCES"), uid=True) == "(1)(2)"


def test_thread_unknown_algorithm() -> None:
    with pytest.raises(ValueError, match="BYDATE"):
        thread([], "BYDATE")
    assert thread([], "REFERENCES") == []
    assert format_threads([]) == ""


# -- THREAD=ORDEREDSUBJECT (RFC 5256 §2.1) ----------------------------------------------------


def test_thread_ordered_subject() -> None:
    messages = [
        _msg(1, "Hello", 1),
        _msg(2, "Re: hello", 2),
        _msg(3, "Other", 1, 8),
        _msg(4, "Re: Other", 3),
        _msg(5, "HELLO", 1),  # same date as 1: sequence order
        _msg(6, "", 5),
        _msg(7, "", 4),
    ]
    threads = thread(messages, "ORDEREDSUBJECT")
    assert format_threads(threads, uid=True) == "(3 4)(1 (5)(2))(7 6)"
    # Every later message is a child of the first: siblings, not a chain.
    assert [c.message.uid for c in threads[1].children if c.message] == [5, 2]


# -- the thread-list syntax (RFC 5256 §4) ----------------------------------------------------


def _node(uid: int, *children: ThreadNode) -> ThreadNode:
    return ThreadNode(make_message(mail(), uid), list(children))


def test_format_rfc_example() -> None:
    threads = [
        _node(2),
        _node(3, _node(6, _node(4, _node(23)), _node(44, _node(7, _node(96))))),
    ]
    assert format_threads(threads, uid=True) == "(2)(3 6 (4 23)(44 7 96))"


def test_format_dummies() -> None:
    top_dummy = ThreadNode(None, [_node(3), _node(5, _node(9))])
    assert format_threads([top_dummy], uid=True) == "((3)(5 9))"
    # A dummy with one child (not left by the algorithms) is skipped over.
    inner = _node(1, ThreadNode(None, [_node(2)]))
    assert format_threads([inner], uid=True) == "(1 2)"
    nested = _node(1, ThreadNode(None, [_node(2), _node(3)]), _node(4))
    assert format_threads([nested], uid=True) == "(1 ((2)(3))(4))"

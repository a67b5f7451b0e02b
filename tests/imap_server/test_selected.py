"""The selected mailbox's numbering: sequence numbers of many UIDs by one walk."""

from __future__ import annotations

from array import array

from hypothesis import given
from hypothesis import strategies as st

from courrier.imap.selected import Selected
from courrier.store import Mailbox

_BOX = Mailbox(7, 1, "INBOX", None, 1, 1, 1, False)


@given(
    st.sets(st.integers(1, 200)).map(sorted),
    st.sets(st.integers(0, 220)).map(sorted),
)
def test_seqs_of_agrees_with_seq_of(view: list[int], asked: list[int]) -> None:
    sel = Selected(_BOX, False, 1, array("I", view), 1, rev1=False)
    assert sel.seqs_of(asked) == [sel.seq_of(uid) for uid in asked]


def test_seqs_of_a_view_with_gaps() -> None:
    sel = Selected(_BOX, False, 1, array("I", [3, 5, 9, 12]), 1, rev1=False)
    assert sel.seqs_of([1, 3, 4, 9, 12, 13]) == [None, 1, None, 3, 4, None]

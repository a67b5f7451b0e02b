"""THREAD (RFC 5256 §2.1 ORDEREDSUBJECT, §2.2 REFERENCES): messages arranged into threads, and
the thread-list syntax of the untagged THREAD response (RFC 5256 §4).

This module owns the threading algorithms. It works on message rows alone: Message-ID,
In-Reply-To, References, the decoded subject, its base subject (``Message.sort_subject``, RFC 5256
§2.1) and the dates. No I/O. Every walk over a tree is iterative, so a hostile References field
with thousands of IDs makes deep trees, never a RecursionError.

Choices within the RFC's latitude:

- "Sent date" is the Date field, or the internal date without one (§2.2); equal dates keep the
  messages' order, which is sequence-number order.
- Base subjects compare by ``casemap`` (§7 asks for i;unicode-casemap).
- A Message-ID is a ``<...>`` item (white space inside removed), compared case-sensitively; a
  message without one, or whose ID an earlier message already has, gets an ID of its own
  (§2.2 step 1.A).
- Only the last ``MAX_REFERENCES`` IDs of a References field are linked, which bounds the work
  (every link checks for loops) on absurd fields; real ones are far shorter.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from courrier.store.models import Message

__all__ = ["MAX_REFERENCES", "ThreadNode", "casemap", "format_threads", "thread"]

#: How many of a References field's IDs (the last ones) are linked.
MAX_REFERENCES = 1000


@dataclass(eq=False)
class ThreadNode:
    """One message of a thread, or a dummy (``message`` None) holding its children together: a
    message referenced but absent, or one made to group same-subject threads (§2.2)."""

    message: Message | None
    children: list[ThreadNode] = field(default_factory=list)


def thread(messages: Sequence[Message], algorithm: str) -> list[ThreadNode]:
    """The threads of ``messages`` (in sequence-number order) by ``algorithm``, REFERENCES or
    ORDEREDSUBJECT (any case); anything else raises ValueError."""
    name = algorithm.upper()
    if name == "REFERENCES":
        return _references(messages)
    if name == "ORDEREDSUBJECT":
        return _ordered_subject(messages)
    raise ValueError(f"unknown threading algorithm {algorithm!r}")


def format_threads(
    threads: Sequence[ThreadNode],
    *,
    uid: bool = False,
    seq_of: Callable[[int], int | None] | None = None,
) -> str:
    """The RFC 5256 §4 ``thread-list`` data, e.g. ``(2)(3 6 (4 23)(44 7 96))``: UIDs when ``uid``,
    else the sequence numbers ``seq_of(uid)`` gives (ValueError if it gives none)."""

    def number(m: Message) -> str:
        if uid:
            return str(m.uid)
        seq = None if seq_of is None else seq_of(m.uid)
        if seq is None:
            raise ValueError(f"no sequence number for UID {m.uid}")
        return str(seq)

    out: list[str] = []
    # Work stack: literal text, or a node whose chain of single children goes out as numbers
    # ("3 6"), followed by one parenthesised list per child where a node has several.
    stack: list[str | ThreadNode] = []
    for node in reversed(threads):
        stack += [")", node, "("]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        node = item
        while True:
            if node.message is not None:
                if out[-1] != "(":
                    out.append(" ")
                out.append(number(node.message))
            if len(node.children) != 1:
                break
            node = node.children[0]
        if node.children:
            if out[-1] not in ("(", ")"):
                out.append(" ")  # thread-members SP thread-nested
            for child in reversed(node.children):
                stack += [")", child, "("]
    return "".join(out)


# -- shared pieces -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _titlecase(char: str) -> str:
    """The simple titlecase mapping of one character (UnicodeData.txt field 14): Python only
    has the full one, which differs where it gives several characters (``ß`` → ``Ss``); those
    characters have no simple mapping and stay as they are."""
    title = char.title()
    return title if len(title) == 1 else char


def casemap(text: str) -> str:
    """A comparison key for i;unicode-casemap (RFC 5051 §2): every character mapped to its
    titlecase, NFKD decomposed, compared as code points (which orders as UTF-8 octets do).

    Titlecase is upper case for nearly every letter, so ``[`` (0x5B) and ``_`` (0x5F) sort
    after the letters, as Dovecot sorts them: lower-casing would put them before. The mapping
    is applied again after decomposition, so that compatibility characters compare with
    their plain forms whatever their case (``ﬁle`` with ``FILE``).
    """
    if text.isascii():
        return text.upper()
    mapped = "".join(map(_titlecase, text))
    return "".join(map(_titlecase, unicodedata.normalize("NFKD", mapped)))


def _sent(m: Message) -> int:
    return m.internal_date if m.sent_date is None else m.sent_date


# RFC 5256 §2.1: a subject is a reply or forward when extraction removes a subj-refwd
# ("Re:", "Fwd:", "Fw:", optionally with a [blob]) after leading [blob]s, a "(fwd)" trailer or a
# "[fwd: ...]" wrapping.
_REPLY = re.compile(
    r"^\s*(?:\[[^\[\]]*\]\s*)*(?:(?:re|fwd?)\s*(?:\[[^\[\]]*\]\s*)?:|\[fwd:)|\(fwd\)\s*$",
    re.IGNORECASE,
)


def _is_reply(subject: str) -> bool:
    return _REPLY.search(subject[:1000]) is not None


# -- ORDEREDSUBJECT (§2.1) ---------------------------------------------------------------------


def _ordered_subject(messages: Sequence[Message]) -> list[ThreadNode]:
    """Sort by base subject then sent date; each run of one base subject is a thread whose first
    message is the parent of all the others; threads ordered by their first message's date."""
    order = sorted(
        range(len(messages)),
        key=lambda i: (casemap(messages[i].sort_subject), _sent(messages[i]), i),
    )
    threads: list[tuple[int, int, ThreadNode]] = []
    current = ""
    for i in order:
        m = messages[i]
        subject = casemap(m.sort_subject)
        if threads and subject == current:
            threads[-1][2].children.append(ThreadNode(m))
        else:
            threads.append((_sent(m), i, ThreadNode(m)))
            current = subject
    threads.sort(key=lambda t: (t[0], t[1]))
    return [node for _, _, node in threads]


# -- REFERENCES (§2.2) ------------------------------------------------------------------------

_MSG_ID = re.compile(r"<([^<>]*)>")


def _ids(value: str) -> list[str]:
    found: list[str] = []
    for match in _MSG_ID.finditer(value):
        inner = "".join(match.group(1).split())
        if inner:
            found.append(f"<{inner}>")
    return found


class _Container:
    __slots__ = ("children", "message", "order", "parent")

    def __init__(self) -> None:
        self.message: Message | None = None
        self.order = 0  # position in the input: the tie-break after the sent date
        self.parent: _Container | None = None
        self.children: list[_Container] = []


def _link(parent: _Container, child: _Container) -> None:
    child.parent = parent
    parent.children.append(child)


def _unlink(child: _Container) -> None:
    parent = child.parent
    if parent is not None:
        parent.children.remove(child)
        child.parent = None


def _would_loop(parent: _Container, child: _Container) -> bool:
    """Whether making ``parent`` the parent of ``child`` closes a loop: ``parent`` is ``child``
    or one of its descendants."""
    node: _Container | None = parent
    while node is not None:
        if node is child:
            return True
        node = node.parent
    return False


def _preorder(roots: list[_Container]) -> list[_Container]:
    out: list[_Container] = []
    stack = list(reversed(roots))
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(reversed(node.children))
    return out


def _references(messages: Sequence[Message]) -> list[ThreadNode]:
    table: dict[str, _Container] = {}
    everything: list[_Container] = []

    def container(message_id: str) -> _Container:
        found = table.get(message_id)
        if found is None:
            found = table[message_id] = _Container()
            everything.append(found)
        return found

    # (1) Link messages by their references.
    for order, m in enumerate(messages):
        own = _ids(m.message_id)[:1]
        if own and (own[0] not in table or table[own[0]].message is None):
            this = container(own[0])
        else:  # (1)(A): no or a duplicate Message-ID: a unique one (outside the <...> space)
            this = container(f"\0{order}")
        this.message = m
        this.order = order
        # The References field, else the first ID of In-Reply-To.
        refs = _ids(m.references)[-MAX_REFERENCES:] or _ids(m.in_reply_to)[:1]
        previous: _Container | None = None
        for ref in refs:  # (1)(A): each reference the parent of the next
            current = container(ref)
            if (
                previous is not None
                and current.parent is None  # an existing link stays
                and not _would_loop(previous, current)
            ):
                _link(previous, current)
            previous = current
        # (1)(B): the last reference is the message's parent, replacing any earlier guess.
        _unlink(this)
        if previous is not None and not _would_loop(previous, this):
            _link(previous, this)

    # (2) The root set; (3) the ID table is no longer needed.
    roots = [c for c in everything if c.parent is None]
    table.clear()

    # (4) Prune dummies: childless ones go; others give their children to their parent, except
    # at the top where a dummy with several children stays (bottom-up, so children are done).
    for node in reversed(_preorder(roots)):
        kept: list[_Container] = []
        for child in node.children:
            if child.message is not None:
                kept.append(child)
            else:
                for grandchild in child.children:
                    grandchild.parent = node
                kept.extend(child.children)
        node.children = kept
    top: list[_Container] = []
    for node in roots:
        if node.message is not None or len(node.children) > 1:
            top.append(node)
        elif node.children:
            node.children[0].parent = None
            top.append(node.children[0])
    roots = top

    # (5) Sort the top level by sent date, a dummy by its first child's.
    _sort_siblings(roots, deep=False)

    # (6) Gather top-level threads by base subject.
    def subject_of(node: _Container) -> tuple[str, str]:
        m = node.message if node.message is not None else node.children[0].message
        assert m is not None  # a dummy's children are messages after (4)
        return casemap(m.sort_subject), m.subject

    subjects: dict[str, _Container] = {}
    for node in roots:  # (6)(C): which thread of each subject the others join
        base, subject = subject_of(node)
        if not base:
            continue
        held = subjects.get(base)
        if held is None or (
            held.message is not None
            and (
                node.message is None or (_is_reply(subject_of(held)[1]) and not _is_reply(subject))
            )
        ):
            subjects[base] = node
    merged: list[_Container] = []
    for node in roots:  # (6)(D)
        base, subject = subject_of(node)
        held = subjects.get(base) if base else None
        if held is None or held is node or node.parent is not None:
            continue
        if held.message is None and node.message is None:
            for child in node.children:
                _link(held, child)
            node.children = []
        elif held.message is None or (_is_reply(subject) and not _is_reply(subject_of(held)[1])):
            _link(held, node)
        else:
            dummy = _Container()
            _link(dummy, held)
            _link(dummy, node)
            merged.append(dummy)
            subjects[base] = dummy
    roots = [node for node in roots + merged if node.parent is None and _alive(node)]

    # (7) Sort every set of siblings by sent date, deepest first.
    _sort_siblings(roots, deep=True)
    return [_to_node(node) for node in roots]


def _alive(node: _Container) -> bool:
    """A top-level container still in use: a message, or a dummy that kept children."""
    return node.message is not None or bool(node.children)


def _sort_siblings(roots: list[_Container], *, deep: bool) -> None:
    """Sort ``roots`` (and with ``deep`` every children list) by sent date then input order; a
    dummy sorts as its first child, so children are sorted before their parents."""
    keys: dict[int, tuple[int, int]] = {}

    def key(node: _Container) -> tuple[int, int]:
        if node.message is not None:
            return (_sent(node.message), node.order)
        return keys[id(node)]

    nodes = _preorder(roots) if deep else [r for r in roots if r.message is None]
    for node in reversed(nodes):  # descendants before ancestors
        if deep or node.message is None:
            node.children.sort(key=key)
        if node.message is None and node.children:
            keys[id(node)] = key(node.children[0])
    roots.sort(key=key)


def _to_node(root: _Container) -> ThreadNode:
    top = ThreadNode(root.message)
    stack = [(root, top)]
    while stack:
        container, node = stack.pop()
        for child in container.children:
            made = ThreadNode(child.message)
            node.children.append(made)
            stack.append((child, made))
    return top

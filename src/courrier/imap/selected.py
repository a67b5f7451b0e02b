"""The selected mailbox as one session sees it: sequence numbers, known keywords, pending news.

RFC 9051 §2.3.1.2: message sequence numbers are the session's own view, renumbered only when
the session is told of an expunge. Changes made elsewhere (another session, a delivery) are
found in the store's change log and turned into untagged responses by :meth:`Selected.poll`,
at the moments the RFC allows: EXISTS and FETCH FLAGS at any command's end, EXPUNGE (or
VANISHED, RFC 7162 §3.2.10) never while a FETCH, STORE or SEARCH by sequence number is being
answered (§7.5.1) — those are kept pending until the next command that allows them.

A session keeps only what numbering needs: the UIDs in sequence order, 4 octets each, in an
array that sessions of the same mailbox share while their views agree (:func:`_shared`), so
thousands of sessions idling on one large mailbox hold it once. Flags are not kept: FETCH
and STORE answer from the store's rows, and a flag change made elsewhere is announced as it
is read from the change log.
"""

from __future__ import annotations

import bisect
import weakref
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from courrier.imap.fetch import format_flags
from courrier.imap.types import SequenceSet, format_sequence_set
from courrier.store import ChangeKind, Flag, Mailbox, MailboxView, MessageState, Store

#: The newest UID array of each mailbox, for sessions to share (weakly held).
_LATEST: dict[int, weakref.ref[array[int]]] = {}


def _shared(mailbox_id: int, uids: array[int]) -> array[int]:
    """``uids``, or an equal array another session of the mailbox already holds.

    Arrays handed out here are never changed in place: a session that learns of a change
    builds a new one and shares that.
    """
    ref = _LATEST.get(mailbox_id)
    latest = ref() if ref is not None else None
    if latest is not None and latest == uids:
        return latest

    def gone(dead: weakref.ref[array[int]]) -> None:
        if _LATEST.get(mailbox_id) is dead:
            del _LATEST[mailbox_id]

    _LATEST[mailbox_id] = weakref.ref(uids, gone)
    return uids


@dataclass
class Selected:
    mailbox: Mailbox
    read_only: bool
    account_id: int
    #: UIDs in sequence order: sequence number n is ``uids[n - 1]``. Shared: never changed in
    #: place (see :func:`_shared`).
    uids: array[int] = field(default_factory=lambda: array("I"))
    #: Highest MODSEQ of the account's change log already looked at.
    modseq: int = 0
    #: Expunged elsewhere, not yet announced (sequence numbers still count them).
    pending_expunge: set[int] = field(default_factory=set)
    #: IMAP4rev1 sessions: the messages that are \\Recent in this session (RFC 3501 §2.3.2).
    recent: set[int] = field(default_factory=set)
    #: Whether this session shows \\Recent (rev1) and claims new messages as recent.
    rev1: bool = False
    #: Keywords the client was told of in FLAGS (RFC 9051 §7.3.5: before any use).
    keywords: set[str] = field(default_factory=set)

    @classmethod
    async def open(
        cls,
        store: Store,
        mailbox: Mailbox,
        account_id: int,
        read_only: bool,
        modseq: int,
        *,
        rev1: bool,
    ) -> tuple[Selected, MailboxView]:
        """The session's view of ``mailbox``, and the mailbox as it was read (for what SELECT
        reports: UNSEEN, HIGHESTMODSEQ)."""
        view = await store.mailbox_view(mailbox.id)
        uids = _shared(mailbox.id, view.uids)
        sel = cls(mailbox, read_only, account_id, uids, modseq, rev1=rev1)
        sel.keywords = set(view.keywords)
        if rev1:
            first = mailbox.first_recent_uid
            if not read_only:  # EXAMINE looks without taking (RFC 3501 §6.3.2)
                first, _ = await store.claim_recent(mailbox.id)
            if uids and uids[-1] >= first:
                sel.recent = set(uids[bisect.bisect_left(uids, first) :])
        return sel, view

    def flags_response(self) -> list[bytes]:
        """FLAGS and PERMANENTFLAGS with every keyword in use (RFC 9051 §7.3.5)."""
        words = " ".join(sorted(self.keywords))
        system = "\\Answered \\Flagged \\Deleted \\Seen \\Draft"
        flags = f"* FLAGS ({system}{' ' + words if words else ''})\r\n".encode()
        if self.read_only:
            return [flags, b"* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n"]
        permanent = f"{system}{' ' + words if words else ''} \\*"
        return [flags, f"* OK [PERMANENTFLAGS ({permanent})] Flags permitted\r\n".encode()]

    def announce(self, keywords: Iterable[str]) -> list[bytes]:
        """A new FLAGS response when ``keywords`` holds one the client was not told of."""
        new = set(keywords) - self.keywords
        if not new:
            return []
        self.keywords |= new
        return self.flags_response()

    def flags_of(self, uid: int, flags: Flag | int, keywords: Sequence[str]) -> bytes:
        """The FLAGS value (RFC 9051 §7.5.2), with rev1's ``\\Recent`` when the message is
        recent in this session (RFC 3501 §2.3.2)."""
        if uid in self.recent:
            return format_flags(flags, ("\\Recent", *keywords))
        return format_flags(flags, keywords)

    # -- numbers ---------------------------------------------------------------------------

    @property
    def exists(self) -> int:
        return len(self.uids)

    def seq_of(self, uid: int) -> int | None:
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None

    def seqs_of(self, uids: Sequence[int]) -> list[int | None]:
        """:meth:`seq_of` of each of ``uids`` (ascending), by one walk along the view."""
        view = self.uids
        out: list[int | None] = []
        i, n = 0, len(view)
        for uid in uids:
            if i < n and view[i] != uid:
                i = bisect.bisect_left(view, uid, i)
            if i < n and view[i] == uid:
                out.append(i + 1)
                i += 1
            else:
                out.append(None)
        return out

    def seq_of_present(self, uid: int) -> int:
        """The sequence number of a UID known to be in the view."""
        return bisect.bisect_left(self.uids, uid) + 1

    def resolve(self, numbers: SequenceSet, *, uid: bool, saved: Sequence[int] = ()) -> list[int]:
        """The UIDs (ascending) a sequence set or UID set names; ``$`` is ``saved``."""
        if numbers.saved:
            return sorted(u for u in set(saved) if self.seq_of(u) is not None)
        if uid:
            if not self.uids:
                return []
            largest = self.uids[-1]
            ranges = []
            for first, last in numbers.ranges:
                a = largest if first is None else first
                b = largest if last is None else last
                ranges.append((min(a, b), max(a, b)))
            ranges.sort()
            wanted: list[int] = []
            done = 0  # everything up to this UID is in ``wanted`` already
            for lo, hi in ranges:
                lo = max(lo, done + 1)
                if lo > hi:
                    continue
                start = bisect.bisect_left(self.uids, lo)
                end = bisect.bisect_right(self.uids, hi)
                wanted.extend(self.uids[start:end])
                done = max(done, hi)
            return wanted
        return [
            self.uids[n - 1] for n in numbers.resolve(len(self.uids)) if 1 <= n <= len(self.uids)
        ]

    def valid_sequence(self, numbers: SequenceSet) -> bool:
        """RFC 9051 §9 seq-number: a message sequence number above EXISTS is an error."""
        if numbers.saved:
            return True
        return all(
            (n is None or n <= len(self.uids)) and (m is None or m <= len(self.uids))
            for n, m in numbers.ranges
        ) and (bool(self.uids) or all(n is None and m is None for n, m in numbers.ranges))

    # -- news from elsewhere ---------------------------------------------------------------

    async def poll(
        self,
        store: Store,
        *,
        allow_expunge: bool,
        vanished: bool,
        condstore: bool,
        own: set[int] | None = None,
    ) -> list[bytes]:
        """Untagged responses for what changed since the last poll (``own``: MODSEQs of this
        session's own changes, already reported)."""
        out: list[bytes] = []
        changes = await store.changes_since(self.account_id, self.modseq)
        if not changes:
            if allow_expunge and self.pending_expunge:
                out.extend(self._announce_expunges(self.pending_expunge, vanished=vanished))
            return out
        self.modseq = max(self.modseq, changes[-1].modseq)
        box = self.mailbox.id
        mine = [c for c in changes if c.mailbox_id == box]
        top = self.uids[-1] if self.uids else 0
        appended = {c.uid for c in mine if c.kind == ChangeKind.APPEND and c.uid > top}
        gone = {c.uid for c in mine if c.kind == ChangeKind.EXPUNGE}
        appended -= gone
        self.pending_expunge |= {u for u in gone if self.seq_of(u) is not None}
        flagged = {
            c.uid
            for c in mine
            if c.kind == ChangeKind.FLAGS
            and not (own and c.modseq in own)
            and c.uid not in self.pending_expunge
            and self.seq_of(c.uid) is not None
        }
        if allow_expunge and self.pending_expunge:
            out.extend(self._announce_expunges(self.pending_expunge, vanished=vanished))
        if flagged:
            for state in await store.list_states(box, min(flagged), max(flagged)):
                seq = self.seq_of(state.uid) if state.uid in flagged else None
                if seq is not None:
                    out.extend(self.announce(state.keywords))
                    out.append(self.fetch_flags(seq, state, uid=vanished, modseq=condstore))
        if appended:
            fresh = await store.list_states(box, min(appended), max(appended))
            top = self.uids[-1] if self.uids else 0
            added = [s for s in fresh if s.uid in appended and s.uid > top]
            if added:
                out.extend(self._add(added))
                if self.rev1:
                    first = self.mailbox.first_recent_uid
                    if not self.read_only:
                        first, _ = await store.claim_recent(box, below=added[-1].uid + 1)
                    self.recent |= {s.uid for s in added if s.uid >= first}
                    out.append(b"* %d RECENT\r\n" % len(self.recent))
        return out

    def _add(self, added: Sequence[MessageState]) -> list[bytes]:
        self.uids = _shared(self.mailbox.id, self.uids + array("I", [s.uid for s in added]))
        out = self.announce(k for s in added for k in s.keywords)
        out.append(b"* %d EXISTS\r\n" % len(self.uids))
        return out

    def forget(self, uids: Iterable[int], *, vanished: bool) -> list[bytes]:
        """This session expunged ``uids`` itself: announce and renumber."""
        return self._announce_expunges(set(uids), vanished=vanished)

    def _announce_expunges(self, uids: set[int], *, vanished: bool) -> list[bytes]:
        present = sorted(u for u in uids if self.seq_of(u) is not None)
        self.pending_expunge -= uids
        if not present:
            return []
        if vanished:  # RFC 7162 §3.2.10: QRESYNC clients get VANISHED instead of EXPUNGE
            out = [b"* VANISHED " + format_sequence_set(present).encode() + b"\r\n"]
        else:
            # Each EXPUNGE renumbers the messages after it (RFC 9051 §7.5.1): announced from
            # the highest down, every number is still the one the client knows.
            out = [b"* %d EXPUNGE\r\n" % (self.seq_of(u) or 0) for u in reversed(present)]
        drop = set(present)
        self.uids = _shared(self.mailbox.id, array("I", [u for u in self.uids if u not in drop]))
        self.recent -= drop
        return out

    def fetch_flags(self, seq: int, state: MessageState, *, uid: bool, modseq: bool) -> bytes:
        parts = [b"FLAGS " + self.flags_of(state.uid, state.flags, state.keywords)]
        if uid:
            parts.insert(0, b"UID %d" % state.uid)
        if modseq:
            parts.append(b"MODSEQ (%d)" % state.modseq)
        return b"* %d FETCH (" % seq + b" ".join(parts) + b")\r\n"

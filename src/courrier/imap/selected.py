"""The selected mailbox as one session sees it: sequence numbers, known flags, pending news.

RFC 9051 §2.3.1.2: message sequence numbers are the session's own view, renumbered only when
the session is told of an expunge. Changes made elsewhere (another session, a delivery) are
found in the store's change log and turned into untagged responses by :meth:`Selected.poll`,
at the moments the RFC allows: EXISTS and FETCH FLAGS at any command's end, EXPUNGE (or
VANISHED, RFC 7162 §3.2.10) never while a FETCH, STORE or SEARCH by sequence number is being
answered (§7.5.1) — those are kept pending until the next command that allows them.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from courrier.imap.types import SequenceSet, format_sequence_set
from courrier.store import ChangeKind, Flag, Mailbox, MessageState, Store

_SYSTEM_FLAGS = (
    (Flag.SEEN, b"\\Seen"),
    (Flag.ANSWERED, b"\\Answered"),
    (Flag.FLAGGED, b"\\Flagged"),
    (Flag.DELETED, b"\\Deleted"),
    (Flag.DRAFT, b"\\Draft"),
)


def flag_list(flags: Flag | int, keywords: Iterable[str], *, recent: bool = False) -> bytes:
    """``(\\Seen $Forwarded)``: the FLAGS value of a message (RFC 9051 §7.5.2); ``recent``
    adds rev1's ``\\Recent`` (RFC 3501 §2.3.2)."""
    names = [name for bit, name in _SYSTEM_FLAGS if flags & bit]
    if recent:
        names.append(b"\\Recent")
    names.extend(k.encode() for k in keywords)
    return b"(" + b" ".join(names) + b")"


@dataclass
class Selected:
    mailbox: Mailbox
    read_only: bool
    account_id: int
    #: UIDs in sequence order: sequence number n is ``uids[n - 1]``.
    uids: list[int] = field(default_factory=list)
    #: What the client was last told of each message's flags and MODSEQ.
    states: dict[int, MessageState] = field(default_factory=dict)
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
    ) -> Selected:
        states = await store.list_states(mailbox.id)
        sel = cls(
            mailbox,
            read_only,
            account_id,
            [s.uid for s in states],
            {s.uid: s for s in states},
            modseq,
            rev1=rev1,
        )
        sel.keywords = {k for s in states for k in s.keywords}
        if rev1:
            first = mailbox.first_recent_uid
            if not read_only:  # EXAMINE looks without taking (RFC 3501 §6.3.2)
                first, _ = await store.claim_recent(mailbox.id)
            sel.recent = {u for u in sel.uids if u >= first}
        return sel

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

    def flags_of(self, state: MessageState) -> bytes:
        return flag_list(state.flags, state.keywords, recent=state.uid in self.recent)

    # -- numbers ---------------------------------------------------------------------------

    @property
    def exists(self) -> int:
        return len(self.uids)

    def seq_of(self, uid: int) -> int | None:
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None

    def resolve(self, numbers: SequenceSet, *, uid: bool, saved: Sequence[int] = ()) -> list[int]:
        """The UIDs (ascending) a sequence set or UID set names; ``$`` is ``saved``."""
        if numbers.saved:
            known = set(self.uids)
            return sorted(u for u in saved if u in known)
        if uid:
            if not self.uids:
                return []
            largest = self.uids[-1]
            wanted: list[int] = []
            for first, last in numbers.ranges:
                a = largest if first is None else first
                b = largest if last is None else last
                lo, hi = min(a, b), max(a, b)
                start = bisect.bisect_left(self.uids, lo)
                end = bisect.bisect_right(self.uids, hi)
                wanted.extend(self.uids[start:end])
            return sorted(set(wanted))
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
        mine = [c for c in changes if c.mailbox_id == self.mailbox.id]
        if changes:
            self.modseq = max(c.modseq for c in changes)
        known = set(self.uids)
        top = self.uids[-1] if self.uids else 0
        appended = {c.uid for c in mine if c.kind == ChangeKind.APPEND and c.uid > top}
        gone = {c.uid for c in mine if c.kind == ChangeKind.EXPUNGE}
        appended -= gone
        self.pending_expunge |= gone & known
        flagged = {
            c.uid
            for c in mine
            if c.kind == ChangeKind.FLAGS
            and c.uid in known
            and not (own and c.modseq in own)
            and c.uid not in self.pending_expunge
        }
        if allow_expunge and self.pending_expunge:
            out.extend(self._announce_expunges(self.pending_expunge, vanished=vanished))
            self.pending_expunge = set()
        if flagged:
            fresh = await store.list_states(self.mailbox.id, min(flagged), max(flagged))
            for state in fresh:
                if state.uid not in flagged:
                    continue
                old = self.states.get(state.uid)
                self.states[state.uid] = state
                if old is not None and (old.flags, old.keywords) == (state.flags, state.keywords):
                    continue
                seq = self.seq_of(state.uid)
                if seq is not None:
                    out.extend(self.announce(state.keywords))
                    out.append(self.fetch_flags(seq, state, uid=vanished, modseq=condstore))
        if appended:
            fresh = await store.list_states(self.mailbox.id, min(appended), max(appended))
            added = []
            for state in fresh:
                if state.uid in appended and state.uid > (self.uids[-1] if self.uids else 0):
                    self.uids.append(state.uid)
                    self.states[state.uid] = state
                    added.append(state.uid)
            out.extend(self.announce(k for u in added for k in self.states[u].keywords))
            out.append(b"* %d EXISTS\r\n" % len(self.uids))
            if self.rev1:
                first = self.mailbox.first_recent_uid
                if not self.read_only:
                    first, _ = await store.claim_recent(self.mailbox.id)
                self.recent |= {u for u in added if u >= first}
                out.append(b"* %d RECENT\r\n" % len(self.recent))
        return out

    def forget(self, uids: Iterable[int], *, vanished: bool) -> list[bytes]:
        """This session expunged ``uids`` itself: announce and renumber."""
        return self._announce_expunges(set(uids), vanished=vanished)

    def _announce_expunges(self, uids: set[int], *, vanished: bool) -> list[bytes]:
        present = sorted(u for u in uids if self.seq_of(u) is not None)
        if not present:
            return []
        if vanished:  # RFC 7162 §3.2.10: QRESYNC clients get VANISHED instead of EXPUNGE
            for u in present:
                self._drop(u)
            return [b"* VANISHED " + format_sequence_set(present).encode() + b"\r\n"]
        out = []
        for u in reversed(present):  # highest first: the numbers below stay valid
            seq = self.seq_of(u)
            assert seq is not None
            out.append(b"* %d EXPUNGE\r\n" % seq)
            self._drop(u)
        return out

    def _drop(self, uid: int) -> None:
        i = bisect.bisect_left(self.uids, uid)
        del self.uids[i]
        self.states.pop(uid, None)
        self.pending_expunge.discard(uid)
        self.recent.discard(uid)

    def fetch_flags(self, seq: int, state: MessageState, *, uid: bool, modseq: bool) -> bytes:
        parts = [b"FLAGS " + self.flags_of(state)]
        if uid:
            parts.insert(0, b"UID %d" % state.uid)
        if modseq:
            parts.append(b"MODSEQ (%d)" % state.modseq)
        return b"* %d FETCH (" % seq + b" ".join(parts) + b")\r\n"

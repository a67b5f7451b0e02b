"""One IMAP connection's state and commands (RFC 9051 IMAP4rev2, RFC 3501 IMAP4rev1).

The session takes parsed commands (:mod:`courrier.imap.parser`) and answers them with the
store; bytes go out through a :class:`Channel` the asyncio shell (:mod:`courrier.imap.server`)
provides, which also reads the raw lines IDLE and AUTHENTICATE need. States (§3): not
authenticated → authenticated → selected → logout. A client that never ENABLEs IMAP4rev2 gets
rev1 behaviour (RFC 9051 Appendix E): modified UTF-7 mailbox names, RECENT and UNSEEN in SELECT,
untagged SEARCH instead of ESEARCH.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import logging
import re
import time
from collections.abc import Collection, Iterable, Sequence
from typing import Protocol

from courrier import __version__, provisioning
from courrier.config import Settings
from courrier.imap import fetch as fetching
from courrier.imap import mutf7, search
from courrier.imap import types as t
from courrier.imap.parser import CommandReader
from courrier.imap.selected import Selected
from courrier.message.imapform import string
from courrier.security import sasl
from courrier.store import (
    Account,
    AlreadyExists,
    Flag,
    InUse,
    InvalidName,
    Mailbox,
    Message,
    MessageState,
    NotFound,
    QuotaExceeded,
    StorageFull,
    Store,
    StoreError,
)
from courrier.store.models import FLAG_NAMES

log = logging.getLogger("courrier.imap")

DELIMITER = "/"
#: Logins that fail before the connection is closed (Dovecot closes after a few too).
MAX_AUTH_FAILURES = 3
#: Commands answered BAD before the connection is closed.
MAX_BAD = 20
#: Messages whose octets FETCH reads from the store at once; whose headers alone, at once.
_RAW_BATCH = 200
_HEADER_BATCH = 1000
#: Message rows FETCH reads at once (the next part is read while one is sent).
_ROWS_PER_PART = 2000
#: Output buffered before the session waits for the client to read it.
FLUSH_AT = 256 * 1024

_BASE_CAPS = (
    "IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ENABLE ID IDLE NAMESPACE UNSELECT UIDPLUS MOVE "
    "SPECIAL-USE CREATE-SPECIAL-USE CHILDREN LIST-EXTENDED LIST-STATUS STATUS=SIZE ESEARCH "
    "SEARCHRES SORT SORT=DISPLAY THREAD=REFERENCES THREAD=ORDEREDSUBJECT CONDSTORE QRESYNC "
    "BINARY MULTIAPPEND QUOTA QUOTA=RES-STORAGE WITHIN PREVIEW COMPRESS=DEFLATE"
)
_SPECIAL_USES = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")


class Channel(Protocol):
    """What the session needs from its connection."""

    reader: CommandReader
    tls_active: bool

    def write(self, data: bytes) -> None: ...
    async def flush(self) -> None: ...
    async def read_line(self, seconds: float) -> bytes | None: ...
    async def start_tls(self) -> None: ...
    def start_compress(self) -> None: ...


class Logout(Exception):
    """The connection ends after what was written."""


class Session:
    def __init__(
        self, settings: Settings, store: Store, channel: Channel, *, peer: str, loopback: bool
    ) -> None:
        self.settings = settings
        self.store = store
        self.io = channel
        self.peer = peer
        self.loopback = loopback
        self.account: Account | None = None
        self.selected: Selected | None = None
        self.rev2 = False
        self.condstore = False
        self.qresync = False
        self.compressed = False
        self.saved: list[int] = []  # RFC 5182 SEARCHRES
        self.auth_failures = 0
        self.bad = 0
        self.pending = 0  # bytes written since the last flush

    # -- output ----------------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        self.io.write(data)
        self.pending += len(data)
        if self.pending >= FLUSH_AT:
            self.pending = 0
            await self.io.flush()

    def name_out(self, name: str) -> bytes:
        """A mailbox name as the client expects it (RFC 9051 §5.1; rev1: modified UTF-7)."""
        return string((name if self.rev2 else mutf7.encode(name)).encode())

    @property
    def plaintext_ok(self) -> bool:
        return self.io.tls_active or (self.loopback and self.settings.imap.plaintext_on_loopback)

    def capabilities(self) -> str:
        caps = _BASE_CAPS
        if self.account is None:
            if not self.io.tls_active:
                caps += " STARTTLS"
            if self.plaintext_ok:
                caps += " AUTH=PLAIN AUTH=SCRAM-SHA-256"
            else:
                caps += " AUTH=SCRAM-SHA-256 LOGINDISABLED"
        caps += f" APPENDLIMIT={self.settings.imap.max_append}"
        return caps

    def greeting(self) -> bytes:
        return f"* OK [CAPABILITY {self.capabilities()}] courrier ready\r\n".encode()

    # -- dispatch --------------------------------------------------------------------------

    async def run(self, cmd: t.Command) -> None:
        """Answer one command; raise :class:`Logout` when the connection must end."""
        handler = _HANDLERS.get(cmd.name)
        if isinstance(cmd, t.Invalid) or handler is None:
            await self._bad(cmd.tag, getattr(cmd, "reason", "") or "Unknown command")
            return
        state = _STATES[cmd.name]
        if state == "any":
            pass
        elif state == "nonauth" and self.account is not None:
            await self._bad(cmd.tag, "Already logged in")
            return
        elif state in ("auth", "selected") and self.account is None:
            await self._bad(cmd.tag, "Log in first")
            return
        elif state == "selected" and self.selected is None:
            await self._bad(cmd.tag, "No mailbox selected")
            return
        try:
            await handler(self, cmd)
        except Logout:
            raise
        except StorageFull:
            await self.tagged(cmd.tag, "NO", "[OVERQUOTA] The server's disk is full")
        except QuotaExceeded:
            await self.tagged(cmd.tag, "NO", "[OVERQUOTA] Quota exceeded")
        except NotFound as exc:
            await self.tagged(cmd.tag, "NO", f"[NONEXISTENT] {exc}")
        except AlreadyExists as exc:
            await self.tagged(cmd.tag, "NO", f"[ALREADYEXISTS] {exc}")
        except (InvalidName, InUse) as exc:
            await self.tagged(cmd.tag, "NO", f"[CANNOT] {exc}")
        except fetching.UnknownCTE:
            await self.tagged(cmd.tag, "NO", "[UNKNOWN-CTE] Unknown Content-Transfer-Encoding")
        except StoreError as exc:
            log.warning("[%s]: %s failed: %s", self.peer, cmd.name, exc)
            await self.tagged(cmd.tag, "NO", "[SERVERBUG] Temporary failure, try again")

    async def tagged(self, tag: str, status: str, text: str) -> None:
        await self.send(f"{tag} {status} {text}\r\n".encode())

    async def _bad(self, tag: str, reason: str) -> None:
        self.bad += 1
        await self.tagged(tag or "*", "BAD", reason)
        if self.bad >= MAX_BAD:
            await self.send(b"* BYE Too many invalid commands\r\n")
            raise Logout

    async def news(self, *, allow_expunge: bool = True, own: set[int] | None = None) -> None:
        """Tell the client what changed elsewhere in its selected mailbox."""
        if self.selected is None:
            return
        for line in await self.selected.poll(
            self.store,
            allow_expunge=allow_expunge,
            vanished=self.qresync,
            condstore=self.condstore,
            own=own,
        ):
            await self.send(line)

    # -- any state (§6.1) ------------------------------------------------------------------

    async def cmd_capability(self, cmd: t.Command) -> None:
        await self.send(f"* CAPABILITY {self.capabilities()}\r\n".encode())
        await self.tagged(cmd.tag, "OK", "CAPABILITY completed")

    async def cmd_noop(self, cmd: t.Command) -> None:
        await self.news()
        await self.tagged(cmd.tag, "OK", f"{cmd.name} completed")

    async def cmd_logout(self, cmd: t.Command) -> None:
        await self.send(b"* BYE Logging out\r\n")
        await self.tagged(cmd.tag, "OK", "LOGOUT completed")
        raise Logout

    async def cmd_id(self, cmd: t.Command) -> None:
        # RFC 2971: say who we are, not what we run on.
        await self.send(b'* ID ("name" "courrier" "version" "' + __version__.encode() + b'")\r\n')
        await self.tagged(cmd.tag, "OK", "ID completed")

    # -- not authenticated (§6.2) ----------------------------------------------------------

    async def cmd_starttls(self, cmd: t.Command) -> None:
        if self.io.tls_active:
            await self._bad(cmd.tag, "TLS is already active")
            return
        await self.tagged(cmd.tag, "OK", "Begin TLS negotiation now")
        await self.io.flush()
        # RFC 9051 §6.2.1: anything the client pipelined after STARTTLS is discarded.
        self.io.reader.discard()
        await self.io.start_tls()

    async def cmd_login(self, cmd: t.Command) -> None:
        assert isinstance(cmd, t.Login)
        if not self.plaintext_ok:
            await self.tagged(cmd.tag, "NO", "[PRIVACYREQUIRED] Use STARTTLS first")
            return
        account = await provisioning.authenticate(self.store, cmd.username, cmd.password)
        await self._logged_in(cmd.tag, account, cmd.username)

    async def cmd_authenticate(self, cmd: t.Command) -> None:
        assert isinstance(cmd, t.Authenticate)
        if cmd.mechanism not in ("PLAIN", "SCRAM-SHA-256") or (
            cmd.mechanism == "PLAIN" and not self.plaintext_ok
        ):
            await self.tagged(cmd.tag, "NO", "[CANNOT] Mechanism not available")
            return
        exchange = sasl.Exchange(cmd.mechanism)
        initial = None
        if cmd.initial is not None:
            initial = _b64(cmd.initial)
            if initial is None:
                await self._bad(cmd.tag, "Invalid base64")
                return
        step: sasl.Step = exchange.start(initial)
        while True:
            result, account = await provisioning.sasl_advance(self.store, exchange, step)
            if not isinstance(result, sasl.Challenge):
                break
            await self.send(b"+ " + base64.b64encode(result.data) + b"\r\n")
            await self.io.flush()
            line = await self.io.read_line(self.settings.imap.login_timeout)
            if line is None:
                raise Logout
            if line == b"*":  # RFC 9051 §6.2.2: the client cancels
                await self._bad(cmd.tag, "Authentication cancelled")
                return
            data = _b64(line.decode("ascii", "replace"))
            if data is None:
                await self._bad(cmd.tag, "Invalid base64")
                return
            step = exchange.step(data)
        if isinstance(result, sasl.Success) and account is not None and result.final:
            # SCRAM's server-final-message goes with the OK (RFC 4959-style, §6.2.2).
            await self.send(b"+ " + base64.b64encode(result.final) + b"\r\n")
            await self.io.flush()
            line = await self.io.read_line(self.settings.imap.login_timeout)
            if line is None:
                raise Logout
        await self._logged_in(cmd.tag, account if isinstance(result, sasl.Success) else None, "")

    async def _logged_in(self, tag: str, account: Account | None, username: str) -> None:
        if account is None:
            self.auth_failures += 1
            log.info("[%s]: login failed for %s", self.peer, username or "(sasl)")
            await asyncio.sleep(min(2.0, 0.5 * self.auth_failures))  # slow down guessing
            await self.tagged(tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed")
            if self.auth_failures >= MAX_AUTH_FAILURES:
                await self.send(b"* BYE Too many failed logins\r\n")
                raise Logout
            return
        self.account = account
        self.io.reader.max_literal = self.settings.imap.max_append
        log.info("[%s]: login %s", self.peer, account.address)
        await self.tagged(tag, "OK", f"[CAPABILITY {self.capabilities()}] Logged in")

    # -- authenticated (§6.3) --------------------------------------------------------------

    async def cmd_enable(self, cmd: t.Command) -> None:
        assert isinstance(cmd, t.Enable)
        enabled = []
        for cap in cmd.capabilities:
            if cap == "IMAP4REV2" and not self.rev2:
                self.rev2 = True
                self.io.reader.utf8 = True
                enabled.append("IMAP4rev2")
            elif cap == "CONDSTORE" and not self.condstore:
                self.condstore = True
                enabled.append("CONDSTORE")
            elif cap == "QRESYNC" and not self.qresync:
                self.qresync = self.condstore = True
                enabled.append("QRESYNC")
        await self.send(("* ENABLED " + " ".join(enabled)).rstrip().encode() + b"\r\n")
        await self.tagged(cmd.tag, "OK", "ENABLE completed")

    async def cmd_namespace(self, cmd: t.Command) -> None:
        await self.send(b'* NAMESPACE (("" "/")) NIL NIL\r\n')
        await self.tagged(cmd.tag, "OK", "NAMESPACE completed")

    async def cmd_select(self, cmd: t.Command) -> None:
        assert isinstance(cmd, t.Select) and self.account is not None
        self.selected = None
        read_only = cmd.name == "EXAMINE"
        if cmd.qresync is not None and not self.qresync:
            await self._bad(cmd.tag, "Enable QRESYNC first")
            return
        box = await self.store.get_mailbox(self.account.id, cmd.mailbox)
        if box is None:
            await self.tagged(cmd.tag, "NO", "[NONEXISTENT] No such mailbox")
            return
        if cmd.condstore:
            self.condstore = True
        account = await self.store.get_account_by_id(self.account.id)
        modseq = account.highestmodseq if account else 0
        sel, view = await Selected.open(
            self.store, box, self.account.id, read_only, modseq, rev1=not self.rev2
        )
        # The mailbox may have changed between those two reads: catch up quietly.
        await sel.poll(self.store, allow_expunge=True, vanished=True, condstore=False)
        highest = max(box.highestmodseq, view.highest_modseq)
        out = [*sel.flags_response(), b"* %d EXISTS\r\n" % sel.exists]
        if not self.rev2:
            out.append(b"* %d RECENT\r\n" % len(sel.recent))
            first_unseen = None
            if view.first_unseen is not None:
                first_unseen = sel.seq_of(view.first_unseen)
            if first_unseen is not None:
                out.append(b"* OK [UNSEEN %d] First unseen\r\n" % first_unseen)
        out += [
            b"* OK [UIDVALIDITY %d] UIDs valid\r\n" % box.uidvalidity,
            b"* OK [UIDNEXT %d] Predicted next UID\r\n" % box.uidnext,
            b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % highest,
        ]
        if self.rev2:
            out.append(b'* LIST () "/" ' + self.name_out(box.name) + b"\r\n")
        for line in out:
            await self.send(line)
        if cmd.qresync is not None:
            await self._qresync(sel, *cmd.qresync)
        self.selected = sel
        self.saved = []
        mode = "READ-ONLY" if read_only else "READ-WRITE"
        await self.tagged(cmd.tag, "OK", f"[{mode}] {cmd.name} completed")

    async def _qresync(
        self,
        sel: Selected,
        uidvalidity: int,
        modseq: int,
        known: t.SequenceSet | None,
        _match: tuple[t.SequenceSet, t.SequenceSet] | None,
    ) -> None:
        """RFC 7162 §3.2.5: what changed since the client's MODSEQ, as VANISHED (EARLIER) and
        FETCH responses."""
        if uidvalidity != sel.mailbox.uidvalidity:
            return
        assert self.account is not None
        changes = await self.store.changes_since(self.account.id, modseq)
        gone = {
            c.uid
            for c in changes
            if c.mailbox_id == sel.mailbox.id and c.uid and sel.seq_of(c.uid) is None
        }
        if known is not None:
            gone = {u for u in gone if known.contains(u, 2**63)}
        if gone:
            await self.send(
                b"* VANISHED (EARLIER) " + t.format_sequence_set(sorted(gone)).encode() + b"\r\n"
            )
        for state in await self.store.list_states(sel.mailbox.id):
            seq = sel.seq_of(state.uid)
            if state.modseq > modseq and seq is not None:
                await self.send(sel.fetch_flags(seq, state, uid=True, modseq=True))

    async def cmd_close(self, cmd: t.Command) -> None:
        sel = self.selected
        assert sel is not None
        if not sel.read_only:
            # RFC 9051 §6.4.1: expunge silently, then leave the selected state.
            await self.store.expunge(sel.mailbox.id)
        self.selected = None
        await self.tagged(cmd.tag, "OK", "CLOSE completed")

    async def cmd_unselect(self, cmd: t.Command) -> None:
        self.selected = None
        await self.tagged(cmd.tag, "OK", "UNSELECT completed")

    async def cmd_create(self, cmd: t.Command) -> None:
        assert isinstance(cmd, t.MailboxCommand) and self.account is not None
        name = cmd.mailbox.rstrip(DELIMITER)
        if name.upper() == "INBOX":
            await self.tagged(cmd.tag, "NO", "[ALREADYEXISTS] INBOX always exists")
            return
        use = None
        for wanted in cmd.special_use:
            match = next((u for u in _SPECIAL_USES if u.lower() == wanted.lower()), None)
            if match is None or use is not None:
                await self.tagged(cmd.tag, "NO", "[USEATTR] Unsupported special use")
                return
            use = match
        await self.store.create_mailbox(self.account.id, name, use)
        await self.tagged(cmd.tag, "OK", "CREATE completed")

    async def cmd_delete(self, cmd: t.Command) -> None:
        assert isinstance(cmd, t.MailboxCommand) and self.account is not None
        if cmd.mailbox == "INBOX":
            await self.tagged(cmd.tag, "NO", "[CANNOT] INBOX cannot be deleted")
            return
        if self.selected is not None and self.selected.mailbox.name == cmd.mailbox:
            self.selected = None
        await self.store.delete_mailbox(self.account.id, cmd.mailbox)
        await self.tagged(cmd.tag, "OK", "DELETE completed")

    async def cmd_rename(self, cmd: t.Command) -> None:
        assert isinstance(cmd, t.Rename) and self.account is not None
        await self.store.rename_mailbox(self.account.id, cmd.old, cmd.new.rstrip(DELIMITER))
        await self.tagged(cmd.tag, "OK", "RENAME completed")

    async def cmd_subscribe(self, cmd: t.Command) -> None:
        assert isinstance(cmd, t.MailboxCommand) and self.account is not None
        await self.store.set_subscribed(self.account.id, cmd.mailbox, cmd.name == "SUBSCRIBE")
        await self.tagged(cmd.tag, "OK", f"{cmd.name} completed")

    async def cmd_list(self, cmd: t.Command) -> None:
        """LIST (RFC 9051 §6.3.9, RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS, RFC 6154) and
        rev1's LSUB (RFC 3501 §6.3.9)."""
        assert isinstance(cmd, t.ListCommand) and self.account is not None
        select, returns = set(cmd.select), set(cmd.returns)
        if (
            not select <= _LIST_SELECT
            or not returns <= _LIST_RETURN
            or ("RECURSIVEMATCH" in select and not select - {"RECURSIVEMATCH", "REMOTE"})
        ):
            await self._bad(cmd.tag, "Unknown or invalid LIST options")
            return
        if cmd.patterns == ("",):
            # An empty pattern asks for the delimiter and the root.
            await self.send(b'* %s (\\Noselect) "/" ""\r\n' % cmd.name.encode())
            await self.tagged(cmd.tag, "OK", f"{cmd.name} completed")
            return
        boxes = {b.name: b for b in await self.store.list_mailboxes(self.account.id)}
        subscribed = set(await self.store.list_subscriptions(self.account.id))
        regexes = [_pattern(cmd.reference, p) for p in cmd.patterns]
        for name, attrs, childinfo in _list_entries(
            boxes,
            subscribed,
            regexes,
            lsub=cmd.name == "LSUB",
            select=select,
            returns=returns,
            rev2=self.rev2,
        ):
            line = b'* %s (%s) "/" ' % (cmd.name.encode(), " ".join(attrs).encode())
            line += self.name_out(name)
            if childinfo:
                line += b' ("CHILDINFO" ("SUBSCRIBED"))'
            await self.send(line + b"\r\n")
            if cmd.status and name in boxes:
                await self._status_line(boxes[name], cmd.status)
        await self.tagged(cmd.tag, "OK", f"{cmd.name} completed")

    async def cmd_status(self, cmd: t.Command) -> None:
        assert isinstance(cmd, t.Status) and self.account is not None
        box = await self.store.get_mailbox(self.account.id, cmd.mailbox)
        if box is None:
            await self.tagged(cmd.tag, "NO", "[NONEXISTENT] No such mailbox")
            return
        await self._status_line(box, cmd.items)
        await self.tagged(cmd.tag, "OK", "STATUS completed")

    async def _status_line(self, box: Mailbox, items: Sequence[str]) -> None:
        assert self.account is not None
        counted = await self.store.get_mailbox(self.account.id, box.name, counts=True)
        if counted is None:
            return
        values: list[str] = []
        for item in items:
            if item == "MESSAGES":
                values.append(f"MESSAGES {counted.messages}")
            elif item == "UNSEEN":
                values.append(f"UNSEEN {counted.unseen}")
            elif item == "UIDNEXT":
                values.append(f"UIDNEXT {counted.uidnext}")
            elif item == "UIDVALIDITY":
                values.append(f"UIDVALIDITY {counted.uidvalidity}")
            elif item == "SIZE":
                values.append(f"SIZE {counted.size}")
            elif item == "RECENT":
                recent = await self.store.list_states(counted.id, counted.first_recent_uid)
                values.append(f"RECENT {len(recent)}")
            elif item == "HIGHESTMODSEQ":
                values.append(f"HIGHESTMODSEQ {counted.highestmodseq}")
            elif item == "DELETED":
                states = await self.store.list_states(counted.id)
                values.append(f"DELETED {sum(1 for s in states if s.flags & Flag.DELETED)}")
            elif item == "APPENDLIMIT":
                values.append(f"APPENDLIMIT {self.settings.imap.max_append}")
        await self.send(
            b"* STATUS " + self.name_out(box.name) + b" (" + " ".join(values).encode() + b")\r\n"
        )

    async def cmd_append(self, cmd: t.Command) -> None:
        assert isinstance(cmd, t.Append) and self.account is not None
        box = await self.store.get_mailbox(self.account.id, cmd.mailbox)
        if box is None:
            await self.tagged(cmd.tag, "NO", "[TRYCREATE] No such mailbox")
            return
        appended = []
        try:
            for message in cmd.messages:
                if len(message.data) > self.settings.imap.max_append:
                    raise _TooBig
                flags, keywords = _parse_flags(message.flags)
                date = int(message.date.timestamp()) if message.date else None
                appended.append(
                    await self.store.append(
                        box.id,
                        message.data,
                        flags=flags,
                        keywords=keywords,
                        internal_date=date,
                    )
                )
        except (_TooBig, _BadFlag, StoreError) as exc:
            if appended:  # RFC 3502 §6.3.11: MULTIAPPEND is all or nothing
                await self.store.expunge(box.id, [a.uid for a in appended], deleted_only=False)
            if isinstance(exc, _TooBig):
                await self.tagged(cmd.tag, "NO", "[TOOBIG] Message too big")
                return
            if isinstance(exc, _BadFlag):
                await self._bad(cmd.tag, str(exc))
                return
            raise
        await self.news()
        uids = t.format_sequence_set([a.uid for a in appended])
        await self.tagged(
            cmd.tag, "OK", f"[APPENDUID {appended[0].uidvalidity} {uids}] APPEND completed"
        )

    async def cmd_getquotaroot(self, cmd: t.Command) -> None:
        assert isinstance(cmd, t.MailboxCommand)
        await self.send(b"* QUOTAROOT " + self.name_out(cmd.mailbox) + b' ""\r\n')
        await self._quota_line()
        await self.tagged(cmd.tag, "OK", "GETQUOTAROOT completed")

    async def cmd_getquota(self, cmd: t.Command) -> None:
        assert isinstance(cmd, t.Quota)
        if cmd.root != "":
            await self.tagged(cmd.tag, "NO", "[NONEXISTENT] No such quota root")
            return
        await self._quota_line()
        await self.tagged(cmd.tag, "OK", "GETQUOTA completed")

    async def cmd_setquota(self, cmd: t.Command) -> None:
        await self.tagged(cmd.tag, "NO", "[NOPERM] Quotas are set by the administrator")

    async def _quota_line(self) -> None:
        assert self.account is not None
        account = await self.store.get_account_by_id(self.account.id)
        if account is None or not account.quota_bytes:
            await self.send(b'* QUOTA "" ()\r\n')
            return
        # RFC 9208 §5.1: STORAGE in units of 1024 octets.
        used, limit = -(-account.used_bytes // 1024), account.quota_bytes // 1024
        await self.send(b'* QUOTA "" (STORAGE %d %d)\r\n' % (used, limit))

    async def cmd_compress(self, cmd: t.Command) -> None:
        assert isinstance(cmd, t.Compress)
        if cmd.mechanism != "DEFLATE":
            await self._bad(cmd.tag, "Unknown compression mechanism")
            return
        if self.compressed:
            await self.tagged(cmd.tag, "NO", "[COMPRESSIONACTIVE] Already compressing")
            return
        await self.tagged(cmd.tag, "OK", "DEFLATE active")
        await self.io.flush()
        self.compressed = True
        self.io.start_compress()

    async def cmd_idle(self, cmd: t.Command) -> None:
        assert self.account is not None
        await self.news()
        await self.send(b"+ idling\r\n")
        await self.io.flush()
        # Only the selected mailbox's changes are news (RFC 9051 §6.3.13 reports no others).
        sel = self.selected
        feed = self.store.subscribe(
            self.account.id,
            sel.modseq if sel else 0,
            mailbox_id=sel.mailbox.id if sel else None,
        )
        line_task = asyncio.ensure_future(self.io.read_line(self.settings.imap.idle_timeout))
        try:
            seen = feed.modseq
            while True:
                wake = asyncio.ensure_future(feed.wait(seen))
                done, _ = await asyncio.wait({line_task, wake}, return_when="FIRST_COMPLETED")
                if wake in done:
                    seen = wake.result()
                    await self.news()
                    await self.io.flush()
                else:
                    wake.cancel()
                if line_task in done:
                    break
        finally:
            feed.close()
            if not line_task.done():
                line_task.cancel()
        line = line_task.result()
        if line is None:
            raise Logout
        if line.upper() != b"DONE":
            await self._bad(cmd.tag, "Expected DONE")
            return
        await self.tagged(cmd.tag, "OK", "IDLE terminated")

    # -- selected (§6.4) -------------------------------------------------------------------

    async def cmd_check(self, cmd: t.Command) -> None:
        await self.cmd_noop(cmd)

    async def cmd_expunge(self, cmd: t.Command) -> None:
        sel = self.selected
        assert sel is not None
        if sel.read_only:
            await self.tagged(cmd.tag, "NO", "[READ-ONLY] Mailbox is read-only")
            return
        uids = None
        if isinstance(cmd, t.UidExpunge):
            uids = sel.resolve(cmd.set, uid=True)
        gone = await self.store.expunge(sel.mailbox.id, uids)
        for line in sel.forget(gone, vanished=self.qresync):
            await self.send(line)
        await self.news()
        await self.tagged(cmd.tag, "OK", f"{cmd.name} completed")

    async def cmd_search(self, cmd: t.Command) -> None:
        assert isinstance(cmd, t.Search | t.Sort | t.ThreadCommand)
        sel = self.selected
        assert sel is not None
        charset = cmd.charset
        if charset is not None and charset.upper() not in ("UTF-8", "US-ASCII"):
            await self.tagged(cmd.tag, "NO", "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset")
            return
        if _uses_modseq(cmd.key):
            await self._enable_condstore()
        key = _with_recent(cmd.key, sel.recent)
        # SORT and THREAD read more of the row than the keys say.
        wanted = search.columns(key) if isinstance(cmd, t.Search) else None
        text_candidates = self._text_index()
        allowed = await search.candidates(key, text_candidates, self._column_candidates)
        whole = None
        if allowed is None:
            rows = await self._rows(sel, sel.uids, wanted)
        else:
            # Only the store's candidates are read; sequence sets still see the whole mailbox.
            uids = sel.uids
            whole = search.Whole(len(uids), uids[-1] if uids else 0, sel.seq_of_present)
            chosen = [uid for uid in uids if uid in allowed]
            rows = await self.store.messages_with_uids(sel.mailbox.id, chosen, columns=wanted)
        ctx = search.SearchContext(
            messages=rows,
            read=self._read,
            text_candidates=text_candidates,
            saved=self.saved,
            tz=datetime.UTC,
            now=time.time(),
            whole=whole,
        )
        found = await search.search(key, ctx)
        uid_mode = cmd.uid
        if isinstance(cmd, t.ThreadCommand):
            threads = search.thread(found, cmd.algorithm)
            text = search.format_threads(threads, uid=uid_mode, seq_of=sel.seq_of)
            await self.send(b"* THREAD " + text.encode() + b"\r\n")
        else:
            if isinstance(cmd, t.Sort):
                found = search.sort(found, cmd.criteria)
            await self._search_results(cmd, found)
        await self.news(allow_expunge=cmd.uid)
        await self.tagged(cmd.tag, "OK", f"{cmd.name} completed")

    async def _search_results(self, cmd: t.Search | t.Sort, found: list[Message]) -> None:
        """SEARCH/SORT (classic) or ESEARCH (RFC 4731) responses; SAVE keeps the result."""
        sel = self.selected
        assert sel is not None
        numbers = [m.uid if cmd.uid else (sel.seq_of(m.uid) or 0) for m in found]
        modseq = self.condstore and _uses_modseq(cmd.key)
        returns = cmd.returns
        if returns is None:
            word = "SORT" if isinstance(cmd, t.Sort) else "SEARCH"
            line = f"* {word}" + "".join(f" {n}" for n in numbers)
            if modseq and found:  # RFC 7162 §3.1.5
                line += f" (MODSEQ {max(m.modseq for m in found)})"
            await self.send(line.encode() + b"\r\n")
            return
        if "SAVE" in returns:  # RFC 5182
            self.saved = [m.uid for m in found]
            returns = tuple(r for r in returns if r != "SAVE")
            if not returns:
                return  # SAVE alone: no ESEARCH response (RFC 5182 §2.1)
        if not returns:
            returns = ("ALL",)  # RFC 4731 §3.1: RETURN () means ALL
        data = search.esearch_data(numbers, returns)
        if modseq and found:
            # RFC 7162 §3.1.5: the highest MODSEQ of the messages the options return.
            chosen = found
            if set(returns) <= {"MIN", "MAX"}:
                ends = [f(numbers) for f, name in ((min, "MIN"), (max, "MAX")) if name in returns]
                chosen = [found[numbers.index(n)] for n in ends]
            data += f" MODSEQ {max(m.modseq for m in chosen)}"
        uid_part = " UID" if cmd.uid else ""
        line = f'* ESEARCH (TAG "{cmd.tag}"){uid_part} {data}'.rstrip()
        await self.send(line.encode() + b"\r\n")

    async def _enable_condstore(self) -> None:
        """RFC 7162 §3.1: the first CONDSTORE-enabling command tells HIGHESTMODSEQ."""
        if self.condstore:
            return
        self.condstore = True
        if self.selected is not None and self.account is not None:
            box = await self.store.get_mailbox(self.account.id, self.selected.mailbox.name)
            if box is not None:
                await self.send(b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % box.highestmodseq)

    async def cmd_fetch(self, cmd: t.Command) -> None:
        assert isinstance(cmd, t.Fetch)
        sel = self.selected
        assert sel is not None
        if not cmd.uid and not sel.valid_sequence(cmd.set):
            await self._bad(cmd.tag, "Invalid message sequence number")
            return
        uids = sel.resolve(cmd.set, uid=cmd.uid, saved=self.saved)
        if cmd.vanished and not (cmd.uid and self.qresync and cmd.changed_since is not None):
            await self._bad(cmd.tag, "VANISHED needs UID FETCH, QRESYNC and CHANGEDSINCE")
            return
        if cmd.changed_since is not None or any(
            isinstance(i, t.FetchAttr) and i.name == "MODSEQ" for i in cmd.items
        ):
            await self._enable_condstore()
        if cmd.changed_since is not None and cmd.vanished:
            await self._vanished_since(sel, cmd.set, cmd.changed_since)
        items = cmd.items
        columns = fetching.columns(items)
        # Rows are read in parts, the next while this one is sent (SQLite and PostgreSQL work
        # without holding the GIL). Setting \Seen wants all the rows first: one flag change.
        sets_seen = fetching.sets_seen(items) and not sel.read_only
        size = max(1, len(uids)) if sets_seen else _ROWS_PER_PART
        parts = [uids[i : i + size] for i in range(0, len(uids), size)] or [[]]
        ahead = asyncio.ensure_future(self._rows(sel, parts[0], columns))
        own: set[int] = set()
        try:
            for k in range(len(parts)):
                rows = await ahead
                if k + 1 < len(parts):
                    ahead = asyncio.ensure_future(self._rows(sel, parts[k + 1], columns))
                own |= await self._fetch_rows(cmd, sel, rows, sets_seen=sets_seen)
        finally:
            ahead.cancel()
        await self.news(allow_expunge=cmd.uid, own=own)
        await self.tagged(cmd.tag, "OK", f"{cmd.name} completed")

    async def _fetch_rows(
        self, cmd: t.Fetch, sel: Selected, rows: list[Message], *, sets_seen: bool
    ) -> set[int]:
        r"""The FETCH responses of ``rows``; returns the MODSEQs of the \Seen set here."""
        items = cmd.items
        if cmd.changed_since is not None:
            rows = [r for r in rows if r.modseq > cmd.changed_since]
        seen_now: dict[int, tuple[int, tuple[str, ...], int]] = {}
        own: set[int] = set()
        if sets_seen:
            unseen = [r.uid for r in rows if r.id >= 0 and not r.flags & Flag.SEEN]
            if unseen:
                changed, _ = await self.store.store_flags(sel.mailbox.id, unseen, "add", Flag.SEEN)
                for uid, new_flags, keywords, modseq in changed:
                    seen_now[uid] = (new_flags, keywords, modseq)
                    own.add(modseq)
        wants_flags = any(isinstance(i, t.FetchAttr) and i.name == "FLAGS" for i in items)
        needs_raw = fetching.needs_raw(items)
        # Header fields (what mail clients fetch for a message list) need no body.
        header_only = fetching.header_only(items)
        read = self.store.read_headers if header_only else self.store.read_messages
        per_read = _HEADER_BATCH if header_only else _RAW_BATCH
        raws: dict[int, bytes] = {}
        seqs = sel.seqs_of([row.uid for row in rows])
        for index, row in enumerate(rows):
            if needs_raw and row.id not in raws and index % per_read == 0:
                # Bodies come in batches: one store read for many messages, not one each.
                batch = [r.id for r in rows[index : index + per_read] if r.id >= 0]
                raws = await read(batch)
            if row.id < 0:
                continue  # expunged elsewhere, not yet announced: nothing to show
            seq = seqs[index]
            assert seq is not None
            row_items = items
            now_seen = seen_now.get(row.uid)
            if now_seen is not None:
                new_flags, keywords, modseq = now_seen
                row = row._replace(flags=Flag(new_flags), keywords=keywords, modseq=modseq)
                if not wants_flags:
                    row_items = (*items, t.FetchAttr("FLAGS"))  # §6.4.5: \Seen set, say so
            if row.keywords:
                for line in sel.announce(row.keywords):
                    await self.send(line)
            flags = sel.flags_of(row.uid, row.flags, row.keywords)
            raw = None
            if needs_raw:
                raw = raws.get(row.id)
                if raw is None:
                    continue  # expunged by another session since the rows were read
            await self.send(
                fetching.render(
                    seq,
                    row,
                    row_items,
                    raw,
                    flags=flags,
                    rev2=self.rev2,
                    include_uid=cmd.uid,
                    include_modseq=self.condstore and cmd.changed_since is not None,
                )
            )
        return own

    async def _vanished_since(self, sel: Selected, uids: t.SequenceSet, modseq: int) -> None:
        assert self.account is not None
        changes = await self.store.changes_since(self.account.id, modseq)
        top = sel.uids[-1] if sel.uids else 0
        gone = sorted(
            {
                c.uid
                for c in changes
                if c.mailbox_id == sel.mailbox.id
                and sel.seq_of(c.uid) is None
                and uids.contains(c.uid, top)
            }
        )
        if gone:
            await self.send(
                b"* VANISHED (EARLIER) " + t.format_sequence_set(gone).encode() + b"\r\n"
            )

    async def cmd_store(self, cmd: t.Command) -> None:
        assert isinstance(cmd, t.StoreFlags)
        sel = self.selected
        assert sel is not None
        if sel.read_only:
            await self.tagged(cmd.tag, "NO", "[READ-ONLY] Mailbox is read-only")
            return
        if not cmd.uid and not sel.valid_sequence(cmd.set):
            await self._bad(cmd.tag, "Invalid message sequence number")
            return
        try:
            flags, keywords = _parse_flags(cmd.flags)
        except _BadFlag as exc:
            await self._bad(cmd.tag, str(exc))
            return
        uids = sel.resolve(cmd.set, uid=cmd.uid, saved=self.saved)
        if cmd.unchanged_since is not None:
            await self._enable_condstore()
        changed, failed = await self.store.store_flags(
            sel.mailbox.id, uids, cmd.mode, flags, keywords, unchanged_since=cmd.unchanged_since
        )
        own = {c[3] for c in changed}
        states = {uid: MessageState(uid, m, Flag(f), k) for uid, f, k, m in changed}
        for line in sel.announce(keywords):
            await self.send(line)
        if not cmd.silent and len(states) + len(failed) < len(uids):
            # §6.4.6: the FETCH responses show every message's flags, also those the STORE
            # left as they were.
            left = set(uids) - states.keys() - set(failed)
            for unchanged in await self.store.list_states(sel.mailbox.id, min(left), max(left)):
                if unchanged.uid in left:
                    states[unchanged.uid] = unchanged
        for uid in uids:
            state = states.get(uid)
            seq = sel.seq_of(uid)
            if state is None or seq is None:
                continue
            if state.keywords:  # kept from before, maybe set by another session meanwhile
                for line in sel.announce(state.keywords):
                    await self.send(line)
            if cmd.silent:
                # §6.4.6: no echo; RFC 7162 §3.1.3 still tells a CONDSTORE client the new
                # MODSEQ of what changed.
                if self.condstore:
                    uid_part = b"UID %d " % uid if cmd.uid or self.qresync else b""
                    await self.send(
                        b"* %d FETCH (%sMODSEQ (%d))\r\n" % (seq, uid_part, state.modseq)
                    )
                continue
            await self.send(
                sel.fetch_flags(seq, state, uid=cmd.uid or self.qresync, modseq=self.condstore)
            )
        await self.news(allow_expunge=cmd.uid, own=own)
        if failed:
            numbers = failed if cmd.uid else [sel.seq_of(u) or 0 for u in failed]
            modified = t.format_sequence_set(numbers)
            await self.tagged(cmd.tag, "OK", f"[MODIFIED {modified}] Conditional STORE failed")
        else:
            await self.tagged(cmd.tag, "OK", f"{cmd.name} completed")

    async def cmd_copy(self, cmd: t.Command) -> None:
        assert isinstance(cmd, t.CopyMove) and self.account is not None
        sel = self.selected
        assert sel is not None
        move = cmd.name.endswith("MOVE")
        if move and sel.read_only:
            await self.tagged(cmd.tag, "NO", "[READ-ONLY] Mailbox is read-only")
            return
        if not cmd.uid and not sel.valid_sequence(cmd.set):
            await self._bad(cmd.tag, "Invalid message sequence number")
            return
        target = await self.store.get_mailbox(self.account.id, cmd.mailbox)
        if target is None:
            await self.tagged(cmd.tag, "NO", "[TRYCREATE] No such mailbox")
            return
        uids = sel.resolve(cmd.set, uid=cmd.uid, saved=self.saved)
        uids = [u for u in uids if u not in sel.pending_expunge]
        if not uids:
            await self.tagged(cmd.tag, "OK", f"{cmd.name} completed (nothing to do)")
            return
        op = self.store.move if move else self.store.copy
        pairs = await op(sel.mailbox.id, target.id, uids)
        code = ""
        if pairs:
            source = t.format_sequence_set([a for a, _ in pairs])
            dest = ",".join(str(b) for _, b in pairs)
            code = f"[COPYUID {target.uidvalidity} {source} {dest}] "
        if move:
            if code:  # RFC 6851 §4.3: COPYUID in an untagged OK before the expunges
                await self.send(f"* OK {code}Moved\r\n".encode())
            for line in sel.forget([a for a, _ in pairs], vanished=self.qresync):
                await self.send(line)
            await self.news()
            await self.tagged(cmd.tag, "OK", f"{cmd.name} completed")
        else:
            await self.news(allow_expunge=cmd.uid)
            await self.tagged(cmd.tag, "OK", f"{code}{cmd.name} completed")

    # -- helpers ---------------------------------------------------------------------------

    async def _rows(
        self, sel: Selected, uids: Sequence[int], columns: Collection[str] | None = None
    ) -> list[Message]:
        """Rows of ``uids`` (ascending) in that order; one that vanished gets a stand-in (id -1).
        ``columns``: the content columns wanted (None: all)."""
        if not uids:
            return []
        found = await self.store.list_messages(sel.mailbox.id, uids[0], uids[-1], columns=columns)
        if len(found) == len(uids) and all(m.uid == u for m, u in zip(found, uids, strict=True)):
            return found  # the usual case: a run of UIDs, all still there
        by_uid = {m.uid: m for m in found}
        return [by_uid.get(u) or _ghost(sel.mailbox.id, u) for u in uids]

    async def _read(self, messages: Sequence[Message]) -> list[bytes]:
        """Stored messages for SEARCH, in one store call; a vanished one reads as empty."""
        found = await self.store.read_messages([m.id for m in messages if m.id >= 0])
        return [found.get(m.id, b"") for m in messages]

    def _text_index(self) -> search.TextCandidates:
        """The full-text index's candidates, asked once per string in a search (both
        :func:`search.candidates` and the TEXT key itself want them)."""
        asked: dict[tuple[tuple[str, ...], tuple[str, ...], str], set[int]] = {}

        async def text_candidates(
            words: Sequence[str], pieces: Sequence[str], where: str
        ) -> set[int] | None:
            assert self.selected is not None
            key = (tuple(words), tuple(pieces), where)
            if key not in asked:
                found = await self.store.search_text(
                    self.selected.mailbox.id, words, pieces, headers=where == "text"
                )
                asked[key] = set(found)
            return asked[key]

        return text_candidates

    async def _column_candidates(self, column: str, pieces: Sequence[str]) -> set[int]:
        assert self.selected is not None
        return set(await self.store.search_columns(self.selected.mailbox.id, column, pieces))


class _TooBig(Exception):
    pass


class _BadFlag(Exception):
    pass


def _parse_flags(names: Iterable[str]) -> tuple[Flag, list[str]]:
    flags = Flag(0)
    keywords: list[str] = []
    for name in names:
        if name.startswith("\\"):
            bit = FLAG_NAMES.get(name.lower())
            if bit is not None:
                flags |= bit
            elif name.lower() != "\\recent":
                raise _BadFlag(f"Invalid system flag {name}")
        elif name not in keywords:
            keywords.append(name)
    return flags, keywords


def _ghost(mailbox_id: int, uid: int) -> Message:
    return Message(
        -1, mailbox_id, uid, 0, Flag(0), (), 0, 0, 0, b"NIL", b"NIL", b"NIL",
        "", "", "", "", "", None, "", "", "", "",
    )  # fmt: skip


def _b64(text: str) -> bytes | None:
    if text == "=":  # RFC 4959: an empty initial response
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _with_recent(key: t.SearchKey, recent: set[int]) -> t.SearchKey:
    """RECENT becomes the UID set of this session's recent messages."""
    if isinstance(key, t.RecentKey):
        return t.SetKey(t.SequenceSet(tuple((u, u) for u in sorted(recent))), uid=True)
    if isinstance(key, t.NotKey):
        return t.NotKey(_with_recent(key.key, recent))
    if isinstance(key, t.OrKey):
        return t.OrKey(_with_recent(key.left, recent), _with_recent(key.right, recent))
    if isinstance(key, t.AndKey):
        return t.AndKey(tuple(_with_recent(k, recent) for k in key.keys))
    return key


def _uses_modseq(key: t.SearchKey) -> bool:
    if isinstance(key, t.ModSeqKey):
        return True
    if isinstance(key, t.NotKey):
        return _uses_modseq(key.key)
    if isinstance(key, t.OrKey):
        return _uses_modseq(key.left) or _uses_modseq(key.right)
    if isinstance(key, t.AndKey):
        return any(_uses_modseq(k) for k in key.keys)
    return False


_LIST_SELECT = {"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"}
_LIST_RETURN = {"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"}


def _list_entries(
    boxes: dict[str, Mailbox],
    subscribed: set[str],
    regexes: Sequence[re.Pattern[str]],
    *,
    lsub: bool,
    select: set[str],
    returns: set[str],
    rev2: bool,
) -> list[tuple[str, list[str], bool]]:
    """(name, attributes, CHILDINFO SUBSCRIBED) for each LIST/LSUB answer, sorted by name."""

    def matches(name: str) -> bool:
        return any(r.fullmatch(name) for r in regexes)

    def has_children(name: str) -> bool:
        return any(n.startswith(name + DELIMITER) for n in boxes)

    entries: dict[str, tuple[list[str], bool]] = {}
    if lsub:
        # RFC 3501 §6.3.9: a "%" that stops above a subscribed name lists that level,
        # \Noselect unless it is itself subscribed.
        for name in subscribed:
            parts = name.split(DELIMITER)
            for depth in range(1, len(parts) + 1):
                level = DELIMITER.join(parts[:depth])
                if matches(level) and level not in entries:
                    entries[level] = ([] if level in subscribed else ["\\Noselect"], False)
        return [(n, *entries[n]) for n in sorted(entries)]
    only_subscribed = "SUBSCRIBED" in select
    candidates = subscribed if only_subscribed else set(boxes)
    for name in candidates:
        if not matches(name):
            continue
        box = boxes.get(name)
        if "SPECIAL-USE" in select and (box is None or not box.special_use):
            continue
        attrs: list[str] = []
        if box is None:
            attrs.append("\\NonExistent" if rev2 or only_subscribed else "\\Noselect")
        else:
            attrs.append("\\HasChildren" if has_children(name) else "\\HasNoChildren")
        if name in subscribed and (only_subscribed or "SUBSCRIBED" in returns):
            attrs.append("\\Subscribed")
        if box is not None and box.special_use:
            attrs.append(box.special_use)
        entries[name] = (attrs, False)
    if "RECURSIVEMATCH" in select:
        # RFC 5258 §3.5: a matching name with a selected (subscribed) descendant that the
        # pattern does not match itself is listed with CHILDINFO, selected or not.
        for name in subscribed:
            if matches(name):
                continue
            parts = name.split(DELIMITER)
            for depth in range(1, len(parts)):
                parent = DELIMITER.join(parts[:depth])
                if not matches(parent):
                    continue
                attrs, _ = entries.get(parent, ([], False))
                if parent not in entries and parent in boxes and "CHILDREN" in returns:
                    attrs = ["\\HasChildren" if has_children(parent) else "\\HasNoChildren"]
                entries[parent] = (attrs, True)
    return [(n, *entries[n]) for n in sorted(entries)]


def _pattern(reference: str, pattern: str) -> re.Pattern[str]:
    """RFC 9051 §6.3.9: ``*`` matches anything, ``%`` anything but the delimiter."""
    full = reference + pattern if not pattern.startswith(DELIMITER) else pattern
    if full[:5].upper() == "INBOX":  # INBOX is case-insensitive, stored as "INBOX"
        full = "INBOX" + full[5:]
    return re.compile(
        "".join(".*" if c == "*" else "[^/]*" if c == "%" else re.escape(c) for c in full)
    )


_HANDLERS = {
    "CAPABILITY": Session.cmd_capability,
    "NOOP": Session.cmd_noop,
    "LOGOUT": Session.cmd_logout,
    "ID": Session.cmd_id,
    "STARTTLS": Session.cmd_starttls,
    "LOGIN": Session.cmd_login,
    "AUTHENTICATE": Session.cmd_authenticate,
    "ENABLE": Session.cmd_enable,
    "NAMESPACE": Session.cmd_namespace,
    "SELECT": Session.cmd_select,
    "EXAMINE": Session.cmd_select,
    "CREATE": Session.cmd_create,
    "DELETE": Session.cmd_delete,
    "RENAME": Session.cmd_rename,
    "SUBSCRIBE": Session.cmd_subscribe,
    "UNSUBSCRIBE": Session.cmd_subscribe,
    "LIST": Session.cmd_list,
    "LSUB": Session.cmd_list,
    "STATUS": Session.cmd_status,
    "APPEND": Session.cmd_append,
    "GETQUOTAROOT": Session.cmd_getquotaroot,
    "GETQUOTA": Session.cmd_getquota,
    "SETQUOTA": Session.cmd_setquota,
    "COMPRESS": Session.cmd_compress,
    "IDLE": Session.cmd_idle,
    "CHECK": Session.cmd_check,
    "CLOSE": Session.cmd_close,
    "UNSELECT": Session.cmd_unselect,
    "EXPUNGE": Session.cmd_expunge,
    "UID EXPUNGE": Session.cmd_expunge,
    "SEARCH": Session.cmd_search,
    "UID SEARCH": Session.cmd_search,
    "SORT": Session.cmd_search,
    "UID SORT": Session.cmd_search,
    "THREAD": Session.cmd_search,
    "UID THREAD": Session.cmd_search,
    "FETCH": Session.cmd_fetch,
    "UID FETCH": Session.cmd_fetch,
    "STORE": Session.cmd_store,
    "UID STORE": Session.cmd_store,
    "COPY": Session.cmd_copy,
    "UID COPY": Session.cmd_copy,
    "MOVE": Session.cmd_copy,
    "UID MOVE": Session.cmd_copy,
}

_STATES = {
    **dict.fromkeys(("CAPABILITY", "NOOP", "LOGOUT", "ID"), "any"),
    **dict.fromkeys(("STARTTLS", "LOGIN", "AUTHENTICATE"), "nonauth"),
    **dict.fromkeys(
        [
            "ENABLE",
            "NAMESPACE",
            "SELECT",
            "EXAMINE",
            "CREATE",
            "DELETE",
            "RENAME",
            "SUBSCRIBE",
            "UNSUBSCRIBE",
            "LIST",
            "LSUB",
            "STATUS",
            "APPEND",
            "GETQUOTAROOT",
            "GETQUOTA",
            "SETQUOTA",
            "COMPRESS",
            "IDLE",
        ],
        "auth",
    ),
    **dict.fromkeys(
        (
            "CHECK",
            "CLOSE",
            "UNSELECT",
            "EXPUNGE",
            "UID EXPUNGE",
            "SEARCH",
            "UID SEARCH",
            "SORT",
            "UID SORT",
            "THREAD",
            "UID THREAD",
            "FETCH",
            "UID FETCH",
            "STORE",
            "UID STORE",
            "COPY",
            "UID COPY",
            "MOVE",
            "UID MOVE",
        ),
        "selected",
    ),
}

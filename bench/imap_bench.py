"""IMAP on a 10,000-message mailbox: courrier against stock Dovecot, same machine, same run.

    python -m bench.imap_bench [--messages 10000] [--rounds 5] [--idle 2000] [--record]

Both servers get the same generated mailbox (2–8 KiB messages with varied senders, subjects and
dates; one in 100 bodies holds the word the TEXT search looks for). Dovecot (Debian's
``dovecot-imapd``) runs as a private instance from a temporary directory: Maildir, written
directly as its LDA would (``cur/`` files with ``,S=,W=`` sizes), ``mail_fsync = always``,
COPY by hard links (its default), a passwd-file with an argon2id hash of courrier's parameters
(m=64 MiB, t=3), no TLS on either side (courrier allows plaintext on loopback). courrier gets its
copy by MULTIAPPEND. Filling is not measured. LOGIN compares two policies: courrier remembers a
verified password for 15 minutes, Dovecot checks the hash at every LOGIN (its ``auth_cache``,
off by default, would cache the passdb lookup, not the check).

Each command is timed from the first byte sent to the tagged reply, by a small client that reads
the whole response (literals included) without parsing it. One row is not in the issue: SEARCH
TEXT of a two-word string, which courrier's full-text index can narrow (a lone word, which may
begin inside a word of the text, it cannot). Every command runs once untimed on
each server first (Dovecot fills its cache, courrier's full-text indexer catches up); then rounds
alternate between the servers and the table gives the medians. STORE is undone after each round
(its ``-FLAGS`` is not timed); COPY goes into a new mailbox, MOVE takes that copy into another
one, and both are deleted afterwards, so INBOX is the same in every round.

IDLE: after a restart of each server, N connections (``--idle``) LOGIN, each SELECTs an empty
mailbox of its own and IDLEs; later they all DONE, SELECT INBOX and IDLE again. Memory is the
server's RSS, and PSS (shared pages split between the processes that share them), summed over its
process tree, minus the same before the N connections, divided by N, in both states. Push: a
separate connection APPENDs one message at a time (``--deliveries`` into the idlers' own
mailboxes, then ``--herd`` into INBOX, where each delivery wakes all N sessions in both servers);
latency runs from sending the APPEND to the ``* n EXISTS`` at one idler, a different one each
time. Dovecot runs one process per IMAP connection (its default) and learns of new mail through
inotify, one instance per process: the kernel's per-user limit is raised for the run.
Needs root (Dovecot's private instance drops to its users).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import email.utils
import math
import os
import re
import resource
import selectors
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.dovecot import (
    PASSWORD,
    SUBJECT_WORD,
    TEXT_WORD,
    Client,
    Courrier,
    Dovecot,
    IMAPError,
    Reply,
    Server,
    process_tree,
    table_head,
    table_row,
    tree_cpu,
    wait_quiet,
)
from bench.dovecot import (
    mailbox as generated_mailbox,
)
from bench.dovecot import (
    milliseconds as _ms,
)
from bench.results import record

INOTIFY = Path("/proc/sys/fs/inotify/max_user_instances")

# -- the commands -----------------------------------------------------------------------------

COPY = "COPY 1:* (into a new mailbox)"
MOVE = "MOVE 1:* (that copy, into another)"
#: (label for the table, the command, its goal as courrier ÷ Dovecot)
COMMANDS: tuple[tuple[str, str, float], ...] = (
    ("LOGIN", "", 1.0),
    ("SELECT INBOX", "SELECT INBOX", 1.0),
    (
        "FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE)",
        "FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE)",
        1.0,
    ),
    (
        "FETCH 1:* BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)]",
        "FETCH 1:* BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)]",
        1.0,
    ),
    (f"SEARCH SUBJECT {SUBJECT_WORD}", f"SEARCH SUBJECT {SUBJECT_WORD}", 1.0),
    (f"SEARCH TEXT {TEXT_WORD}", f"SEARCH TEXT {TEXT_WORD}", 0.1),
    # Not in the issue: a phrase whose second word courrier's full-text index can look up (a
    # string's first word may start inside a word of the text, so the index skips it).
    (f'SEARCH TEXT "the {TEXT_WORD}"', f'SEARCH TEXT "the {TEXT_WORD}"', 0.1),
    ("STORE 1:* +FLAGS (\\Flagged)", "STORE 1:* +FLAGS (\\Flagged)", 1.0),
    (COPY, "", 1.0),
    (MOVE, "", 1.0),
    ("FETCH 1:1000 BODY.PEEK[]", "FETCH 1:1000 BODY.PEEK[]", 1.0),
)


def one_round(server: Server, label: str) -> dict[str, Reply]:
    """Every command once, on one connection; INBOX is left as it was found."""
    out: dict[str, Reply] = {}
    client = Client(server.port, server.name)
    out["LOGIN"] = client.run(f'LOGIN {server.user} "{PASSWORD}"')
    for name, command, _ in COMMANDS:
        if not command:
            continue
        out[name] = client.run(command)
        if command.startswith("STORE"):
            client.run(command.replace("+FLAGS", "-FLAGS"))
    copy, moved = f"Copy-{label}", f"Moved-{label}"
    client.run(f"CREATE {copy}")
    client.run(f"CREATE {moved}")
    out[COPY] = client.run(f"COPY 1:* {copy}")
    client.run(f"SELECT {copy}")
    out[MOVE] = client.run(f"MOVE 1:* {moved}")
    client.run("UNSELECT")
    client.run(f"DELETE {copy}")
    client.run(f"DELETE {moved}")
    client.run("LOGOUT")
    client.close()
    return out


# -- IDLE -------------------------------------------------------------------------------------


def tree_memory(root_pid: int) -> tuple[int, int, int]:
    """(RSS bytes, PSS bytes, processes) of ``root_pid`` and all its descendants."""
    pids = process_tree(root_pid)
    rss = pss = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Rss:"):
                rss += int(line.split()[1]) * 1024
            elif line.startswith("Pss:"):
                pss += int(line.split()[1]) * 1024
    return rss, pss, len(pids)


def enter_idle(clients: Sequence[Client], mailboxes: Sequence[str], batch: int = 50) -> None:
    """Each client (ending its IDLE if it is in one) SELECTs its mailbox and IDLEs again."""
    for start in range(0, len(clients), batch):
        group = clients[start : start + batch]
        pending = []
        for client, mailbox in zip(group, mailboxes[start : start + batch], strict=True):
            if client.idling is not None:
                client.sock.sendall(b"DONE\r\n")
            tags = [client.idling, client.send(f"SELECT {mailbox}")]
            client.idling = client.send("IDLE")
            pending.append((client, tags))
        for client, tags in pending:
            for tag in tags:
                if tag is None:
                    continue
                reply = client.reply(tag, time.perf_counter())
                if reply.status != "OK":
                    raise IMAPError(f"{client.name}: idler: {reply.data[-200:]!r}")
            while not client.line().startswith(b"+"):
                pass


def open_idlers(server: Server, count: int, failures: list[str], batch: int = 50) -> list[Client]:
    """``count`` logged-in connections; a LOGIN that fails is tried again on a new connection
    (up to 3 times), and why it failed goes into ``failures``."""
    clients: list[Client] = []
    for start in range(0, count, batch):
        group = [Client(server.port, server.name) for _ in range(min(batch, count - start))]
        tags = [c.send(f'LOGIN {server.user} "{PASSWORD}"') for c in group]
        for client, tag in zip(group, tags, strict=True):
            try:
                reply = client.reply(tag, time.perf_counter())
                if reply.status == "OK":
                    clients.append(client)
                    continue
                failures.append(reply.data[-200:].decode(errors="replace").strip())
            except ConnectionError as exc:
                failures.append(str(exc))
            client.close()
            for attempt in range(3):
                try:
                    clients.append(server.login())
                    break
                except (ConnectionError, IMAPError) as exc:
                    failures.append(str(exc))
                    if attempt == 2:
                        raise
    return clients


def _delivery(n: int) -> bytes:
    date = email.utils.format_datetime(datetime.datetime.now(datetime.UTC))
    head = (
        f"From: Carol <carol@example.net>\r\nTo: Bob <bob@example.org>\r\nSubject: push {n}\r\n"
        f"Date: {date}\r\nMessage-ID: <push-{n}-{time.time_ns()}@example.net>\r\n\r\n"
    )
    return (
        head + "A short message to see how fast an idling client hears of it.\r\n" * 40
    ).encode()


def _saw(client: Client, wanted: bytes) -> bool:
    """Whether ``wanted`` came; if so, what came up to it is dropped."""
    at = client.buf.find(wanted)
    if at < 0:
        return False
    del client.buf[: at + len(wanted) - 2]  # keeps the CRLF before the next line
    client.pos = 2
    return True


@dataclass
class Pushes:
    watched: list[float] = field(default_factory=list)  # APPEND sent → EXISTS at the idler
    everyone: list[float] = field(default_factory=list)  # … at the last of all idlers
    cpu: list[float] = field(default_factory=list)  # server CPU seconds per delivery
    late: int = 0  # deliveries that the idler (or some idler) had not heard of after 60 s
    busy: int = 0  # deliveries after which the server did not go quiet within 60 s


def push(
    server: Server,
    sender: Client,
    idlers: list[Client],
    targets: Sequence[tuple[int, str, int]],
    gap: float,
    *,
    herd: bool,
) -> Pushes:
    """One APPEND at a time; each target is (idler, its mailbox, the EXISTS it must see).

    While the idler is awaited only its socket and the sender's are read, so the client stays
    out of the server's way. With ``herd`` every idler shares the mailbox, and all of them are
    read until each has the EXISTS. Then the server is left to go quiet (its CPU time counted)
    before the next APPEND.
    """
    assert server.proc is not None
    out = Pushes()
    pids = process_tree(server.proc.pid)
    every = selectors.DefaultSelector()
    for client in idlers:
        every.register(client.sock, selectors.EVENT_READ, client)
    for k, (index, mailbox, exists) in enumerate(targets):
        watch = idlers[index]
        wanted = b"\r\n* %d EXISTS\r\n" % exists
        data = _delivery(k)
        pair = selectors.DefaultSelector()
        pair.register(watch.sock, selectors.EVENT_READ, watch)
        pair.register(sender.sock, selectors.EVENT_READ, sender)
        cpu = tree_cpu(pids)
        started = time.perf_counter()
        deadline = started + 60
        tag = sender.send(f"APPEND {mailbox} {{{len(data)}+}}\r\n".encode() + data)
        seen: float | None = None
        done: Reply | None = None
        while (seen is None or done is None) and (remaining := deadline - time.perf_counter()) > 0:
            events = pair.select(remaining)
            now = time.perf_counter()
            for key, _ in events:
                key.data.recv()
            if seen is None and _saw(watch, wanted):
                seen = now - started
            if done is None:
                done = sender.try_reply(tag, started)
        pair.close()
        if done is None:
            raise IMAPError(f"{server.name}: APPEND got no reply within 60 s")
        if done.status != "OK":
            raise IMAPError(f"{server.name}: APPEND: {done.data[-200:]!r}")
        out.watched.append(math.inf if seen is None else seen)
        last = math.inf
        if herd:
            waiting = {c for c in idlers if c is not watch or seen is None}
            waiting = {c for c in waiting if not _saw(c, wanted)}
            last = seen or 0.0
            while waiting and (remaining := deadline - time.perf_counter()) > 0:
                events = every.select(remaining)
                now = time.perf_counter()
                for key, _ in events:
                    client = key.data
                    try:
                        client.recv()
                    except ConnectionError:
                        every.unregister(client.sock)
                        continue
                    if client in waiting and _saw(client, wanted):
                        waiting.discard(client)
                        last = now - started
            if waiting:
                last = math.inf
            out.everyone.append(last)
        out.late += seen is None or (herd and last == math.inf)
        after, quiet = wait_quiet(pids)
        out.cpu.append(after - cpu)
        out.busy += not quiet
        if herd or (k + 1) % 50 == 0:
            print(
                f"# {server.name}: delivery {k + 1}/{len(targets)} to {mailbox}: "
                f"{_ms(out.watched[-1])} ms, all {_ms(last) if herd else '–'} ms, "
                f"CPU {_ms(out.cpu[-1])} ms",
                file=sys.stderr,
                flush=True,
            )
        time.sleep(gap)
    every.close()
    return out


@dataclass
class IdleResult:
    connections: int
    processes: tuple[int, int]
    #: (RSS, PSS) growth per connection, idling on a mailbox of their own (empty) / on INBOX
    own_memory: tuple[float, float]
    inbox_memory: tuple[float, float]
    own: Pushes
    inbox: Pushes
    setup_seconds: float
    login_failures: list[str]


def idle_phase(server: Server, count: int, deliveries: int, herd: int, gap: float) -> IdleResult:
    """N idlers on mailboxes of their own, then all on INBOX; memory and pushes in each."""
    assert server.proc is not None
    names = [f"Idle{i}" for i in range(count)]
    admin = server.login()
    for name in names:
        admin.run(f"CREATE {name}")
    admin.run("SELECT INBOX")
    admin.run("UNSELECT")
    time.sleep(2)
    rss0, pss0, procs0 = tree_memory(server.proc.pid)
    started = time.perf_counter()
    failures: list[str] = []
    idlers = open_idlers(server, count, failures)
    enter_idle(idlers, names)
    setup = time.perf_counter() - started
    time.sleep(3)
    rss1, pss1, procs1 = tree_memory(server.proc.pid)
    try:
        picks = [k * count // deliveries % count for k in range(deliveries)]
        seen: dict[int, int] = {}
        targets = []
        for i in picks:
            seen[i] = seen.get(i, 0) + 1
            targets.append((i, names[i], seen[i]))
        own = push(server, admin, idlers, targets, gap, herd=False)
        exists = int(re.findall(rb"\* (\d+) EXISTS", admin.run("SELECT INBOX").data)[-1])
        admin.run("UNSELECT")
        enter_idle(idlers, ["INBOX"] * count)
        time.sleep(3)
        rss2, pss2, _ = tree_memory(server.proc.pid)
        targets = [(k * count // herd % count, "INBOX", exists + k + 1) for k in range(herd)]
        inbox = push(server, admin, idlers, targets, gap, herd=True)
    finally:
        for client in idlers:
            client.close()
        admin.close()
    return IdleResult(
        connections=count,
        processes=(procs0, procs1),
        own_memory=((rss1 - rss0) / count, (pss1 - pss0) / count),
        inbox_memory=((rss2 - rss0) / count, (pss2 - pss0) / count),
        own=own,
        inbox=inbox,
        setup_seconds=setup,
        login_failures=failures,
    )


# -- the report -------------------------------------------------------------------------------


def _size(reply: Reply, command: str) -> str:
    if command.startswith("SEARCH"):
        return f"{reply.search_hits()} hits"
    return f"{len(reply.data) / 1024:,.0f} KiB" if len(reply.data) >= 10240 else ""


def _percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(round(p / 100 * (len(ordered) - 1)), len(ordered) - 1)]


def report(
    names: tuple[str, str],
    runs: dict[str, list[dict[str, Reply]]],
    idle: dict[str, IdleResult],
    args: argparse.Namespace,
    contents: str,
    notes: list[str],
) -> str:
    peer, ours = names
    lines = [
        f"{args.messages:,} messages in INBOX ({contents}), "
        f"one user, no TLS; ms from the command's first byte to its tagged reply; warm medians "
        f"of {args.rounds} rounds (each round in brackets), servers alternating",
        "",
        *table_head(peer),
    ]
    for label, _, goal in COMMANDS:
        times = {n: [r[label].seconds for r in runs[n]] for n in names}
        sizes = [_size(runs[n][-1][label], label) for n in names]
        size = sizes[0] if sizes[0] == sizes[1] else " / ".join(sizes)
        lines.append(table_row(label, names, times, goal, size))
    if idle:
        some = next(iter(idle.values()))
        n = f"{some.connections:,}"
        lines += [
            "",
            f"IDLE, {n} connections after a restart: LOGIN, SELECT of a mailbox of their own "
            f"(empty), IDLE; then DONE, SELECT INBOX ({args.messages:,} messages), IDLE. Memory: "
            f"the server's process tree, Δ from before the {n} connections, ÷ {n}.",
            "",
            "| server | processes | RSS Δ per connection, own mailbox | PSS Δ, own mailbox "
            "| RSS Δ per connection, on INBOX | PSS Δ, on INBOX |",
            "|---|---|---|---|---|---|",
        ]
        for name in names:
            if name in idle:
                r = idle[name]
                own, inbox = r.own_memory, r.inbox_memory
                lines.append(
                    f"| {name} | {r.processes[0]} → {r.processes[1]} | {own[0] / 1024:,.1f} KiB "
                    f"| {own[1] / 1024:,.1f} KiB | {inbox[0] / 1024:,.1f} KiB "
                    f"| {inbox[1] / 1024:,.1f} KiB |"
                )
        lines += [
            "",
            f"Push: one APPEND at a time from another connection, ms from sending it to the "
            f"`* n EXISTS` at an idler (a different one each time): {args.deliveries} into the "
            f"idlers' own mailboxes, then {args.herd} into INBOX, where all {n} idle and each "
            "delivery wakes them all (*all*: until the last one has it). The next APPEND waits "
            "until the server is quiet (< 10 % of a core) or 60 s have passed; CPU = the server's "
            "CPU time from an APPEND to then. Missed for 60 s counts as > 60 s.",
            "",
            "| server | mailbox | push p50 ms | push p95 ms | push max ms | all p50 ms "
            "| all p95 ms | server CPU ms per delivery |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for mailbox in ("own", "INBOX"):
            for name in names:
                if name not in idle:
                    continue
                pushes = idle[name].own if mailbox == "own" else idle[name].inbox
                watched = pushes.watched or [float("nan")]
                herd = pushes.everyone or [float("nan")]
                late = f" ({pushes.late} late > 60 s)" if pushes.late else ""
                cpu = _ms(statistics.median(pushes.cpu)) if pushes.cpu else ""
                if pushes.busy:
                    cpu += f" (busy > 60 s after {pushes.busy})"
                everyone = (
                    f"{_ms(_percentile(herd, 50))} | {_ms(_percentile(herd, 95))}"
                    if mailbox == "INBOX"
                    else "– | –"
                )
                lines.append(
                    f"| {name} | {mailbox} | {_ms(_percentile(watched, 50))} "
                    f"| {_ms(_percentile(watched, 95))}{late} | {_ms(max(watched))} "
                    f"| {everyone} | {cpu} |"
                )
        if ours in idle:
            r = idle[ours]
            kb = r.inbox_memory[0] / 1000
            p50s = [
                _percentile(p.watched, 50) if p.watched else float("nan") for p in (r.own, r.inbox)
            ]
            lines += [
                "",
                f"Goals for courrier: ≤ 50 KB per idle connection: {kb:,.1f} KB on INBOX, "
                f"{r.own_memory[0] / 1000:,.1f} KB on an empty mailbox "
                f"({'met' if kb <= 50 else '**not met**'}); push p50 ≤ 50 ms: "
                f"{_ms(p50s[0])} ms on own mailboxes, {_ms(p50s[1])} ms on INBOX "
                f"({'met' if max(p50s) <= 0.05 else '**not met**'}).",
            ]
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------------


@contextlib.contextmanager
def inotify_instances(count: int, notes: list[str]) -> Iterator[None]:
    """Dovecot's IDLE uses an inotify instance per process (more while it syncs), all under the
    mail user; the kernel's default of 128 would turn most of them into 30-second polling
    (Dovecot's log says to raise the limit), so it is raised for the run and put back after."""
    before = int(INOTIFY.read_text())
    if before >= count or count <= 0:
        yield
        return
    INOTIFY.write_text(f"{count}\n")
    notes.append(f"fs.inotify.max_user_instances raised from {before} to {count} for the run")
    try:
        yield
    finally:
        INOTIFY.write_text(f"{before}\n")


def _timed(what: str, fn: Callable[..., object], *args: object) -> None:
    started = time.perf_counter()
    fn(*args)
    print(f"# {what}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (medians shown)")
    parser.add_argument("--idle", type=int, default=2000, help="idling connections (0: skip)")
    parser.add_argument(
        "--deliveries", type=int, default=200, help="pushes timed, each idler on its own mailbox"
    )
    parser.add_argument("--herd", type=int, default=20, help="pushes timed, all idlers on INBOX")
    parser.add_argument(
        "--gap", type=float, default=0.1, help="seconds between one delivery's end and the next"
    )
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if args.messages < 1000:
        parser.error("--messages: at least 1000 (FETCH 1:1000 BODY.PEEK[])")
    if os.geteuid() != 0 or shutil.which("dovecot") is None:
        print("needs root and Dovecot: apt-get install dovecot-imapd", file=sys.stderr)
        return 1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.idle + 1000
    if soft < wanted:
        if hard < wanted:
            print(f"ulimit -n is {hard}; --idle {args.idle} needs {wanted}", file=sys.stderr)
            return 1
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    root = Path(tempfile.mkdtemp(prefix="courrier-bench-imap-"))
    root.chmod(0o755)  # Dovecot's processes run as its users
    notes: list[str] = []
    runs: dict[str, list[dict[str, Reply]]] = {}
    idle: dict[str, IdleResult] = {}
    try:
        messages = generated_mailbox(args.messages)
        lengths = [len(m.data) for m in messages]
        contents = (
            f"{sum(lengths) / 2**20:.1f} MiB, {min(lengths) / 1024:.1f}–"
            f"{max(lengths) / 1024:.1f} KiB each"
        )
        dovecot = Dovecot(root / "dovecot", args.idle)
        courrier = Courrier(root / "courrier", args.idle)
        servers: tuple[Server, Server] = (dovecot, courrier)
        names = (dovecot.name, courrier.name)
        with contextlib.ExitStack() as stack:
            stack.enter_context(inotify_instances(args.idle and 4 * args.idle + 256, notes))
            for server in servers:
                stack.callback(server.stop)
            _timed("Dovecot Maildir written", dovecot.fill, messages)
            dovecot.start()
            courrier.start()
            _timed("courrier filled by MULTIAPPEND", courrier.fill, messages)
            os.sync()
            for server in servers:
                _timed(f"{server.name}: warm-up round", one_round, server, "warm")
            for r in range(args.rounds):
                order = servers if r % 2 == 0 else servers[::-1]
                for server in order:
                    runs.setdefault(server.name, []).append(one_round(server, str(r)))
                    time.sleep(0.5)
                print(f"# round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
            sizes = [
                [
                    int(x)
                    for x in re.findall(rb"RFC822\.SIZE (\d+)", runs[n][-1][COMMANDS[2][0]].data)
                ]
                for n in names
            ]
            if sizes[0] != sizes[1]:
                notes.append("the two mailboxes' RFC822.SIZE lists differ (message order?)")
            if args.idle:
                for server in servers:
                    server.restart()
                    print(f"# {server.name}: opening {args.idle} idlers", file=sys.stderr)
                    idle[server.name] = idle_phase(
                        server, args.idle, args.deliveries, args.herd, args.gap
                    )
                    server.stop()
                    print(
                        f"# {server.name}: idle done in {idle[server.name].setup_seconds:.0f} s "
                        "of set-up",
                        file=sys.stderr,
                    )
        for name, result in idle.items():
            if result.login_failures:
                notes.append(
                    f"{name}: {len(result.login_failures)} idler LOGINs failed and were tried "
                    f"again, first: {result.login_failures[0]}"
                )
        warnings = dovecot.complaints()
        if warnings:
            notes.append(f"Dovecot logged {len(warnings)} warnings/errors, first: {warnings[0]}")
    finally:
        if args.keep:
            print(f"# kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    text = report(names, runs, idle, args, contents, notes)
    print(text)
    if args.record:
        record(
            "IMAP on a 10,000-message mailbox",
            "bench.imap_bench",
            f"same run, {names[0]} (Maildir, one process per connection) beside courrier.",
            text,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

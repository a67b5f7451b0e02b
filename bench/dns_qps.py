"""DNS queries per second: courrier's authoritative server against NSD, same zones, same run.

    python -m bench.dns_qps [--domains 100] [--seconds 10] [--repeat 3] [--rate-limit QPS]
                            [--record] [--profile]

Needs ``apt-get install dnsperf nsd`` (and ``linux-perf`` for ``--profile``); run as root on a
machine with at least 2 cores.

What it measures (issue 9: ≥ 10,000 queries/s on one core for the MX/TXT/A mix): courrier
(``courrier serve`` with only its DNS listener, on loopback, ``dns.rate_limit = 0`` unless
``--rate-limit`` says otherwise) and NSD (Debian's ``nsd``, in the foreground with one server
process, rate limiting off, minimal responses as courrier's) serve the same zones: a hosted
``bench.test``, which holds the mail host ``mail.bench.test`` (A 192.0.2.25), and N-1 more
domains. NSD's zone files are the zones courrier serves, built in this process by
:class:`courrier.dns.zonedata.ZoneBuilder` on the same store, as ``courrier serve`` builds them
(so serials, keys and, signed, the signatures are the same). Both servers are pinned to core 0
and Debian's ``dnsperf`` to core 1 (``taskset``), 4 sockets, 100 queries outstanding, EDNS on,
``--seconds`` per measurement. Two query files:

- *mix*: for every domain the names mail senders and receivers ask for, read from
  ``courrier domain dns NAME --json``: MX and TXT (SPF) at the apex, TXT at ``_dmarc``,
  ``_smtp._tls`` and each DKIM selector, the mail host's A, and a name that does not exist
  (NXDOMAIN). A few hundred distinct questions, repeated: after the first pass courrier
  answers them from its wire-format cache (:mod:`courrier.dns.rendered`).
- *random NXDOMAIN*: a different made-up name under one of the domains in every query (new
  names for every run), as in a random-subdomain flood: courrier renders each answer the long
  way (and its cache of answers fills and is dropped every 50,000 names).

Each round measures NSD then courrier on both files; the table gives medians of the rounds.
The whole is run twice: unsigned zones, then signed ones (``dns.dnssec = true``, ECDSA P-256)
queried with the DO bit. Server CPU is the server's process tree's CPU time over the run
(``/proc/PID/schedstat``, the scheduler's count, finer than ``stat``'s ticks) per answer
received; dnsperf's own CPU tells whether the client set the rate (at 100 % of its core it
did); "others" is core 0's busy time that was not the server's. The machine is shared: each
run waits (a minute at most) for the machine to be quiet, and the servers and dnsperf run at
nice -19, so that other load takes only what they leave.
Before the rounds, every distinct question of the mix is asked of both servers and their
answers compared (rcode and answer section; a difference is reported, not fatal).

Also printed: µs per :meth:`Authority.respond` in this process over the mix's questions, kept
answer against the long way (``Authority._render``: parse, look up, build, render); with
``--profile``, cProfile of ``UDPProtocol.datagram_received`` over random NXDOMAIN questions in
this process, and where each server's processes spend their CPU under load (``perf record``
during extra 5-second runs, by shared object: kernel, interpreter, event loop…).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import cProfile
import json
import os
import pstats
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query

from bench.dovecot import process_tree, tree_cpu
from bench.results import record
from bench.smtp_accept import busy_cpu_seconds
from courrier import config as courrier_settings
from courrier import provisioning
from courrier.dns.answer import Authority
from courrier.dns.records import Record
from courrier.dns.server import DNSServer
from courrier.dns.signing import ALGORITHMS
from courrier.dns.zone import Zone
from courrier.dns.zonedata import ZoneBuilder
from courrier.security.certificates import ensure_certificate
from courrier.store import open_store

ROOT = Path(__file__).resolve().parents[1]
COURRIER_PORT = 35353
NSD_PORT = 35354
HOSTNAME = "mail.bench.test"
HOST_ADDRESS = "192.0.2.25"
#: Listeners other than DNS are switched off: only the DNS server is measured.
_OTHER_LISTENERS = ("smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s")
_COURRIER_TOML = """\
[server]
hostname = "{hostname}"
listen = ["127.0.0.1"]

[dns]
host_addresses = ["{address}"]
rate_limit = {rate_limit}
dnssec = {dnssec}

[listeners.dns]
enabled = true
port = {port}
"""
_NSD_CONF = """\
server:
    server-count: 1
    ip-address: 127.0.0.1@{port}
    port: {port}
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{root}"
    pidfile: "{root}/nsd.pid"
    xfrdfile: "{root}/xfrd.state"
    zonelistfile: "{root}/zone.list"
    database: ""
    logfile: "{root}/nsd.log"
    verbosity: 1
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
    minimal-responses: yes
remote-control:
    control-enable: no
"""


def on_core(core: int) -> tuple[str, ...]:
    """The command prefix that runs a program on ``core`` alone, at nice -19: the machine is
    shared, and other load then gets only what the benchmark leaves."""
    return ("taskset", "-c", str(core), "nice", "-n", "-19")


def domain_names(count: int) -> list[str]:
    """``bench.test`` (where the mail host lives) and ``count - 1`` more."""
    return ["bench.test", *(f"domain{i:03d}.test" for i in range(1, count))]


# -- courrier's side: its store, zones and server ---------------------------------------------


def courrier_config(root: Path, *, dnssec: bool, rate_limit: int = 0) -> Path:
    path = root / f"courrier-{'signed' if dnssec else 'unsigned'}.toml"
    text = _COURRIER_TOML.format(
        hostname=HOSTNAME,
        address=HOST_ADDRESS,
        dnssec=str(dnssec).lower(),
        port=COURRIER_PORT,
        rate_limit=rate_limit,
    )
    text += "".join(f"\n[listeners.{name}]\nenabled = false\n" for name in _OTHER_LISTENERS)
    path.write_text(text)
    return path


def _courrier_env() -> dict[str, str]:
    """The servers and commands run this checkout's courrier."""
    path = os.environ.get("PYTHONPATH")
    src = str(ROOT / "src")
    return {**os.environ, "PYTHONPATH": f"{src}:{path}" if path else src}


async def _fill(config: Path, data: Path, domains: Sequence[str]) -> None:
    settings = courrier_settings.load(str(config), overrides={"server.data_dir": str(data)})
    store = await open_store(settings)
    async with store:
        for name in domains:
            await provisioning.add_domain(store, name)


async def _dns_server(config: Path, data: Path) -> DNSServer:
    """The DNS server ``courrier serve`` with ``config`` runs, built as its ``_serve_dns``
    builds it, with its zones (its store is closed: only its answers are for use)."""
    settings = courrier_settings.load(str(config), overrides={"server.data_dir": str(data)})
    ensure_certificate(settings)  # the one serve would make, so that the TLSA record is there
    store = await open_store(settings)
    async with store:

        async def records_of(domain: str) -> list[Record]:
            return await provisioning.domain_records(store, settings, domain)

        builder = ZoneBuilder(
            settings.server.hostname,
            records_of,
            dnssec_algorithm=ALGORITHMS[settings.dns.dnssec_algorithm]
            if settings.dns.dnssec
            else None,
        )
        server = DNSServer(store, builder, rate_limit=settings.dns.rate_limit)
        await server.refresh()
    return server


def published_names(config: Path, data: Path, domain: str) -> list[tuple[str, str]]:
    """(name, type) of the MX and TXT records ``courrier domain dns NAME --json`` prints."""
    out = subprocess.run(
        [
            *(sys.executable, "-m", "courrier", "domain", "dns", domain, "--json"),
            *("--config", str(config), "--data", str(data)),
        ],
        env=_courrier_env(),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [(r["name"], r["type"]) for r in json.loads(out) if r["type"] in ("MX", "TXT")]


@contextlib.contextmanager
def courrier_server(root: Path, config: Path, data: Path) -> Iterator[subprocess.Popen[bytes]]:
    with (root / "courrier.log").open("ab") as log:
        proc = subprocess.Popen(
            [
                *on_core(0),
                *(sys.executable, "-m", "courrier", "serve"),
                *("--config", str(config), "--data", str(data)),
            ],
            env=_courrier_env(),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        wait_dns(COURRIER_PORT, proc, f"courrier did not start; see {root}/courrier.log")
        yield proc
    finally:
        stop(proc)


# -- NSD ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def nsd_server(root: Path, zones: Sequence[Zone]) -> Iterator[subprocess.Popen[bytes]]:
    """NSD in the foreground, serving ``zones`` from files."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    conf = _NSD_CONF.format(root=root, port=NSD_PORT)
    for zone in zones:
        name = zone.origin.to_text(omit_final_dot=True)
        (root / f"{name}.zone").write_text(
            "".join(rrset.to_text() + "\n" for rrset in zone.records())
        )
        conf += f"zone:\n    name: {name}\n    zonefile: {name}.zone\n"
    (root / "nsd.conf").write_text(conf)
    subprocess.run(["nsd-checkconf", str(root / "nsd.conf")], check=True)
    with (root / "nsd.out").open("ab") as log:
        proc = subprocess.Popen(
            [*on_core(0), "nsd", "-d", "-c", str(root / "nsd.conf")],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        wait_dns(NSD_PORT, proc, f"NSD did not start; see {root}/nsd.log")
        yield proc
    finally:
        stop(proc)


def nsd_version() -> str:
    out = subprocess.run(["nsd", "-v"], capture_output=True, text=True).stderr
    found = re.search(r"NSD version (\S+)", out)
    return f"NSD {found.group(1)}" if found else "NSD"


# -- both ---------------------------------------------------------------------------------------


def wait_dns(port: int, proc: subprocess.Popen[bytes], failure: str) -> None:
    """Wait until the server on ``port`` answers the mail host's A (30 s at most)."""
    query = dns.message.make_query(HOSTNAME, "A")
    for _ in range(300):
        if proc.poll() is not None:
            break
        try:
            response = dns.query.udp(query, "127.0.0.1", port=port, timeout=0.2)
        except (OSError, dns.exception.Timeout):
            time.sleep(0.1)
            continue
        if response.answer:
            return
        time.sleep(0.1)
    raise RuntimeError(failure)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def compare(questions: Sequence[tuple[str, str]], ports: Sequence[int], dnssec: bool) -> list[str]:
    """Questions whose rcode or answer section differ between the servers on ``ports``."""
    differ = []
    for name, rdtype in questions:
        seen = []
        for port in ports:
            query = dns.message.make_query(name, rdtype, use_edns=0, want_dnssec=dnssec)
            response = dns.query.udp(query, "127.0.0.1", port=port, timeout=2)
            answer = sorted(r.to_text() for r in response.answer)
            seen.append((response.rcode(), answer))
        if any(s != seen[0] for s in seen[1:]):
            differ.append(f"{name} {rdtype}")
    return differ


# -- the load -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    qps: float
    latency: float  # seconds, average
    completed: int
    lost: int
    response_size: float  # octets, average
    server_cpu: float  # seconds
    client_cpu: float  # seconds
    #: CPU seconds core 0 (the server's) spent on anything but the server: other load.
    others: float
    seconds: float


def wait_machine_quiet(timeout: float = 60.0) -> bool:
    """Wait until the whole machine is under 0.1 s busy over a second (``timeout`` s at
    most; False if it never was): the machine is shared."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = busy_cpu_seconds()
        time.sleep(1)
        if busy_cpu_seconds() - busy < 0.1:
            return True
    return False


def core_busy_seconds(core: int) -> float:
    """The time ``core`` has not been idle so far (from /proc/stat, softirqs included)."""
    for line in Path("/proc/stat").read_text().splitlines():
        name, *ticks = line.split()
        if name == f"cpu{core}":
            idle, iowait = int(ticks[3]), int(ticks[4])
            return (sum(int(t) for t in ticks[:8]) - idle - iowait) / os.sysconf("SC_CLK_TCK")
    raise RuntimeError(f"no cpu{core} in /proc/stat")


def dnsperf(
    port: int, queries: Path, seconds: float, dnssec: bool, server: subprocess.Popen[bytes]
) -> Run:
    """One dnsperf run against ``port``, with the server's and dnsperf's CPU time."""
    command = [
        *on_core(1),
        *("dnsperf", "-s", "127.0.0.1", "-p", str(port)),
        *("-d", str(queries), "-l", str(seconds), "-c", "4", "-q", "100", "-e"),
        *(["-D"] if dnssec else []),
    ]
    pids = process_tree(server.pid)
    wait_machine_quiet()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0, core0 = tree_cpu(pids), core_busy_seconds(0)
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    cpu, core = tree_cpu(pids) - cpu0, core_busy_seconds(0) - core0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    def number(label: str) -> float:
        found = re.search(rf"{label}:?\s+([\d.]+)", out)
        if found is None:
            raise RuntimeError(f"dnsperf printed no {label!r}:\n{out}")
        return float(found.group(1))

    return Run(
        qps=number("Queries per second"),
        latency=number(r"Average Latency \(s\)"),
        completed=int(number("Queries completed")),
        lost=int(number("Queries lost")),
        response_size=number(r"Average packet size:\s+request [\d.]+, response"),
        server_cpu=cpu,
        client_cpu=client,
        others=max(core - cpu, 0.0),
        seconds=number(r"Run time \(s\)"),
    )


def mix_questions(config: Path, data: Path, domains: Sequence[str]) -> list[tuple[str, str]]:
    """Each domain's published MX and TXT names, the mail host's A and one missing name."""
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        published = list(pool.map(lambda d: published_names(config, data, d), domains))
    questions = []
    for domain, names in zip(domains, published, strict=True):
        questions += names
        questions += [(HOSTNAME, "A"), (f"no-such-host.{domain}", "A")]
    return questions


def write_queries(path: Path, questions: Sequence[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{name} {rdtype}\n" for name, rdtype in questions))
    return path


class QueryFiles:
    """dnsperf's input: the mix, the same every run, and random NXDOMAIN names, new for every
    run (courrier may still keep the answer to a name asked in an earlier run)."""

    def __init__(self, root: Path, mix: Sequence[tuple[str, str]], domains: Sequence[str]) -> None:
        self.root = root
        self.domains = domains
        self.mix = write_queries(root / "mix.txt", mix)
        self.runs = 0

    def distinct_mix(self) -> list[tuple[str, str]]:
        lines = self.mix.read_text().splitlines()
        return sorted({(name, rdtype) for name, rdtype in (line.split() for line in lines)})

    def for_run(self, workload: str) -> Path:
        if workload == "mix":
            return self.mix
        self.runs += 1
        names = random_nxdomain(self.domains, 300_000, seed=self.runs)
        return write_queries(self.root / "nx.txt", names)


def random_nxdomain(domains: Sequence[str], count: int, seed: int = 9) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    return [
        ("".join(rng.choices(letters, k=12)) + "." + rng.choice(domains), "A") for _ in range(count)
    ]


def _wires(questions: Sequence[tuple[str, str]], dnssec: bool) -> list[bytes]:
    """The questions as dnsperf asks them (EDNS, the DO bit when ``dnssec``)."""
    return [
        dns.message.make_query(name, rdtype, use_edns=0, want_dnssec=dnssec).to_wire()
        for name, rdtype in questions
    ]


# -- in process ---------------------------------------------------------------------------------


def respond_micro(
    zones: Sequence[Zone], questions: Sequence[tuple[str, str]], dnssec: bool
) -> tuple[float, float]:
    """µs per ``Authority.respond`` of a kept answer, and per ``_render`` (the long way),
    averaged over ``questions``."""
    authority = Authority(list(zones))
    wires = _wires(questions, dnssec)
    for wire in wires:
        authority.respond(wire)  # kept from now on

    def per_call(call: Callable[[bytes], object], rounds: int) -> float:
        start = time.perf_counter()
        for _ in range(rounds):
            for wire in wires:
                call(wire)
        return (time.perf_counter() - start) / (rounds * len(wires)) * 1e6

    kept = per_call(authority.respond, 200)
    long_way = per_call(lambda w: authority._render(w, tcp=False, truncate=False), 5)
    return kept, long_way


class _Sink(asyncio.DatagramTransport):
    def sendto(self, data: bytes | bytearray | memoryview, addr: object = None) -> None:
        pass


def udp_profile(
    server: DNSServer, questions: Sequence[tuple[str, str]], dnssec: bool, top: int = 16
) -> list[str]:
    """cProfile of ``UDPProtocol.datagram_received`` (a transport that drops what it is
    given) over ``questions``: the functions with the largest share of the time, with their
    callees and alone (shares, as the profiler's own cost inflates every call)."""
    protocol = server.udp()
    protocol.connection_made(_Sink())
    wires = _wires(questions, dnssec)
    profiler = cProfile.Profile()
    profiler.enable()
    for wire in wires:
        protocol.datagram_received(wire, ("127.0.0.1", 5300))
    profiler.disable()
    stats: dict[tuple[str, int, str], tuple[int, int, float, float, object]]
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(tt for _, _, tt, _, _ in stats.values())
    rows = sorted(stats.items(), key=lambda kv: kv[1][3], reverse=True)[:top]
    lines = ["with callees  alone  calls/query  function"]
    for (path, line, func), (_, calls, own, cumulative, _) in rows:
        where = re.sub(r".*/(site-packages|src)/", "", path)
        lines.append(
            f"{cumulative / total:11.0%}  {own / total:5.0%}  {calls / len(wires):11.1f}  "
            f"{where}:{line} {func}"
            if line
            else f"{func}"
        )
    return lines


def perf_profile(
    root: Path, server: subprocess.Popen[bytes], port: int, queries: Path, dnssec: bool
) -> list[str]:
    """``perf record`` of a server's processes during a 5-second dnsperf run: its samples by
    shared object (kernel, interpreter, event loop…)."""
    if shutil.which("perf") is None:
        return ["perf not found: apt-get install linux-perf"]
    data = root / "perf.data"
    pids = ",".join(str(pid) for pid in process_tree(server.pid))
    recorder = subprocess.Popen(
        ["perf", "record", "-F", "999", "-o", str(data), "-p", pids],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    dnsperf(port, queries, 5, dnssec, server)
    recorder.send_signal(signal.SIGINT)
    recorder.wait()
    report = subprocess.run(
        ["perf", "report", "-i", str(data), "--sort", "dso", "--stdio"],
        capture_output=True,
        text=True,
    ).stdout
    return [line for line in report.splitlines() if line.strip() and not line.startswith("#")][:6]


# -- the report ---------------------------------------------------------------------------------

WORKLOADS = ("mix", "random NXDOMAIN")


def table(runs: dict[tuple[str, str], list[Run]], names: tuple[str, str], label: str) -> list[str]:
    """Rows of the results table for one kind of zone: each server and workload's medians."""
    lines = []
    for workload in WORKLOADS:
        peer = runs[names[0], workload]
        peer_qps = statistics.median(r.qps for r in peer)
        peer_cpu = statistics.median(r.server_cpu / max(r.completed, 1) for r in peer)
        for name in names:
            rs = runs[name, workload]
            qps = statistics.median(r.qps for r in rs)
            cpu = statistics.median(r.server_cpu / max(r.completed, 1) for r in rs)
            latency = statistics.median(r.latency for r in rs) * 1000
            lost = sum(r.lost for r in rs)
            sent = sum(r.completed + r.lost for r in rs)
            size = statistics.median(r.response_size for r in rs)
            busy = statistics.median(r.server_cpu / r.seconds for r in rs)
            client = statistics.median(r.client_cpu / r.seconds for r in rs)
            others = max(r.others / r.seconds for r in rs)
            each = ", ".join(f"{r.qps:,.0f}" for r in rs)
            ratios = f"{qps / peer_qps:.2f} | {cpu / peer_cpu:.2f}" if name == "courrier" else " | "
            lines.append(
                f"| {label} | {workload} | {name} | {qps:,.0f} ({each}) | {latency:.2f} "
                f"| {lost:,} of {sent:,} | {size:.0f} | {cpu * 1e6:.1f} | {busy:.0%} "
                f"| {client:.0%} | {others:.0%} | {ratios} |"
            )
    return lines


def measure(
    root: Path,
    data: Path,
    dnssec: bool,
    queries: QueryFiles,
    args: argparse.Namespace,
    out: dict[str, list[str]],
) -> dict[tuple[str, str], list[Run]]:
    """Both servers on one kind of zone: ``args.repeat`` rounds of every workload."""
    label = "signed, DO" if dnssec else "unsigned"
    config = courrier_config(root, dnssec=dnssec, rate_limit=args.rate_limit)
    server = asyncio.run(_dns_server(config, data))
    zones = list(server.authority.zones.values())
    mix = queries.distinct_mix()
    kept, long_way = respond_micro(zones, mix, dnssec)
    out["micro"].append(
        f"{label}: {kept:.2f} µs per kept answer, {long_way:.0f} µs the long way "
        f"({long_way / kept:.0f}×), mean over the mix's {len(mix)} distinct questions"
    )
    if args.profile:
        nx = random_nxdomain([z.origin.to_text(omit_final_dot=True) for z in zones], 20_000)
        out["profile"] += [f"cProfile, {label}, 20,000 random NXDOMAIN questions:", ""]
        out["profile"] += udp_profile(server, nx, dnssec)
        out["profile"].append("")
    runs: dict[tuple[str, str], list[Run]] = {}
    with (
        nsd_server(root / "nsd", zones) as nsd,
        courrier_server(root, config, data) as courrier,
    ):
        differ = compare(mix, (NSD_PORT, COURRIER_PORT), dnssec)
        out["notes"].append(
            f"{label}: of the mix's {len(mix)} distinct questions, {len(differ)} get a "
            "different rcode or answer section from the two servers"
            + (f" ({', '.join(differ[:5])})" if differ else "")
        )
        servers = ((nsd_version(), NSD_PORT, nsd), ("courrier", COURRIER_PORT, courrier))
        for _, port, proc in servers:
            dnsperf(port, queries.mix, 1, dnssec, proc)  # warm up
        for _ in range(args.repeat):
            for workload in WORKLOADS:
                for name, port, proc in servers:
                    run = dnsperf(port, queries.for_run(workload), args.seconds, dnssec, proc)
                    runs.setdefault((name, workload), []).append(run)
                    print(f"{label}, {workload}, {name}: {run}", file=sys.stderr)
        if args.profile:
            for name, port, proc in servers:
                for workload in WORKLOADS:
                    out["profile"].append(f"perf, {name}, {label}, {workload}:")
                    files = queries.for_run(workload)
                    out["profile"] += perf_profile(root, proc, port, files, dnssec)
                    out["profile"].append("")
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=10, help="per dnsperf run")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (medians are shown)")
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=0,
        metavar="QPS",
        help="courrier's dns.rate_limit (default 0: off; a rate never reached measures its cost)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile in process, perf of the servers"
    )
    args = parser.parse_args()
    for tool in ("dnsperf", "nsd", "taskset"):
        if shutil.which(tool) is None:
            print(f"{tool} not found: apt-get install dnsperf nsd", file=sys.stderr)
            return 1
    names = (nsd_version(), "courrier")
    root = Path(tempfile.mkdtemp(prefix="bench-dns-", dir=ROOT))
    out: dict[str, list[str]] = {"micro": [], "notes": [], "profile": []}
    lines = [
        f"{args.domains} hosted domains; dnsperf on core 1 ({args.seconds} s a run, 4 sockets, "
        f"100 queries outstanding, EDNS), each server alone on core 0; medians of "
        f"{args.repeat} rounds; server CPU per answer received; courrier's dns.rate_limit = "
        f"{args.rate_limit:,}",
        "",
        "| zones | queries | server | qps (each round) | avg latency ms | lost | response "
        "octets | server CPU µs/query | server core busy | dnsperf core busy | others on "
        "server core (max) | courrier ÷ NSD qps | courrier ÷ NSD CPU/query |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    try:
        data = root / "data"
        domains = domain_names(args.domains)
        unsigned = courrier_config(root, dnssec=False)
        asyncio.run(_fill(unsigned, data, domains))
        queries = QueryFiles(root, mix_questions(unsigned, data, domains), domains)
        for dnssec in (False, True):
            runs = measure(root, data, dnssec, queries, args, out)
            lines += table(runs, names, "signed, DO" if dnssec else "unsigned")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    lines += ["", "In process (`Authority.respond`, one core):", ""]
    lines += [f"- {m}" for m in out["micro"]]
    lines += ["", *(f"- {n}" for n in out["notes"])]
    if out["profile"]:
        lines += ["", "```", *out["profile"], "```"]
    report = "\n".join(lines)
    print(report)
    if args.record:
        record("DNS queries per second", "bench.dns_qps", "same run.", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Dovecot's imaptest against courrier: every scripted test, then a stress run.

imaptest is in no package registry, so CI cannot build it. Build it with
``bench/imaptest/build.sh`` and point ``IMAPTEST`` at the binary; without it these tests
report that imaptest was not run (skipped, never counted as passed). ``IMAPTEST_SECS`` sets
the stress run's length (default 60 s, 10 clients, imaptest's default command mix).
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest

from tests.support.server import PASSWORD, Running, start_server

IMAPTEST = os.environ.get("IMAPTEST", "")

pytestmark = pytest.mark.skipif(
    not IMAPTEST, reason="IMAPTEST is not set: Dovecot's imaptest was NOT run"
)


async def imaptest(running: Running, *args: str, limit: float) -> str:
    binary = Path(IMAPTEST)
    proc = await asyncio.create_subprocess_exec(
        str(binary),
        "host=127.0.0.1",
        f"port={running.port('imap')}",
        "user=bob@example.org",
        f"pass={PASSWORD}",
        *args,
        cwd=binary.parent,
        env={**os.environ, "LD_LIBRARY_PATH": "/usr/lib/dovecot"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), limit)
    return out.decode("utf-8", "replace")


async def test_scripted_tests_all_pass(tmp_path: Path) -> None:
    async with start_server(tmp_path / "data", **{"imap.plaintext_on_loopback": True}) as run:
        out = await imaptest(run, "test=tests", limit=600)
    summary = re.search(r"(\d+) test groups: (\d+) failed", out)
    assert summary, out[-3000:]
    print("imaptest:", summary[0], *re.findall(r".* commands failed.*", out), sep="\n")
    assert summary[2] == "0", "\n".join(
        line for line in out.splitlines() if line.startswith(("***", " - ", "Error"))
    )


async def test_stress_run_is_clean(tmp_path: Path) -> None:
    secs = os.environ.get("IMAPTEST_SECS", "60")
    async with start_server(tmp_path / "data", **{"imap.plaintext_on_loopback": True}) as run:
        out = await imaptest(
            run, "mbox=tests/default.mbox", f"secs={secs}", "clients=10", limit=float(secs) + 120
        )
    assert "Totals:" in out, out[-3000:]
    print("imaptest stress:", out[out.rindex("Totals:") :].strip(), sep="\n")
    errors = [line for line in out.splitlines() if "Error" in line or "assert" in line.lower()]
    assert errors == [], "\n".join(errors[:20])

"""Appending a benchmark's table to bench/RESULTS.md, with the command, date and machine."""

from __future__ import annotations

import datetime
import os
import platform
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def record(title: str, module: str, conditions: str, report: str) -> None:
    stamp = datetime.date.today().isoformat()
    command = f"python -m {module} " + " ".join(sys.argv[1:])
    with RESULTS.open("a", encoding="utf-8") as f:
        f.write(
            f"\n## {title} — {stamp}\n\n`{command.strip()}` on {platform.node()} "
            f"({os.cpu_count()} cores), {conditions}\n\n{report}\n"
        )

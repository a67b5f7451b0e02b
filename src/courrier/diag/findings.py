"""The findings of a diagnosis: one per thing looked at, with a severity, what was seen, why it
matters and how to fix it; and the report that gathers them (text for a terminal, JSON in the
shape ``check.schema.json`` documents, an exit code by the worst finding).

Groups follow internet.nl's: the DNS (MX and addresses), SMTP and TLS (each MX host),
authentication (SPF, DKIM, DMARC), policies (MTA-STS, TLS-RPT, BIMI, DANE) and reputation
(PTR/FCrDNS, DNSBL listings). A finding's ``check`` is a stable identifier (``mx.cname``,
``spf.lookups``): tools may key on it, so a name once published is kept.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Final

__all__ = [
    "GROUPS",
    "SCHEMA_VERSION",
    "Finding",
    "Report",
    "Severity",
    "error",
    "info",
    "ok",
    "schema",
    "warning",
]

#: The JSON report's ``schema_version``: bumped when a field changes meaning or goes away.
SCHEMA_VERSION: Final = 1

#: The report's sections, in the order they are printed.
GROUPS: Final = ("dns", "smtp", "authentication", "policies", "reputation")

_GROUP_TITLES: Final = {
    "dns": "DNS",
    "smtp": "SMTP and TLS",
    "authentication": "Authentication (SPF, DKIM, DMARC)",
    "policies": "Policies (MTA-STS, TLS-RPT, BIMI, DANE)",
    "reputation": "Reputation (reverse DNS, block lists)",
}


class Severity(enum.IntEnum):
    """How bad: ``ok`` as it should be; ``info`` worth knowing, nothing to do; ``warning``
    works but costs delivery or security, fix it; ``error`` broken, mail is lost, rejected or
    spoofable."""

    OK = 0
    INFO = 1
    WARNING = 2
    ERROR = 3

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Finding:
    """One thing looked at. ``why`` and ``fix`` are empty for an ``ok`` finding."""

    group: str
    check: str
    severity: Severity
    subject: str
    seen: str
    why: str = ""
    fix: str = ""
    #: Extra facts for ``--json`` (numbers, lists, a tree), keyed by plain names; ``lines``
    #: are also printed under the finding in the text report.
    data: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"unknown group {self.group!r}")

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "group": self.group,
            "check": self.check,
            "severity": str(self.severity),
            "subject": self.subject,
            "seen": self.seen,
            "why": self.why,
            "fix": self.fix,
        }
        if self.data:
            out["data"] = self.data
        return out


# The parameters are positional-only so that ``data`` may hold any name (``subject`` too).
def ok(group: str, check: str, subject: str, seen: str, /, **data: Any) -> Finding:
    return Finding(group, check, Severity.OK, subject, seen, data=data)


def info(group: str, check: str, subject: str, seen: str, why: str = "", /, **data: Any) -> Finding:
    return Finding(group, check, Severity.INFO, subject, seen, why, data=data)


def warning(
    group: str, check: str, subject: str, seen: str, why: str, fix: str, /, **data: Any
) -> Finding:
    return Finding(group, check, Severity.WARNING, subject, seen, why, fix, data=data)


def error(
    group: str, check: str, subject: str, seen: str, why: str, fix: str, /, **data: Any
) -> Finding:
    return Finding(group, check, Severity.ERROR, subject, seen, why, fix, data=data)


@dataclass
class Report:
    """Everything found about ``target`` (a domain), in the order found."""

    target: str
    findings: list[Finding] = field(default_factory=list)
    #: When the check ran (ISO 8601, UTC) and how long it took.
    started: str = ""
    seconds: float = 0.0

    def add(self, found: Finding | Iterable[Finding]) -> None:
        if isinstance(found, Finding):
            self.findings.append(found)
        else:
            self.findings.extend(found)

    @property
    def worst(self) -> Severity:
        return max((f.severity for f in self.findings), default=Severity.OK)

    @property
    def exit_code(self) -> int:
        """0 when nothing is worse than ``info``, 1 otherwise (DESIGN.md §6)."""
        return 0 if self.worst <= Severity.INFO else 1

    def counts(self) -> dict[str, int]:
        return {str(s): sum(f.severity is s for f in self.findings) for s in Severity}

    def as_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "target": self.target,
            "started": self.started,
            "seconds": round(self.seconds, 3),
            "worst": str(self.worst),
            "counts": self.counts(),
            "findings": [f.as_json() for f in self.findings],
        }

    def text(self, *, verbose: bool = False) -> str:
        """The report for a terminal: each group's findings, worst first within the order
        found; ``ok`` findings one line each; the others with why and fix."""
        lines = [f"courrier check {self.target}"]
        for group in GROUPS:
            found = [f for f in self.findings if f.group == group]
            if not found:
                continue
            lines += ["", _GROUP_TITLES[group]]
            for f in found:
                lines += _finding_lines(f, verbose)
        counts = self.counts()
        lines += [
            "",
            f"{counts['error']} error(s), {counts['warning']} warning(s), "
            f"{counts['info']} note(s), {counts['ok']} ok — {self.seconds:.1f} s.",
        ]
        return "\n".join(lines) + "\n"


_MARKS: Final = {
    Severity.OK: "ok  ",
    Severity.INFO: "info",
    Severity.WARNING: "WARN",
    Severity.ERROR: "FAIL",
}


def _finding_lines(f: Finding, verbose: bool) -> Sequence[str]:
    lines = [f"  [{_MARKS[f.severity]}] {f.subject}: {f.seen}"]
    lines += [f"         {line}" for line in f.data.get("lines", ())]
    if f.severity is Severity.OK and not verbose:
        return lines
    if f.why:
        lines.append(f"         why: {f.why}")
    if f.fix:
        lines.append(f"         fix: {f.fix}")
    return lines


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of :meth:`Report.as_json`, as documented."""
    text = resources.files("courrier.diag").joinpath("check.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded

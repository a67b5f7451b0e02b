"""``courrier explain``: the codes in a bounce line (``550 5.7.1 …``), in a DSN (``Status:``,
``Diagnostic-Code: smtp; 550 …``, RFC 3464 §2.3) or given alone, explained from
:mod:`courrier.diag.codes`, with the provider's own words recognised (Gmail, Outlook, Yahoo).
Sans-IO: text in, explanations out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from courrier.diag.codes import (
    BASIC,
    BASIC_CLASSES,
    CLASSES,
    DETAILS,
    PROVIDERS,
    SUBJECTS,
    Meaning,
)

__all__ = ["Explanation", "explain", "text"]

#: RFC 5321 §4.2: a reply code starts a line (or follows "smtp;" in a Diagnostic-Code).
_BASIC = re.compile(r"(?:^|[\s;(\[])([2-5][0-5]\d)(?=[\s-]|$)")
#: RFC 3463 §2: class "." subject "." detail, subject and detail 1-3 digits.
_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)")


@dataclass
class Explanation:
    basic: int | None = None
    enhanced: str | None = None
    lines: list[str] = field(default_factory=list)
    #: ``transient`` (retry), ``permanent`` (bounce), ``success``, ``intermediate``.
    verdict: str = ""
    providers: list[dict[str, str]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "basic": self.basic,
            "enhanced": self.enhanced,
            "verdict": self.verdict,
            "explanation": self.lines,
            "providers": self.providers,
            "unknown": self.unknown,
        }

    @property
    def known(self) -> bool:
        """Something in the text is in the tables: a code or a provider's words."""
        codes = [str(self.basic)] if self.basic else []
        codes += [self.enhanced] if self.enhanced else []
        return bool(self.providers) or any(c not in self.unknown for c in codes)


def explain(text: str) -> Explanation:
    """Everything known about the codes and provider texts in ``text``."""
    out = Explanation()
    basic = _BASIC.search(text)
    enhanced = _ENHANCED.search(text)
    if basic:
        out.basic = int(basic.group(1))
        _basic(out, out.basic)
    if enhanced:
        out.enhanced = ".".join(enhanced.groups())
        _enhanced(out, *enhanced.groups())
    if out.basic and out.enhanced and str(out.basic)[0] != out.enhanced[0]:
        # RFC 3463 §2 / RFC 2034 §4: the class must agree with the reply code's first digit.
        out.lines.append(
            f"Note: {out.basic} and {out.enhanced} disagree (RFC 2034 §4 wants the same class); "
            "senders go by the reply code."
        )
    for provider in PROVIDERS:
        if provider.pattern.search(text):
            out.providers.append(
                {"provider": provider.provider, "meaning": provider.meaning,
                 "action": provider.action}
            )  # fmt: skip
    return out


def _basic(out: Explanation, code: int) -> None:
    first = str(code)[0]
    out.verdict = {
        "2": "success",
        "3": "intermediate",
        "4": "transient",
        "5": "permanent",
    }[first]
    meaning = BASIC.get(code)
    out.lines.append(f"{code}: {BASIC_CLASSES[first]}.")
    if meaning is None:
        out.unknown.append(str(code))
        out.lines.append(f"{code} is not a code of RFC 5321; read it by its first digit.")
        return
    _meaning(out, meaning)


def _enhanced(out: Explanation, klass: str, subject: str, detail: str) -> None:
    code = f"{klass}.{subject}.{detail}"
    out.verdict = out.verdict or {"2": "success", "4": "transient", "5": "permanent"}[klass]
    meaning = DETAILS.get(f"{subject}.{detail}")
    out.lines.append(f"{code}: {CLASSES[klass]}; {SUBJECTS.get(subject, 'unknown subject')}.")
    if meaning is None:
        out.unknown.append(code)
        out.lines.append(f"  X.{subject}.{detail} is not in the IANA registry.")
        return
    _meaning(out, meaning)


def _meaning(out: Explanation, meaning: Meaning) -> None:
    out.lines.append(f"  {meaning.name} ({meaning.reference}).")
    if meaning.cause:
        out.lines.append(f"  Likely: {meaning.cause}")
    if meaning.action:
        out.lines.append(f"  To do: {meaning.action}")


def text(explanation: Explanation) -> str:
    lines = list(explanation.lines)
    for p in explanation.providers:
        lines.append(f"{p['provider']}: {p['meaning']}")
        lines.append(f"  To do: {p['action']}")
    if explanation.verdict == "transient":
        lines.append(
            "The sending server keeps the message and retries; no action is needed unless it lasts."
        )
    elif explanation.verdict == "permanent":
        lines.append("The message bounced: it will not be retried.")
    return "\n".join(lines) + "\n"

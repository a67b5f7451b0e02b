"""MTA-STS (RFC 8461), sans-IO: the ``_mta-sts`` TXT record, the policy file, MX matching.

What this module owns: reading the DNS record that announces a policy and its id (§3.1), the
policy file a domain serves at ``https://mta-sts.DOMAIN/.well-known/mta-sts.txt`` (§3.2), the
rules for that HTTPS answer (§3.3: 200 only, no redirects, ``text/plain``, a size limit) and
which MX hosts a policy allows (§4.1). No sockets and no clock: fetching and caching are
:mod:`courrier.queue.tlspolicy`'s; applying the policy to a connection is the runner's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "MAX_AGE",
    "MAX_POLICY_SIZE",
    "Policy",
    "PolicyError",
    "check_response",
    "is_sts_record",
    "mx_matches",
    "parse_policy",
    "parse_record",
    "policy_host",
]

Mode = Literal["enforce", "testing", "none"]

_MODES: dict[str, Mode] = {"enforce": "enforce", "testing": "testing", "none": "none"}

#: §3.2: max_age is at most 31557600 seconds (about one year).
MAX_AGE: Final = 31557600
#: §3.3: senders may limit the policy's size; 64 KiB as the RFC suggests.
MAX_POLICY_SIZE: Final = 64 * 1024
#: §3.3: the path of the policy on the policy host.
POLICY_PATH: Final = "/.well-known/mta-sts.txt"

#: §3.1: sts-id = 1*32(ALPHA / DIGIT).
_ID = re.compile(r"[A-Za-z0-9]{1,32}")
#: §3.1: sts-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".");
#: sts-ext-value = 1*(%x21-3A / %x3C / %x3E-7E) (no ";", no "=", no space).
_EXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_EXT_VALUE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+")
#: §3.2: sts-policy-term keys, and a domain (RFC 5321 Domain) with an optional "*." label.
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


class PolicyError(ValueError):
    """A policy or TXT record that does not follow RFC 8461: no policy is available."""


@dataclass(frozen=True, slots=True)
class Policy:
    mode: Mode
    #: §3.2 ``mx`` patterns, lower case, as given (``*.example.net`` for a wildcard).
    mx: tuple[str, ...]
    max_age: int
    #: The policy as served, without trailing blank lines: TLS-RPT's policy-string lines.
    text: str

    def allows(self, host: str) -> bool:
        """§4.1: is ``host`` (an MX host name) one of the policy's?"""
        return any(mx_matches(pattern, host) for pattern in self.mx)

    @property
    def lines(self) -> tuple[str, ...]:
        """RFC 8460 §4.4: the policy-string, one entry per line of the policy."""
        return tuple(line for line in self.text.splitlines() if line.strip())


def parse_record(strings: Sequence[bytes]) -> str:
    """The id of one ``_mta-sts`` TXT record (its character-strings, joined, RFC 7208-style),
    or :class:`PolicyError` when it is not a valid STSv1 record (§3.1)."""
    try:
        text = b"".join(strings).decode("ascii")
    except UnicodeDecodeError:
        raise PolicyError("the record is not ASCII") from None
    fields = [f.strip(" \t") for f in text.split(";")]
    if fields and fields[-1] == "":
        fields.pop()  # an optional final separator
    if not fields or fields[0] != "v=STSv1":
        raise PolicyError("the record does not start with v=STSv1")
    found: str | None = None
    for field in fields[1:]:
        name, eq, value = field.partition("=")
        if not eq:
            raise PolicyError(f"bad field {field!r}")
        if name == "id":
            if found is not None or not _ID.fullmatch(value):
                raise PolicyError(f"bad id {value!r}")
            found = value
        elif not (_EXT_NAME.fullmatch(name) and _EXT_VALUE.fullmatch(value)):
            raise PolicyError(f"bad field {field!r}")
    if found is None:
        raise PolicyError("the record has no id")
    return found


def is_sts_record(strings: Sequence[bytes]) -> bool:
    """§3.1: TXT records that do not begin with ``v=STSv1;`` are not MTA-STS records."""
    return b"".join(strings).startswith(b"v=STSv1")


def parse_policy(text: str) -> Policy:
    """Parse a policy file (§3.2); :class:`PolicyError` when it is malformed."""
    if len(text.encode("utf-8", "surrogateescape")) > MAX_POLICY_SIZE:
        raise PolicyError("the policy is larger than 64 KiB")
    values: dict[str, str] = {}
    mx: list[str] = []
    # §3.2: sts-policy-term = LF / CRLF
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and lines[-1].strip(" \t") == "":
        lines.pop()
    for line in lines:
        key, colon, value = line.partition(":")
        # sts-policy-field = sts-policy-name ":" *WSP sts-policy-value, trailing *WSP allowed.
        value = value.strip(" \t")
        if not colon or not _KEY.fullmatch(key) or not value:
            raise PolicyError(f"bad policy line {line!r}")
        if key == "mx":
            mx.append(_mx_pattern(value))
        elif key in ("version", "mode", "max_age"):
            if key in values:
                raise PolicyError(f"{key} given twice")
            values[key] = value
        # Other names are extensions, ignored (§3.2: sts-policy-ext-name).
    if values.get("version") != "STSv1":
        raise PolicyError("version: must be STSv1")
    mode = _MODES.get(values.get("mode", ""))
    if mode is None:
        raise PolicyError("mode: must be enforce, testing or none")
    age = values.get("max_age", "")
    if not (age.isascii() and age.isdigit() and len(age) <= 10) or int(age) > MAX_AGE:
        raise PolicyError(f"max_age: must be an integer up to {MAX_AGE}")
    if mode != "none" and not mx:
        # §3.2: "mx" patterns are required unless the mode is "none".
        raise PolicyError("no mx pattern")
    return Policy(mode, tuple(mx), int(age), "\n".join(lines))


def _mx_pattern(value: str) -> str:
    """§3.2: sts-policy-mx-value = ["*."] Domain; lower case, no final dot."""
    pattern = value.lower().rstrip(".")
    name = pattern[2:] if pattern.startswith("*.") else pattern
    labels = name.split(".")
    if not name or not all(_LABEL.fullmatch(label) for label in labels):
        raise PolicyError(f"mx: bad pattern {value!r}")
    return pattern


def mx_matches(pattern: str, host: str) -> bool:
    """§4.1: a name matches itself; ``*.`` stands for exactly one whole leftmost label
    (``*.example.com`` matches ``mx.example.com``, not ``example.com`` nor
    ``a.b.example.com``). Case and a final dot aside."""
    host = host.lower().rstrip(".")
    pattern = pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        first, dot, rest = host.partition(".")
        return bool(first) and bool(dot) and rest == pattern[2:]
    return host == pattern


def policy_host(domain: str) -> str:
    """§3.3: the host serving ``domain``'s policy."""
    return f"mta-sts.{domain.lower().rstrip('.')}"


def check_response(status: int, content_type: str | None, body: bytes) -> str:
    """The policy text from an HTTPS answer, or :class:`PolicyError` (§3.3: only a 200 —
    redirects are not followed —, with media type ``text/plain``, within the size limit)."""
    if status != 200:
        raise PolicyError(f"HTTP status {status} (only 200 is accepted)")
    media = (content_type or "").partition(";")[0].strip().lower()
    if media != "text/plain":
        raise PolicyError(f"media type {media or 'none'!r}, not text/plain")
    if len(body) > MAX_POLICY_SIZE:
        raise PolicyError("the policy is larger than 64 KiB")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError("the policy is not UTF-8") from None

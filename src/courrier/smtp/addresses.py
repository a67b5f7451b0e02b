"""SMTP envelope addresses: parse a MAIL/RCPT path into a mailbox, refusing routing tricks.

RFC 5321 §4.1.2 gives the syntax; what matters for safety is what a relay would do with it. A
recipient is reduced to ``local@domain`` (lower case, domain in ASCII/IDNA form) or refused:

- source routes ``<@a,@b:user@c>`` are dropped, as RFC 5321 §C and §3.6.1 advise, so the
  mailbox that counts is ``user@c``;
- sender-specified routing inside the local part (``user%other@ours``, ``other!user@ours``,
  ``"user@other"@ours``) is refused outright, as Postfix does without
  ``allow_untrusted_routing`` (554 5.7.1): such addresses are how open-relay tests get through;
- address literals (``user@[192.0.2.1]``) are never one of our domains;
- one trailing dot on the domain is ignored (``user@example.org.``), more is a syntax error.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import idna


class AddressError(ValueError):
    """An address to refuse, with the SMTP reply to give."""

    def __init__(self, code: int, enhanced: str, text: str) -> None:
        super().__init__(text)
        self.code, self.enhanced, self.text = code, enhanced, text


@dataclass(frozen=True, slots=True)
class Mailbox:
    local: str
    #: Lower-case ASCII domain, or the bracketed literal for address literals.
    domain: str
    is_literal: bool = False

    @property
    def address(self) -> str:
        return f"{self.local}@{self.domain}"


# RFC 5321 §4.1.2: atext (RFC 5322) plus UTF-8 (RFC 6531 §3.3).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]"
_DOT_STRING = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
_QUOTED = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\U0010ffff]|\\[\x20-\x7e])*)"')
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_ROUTE = re.compile(r"@[^,:]+(?:,@[^,:]+)*:")
#: Characters that make a local part route mail elsewhere.
_ROUTING = ("%", "!", "@")

RELAY_DENIED = (554, "5.7.1", "Relay access denied")


def parse_mailbox(path: str, *, allow_routing: bool = False) -> Mailbox:
    """Parse the contents of ``<...>`` (without the brackets); raise :class:`AddressError`."""
    if len(path) > 256:  # RFC 5321 §4.5.3.1.3: a path is at most 256 octets
        raise AddressError(501, "5.1.3", "Address too long")
    route = _ROUTE.match(path)
    if route:
        path = path[route.end() :]
    local, domain = _split(path)
    if not allow_routing and any(c in local for c in _ROUTING):
        raise AddressError(*RELAY_DENIED)
    if len(local.encode()) > 64:  # RFC 5321 §4.5.3.1.1
        raise AddressError(501, "5.1.3", "Local part too long")
    if domain.startswith("["):
        return Mailbox(local.lower(), domain, is_literal=True)
    return Mailbox(local.lower(), _domain(domain))


def _split(path: str) -> tuple[str, str]:
    quoted = _QUOTED.match(path)
    if quoted:
        local = re.sub(r"\\(.)", r"\1", quoted.group(1))
        rest = path[quoted.end() :]
    else:
        at = path.rfind("@")
        if at <= 0:
            raise AddressError(501, "5.1.3", "Bad address syntax: no domain")
        local, rest = path[:at], path[at:]
        if not _DOT_STRING.fullmatch(local):
            raise AddressError(501, "5.1.3", "Bad address syntax in the local part")
    if not rest.startswith("@") or len(rest) < 2:
        raise AddressError(501, "5.1.3", "Bad address syntax: no domain")
    return local, rest[1:]


@functools.lru_cache(maxsize=4096)  # IDNA checks cost ~40 µs; senders repeat their domains
def _domain(domain: str) -> str:
    if domain.endswith("."):
        domain = domain[:-1]
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError, ValueError):
        raise AddressError(501, "5.1.2", "Bad domain syntax") from None
    labels = ascii_domain.split(".")
    if len(ascii_domain) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise AddressError(501, "5.1.2", "Bad domain syntax")
    return ascii_domain

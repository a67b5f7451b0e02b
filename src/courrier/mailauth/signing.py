"""DKIM signing at submission: mail from one of our domains leaves with its signatures.

The signing domain is the author's (the RFC 5322 From address), so that DMARC finds the
signature aligned (RFC 7489 §3.1.1); a message whose From is not one of our domains, or that
has no single author address, is passed on unsigned. Keys are read from the store for each
message (one indexed query: a rotation done on any node applies at once) and parsed once.
"""

from __future__ import annotations

import logging
import time

from courrier.mailauth import dkim, keys
from courrier.message.address import parse_address_list
from courrier.message.headers import parse_headers, split_header
from courrier.store import Store

log = logging.getLogger("courrier.dkim")


def author_domain(message: bytes) -> str | None:
    """The domain of the From address, lower case, when there is exactly one."""
    header_end, _ = split_header(message, 0, len(message))
    values = parse_headers(message, 0, header_end).get_all("from")
    if len(values) != 1:
        return None
    addresses = [a for a in parse_address_list(values[0]) if a.host]
    if len(addresses) != 1 or addresses[0].host is None:
        return None
    try:
        return addresses[0].host.decode("ascii").lower().rstrip(".")
    except UnicodeDecodeError:  # a UTF-8 domain (RFC 6532): ours are stored as A-labels
        return None


class Signer:
    """Signs with the active keys of the author's domain."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._parsed: dict[int, dkim.SigningKey] = {}

    async def sign(self, message: bytes, now: int | None = None) -> bytes:
        """``message`` with its DKIM-Signature fields on top, or unchanged."""
        domain = author_domain(message)
        if domain is None:
            return message
        now = int(time.time()) if now is None else now
        active = keys.signing(await self.store.list_dkim_keys(domain), now)
        if not active:
            return message
        signing_keys = []
        for key in active:
            parsed = self._parsed.get(key.id)
            if parsed is None:
                try:
                    parsed = dkim.SigningKey.from_pem(key.domain, key.selector, key.private_key)
                except dkim.UnusableKey as exc:
                    log.warning("%s; not signing with it", exc)
                    continue
                self._parsed[key.id] = parsed
            signing_keys.append(parsed)
        return dkim.sign(message, signing_keys, now) + message

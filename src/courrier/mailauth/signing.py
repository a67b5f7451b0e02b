"""Signatures we add: DKIM at submission, and ARC seals on mail we forward.

The DKIM signing domain is the author's (the RFC 5322 From address), so that DMARC finds the
signature aligned (RFC 7489 §3.1.1); a message whose From is not one of our domains, or that
has no single author address, is passed on unsigned. Keys are read from the store for each
message (one indexed query: a rotation done on any node applies at once) and parsed once.

Mail that arrives on the MX for an alias of ours and leaves for another server gets an ARC set
(RFC 8617 §5.1) sealed by the alias's domain: the next receiver learns what we found (our
Authentication-Results) and can trust it over the SPF and DKIM results that forwarding breaks.
"""

from __future__ import annotations

import logging
import time

from courrier.mailauth import arc, dkim, keys
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


class Sealer:
    """ARC-seals forwarded mail with the forwarding domain's active RSA key."""

    def __init__(self, store: Store, authserv_id: str) -> None:
        self.store = store
        self.authserv_id = authserv_id

    async def seal(
        self,
        message: bytes,
        *,
        domain: str,
        chain: arc.ARCResult,
        authentication_results: str,
        now: int | None = None,
    ) -> bytes:
        """The ARC set to put in front of ``message``; empty when ``domain`` has no RSA key
        or the chain cannot grow."""
        now = int(time.time()) if now is None else now
        active = keys.signing(await self.store.list_dkim_keys(domain), now)
        rsa = [k for k in active if k.algorithm == dkim.RSA]
        if not rsa:
            return b""
        try:
            return arc.seal(
                message,
                key=rsa[0],
                authserv_id=self.authserv_id,
                authentication_results=authentication_results,
                chain=chain,
                now=now,
            )
        except dkim.UnusableKey as exc:
            log.warning("%s; not sealing with it", exc)
            return b""

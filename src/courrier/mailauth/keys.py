"""DKIM keys over their life: generated per domain, published, signing, retired.

Every hosted domain has an RSA-2048 and an Ed25519 selector (RFC 8463 §4 recommends signing
with both while verifiers learn Ed25519). A key's state follows from the times alone, so
several processes and nodes agree without coordination:

- *pending*: created, its TXT record to be published, not signing before ``active_at``;
- *active*: the newest key of its algorithm whose ``active_at`` has come: it signs;
- *retiring*: superseded by a newer active key, still published for :data:`RETAIN` seconds
  so that mail it signed (queued for up to five days, then read) still verifies;
- *expired*: its record can go; ``courrier dkim rotate`` deletes such keys.

Rotation (``courrier dkim rotate``) adds a new pair that activates after a delay, the time
for its TXT records to be published and reach resolvers' caches.
"""

from __future__ import annotations

import base64
import itertools
import time
from collections.abc import Sequence

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from courrier.mailauth.dkim import ED25519, RSA
from courrier.store import DkimKey

#: Seconds a superseded key stays published: the queue's five days plus two of slack.
RETAIN = 7 * 24 * 3600
#: RFC 8301 §3.2: signers MUST use RSA keys of at least 1024 bits, SHOULD use 2048.
RSA_BITS = 2048

_PREFIX = {RSA: "rsa", ED25519: "ed"}


def generate(existing: Sequence[str], active_at: int, now: float | None = None) -> list[DkimKey]:
    """A new RSA-2048 and Ed25519 key, with selectors named by date (``rsa20261123``,
    ``ed20261123``; a letter added if that name is taken in ``existing``)."""
    day = time.strftime("%Y%m%d", time.gmtime(time.time() if now is None else now))
    taken = set(existing)
    keys = []
    for algorithm in (RSA, ED25519):
        selector = _free(f"{_PREFIX[algorithm]}{day}", taken)
        private = (
            rsa.generate_private_key(65537, RSA_BITS)
            if algorithm == RSA
            else ed25519.Ed25519PrivateKey.generate()
        )
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        keys.append(DkimKey(0, "", selector, algorithm, pem, public_value(private), 0, active_at))
    return keys


def _free(selector: str, taken: set[str]) -> str:
    candidate, letter = selector, ord("a")
    while candidate in taken:
        candidate = selector + chr(letter)
        letter += 1
    taken.add(candidate)
    return candidate


def public_value(private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> str:
    """The ``p=`` tag: RSA as DER SubjectPublicKeyInfo (RFC 6376 §3.6.1), Ed25519 as the raw
    32-octet key (RFC 8463 §4), base64."""
    if isinstance(private, ed25519.Ed25519PrivateKey):
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    else:
        raw = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return base64.b64encode(raw).decode()


def record_name(key: DkimKey) -> str:
    return f"{key.selector}._domainkey.{key.domain}"


def record_value(key: DkimKey) -> str:
    """The TXT record (RFC 6376 §3.6.1; ``k=ed25519`` from RFC 8463 §4)."""
    kind = "ed25519" if key.algorithm == ED25519 else "rsa"
    return f"v=DKIM1; k={kind}; p={key.public_key}"


def states(keys: Sequence[DkimKey], now: int) -> dict[int, str]:
    """Each key's state (by id): pending, active, retiring or expired."""
    out: dict[int, str] = {}
    by_group: dict[tuple[str, str], list[DkimKey]] = {}
    for key in keys:
        by_group.setdefault((key.domain, key.algorithm), []).append(key)
    for group in by_group.values():
        group.sort(key=lambda k: (k.active_at, k.id))
        started = [k for k in group if k.active_at <= now]
        for key in group:
            if key.active_at > now:
                out[key.id] = "pending"
        for older, newer in itertools.pairwise(started):
            out[older.id] = "retiring" if now < newer.active_at + RETAIN else "expired"
        if started:
            out[started[-1].id] = "active"
    return out


def signing(keys: Sequence[DkimKey], now: int) -> list[DkimKey]:
    """The keys that sign now, RSA first."""
    state = states(keys, now)
    return sorted((k for k in keys if state[k.id] == "active"), key=lambda k: k.algorithm)


def published(keys: Sequence[DkimKey], now: int) -> list[DkimKey]:
    """The keys whose TXT records must be in the DNS now."""
    state = states(keys, now)
    return [k for k in keys if state[k.id] != "expired"]

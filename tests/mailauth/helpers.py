"""What the DKIM tests share: dkimpy as the independent verifier, and key lookups."""

from __future__ import annotations

from collections.abc import Callable

import dkim

from courrier.mailauth import dkim as ours

#: dkimpy's ``dnsfunc``: a TXT record's text for a name, or None.
Lookup = Callable[..., bytes | None]


def table_lookup(records: dict[str, str]) -> Lookup:
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        value = records.get(name.decode().rstrip("."))
        return value.encode() if value is not None else None

    return lookup


def verified(message: bytes, lookup: Lookup) -> list[bool]:
    """dkimpy's verdict on each DKIM-Signature of ``message``, top first."""
    count = sum(1 for f in ours.split(message)[0] if ours.field_name(f) == "dkim-signature")
    checker = dkim.DKIM(message)
    results = []
    for i in range(count):
        try:
            results.append(bool(checker.verify(idx=i, dnsfunc=lookup)))
        except dkim.ValidationError:  # dkimpy raises on a body hash mismatch
            results.append(False)
    return results

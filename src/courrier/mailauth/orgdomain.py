"""Organizational domains (RFC 7489 §3.2): a name's registered domain by the Public Suffix List.

``mail.example.co.uk`` → ``example.co.uk``. DMARC's relaxed alignment compares these, and a
domain without a DMARC record falls back on its organizational domain's. The list is the
``publicsuffixlist`` package's (kept up to date by its releases), loaded once.
"""

from __future__ import annotations

import functools

from publicsuffixlist import PublicSuffixList


@functools.cache
def _list() -> PublicSuffixList:
    return PublicSuffixList()


@functools.lru_cache(maxsize=10_000)
def organizational_domain(name: str) -> str:
    """The registered domain of ``name`` (lower case, no final dot); a public suffix itself,
    or a name the list knows nothing of, is its own."""
    name = name.lower().rstrip(".")
    return _list().privatesuffix(name) or name

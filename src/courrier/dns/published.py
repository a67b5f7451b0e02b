"""What the DNS publishes, asked as the world asks: through a stub resolver
(:func:`courrier.dns.resolver.make_resolver`), all the questions at once.

The answers feed :func:`courrier.dns.check.compare`. A question the DNS does not answer
(SERVFAIL, REFUSED, a timeout) gets an :class:`~courrier.dns.check.Answer` saying so, never
an exception: one failing name must not hide the findings of the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver

from courrier.dns.check import Answer, Question

__all__ = ["ask", "ask_all"]


async def ask_all(
    resolver: dns.asyncresolver.Resolver, asked: Sequence[Question]
) -> dict[Question, Answer]:
    answers = await asyncio.gather(*(ask(resolver, q) for q in asked))
    return dict(zip(asked, answers, strict=True))


async def ask(resolver: dns.asyncresolver.Resolver, asked: Question) -> Answer:
    name, rdtype = asked
    try:
        answer = await resolver.resolve(dns.name.from_text(name), rdtype)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return Answer()  # nothing published there (RFC 2308: NXDOMAIN, NODATA)
    except dns.exception.DNSException as exc:
        return Answer(error=f"no answer from the DNS: {exc}")
    rrset = answer.rrset
    assert rrset is not None  # NoAnswer otherwise
    owner = rrset.name.to_text(omit_final_dot=True).lower()
    return Answer(tuple(rrset), rrset.ttl, "" if owner == name else owner)

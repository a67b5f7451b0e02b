"""SPF (RFC 7208) for inbound mail: is the client allowed to send for the MAIL FROM domain
(or, for a null sender, for its HELO name)? And the ``Received-SPF`` field that says so.

The record evaluation is pyspf's (``spf.query(...).check()``), in strict mode: the RFC's
processing limits apply (§4.6.4: at most 10 DNS-querying terms, at most 2 void lookups), each
broken one a permerror. pyspf is synchronous, so a check runs in a worker thread
(:data:`MAX_THREADS` of them, apart from asyncio's default pool, so that checks waiting on a
slow DNS never starve other work) and the event loop never waits on it.

pyspf looks names up through its module-level ``spf.DNSLookup``. This module replaces it, once
at import, with :func:`_lookup`, which sends each query back to the event loop, onto *our*
resolver (:mod:`courrier.dns.resolver`): lookups share its cache, its ``dns.resolvers`` and its
timeouts. Which resolver and loop a check uses travels with the check in a context variable
(the worker thread runs in a copy of the caller's context), so concurrent checks against
different resolvers do not mix.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import ipaddress
import logging
import re
import time
from dataclasses import dataclass
from typing import Final

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
import spf

__all__ = ["MAX_THREADS", "SPFResult", "check_spf"]

log = logging.getLogger("courrier.mailauth")

#: Worker threads for SPF checks; more concurrent checks wait for one (the loop does not).
MAX_THREADS: Final = 64
#: RFC 7208 §4.6.4: a check MAY be limited in time, to no less than 20 seconds.
CHECK_TIME: Final = 20.0

RESULTS: Final = ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror")


@dataclass(frozen=True, slots=True)
class SPFResult:
    result: str  # "pass" "fail" "softfail" "neutral" "none" "temperror" "permerror"
    identity: str  # "mailfrom" or "helo"
    domain: str  # the domain whose record was checked (the MAIL FROM domain, or the HELO name)
    sender: str  # the identity checked: the MAIL FROM address, or "postmaster@<helo>" (§2.4)
    explanation: str  # pyspf's explanation / reason text ("" when none)

    def received_spf(self, *, client_ip: str, helo: str, receiver: str) -> str:
        """The Received-SPF header field (RFC 7208 §9.1), folded, ending in CRLF, e.g.
        'Received-SPF: pass (mx.b.test: domain of a@example.org designates 127.0.0.2 as
        permitted sender) client-ip=127.0.0.2; envelope-from="a@example.org";
        helo=mx.a.test; receiver=mx.b.test; identity=mailfrom\\r\\n'"""
        comment = _COMMENTS[self.result].format(
            receiver=receiver, sender=self.sender, domain=self.domain, ip=client_ip
        )
        # §9.1: at least client-ip and helo, and envelope-from when MAIL FROM was checked.
        pairs = [("client-ip", client_ip)]
        if self.identity == "mailfrom":
            pairs.append(("envelope-from", self.sender))
        pairs += [("helo", helo), ("receiver", receiver)]
        if self.result in ("temperror", "permerror") and self.explanation:
            pairs.append(("problem", self.explanation))
        pairs.append(("identity", self.identity))
        words = ["Received-SPF:", self.result]
        words += f"({_comment_text(comment)})".split(" ")
        for i, (key, value) in enumerate(pairs):
            separator = ";" if i < len(pairs) - 1 else ""
            words += f"{key}={_value(value)}{separator}".split(" ")
        return _fold(words) + "\r\n"


async def check_spf(
    resolver: dns.asyncresolver.Resolver, *, client_ip: str, mail_from: str, helo: str
) -> SPFResult:
    """MAIL FROM identity (RFC 7208 §2.4); when mail_from is "" (null sender) the HELO identity.
    A HELO that is not a domain name (an address literal) with a null sender gives result "none"."""
    if mail_from:
        identity, sender, domain = "mailfrom", mail_from, mail_from.rpartition("@")[2]
    else:
        # §2.4: a null reverse-path: check "postmaster@" + the HELO name.
        identity, sender, domain = "helo", f"postmaster@{helo}", helo
    if not _is_domain_name(domain):
        # §2.3: a HELO identity is checked only when it is a domain name; §4.3: a malformed
        # domain (here: an address literal) gives "none" at once.
        return SPFResult("none", identity, domain, sender, "")
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    context.run(_route.set, _Route(resolver, loop))
    result, explanation = await loop.run_in_executor(
        _executor, context.run, _check, client_ip, mail_from, helo
    )
    return SPFResult(result, identity, domain, sender, explanation)


def _check(client_ip: str, mail_from: str, helo: str) -> tuple[str, str]:
    """One check, in a worker thread; its DNS lookups go through :func:`_lookup`."""
    try:
        query = _Query(
            i=client_ip, s=mail_from, h=helo, strict=True, timeout=CHECK_TIME, querytime=CHECK_TIME
        )
        result, _code, explanation = query.check()
    except spf.PermError as exc:  # raised while setting up: the client address is unusable
        return "permerror", f"SPF Permanent Error: {exc}"
    except Exception as exc:  # a bug in pyspf on some record: a failure to check, logged
        log.exception("SPF check of %r from %s failed", mail_from or helo, client_ip)
        return "temperror", f"SPF check failed: {type(exc).__name__}"
    if result not in RESULTS:  # pyspf's "ambiguous" comes only in its harsher mode
        return "permerror", str(explanation)
    return str(result), str(explanation)


class _Query(spf.query):  # type: ignore[misc]  # pyspf has no type hints
    def validated_ptrs(self) -> list[str]:
        """The client's validated domain names (RFC 7208 §5.5), for "ptr" and %{p}: pyspf's
        own ends the check with temperror on any DNS error, where §5.5 says a failed PTR
        lookup matches nothing and a failed A/AAAA lookup skips that one name."""
        try:
            names: list[str] = self.dns_ptr(self.i)
        except spf.TempError:
            return []
        validated = []
        # §4.6.4: at most 10 names' addresses looked up, the others ignored.
        for name in names[: spf.MAX_PTR]:
            try:
                if self.cidrmatch(self.dns_a(name, self.A), self.cidrmax):
                    validated.append(name)
            except spf.TempError:
                continue
        return validated


# --- DNS: pyspf's lookups, answered by our resolver on the event loop


@dataclass(frozen=True, slots=True)
class _Route:
    resolver: dns.asyncresolver.Resolver
    loop: asyncio.AbstractEventLoop


_route: contextvars.ContextVar[_Route] = contextvars.ContextVar("courrier_spf_dns")
_executor = concurrent.futures.ThreadPoolExecutor(MAX_THREADS, thread_name_prefix="spf")

#: pyspf's answer to one query: ((name, type), value) for each record, the value as its
#: dnspython driver gives it (DNSLookup_dnspython): an address as text; MX (preference,
#: exchange); a PTR target; TXT/SPF the record's strings as bytes.
_Answer = list[tuple[tuple[str, str], object]]


def _lookup(name: str, qtype: str, strict: object = True, timeout: float = CHECK_TIME) -> _Answer:
    """pyspf's ``spf.DNSLookup``, run in a check's worker thread: the query goes to the
    check's resolver on its event loop. No such name or no such records: []. No answer
    (timeout, SERVFAIL, any other RCODE): ``spf.TempError`` (RFC 7208 §4.4, §5)."""
    route = _route.get(None)
    if route is None:
        raise spf.TempError("DNS: SPF lookups go through courrier.mailauth.spf.check_spf")
    try:
        qname = dns.name.from_text(name)
    except dns.exception.DNSException:
        return []  # not a name one can look up (too long, bad label): nothing there
    lifetime = max(0.0, min(float(timeout), route.resolver.lifetime))
    coroutine = route.resolver.resolve(qname, qtype, lifetime=lifetime)
    try:
        future = asyncio.run_coroutine_threadsafe(coroutine, route.loop)
    except RuntimeError as exc:  # the loop is closed
        coroutine.close()
        raise spf.TempError(f"DNS: {exc}") from exc
    try:
        answer = _wait(future, route.loop, lifetime + 5.0)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.Timeout as exc:
        raise spf.TempError(f"DNS timeout looking up {qtype} {name}") from exc
    except dns.exception.DNSException as exc:
        raise spf.TempError(f"DNS error looking up {qtype} {name}: {_reason(exc)}") from exc
    except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError) as exc:
        # The loop stopped, or cancelled the lookup as it did (asyncio.run's end).
        raise spf.TempError(f"DNS: no answer looking up {qtype} {name}") from exc
    records: _Answer = []
    for rdata in answer:
        value: object
        if qtype in ("A", "AAAA"):
            value = rdata.address
        elif qtype == "MX":
            value = (rdata.preference, _text(rdata.exchange))
        elif qtype in ("PTR", "CNAME"):
            value = _text(rdata.target)
        elif qtype in ("TXT", "SPF"):
            value = tuple(rdata.strings)
        else:
            value = rdata.to_text()
        records.append(((name, qtype), value))
    return records


def _wait(
    future: concurrent.futures.Future[dns.resolver.Answer],
    loop: asyncio.AbstractEventLoop,
    limit: float,
) -> dns.resolver.Answer:
    """The lookup's answer, waited for ``limit`` seconds at most, and not at all once the loop
    has stopped (a worker thread waiting longer would hold up the program's exit)."""
    deadline = time.monotonic() + limit
    while True:
        try:
            return future.result(timeout=max(0.0, min(0.25, deadline - time.monotonic())))
        except concurrent.futures.TimeoutError:
            if time.monotonic() >= deadline or not loop.is_running():
                future.cancel()
                raise


def _reason(exc: dns.exception.DNSException) -> str:
    """What went wrong, short, without the resolvers' addresses (it may go into a header)."""
    if isinstance(exc, dns.resolver.NoNameservers):
        # errors: (server, TCP?, port, an RCODE's name or an exception, response) each.
        found = [e[3] for e in exc.kwargs.get("errors", ())]
        reasons = {e if isinstance(e, str) else type(e).__name__ for e in found}
        return ", ".join(sorted(reasons)) or "no answer"
    return type(exc).__name__


def _text(name: dns.name.Name) -> str:
    """A name as pyspf wants it: no final dot; the root (a null MX's ".") empty."""
    return "" if name == dns.name.root else name.to_text(omit_final_dot=True)


# pyspf is meant to be extended so (its test driver does the same).
spf.DNSLookup = _lookup


# --- Received-SPF (RFC 7208 §9.1)

_COMMENTS: Final = {
    "pass": "{receiver}: domain of {sender} designates {ip} as permitted sender",
    "fail": "{receiver}: domain of {sender} does not designate {ip} as permitted sender",
    "softfail": (
        "{receiver}: domain of transitioning {sender} does not designate {ip} as permitted sender"
    ),
    "neutral": "{receiver}: {ip} is neither permitted nor denied by domain of {sender}",
    "none": "{receiver}: domain of {sender} does not designate permitted sender hosts",
    "temperror": "{receiver}: temporary error in processing during lookup of {domain}",
    "permerror": "{receiver}: permanent error in processing domain of {domain}",
}
#: RFC 5322 §3.2.3 dot-atom; other values are quoted-strings.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")
LINE: Final = 78  # RFC 5322 §2.1.1: lines SHOULD be at most 78 characters


def _is_domain_name(helo: str) -> bool:
    if not helo or helo.startswith("["):  # RFC 5321 §4.1.3 address literal
        return False
    try:
        ipaddress.ip_address(helo)
    except ValueError:
        return True
    return False


def _clean(text: str) -> str:
    """One line of text, runs of white space and control characters made single spaces."""
    return " ".join(_CONTROLS.sub(" ", text).split())


def _comment_text(text: str) -> str:
    # RFC 5322 §3.2.2: "(", ")" and "\" in a comment are quoted-pairs.
    return re.sub(r"([()\\])", r"\\\1", _clean(text))


def _value(text: str) -> str:
    text = _clean(text)
    if _DOT_ATOM.fullmatch(text):
        return text
    return '"' + re.sub(r'(["\\])', r"\\\1", text) + '"'


def _fold(words: list[str]) -> str:
    """``words`` joined by spaces, a line broken before a word that would pass :data:`LINE`
    (RFC 5322 §2.2.3: a CRLF before white space, here a tab, as in our Received fields)."""
    lines = [words[0]]
    for word in words[1:]:
        if len(lines[-1]) + 1 + len(word) > LINE:
            lines.append("\t" + word)
        else:
            lines[-1] += " " + word
    return "\r\n".join(lines)

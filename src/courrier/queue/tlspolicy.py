"""Outbound transport security: for each MX host, what TLS it must offer and how it is judged.

What this module owns: the decision, per destination, between DANE (RFC 7672: TLSA records of
an MX host whose DNS answers were validated), MTA-STS (RFC 8461: the domain's policy,
fetched over HTTPS, cached in the store, refreshed when the TXT id changes or it expires) and
opportunistic TLS (RFC 7435); REQUIRETLS's demand for one of the first two (RFC 8689
§4.2.1); the TLS contexts that go with them; the judgement of a finished handshake; and the
TLS-RPT session records (RFC 8460) that say how it went. DANE comes first where it applies
(RFC 8461 §2). The runner asks :meth:`TransportSecurity.plan` which hosts to use and how,
connects, and hands back what it saw; the sans-IO rules are in :mod:`~courrier.queue.dane`
and :mod:`~courrier.queue.mtasts`.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import ssl
import time
from dataclasses import dataclass, field
from typing import Literal

import dns.asyncresolver
import dns.exception
import dns.resolver

from courrier.config import Settings
from courrier.queue import https, mtasts
from courrier.queue.dane import TLSA, Mismatch, usable
from courrier.queue.dane import check as dane_check
from courrier.queue.routing import Host, LookupFailed, NoMail, addresses_of, validated
from courrier.store import Store, StoreError
from courrier.store.transport import CachedPolicy, TLSSession

log = logging.getLogger("courrier.queue")

__all__ = ["HostPlan", "Mismatch", "Report", "TransportSecurity", "classify", "opportunistic"]

#: What a host's TLS must be (Postfix's security levels): ``may`` try STARTTLS, any
#: certificate, clear text if it fails; ``encrypt`` STARTTLS required, any certificate;
#: ``verify`` STARTTLS with a certificate valid for the host name (WebPKI, MTA-STS);
#: ``dane`` STARTTLS with a certificate matching the host's TLSA records.
Level = Literal["may", "encrypt", "verify", "dane"]


@dataclass(frozen=True, slots=True)
class Report:
    """The policy a session is counted under (RFC 8460 §4.4)."""

    policy_type: Literal["sts", "tlsa", "no-policy-found"]
    policy_strings: tuple[str, ...] = ()
    mx_hosts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HostPlan:
    host: Host
    level: Level
    #: True: a failure of the level's checks means this host is not used (enforce, DANE,
    #: REQUIRETLS). False: the failure is recorded and the mail goes on as before (MTA-STS
    #: ``testing``; ``may``).
    enforced: bool
    report: Report
    tlsa: tuple[TLSA, ...] = ()
    #: Not to be used at all: the reason, with its enhanced status code first.
    refused: str | None = None
    #: A failure known before connecting (policy fetch failed; MX host outside a ``testing``
    #: policy): the session is counted as this failure even if TLS goes well.
    known_failure: Mismatch | None = None


@dataclass(slots=True)
class Plan:
    hosts: list[HostPlan] = field(default_factory=list)
    #: Sessions counted as failed before any connection (no MX host allowed by a policy).
    sessions: list[TLSSession] = field(default_factory=list)


#: Seconds before a domain found without an MTA-STS policy is asked again: the usual TTL of
#: the TXT record whose appearance announces a new one (RFC 8461 §3.1).
NO_POLICY_RECHECK = 300.0
_NO_POLICY_MAX = 100_000


def opportunistic() -> ssl.SSLContext:
    """STARTTLS without checking the certificate (RFC 7435): better than plain text."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def verifying(ca_file: str) -> ssl.SSLContext:
    """Chain to a trusted CA and the host's name (RFC 8461 §4.2, RFC 6125)."""
    context = ssl.create_default_context(cafile=ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def classify(exc: BaseException) -> Mismatch:
    """RFC 8460 §4.3 result type of a failed STARTTLS or handshake."""
    cause = exc.__cause__
    if isinstance(cause, ssl.SSLCertVerificationError):
        reason = cause.verify_message or str(cause)
        code = cause.verify_code
        if code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
            return Mismatch("certificate-host-mismatch", reason)
        if code in (9, 10):  # X509_V_ERR_CERT_NOT_YET_VALID, X509_V_ERR_CERT_HAS_EXPIRED
            return Mismatch("certificate-expired", reason)
        if code in (2, 18, 19, 20, 21):  # no issuer, self-signed, untrusted root
            return Mismatch("certificate-not-trusted", reason)
        return Mismatch("validation-failure", reason)
    if getattr(exc, "reply", None) is not None:  # the server refused STARTTLS
        return Mismatch("starttls-not-supported", str(exc))
    return Mismatch("validation-failure", str(exc))


class TransportSecurity:
    def __init__(
        self, settings: Settings, store: Store, resolver: dns.asyncresolver.Resolver
    ) -> None:
        self.settings = settings
        self.store = store
        self.resolver = resolver
        self.may = opportunistic()
        self.verify = verifying(settings.queue.tls_ca_file)
        #: Per domain, while some delivery looks for its policy: the others wait, then find
        #: it in the cache (one fetch, not one per message). With the count of those there.
        self._looking: dict[str, tuple[asyncio.Lock, int]] = {}
        #: Domains found without a policy (no record, nothing cached), until when: most
        #: domains have none, and asking the DNS and the store per message costs more than
        #: the delivery (bench/RESULTS.md, relay).
        self._no_policy: dict[str, float] = {}

    def context(self, plan: HostPlan) -> ssl.SSLContext:
        """The handshake's context: DANE judges the chain itself after the handshake."""
        return self.verify if plan.level == "verify" else self.may

    def check(self, plan: HostPlan, chain: list[bytes]) -> Mismatch | None:
        """After the handshake: do the server's certificates satisfy the plan?"""
        if plan.level != "dane":
            return None
        return dane_check(plan.tlsa, chain, plan.host.name, datetime.datetime.now(datetime.UTC))

    def session(
        self,
        domain: str,
        plan: HostPlan,
        address: str,
        sending_ip: str,
        failure: Mismatch | None,
    ) -> TLSSession:
        failure = failure or plan.known_failure
        return TLSSession(
            _today(),
            domain,
            plan.report.policy_type,
            plan.report.policy_strings,
            plan.report.mx_hosts,
            None if failure is None else failure.result_type,
            sending_ip,
            plan.host.name,
            address,
            "" if failure is None else failure.reason,
        )

    # -- the plan ---------------------------------------------------------------------------

    async def plan(self, domain: str, hosts: list[Host], *, requiretls: bool) -> Plan:
        """How to use each of ``hosts`` (in order) for mail to ``domain``."""
        q = self.settings.queue
        plan = Plan()
        sts: tuple[mtasts.Policy | None, Mismatch | None] | None = None
        literal = domain.startswith("[")
        for host in hosts:
            if q.dane and host.secure and not literal:
                found = await self._dane(host, requiretls)
                if found is not None:
                    plan.hosts.append(found)
                    continue
            if sts is None:
                sts = (None, None) if literal or not q.mta_sts else await self._sts(domain)
            plan.hosts.append(_sts_plan(host, *sts, requiretls=requiretls))
        for refused in plan.hosts:
            if refused.refused is not None and refused.known_failure is not None:
                # Not used, but a session the domain should hear about (RFC 8460 §4.3.2.2).
                address = refused.host.addresses[0] if refused.host.addresses else ""
                plan.sessions.append(self.session(domain, refused, address, "", None))
        policy = sts[0] if sts else None
        if policy is not None and all(
            h.refused and h.report.policy_type == "sts" for h in plan.hosts
        ):
            # No MX host may be used under the policy: a failed session, counted once.
            plan.sessions.append(
                TLSSession(
                    _today(),
                    domain,
                    "sts",
                    policy.lines,
                    policy.mx,
                    "validation-failure",
                    additional="no MX host of the domain matches the MTA-STS policy",
                )
            )
        return plan

    async def _dane(self, host: Host, requiretls: bool) -> HostPlan | None:
        """The DANE plan of a host whose address is validated, or None when it has no
        validated TLSA records (then DANE does not apply, RFC 7672 §2.2)."""
        port = self.settings.queue.outbound_port
        name = f"_{port}._tcp.{host.name}"
        try:
            answer = await self.resolver.resolve(name, "TLSA")
        except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
            return None
        except dns.exception.DNSException as exc:
            # §2.2: a TLSA lookup that fails for a secure host makes the host unusable; the
            # mail waits rather than going without the protection it may have.
            return HostPlan(
                host,
                "dane",
                True,
                Report("tlsa", (), (host.name,)),
                refused=f"4.7.5 TLSA lookup for {name} failed: {exc}",
                known_failure=Mismatch("dnssec-invalid", f"TLSA lookup failed: {exc}"),
            )
        if not validated(answer):
            return None  # an insecure TLSA answer is no DANE (RFC 7672 §2.2)
        records = tuple(TLSA(r.usage, r.selector, r.mtype, bytes(r.cert)) for r in answer)
        report = Report("tlsa", tuple(str(r) for r in records), (host.name,))
        if any(usable(r) for r in records):
            return HostPlan(host, "dane", True, report, records)
        # §2.2: only unusable records: TLS is still required, not authenticated; that is
        # not enough for REQUIRETLS (RFC 8689 §4.2.1).
        refused = "4.7.10 REQUIRETLS, and no usable TLSA record" if requiretls else None
        return HostPlan(
            host,
            "encrypt",
            True,
            report,
            records,
            refused=refused,
            known_failure=Mismatch("tlsa-invalid", "no usable TLSA record"),
        )

    async def _sts(self, domain: str) -> tuple[mtasts.Policy | None, Mismatch | None]:
        """The domain's MTA-STS policy in force, or None; and, when a policy was announced
        but none could be had, why (to be reported)."""
        if self._no_policy.get(domain, 0.0) > time.monotonic():
            return None, None
        lock, users = self._looking.get(domain, (asyncio.Lock(), 0))
        self._looking[domain] = (lock, users + 1)
        try:
            async with lock:
                found = await self._sts_now(domain)
        finally:
            lock, users = self._looking[domain]
            if users > 1:
                self._looking[domain] = (lock, users - 1)
            else:
                del self._looking[domain]
        if found == (None, None):
            if len(self._no_policy) > _NO_POLICY_MAX:
                self._no_policy.clear()
            self._no_policy[domain] = time.monotonic() + NO_POLICY_RECHECK
        return found

    async def _sts_now(self, domain: str) -> tuple[mtasts.Policy | None, Mismatch | None]:
        now = int(time.time())
        try:
            cached = await self.store.cached_sts_policy(domain)
        except StoreError as exc:
            log.warning("MTA-STS cache for %s: %s", domain, exc)
            cached = None
        usable_cached = _parsed(cached) if cached and cached.expires_at > now else None
        record_id = await self._record_id(domain)
        if record_id is None:
            # §5.1: no (valid) record now: an unexpired cached policy still holds.
            return usable_cached, None
        if usable_cached is not None and cached is not None and cached.policy_id == record_id:
            return usable_cached, None
        try:
            policy = await self._fetch(domain)
        except _FetchFailed as exc:
            log.info("MTA-STS policy of %s: %s", domain, exc.mismatch.reason)
            if usable_cached is not None:
                return usable_cached, None  # §5.1: keep the cached one while it lasts
            return None, exc.mismatch
        try:
            await self.store.cache_sts_policy(
                CachedPolicy(domain, record_id, policy.text, now, now + policy.max_age)
            )
        except StoreError as exc:
            log.warning("MTA-STS cache for %s: %s", domain, exc)
        return policy, None

    async def _record_id(self, domain: str) -> str | None:
        """§3.1: the id of the one valid ``_mta-sts`` record, or None."""
        try:
            answer = await self.resolver.resolve(f"_mta-sts.{domain}", "TXT")
        except dns.exception.DNSException:
            return None
        records = [r.strings for r in answer if mtasts.is_sts_record(r.strings)]
        if len(records) != 1:
            return None
        try:
            return mtasts.parse_record(records[0])
        except mtasts.PolicyError:
            return None

    async def _fetch(self, domain: str) -> mtasts.Policy:
        """§3.3: GET the policy over HTTPS, certificate checked, no redirects."""
        q = self.settings.queue
        host = mtasts.policy_host(domain)
        try:
            addresses = await addresses_of(host, self.resolver)
        except (NoMail, LookupFailed) as exc:
            raise _FetchFailed("sts-policy-fetch-error", str(exc)) from exc
        problem = _FetchFailed("sts-policy-fetch-error", f"no address for {host}")
        for address in addresses:
            try:
                async with asyncio.timeout(q.mta_sts_timeout):
                    response = await https.get(
                        address,
                        q.mta_sts_port,
                        host,
                        mtasts.POLICY_PATH,
                        self.verify,
                        limit=mtasts.MAX_POLICY_SIZE,
                    )
            except TimeoutError:
                problem = _FetchFailed("sts-policy-fetch-error", f"no answer from {host}")
                continue
            except https.TLSError as exc:
                problem = _FetchFailed("sts-webpki-invalid", str(exc))
                continue
            except https.HTTPError as exc:
                problem = _FetchFailed("sts-policy-fetch-error", str(exc))
                continue
            try:
                text = mtasts.check_response(
                    response.status, response.headers.get("content-type"), response.body
                )
            except mtasts.PolicyError as exc:
                raise _FetchFailed("sts-policy-fetch-error", str(exc)) from exc
            try:
                return mtasts.parse_policy(text)
            except mtasts.PolicyError as exc:
                raise _FetchFailed("sts-policy-invalid", str(exc)) from exc
        raise problem


class _FetchFailed(Exception):
    def __init__(self, result_type: str, reason: str) -> None:
        super().__init__(reason)
        self.mismatch = Mismatch(result_type, reason)


def _parsed(cached: CachedPolicy) -> mtasts.Policy | None:
    try:
        return mtasts.parse_policy(cached.policy)
    except mtasts.PolicyError:
        return None


def _sts_plan(
    host: Host, policy: mtasts.Policy | None, failure: Mismatch | None, *, requiretls: bool
) -> HostPlan:
    """A host's plan under the domain's MTA-STS policy (or none)."""
    if policy is None or policy.mode == "none":
        report = Report("sts") if failure is not None else Report("no-policy-found")
        refused = None
        if requiretls:
            # RFC 8689 §4.2.1: the MX host must be authenticated by DNSSEC (DANE) or MTA-STS.
            refused = f"4.7.10 REQUIRETLS, and {host.name} is covered by neither DANE nor MTA-STS"
        return HostPlan(host, "may", False, report, refused=refused, known_failure=failure)
    report = Report("sts", policy.lines, policy.mx)
    # RFC 8689 §4.2.1: for a REQUIRETLS message a "testing" policy counts as "enforce".
    enforced = policy.mode == "enforce" or requiretls
    # §4.1: the MX host must match a pattern; an implicit MX (no MX records) never does.
    allowed = policy.allows(host.name) and not host.implicit
    if allowed:
        return HostPlan(host, "verify", enforced, report)
    reason = f"{host.name} is not an MX host of the domain's MTA-STS policy"
    if enforced:
        return HostPlan(host, "verify", True, report, refused=f"4.7.5 {reason}")
    return HostPlan(
        host, "verify", False, report, known_failure=Mismatch("validation-failure", reason)
    )


def _today() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")

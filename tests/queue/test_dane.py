"""DANE for SMTP (RFC 7672): TLSA matching without a network; then A delivering to B whose
TLSA records a DNS stand-in serves, with or without the AD bit of a validating resolver."""

from __future__ import annotations

import datetime
import email
import email.policy
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given
from hypothesis import strategies as st

from courrier.queue.dane import TLSA, check, usable
from courrier.store.queue import Outbound, OutboundRecipient
from courrier.store.transport import PolicyDay
from tests.queue.helpers import queue_empty
from tests.queue.tlssetup import attempted, pair, queue_mail
from tests.store.helpers import make_message
from tests.support.dnsstub import DNSStub
from tests.support.pki import Authority, Issued
from tests.support.server import Running, inbox

NOW = datetime.datetime.now(datetime.UTC)


def tlsa(text: str) -> TLSA:
    usage, selector, mtype, data = text.split()
    return TLSA(int(usage), int(selector), int(mtype), bytes.fromhex(data))


def der(issued: Issued, *, with_root: bool = True) -> list[bytes]:
    """The chain as the server sends it (leaf, intermediate, maybe the root)."""
    chain = (issued.cert, *issued.chain[: None if with_root else 1])
    return [c.public_bytes(Encoding.DER) for c in chain]


@pytest.fixture(scope="module")
def ca() -> Authority:
    return Authority()


@pytest.fixture(scope="module")
def leaf(ca: Authority) -> Issued:
    return ca.issue("mx.b.test")


# -- matching (RFC 7672 §3.1) -------------------------------------------------------------------


@pytest.mark.parametrize("params", [(3, 1, 1), (3, 0, 1), (3, 1, 2), (3, 0, 0), (3, 1, 0)])
def test_dane_ee_matches_the_leaf(leaf: Issued, params: tuple[int, int, int]) -> None:
    assert check([tlsa(leaf.tlsa(*params))], der(leaf), "mx.b.test", NOW) is None


def test_dane_ee_ignores_names_and_expiry(ca: Authority) -> None:
    """§3.1.1: the key is the trust; the certificate's names and dates do not count."""
    stale = ca.issue("somewhere.else.test", expired=True)
    assert check([tlsa(stale.tlsa(3, 1, 1))], der(stale), "mx.b.test", NOW) is None


def test_another_certificate_does_not_match(ca: Authority, leaf: Issued) -> None:
    other = ca.issue("mx.b.test")
    found = check([tlsa(other.tlsa(3, 1, 1))], der(leaf), "mx.b.test", NOW)
    assert found is not None and found.result_type == "validation-failure"


def test_dane_ta_needs_the_chain_and_the_name(ca: Authority, leaf: Issued) -> None:
    intermediate = tlsa(leaf.tlsa(2, 0, 1, of=1))
    root = tlsa(leaf.tlsa(2, 1, 1, of=2))
    assert check([intermediate], der(leaf), "mx.b.test", NOW) is None
    assert check([root], der(leaf), "mx.b.test", NOW) is None
    # §3.2.2: the MX host's name must be in the certificate.
    wrong = check([intermediate], der(leaf), "mx2.b.test", NOW)
    assert wrong is not None and wrong.result_type == "certificate-host-mismatch"
    # And it must be valid now.
    expired = ca.issue("mx.b.test", expired=True)
    stale = check([intermediate], der(expired), "mx.b.test", NOW)
    assert stale is not None and stale.result_type in ("certificate-expired", "validation-failure")
    # A hash of the root, which the server did not send: nothing to chain to.
    missing = check([root], der(leaf, with_root=False), "mx.b.test", NOW)
    assert missing is not None
    # "2 0 0" carries the anchor itself: then it may be left out of the chain.
    full = tlsa(leaf.tlsa(2, 0, 0, of=2))
    assert check([full], der(leaf, with_root=False), "mx.b.test", NOW) is None


def test_a_leaf_hash_as_trust_anchor_does_not_count(leaf: Issued) -> None:
    found = check([tlsa(leaf.tlsa(2, 1, 1))], der(leaf), "mx.b.test", NOW)
    assert found is not None


def test_pkix_usages_are_unusable_for_smtp(leaf: Issued) -> None:
    """§3.1.3: PKIX-TA(0) and PKIX-EE(1) are not used by SMTP clients."""
    records = [tlsa(leaf.tlsa(1, 1, 1)), tlsa(leaf.tlsa(0, 1, 1, of=1))]
    assert not any(usable(r) for r in records)
    found = check(records, der(leaf), "mx.b.test", NOW)
    assert found is not None and found.result_type == "tlsa-invalid"
    assert not usable(TLSA(3, 1, 1, b"\x00" * 31))  # a SHA-256 digest is 32 octets
    assert not usable(TLSA(3, 2, 1, b"\x00" * 32))  # no such selector
    assert not usable(TLSA(3, 1, 3, b"\x00" * 32))  # no such matching type


@given(
    usage=st.integers(0, 255),
    selector=st.integers(0, 255),
    mtype=st.integers(0, 255),
    data=st.binary(max_size=80),
)
def test_arbitrary_records_never_crash_nor_match(
    leaf: Issued, usage: int, selector: int, mtype: int, data: bytes
) -> None:
    found = check([TLSA(usage, selector, mtype, data)], der(leaf), "mx.b.test", NOW)
    assert found is not None


# -- end to end -----------------------------------------------------------------------------------

RECORDS = {"b.test MX": ["10 mx.b.test."], "mx.b.test A": ["127.0.0.3"]}


def _tlsa_name(b: Running) -> tuple[str, str]:
    return (f"_{b.port('smtp')}._tcp.mx.b.test", "TLSA")


def _today() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")


async def _report(a: Running) -> PolicyDay:
    (day,) = await a.store.tls_report(_today())
    return day


async def test_a_matching_dane_ee_record_delivers(tmp_path: Path, ca: Authority) -> None:
    b_cert = ca.issue("mx.b.test")
    stub = DNSStub(RECORDS, secure=True)
    async with pair(tmp_path, stub, ca, b_cert, **{"queue.tls_ca_file": ""}) as p:
        stub.records[_tlsa_name(p.b)] = [b_cert.tlsa(3, 1, 1)]
        content = await queue_mail(p.a, "DANE", 1)
        await queue_empty(p.a)
        (received,) = await inbox(p.b.store, "carol@b.test")
        report = await _report(p.a)
    assert received.endswith(content) and b"with ESMTPS" in received
    assert report.policy_type == "tlsa" and (report.successes, report.failures) == (1, 0)
    assert report.policy_strings == (b_cert.tlsa(3, 1, 1),)
    assert (_tlsa_name(p.b)[0].lower(), "TLSA") in stub.queries


async def test_a_mismatching_record_defers(tmp_path: Path, ca: Authority) -> None:
    b_cert, other = ca.issue("mx.b.test"), ca.issue("mx.b.test")
    stub = DNSStub(RECORDS, secure=True)
    async with pair(tmp_path, stub, ca, b_cert) as p:
        stub.records[_tlsa_name(p.b)] = [other.tlsa(3, 1, 1)]
        await queue_mail(p.a, "MISMATCH", 2)
        queued = await attempted(p.a, 2)
        assert await inbox(p.b.store, "carol@b.test") == []
        report = await _report(p.a)
    (recipient,) = queued.recipients
    assert recipient.state == "queued" and recipient.last_reply.startswith("451 4.7.5")
    assert report.policy_type == "tlsa" and report.successes == 0 and report.failures >= 2
    (detail,) = report.details
    assert detail.result_type == "validation-failure" and detail.receiving_mx == "mx.b.test"


async def test_records_without_the_ad_bit_are_ignored(tmp_path: Path, ca: Authority) -> None:
    """The same mismatching records, but the resolver did not validate them: no DANE, mail
    goes out opportunistically; a REQUIRETLS message does not (RFC 8689 §4.2.1)."""
    b_cert, other = ca.issue("mx.b.test"), ca.issue("mx.b.test")
    stub = DNSStub(RECORDS, secure=False)
    async with pair(tmp_path, stub, ca, b_cert) as p:
        stub.records[_tlsa_name(p.b)] = [other.tlsa(3, 1, 1)]
        content = await queue_mail(p.a, "INSECURE", 3)
        await queue_empty(p.a)
        (received,) = await inbox(p.b.store, "carol@b.test")
        report = await _report(p.a)
        await queue_mail(p.a, "REQTLS", 4, requiretls=True)
        queued = await attempted(p.a)
        assert len(await inbox(p.b.store, "carol@b.test")) == 1
    assert received.endswith(content)
    assert report.policy_type == "no-policy-found" and report.successes == 1
    assert queued.recipients[0].last_reply.startswith("451 4.7.10")
    assert "REQUIRETLS" in queued.recipients[0].last_reply
    assert _tlsa_name(p.b)[0].lower() not in {name for name, _ in stub.queries}


async def test_requiretls_goes_to_a_dane_authenticated_host(tmp_path: Path, ca: Authority) -> None:
    b_cert = ca.issue("mx.b.test")
    stub = DNSStub(RECORDS, secure=True)
    async with pair(tmp_path, stub, ca, b_cert) as p:
        stub.records[_tlsa_name(p.b)] = [b_cert.tlsa(2, 0, 1, of=1)]  # DANE-TA
        content = await queue_mail(p.a, "REQDANE", 5, requiretls=True)
        await queue_empty(p.a)
        (received,) = await inbox(p.b.store, "carol@b.test")
    assert received.endswith(content)


async def test_a_failing_tlsa_lookup_defers(tmp_path: Path, ca: Authority) -> None:
    """§2.2: the MX host is validated but its TLSA lookup fails: not used, mail waits."""
    b_cert = ca.issue("mx.b.test")
    stub = DNSStub(RECORDS, secure=True)
    async with pair(tmp_path, stub, ca, b_cert) as p:
        stub.failing.add(_tlsa_name(p.b)[0].lower())
        await queue_mail(p.a, "SERVFAIL", 6)
        queued = await attempted(p.a)
        assert await inbox(p.b.store, "carol@b.test") == []
        report = await _report(p.a)
    assert queued.recipients[0].last_reply.startswith("451 4.7.5")
    assert "TLSA lookup" in queued.recipients[0].last_reply
    assert report.policy_type == "tlsa" and report.failures >= 1
    assert [d.result_type for d in report.details] == ["dnssec-invalid"]


async def test_requiretls_mail_that_cannot_go_is_returned_at_expiry(
    tmp_path: Path, ca: Authority
) -> None:
    """No DANE, no MTA-STS: the REQUIRETLS message waits, and when its lifetime is over the
    sender gets the usual non-delivery report, naming the reason."""
    b_cert = ca.issue("mx.b.test")
    async with pair(tmp_path, DNSStub(RECORDS), ca, b_cert, **{"queue.lifetime": 1}) as p:
        outbound = Outbound(
            "EXPIRES", "bob@example.org", (OutboundRecipient("carol@b.test"),), b"",
            requiretls=True,
        )  # fmt: skip
        await p.a.store.deliver(make_message(7), [], outbound=outbound)
        await queue_empty(p.a)  # gone from the queue: failed, not sent
        assert await inbox(p.b.store, "carol@b.test") == []
        (report,) = await inbox(p.a.store, "bob@example.org")
    msg = email.message_from_bytes(report, policy=email.policy.default)
    _, status, _ = msg.get_payload()  # type: ignore[misc]
    (per_recipient,) = status.get_payload()[1:]
    assert per_recipient["Action"] == "failed"
    assert per_recipient["Final-Recipient"] == "rfc822; carol@b.test"
    assert "REQUIRETLS" in per_recipient["Diagnostic-Code"]

"""The transport security tables (schema v7) on both backends: MTA-STS policies cached and
replaced, TLS-RPT sessions added up per day and policy into what an RFC 8460 report lists."""

from __future__ import annotations

from courrier.store import Store
from courrier.store.transport import CachedPolicy, FailureCount, PolicyDay, TLSSession

STS = ("version: STSv1", "mode: enforce", "mx: mx.b.test", "max_age: 86400")


async def test_a_cached_policy_is_kept_and_replaced(store: Store) -> None:
    assert await store.cached_sts_policy("b.test") is None
    first = CachedPolicy("b.test", "1", "\n".join(STS), 100, 86500)
    await store.cache_sts_policy(first)
    assert await store.cached_sts_policy("b.test") == first
    second = CachedPolicy("b.test", "2", "version: STSv1\nmode: none\nmax_age: 60", 200, 260)
    await store.cache_sts_policy(second)
    assert await store.cached_sts_policy("b.test") == second
    assert await store.cached_sts_policy("c.test") is None


async def test_sessions_add_up_per_day_and_policy(store: Store) -> None:
    day, other_day = "2026-05-09", "2026-05-10"

    def sts(result: str | None = None, mx: str = "mx.b.test", ip: str = "192.0.2.1") -> TLSSession:
        return TLSSession(
            day, "b.test", "sts", STS, ("mx.b.test",), result, "198.51.100.1", mx, ip,
            "" if result is None else "certificate does not match",
        )  # fmt: skip

    await store.record_tls_sessions([sts(), sts(), sts("certificate-host-mismatch")])
    await store.record_tls_sessions(
        [
            sts("certificate-host-mismatch"),
            sts("certificate-host-mismatch", ip="192.0.2.2"),
            sts("starttls-not-supported"),
            TLSSession(day, "c.test", "no-policy-found", receiving_mx="mx.c.test"),
            TLSSession(
                day,
                "b.test",
                "tlsa",
                ("3 1 1 abcd",),
                ("mx2.b.test",),
                "validation-failure",
                "198.51.100.1",
                "mx2.b.test",
                "192.0.2.9",
            ),
            TLSSession(other_day, "b.test", "sts", STS, ("mx.b.test",)),
        ]
    )
    await store.record_tls_sessions([])
    report = await store.tls_report(day)
    assert [(p.policy_domain, p.policy_type) for p in report] == [
        ("b.test", "sts"),
        ("b.test", "tlsa"),
        ("c.test", "no-policy-found"),
    ]
    sts_day, tlsa_day, none_day = report
    mismatch = "certificate does not match"
    assert sts_day == PolicyDay(
        "b.test",
        "sts",
        STS,
        ("mx.b.test",),
        successes=2,
        failures=4,
        details=(
            FailureCount(
                "certificate-host-mismatch", "198.51.100.1", "mx.b.test", "192.0.2.1", mismatch, 2
            ),
            FailureCount(
                "certificate-host-mismatch", "198.51.100.1", "mx.b.test", "192.0.2.2", mismatch, 1
            ),
            FailureCount(
                "starttls-not-supported", "198.51.100.1", "mx.b.test", "192.0.2.1", mismatch, 1
            ),
        ),
    )
    assert (tlsa_day.policy_strings, tlsa_day.successes, tlsa_day.failures) == (
        ("3 1 1 abcd",),
        0,
        1,
    )
    assert [d.result_type for d in tlsa_day.details] == ["validation-failure"]
    assert (none_day.successes, none_day.failures, none_day.details) == (1, 0, ())
    (next_day,) = await store.tls_report(other_day)
    assert (next_day.successes, next_day.failures) == (1, 0)
    assert await store.tls_report("2026-05-11") == []

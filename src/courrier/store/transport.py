"""Transactions on outbound transport security: the MTA-STS policy cache and TLS-RPT counts.

What this module owns: one cached MTA-STS policy per recipient domain (RFC 8461 §5.1: the
policy text as served, the TXT id it came with, when it was fetched and when it expires), and
the TLS-RPT results (RFC 8460 §4.4) of outbound sessions, added up per UTC day and applied
policy (type, policy strings, MX patterns): successful and failed sessions, and per failure
kind and server the failed-session count. :func:`report_day` gives a day's aggregates in the
shape of the report's ``policies`` array. The policies themselves are parsed by
``courrier.queue``, never here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from courrier.store.tx import Tx, one, rows, run


@dataclass(frozen=True, slots=True)
class CachedPolicy:
    domain: str
    policy_id: str
    policy: str
    fetched_at: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class TLSSession:
    """One outbound session's TLS outcome under one policy (RFC 8460 §4.3, §4.4).

    ``policy_type``: ``sts``, ``tlsa`` or ``no-policy-found``; ``result_type`` is None for a
    success, else a §4.3 result type (``certificate-host-mismatch``…)."""

    day: str
    policy_domain: str
    policy_type: str
    policy_strings: tuple[str, ...] = ()
    mx_hosts: tuple[str, ...] = ()
    result_type: str | None = None
    sending_ip: str = ""
    receiving_mx: str = ""
    receiving_ip: str = ""
    additional: str = ""


@dataclass(frozen=True, slots=True)
class FailureCount:
    """RFC 8460 §4.4 failure-details: one kind of failure with one server, and how often."""

    result_type: str
    sending_ip: str
    receiving_mx: str
    receiving_ip: str
    additional: str
    sessions: int


@dataclass(frozen=True, slots=True)
class PolicyDay:
    """RFC 8460 §4.4: one entry of a day's ``policies`` array."""

    policy_domain: str
    policy_type: str
    policy_strings: tuple[str, ...]
    mx_hosts: tuple[str, ...]
    successes: int
    failures: int
    details: tuple[FailureCount, ...]


def get_policy(domain: str) -> Tx[CachedPolicy | None]:
    row = yield one(
        "SELECT domain, policy_id, policy, fetched_at, expires_at FROM mta_sts_policies "
        "WHERE domain = ?",
        domain,
    )
    if row is None:
        return None
    return CachedPolicy(str(row[0]), str(row[1]), str(row[2]), int(row[3]), int(row[4]))


def put_policy(policy: CachedPolicy) -> Tx[None]:
    """Keep a newly fetched policy, replacing the domain's previous one."""
    yield run(
        "INSERT INTO mta_sts_policies (domain, policy_id, policy, fetched_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (domain) DO UPDATE SET "
        "policy_id = excluded.policy_id, policy = excluded.policy, "
        "fetched_at = excluded.fetched_at, expires_at = excluded.expires_at",
        policy.domain,
        policy.policy_id,
        policy.policy,
        policy.fetched_at,
        policy.expires_at,
    )


def record_sessions(sessions: Sequence[TLSSession]) -> Tx[None]:
    """Count each session under its day and policy, and its failure's details."""
    for s in sessions:
        failed = s.result_type is not None
        row = yield one(
            "INSERT INTO tls_report_policies (day, policy_domain, policy_type, policy_strings, "
            "mx_hosts, successes, failures) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (day, policy_domain, policy_type, policy_strings, mx_hosts) DO UPDATE "
            "SET successes = tls_report_policies.successes + excluded.successes, "
            "failures = tls_report_policies.failures + excluded.failures RETURNING id",
            s.day,
            s.policy_domain,
            s.policy_type,
            json.dumps(list(s.policy_strings)),
            json.dumps(list(s.mx_hosts)),
            int(not failed),
            int(failed),
        )
        if s.result_type is not None:
            yield run(
                "INSERT INTO tls_report_failures (policy_id, result_type, sending_ip, "
                "receiving_mx, receiving_ip, additional, sessions) VALUES (?, ?, ?, ?, ?, ?, 1) "
                "ON CONFLICT (policy_id, result_type, sending_ip, receiving_mx, receiving_ip, "
                "additional) DO UPDATE SET sessions = tls_report_failures.sessions + 1",
                int(row[0]),
                s.result_type,
                s.sending_ip,
                s.receiving_mx,
                s.receiving_ip,
                s.additional[:500],
            )


def report_day(day: str) -> Tx[list[PolicyDay]]:
    """The day's results (``YYYY-MM-DD``, UTC), by policy domain then type."""
    policies = yield rows(
        "SELECT id, policy_domain, policy_type, policy_strings, mx_hosts, successes, failures "
        "FROM tls_report_policies WHERE day = ? ORDER BY policy_domain, policy_type, id",
        day,
    )
    details = yield rows(
        "SELECT f.policy_id, f.result_type, f.sending_ip, f.receiving_mx, f.receiving_ip, "
        "f.additional, f.sessions FROM tls_report_failures f "
        "JOIN tls_report_policies p ON p.id = f.policy_id WHERE p.day = ? "
        "ORDER BY f.result_type, f.receiving_mx, f.receiving_ip",
        day,
    )
    by_policy: dict[int, list[FailureCount]] = {}
    for d in details:
        by_policy.setdefault(int(d[0]), []).append(
            FailureCount(str(d[1]), str(d[2]), str(d[3]), str(d[4]), str(d[5]), int(d[6]))
        )
    return [
        PolicyDay(
            str(p[1]),
            str(p[2]),
            tuple(json.loads(p[3])),
            tuple(json.loads(p[4])),
            int(p[5]),
            int(p[6]),
            tuple(by_policy.get(int(p[0]), ())),
        )
        for p in policies
    ]

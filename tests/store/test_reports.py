"""The reporting tables (schema v8) on both backends: DMARC results counted per day, policy
domain and identical row, in the delivery's transaction; reports kept once each, the first
node to add a report to be sent being the one that sends it."""

from __future__ import annotations

from courrier.store import Store, Target
from courrier.store.dmarcresults import DmarcCount, DmarcRow
from courrier.store.reports import Report
from tests.store.helpers import make_message


async def inbox_of(store: Store, address: str) -> int:
    account = await store.get_account(address)
    assert account is not None
    found = await store.directory.mailbox_id(account.id, "INBOX")
    assert found is not None
    return found


async def test_dmarc_results_are_counted_with_the_delivery(store: Store) -> None:
    await store.add_domain("example.org")
    await store.add_account("bob@example.org", "x")
    inbox = await inbox_of(store, "bob@example.org")
    passing = DmarcRow("2026-05-09", "a.test", '{"p": "none"}', '{"source_ip": "192.0.2.1"}')
    other_source = DmarcRow("2026-05-09", "a.test", '{"p": "none"}', '{"source_ip": "192.0.2.9"}')
    for n, row in enumerate([passing, passing, other_source, passing]):
        (result,) = await store.deliver(make_message(n), [Target(inbox)], dmarc=row)
        assert result.uid == n + 1  # type: ignore[union-attr]
    await store.deliver(
        make_message(9), [Target(inbox)], dmarc=DmarcRow("2026-05-10", "a.test", "{}", "{}")
    )
    assert await store.dmarc_day("2026-05-09") == [
        DmarcCount("a.test", '{"p": "none"}', '{"source_ip": "192.0.2.1"}', 3),
        DmarcCount("a.test", '{"p": "none"}', '{"source_ip": "192.0.2.9"}', 1),
    ]
    assert await store.forget_dmarc_before("2026-05-10") == 2
    assert await store.dmarc_day("2026-05-09") == []
    assert len(await store.dmarc_day("2026-05-10")) == 1


async def test_a_report_is_kept_once(store: Store) -> None:
    report = Report("dmarc", "sent", "a.test", "mx.b.test", "2026-05-09.a.test", 1, 2, 3,
                    '{"messages": 4}', "<feedback/>")  # fmt: skip
    first = await store.add_report(report)
    assert first is not None
    assert await store.add_report(report) is None  # another node, or a second try
    received = Report("tlsrpt", "received", "example.org", "Google", "r1", 5, 6, 7, "{}", "{}")
    second = await store.add_report(received)
    listed = await store.list_reports()
    assert [r.id for r in listed] == [second, first]  # newest period first
    assert listed[0].content == ""  # listing leaves the reports themselves out
    assert [r.id for r in await store.list_reports(kind="dmarc")] == [first]
    assert [r.id for r in await store.list_reports(direction="received")] == [second]
    got = await store.get_report(first)
    assert got is not None and got.content == "<feedback/>" and got.summary == '{"messages": 4}'
    assert await store.get_report(9999) is None

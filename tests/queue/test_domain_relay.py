"""A smarthost for one domain's mail (``courrier domain relay``): mail from that domain goes
through the provider (STARTTLS, its certificate checked, AUTH), other mail straight to the MX."""

from __future__ import annotations

from pathlib import Path

from courrier import provisioning
from tests.queue.helpers import queue_empty, submit
from tests.queue.tlssetup import attempted, pair, queue_mail
from tests.store.helpers import make_message
from tests.support.dnsstub import DNSStub
from tests.support.pki import Authority
from tests.support.server import PASSWORD, inbox


def stub() -> DNSStub:
    return DNSStub(
        {
            "b.test MX": ["10 mx.b.test."],
            "mx.b.test A": ["127.0.0.3"],
            "smtp.provider.test A": ["127.0.0.3"],
        }
    )


async def test_domain_mail_goes_through_its_smarthost(tmp_path: Path) -> None:
    ca = Authority()
    # B plays both the recipient's MX and the provider: its certificate names both.
    async with pair(tmp_path, stub(), ca, ca.issue("mx.b.test", "smtp.provider.test")) as p:
        await provisioning.set_domain_relay(
            p.a.store,
            "example.org",
            f"smtp.provider.test:{p.b.port('submission')}",
            username="bob@example.org",  # B hosts example.org too
            password=PASSWORD,
        )
        await submit(p.a, ["carol@b.test"], make_message(21))  # from bob@example.org
        await queue_empty(p.a)
        # Mail from the null sender (not example.org's) goes to the MX as before.
        await queue_mail(p.a, "DIRECT1", 22)
        await queue_empty(p.a)
        relayed, direct = await inbox(p.b.store, "carol@b.test")
    assert relayed.endswith(make_message(21)) and direct.endswith(make_message(22))
    # Through B's submission port, logged in; the other straight to B's port 25, no login.
    assert b"with ESMTPSA" in relayed.split(b"\r\n\r\n")[0]
    assert b"with ESMTPS " in direct.split(b"\r\n\r\n")[0]


async def test_smarthost_certificate_is_checked(tmp_path: Path) -> None:
    ca = Authority()
    async with pair(tmp_path, stub(), ca, ca.issue("mx.b.test")) as p:  # not the relay's name
        await provisioning.set_domain_relay(
            p.a.store,
            "example.org",
            f"smtp.provider.test:{p.b.port('submission')}",
            username="bob@example.org",
            password=PASSWORD,
        )
        await submit(p.a, ["carol@b.test"], make_message(23))
        queued = await attempted(p.a)
        assert queued.recipients[0].state == "queued"
        assert "smtp.provider.test" in (queued.recipients[0].last_reply or "")
        assert await inbox(p.b.store, "carol@b.test") == []
        # Told not to check (a private relay), it goes through.
        await provisioning.set_domain_relay(
            p.a.store,
            "example.org",
            f"smtp.provider.test:{p.b.port('submission')}",
            verify=False,
            username="bob@example.org",
            password=PASSWORD,
        )
        await queue_empty(p.a)
        (received,) = await inbox(p.b.store, "carol@b.test")
    assert received.endswith(make_message(23))

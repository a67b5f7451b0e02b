"""Delivery status notifications: the bounce a sender gets back (RFC 3464, RFC 3462/6522).

:func:`compose` writes one ``multipart/report; report-type=delivery-status`` message: a text
part for people, the ``message/delivery-status`` part (RFC 3464 §2: per-message fields, then
one block per recipient with its Action, Status, Remote-MTA and Diagnostic-Code) and the
original, whole (``message/rfc822``) or its header only (``text/rfc822-headers``) as RET asked
(RFC 3461 §4.3). It is sent with the null reverse-path (RFC 5321 §4.5.5), so it can never
bounce back; :func:`wanted` says whether a recipient's NOTIFY asks for one (RFC 3461 §4.1).
"""

from __future__ import annotations

import email.utils
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from courrier.message.headers import split_header

__all__ = ["Failure", "compose", "wanted"]

Action = Literal["failed", "delayed"]


@dataclass(frozen=True, slots=True)
class Failure:
    """One recipient's line in the report."""

    recipient: str
    #: RFC 3463 status code, e.g. ``5.1.1``.
    status: str
    #: What the remote server said (``550 5.1.1 No such user``) or why we gave up.
    diagnostic: str
    #: The server that answered, when one did.
    remote_mta: str | None = None
    #: RFC 3461 ORCPT as ``addr-type;address``.
    original_recipient: str | None = None
    action: Action = "failed"


def wanted(notify: str | None, action: Action) -> bool:
    """RFC 3461 §4.1: without NOTIFY a failure is reported and a delay may be; NOTIFY lists
    what is (NEVER: nothing)."""
    if notify is None:
        return True
    words = {w.strip().upper() for w in notify.split(",")}
    return ("FAILURE" if action == "failed" else "DELAY") in words


def compose(
    *,
    reporting_mta: str,
    sender: str,
    original: bytes,
    failures: Sequence[Failure],
    arrival: float,
    envid: str | None = None,
    ret: str | None = None,
    now: float | None = None,
) -> bytes:
    """The report for ``sender`` about ``original`` (as it was queued)."""
    now = now if now is not None else arrival
    boundary = f"=_courrier_{secrets.token_hex(12)}"
    delayed = all(f.action == "delayed" for f in failures)
    subject = (
        "Delayed Mail (still being retried)" if delayed else "Undelivered Mail Returned to Sender"
    )
    header = [
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>",
        f"To: <{sender}>",
        f"Subject: {subject}",
        f"Date: {email.utils.formatdate(now, localtime=True)}",
        f"Message-ID: <{secrets.token_hex(12)}@{reporting_mta}>",
        "Auto-Submitted: auto-replied",  # RFC 3834 §5
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
    ]
    lines = "\r\n".join(f"  <{f.recipient}>: {f.diagnostic}" for f in failures)
    if delayed:
        text = (
            f"This is the mail system at {reporting_mta}.\r\n\r\n"
            "Your message could not be delivered yet to the recipients below. It is still\r\n"
            "being retried; you need not send it again.\r\n\r\n"
        )
    else:
        text = (
            f"This is the mail system at {reporting_mta}.\r\n\r\n"
            "Your message could not be delivered to the recipients below. This is a\r\n"
            "permanent error; it will not be retried.\r\n\r\n"
        )
    status = [f"Reporting-MTA: dns; {reporting_mta}"]
    if envid:
        status.append(f"Original-Envelope-Id: {envid}")
    status.append(f"Arrival-Date: {email.utils.formatdate(arrival, localtime=True)}")
    for failure in failures:
        status += [
            "",
            f"Final-Recipient: rfc822; {failure.recipient}",
            *(
                [f"Original-Recipient: {failure.original_recipient}"]
                if failure.original_recipient
                else []
            ),
            f"Action: {failure.action}",
            f"Status: {failure.status}",
            *([f"Remote-MTA: dns; {failure.remote_mta}"] if failure.remote_mta else []),
            f"Diagnostic-Code: smtp; {_one_line(failure.diagnostic)}",
            f"Last-Attempt-Date: {email.utils.formatdate(now, localtime=True)}",
        ]
    if (ret or "").upper() == "HDRS" or delayed:
        _, body_start = split_header(original, 0, len(original))
        returned = b"Content-Type: text/rfc822-headers\r\n\r\n" + original[:body_start]
    else:
        returned = b"Content-Type: message/rfc822\r\n\r\n" + original
    if not returned.endswith(b"\r\n"):
        returned += b"\r\n"
    parts = [
        "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text + lines + "\r\n",
        "Content-Type: message/delivery-status\r\n\r\n" + "\r\n".join(status) + "\r\n",
    ]
    out = "\r\n".join(header) + "\r\n\r\nThis is a MIME-encapsulated delivery report.\r\n"
    body = b"".join(f"\r\n--{boundary}\r\n".encode() + part.encode("utf-8") for part in parts)
    return (
        out.encode("utf-8")
        + body
        + f"\r\n--{boundary}\r\n".encode()
        + returned
        + f"\r\n--{boundary}--\r\n".encode()
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())

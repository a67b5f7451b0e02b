"""The Authentication-Results header field (RFC 8601) that tells the reader what we checked.

:func:`header` formats our results with ``authres`` (the field's library) under our
authserv-id, folded one method per line. :func:`strip_forged` removes, before delivery, every
Authentication-Results field that claims our authserv-id and so did not come from us
(RFC 8601 §5: a mail client trusts those, so a sender must not be able to plant one).
"""

from __future__ import annotations

from collections.abc import Sequence

import authres
import authres.arc
import authres.dmarc

from courrier.mailauth.arc import ARCResult
from courrier.mailauth.dkim import field_name, split
from courrier.mailauth.dkimverify import DKIMResult
from courrier.mailauth.dmarc import DMARCResult
from courrier.mailauth.spf import SPFResult

_NAME = "authentication-results"


def results(
    spf: SPFResult, dkim: Sequence[DKIMResult], dmarc: DMARCResult, arc: ARCResult
) -> list[authres.core.AuthenticationResult]:
    """One result per method, and per DKIM signature (RFC 8601 §2.7)."""
    found: list[authres.core.AuthenticationResult] = []
    if dkim:
        for d in dkim:
            comment = f"{d.key_bits}-bit key" if d.key_bits else None
            if d.reason:
                comment = f"{comment}; {d.reason}" if comment else d.reason
            found.append(
                authres.DKIMAuthenticationResult(
                    result=d.result,
                    result_comment=_comment(comment),
                    header_d=d.domain or None,
                    header_i=d.identity or None,
                    header_s=d.selector or None,
                    header_a=d.algorithm or None,
                )
            )
    else:
        found.append(authres.DKIMAuthenticationResult(result="none"))
    spf_kwargs = {"smtp_helo": spf.domain} if spf.identity == "helo" else {}
    found.append(
        authres.SPFAuthenticationResult(
            result=spf.result,
            result_comment=_comment(spf.explanation),
            smtp_mailfrom=spf.sender if spf.identity == "mailfrom" else None,
            **spf_kwargs,
        )
    )
    found.append(
        authres.dmarc.DMARCAuthenticationResult(
            result=dmarc.result,
            result_comment=_comment(_dmarc_comment(dmarc)),
            header_from=dmarc.from_domain or None,
            policy=dmarc.policy if dmarc.result != "none" else None,
        )
    )
    found.append(
        authres.arc.ARCAuthenticationResult(result=arc.result, result_comment=_comment(arc.reason))
    )
    return found


def _dmarc_comment(dmarc: DMARCResult) -> str:
    if dmarc.result in ("pass", "fail"):
        parts = [f"p={dmarc.policy}", f"dis={dmarc.disposition}"]
        parts += [f"{kind}: {comment}" for kind, comment in dmarc.reasons]
        return " ".join(parts)
    return dmarc.reason


def _comment(text: str | None) -> str | None:
    """A comment's text made safe (RFC 5322 §3.2.2: no unbalanced parentheses, no CR/LF)."""
    if not text:
        return None
    cleaned = " ".join(text.replace("(", "[").replace(")", "]").replace("\\", "/").split())
    return cleaned[:200] or None


def header(authserv_id: str, found: Sequence[authres.core.AuthenticationResult]) -> str:
    """The whole field, ``Authentication-Results: id;`` then one result per folded line."""
    parts = [str(r) for r in found]
    return f"Authentication-Results: {authserv_id};\r\n\t" + ";\r\n\t".join(parts) + "\r\n"


def payload(authserv_id: str, found: Sequence[authres.core.AuthenticationResult]) -> str:
    """The field's value on one line, as ARC-Authentication-Results carries it."""
    return f"{authserv_id}; " + "; ".join(str(r) for r in found)


def strip_forged(message: bytes, authserv_id: str) -> bytes:
    """``message`` without the Authentication-Results fields that name ``authserv_id``."""
    if b"authentication-results" not in message.partition(b"\r\n\r\n")[0].lower():
        return message
    fields, body = split(message)
    ours = authserv_id.lower()
    kept = [f for f in fields if not (field_name(f) == _NAME and _claims(f, ours))]
    if len(kept) == len(fields):
        return message
    return b"".join(f + b"\r\n" for f in kept) + b"\r\n" + body


def _claims(field: bytes, authserv_id: str) -> bool:
    """RFC 8601 §2.2: the authserv-id is the first token of the value (comments aside)."""
    value = field.split(b":", 1)[1].decode("utf-8", "replace")
    value = " ".join(value.split())
    while value.startswith("("):  # a leading comment
        value = value.partition(")")[2].lstrip()
    token = value.split(";", 1)[0].split()[0] if value.split(";", 1)[0].split() else ""
    return token.lower().rstrip(".") == authserv_id.rstrip(".")

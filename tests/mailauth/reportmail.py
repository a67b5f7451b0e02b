"""Report messages as the large providers send them, built from the reports in
tests/data/reports/: Google's DMARC aggregate report (a zip, application/zip), Microsoft's (a
gzip, application/gzip, ``.xml.gz``) and Google's SMTP TLS report (RFC 8460 §5.3: a
multipart/report of report-type tlsrpt with an application/tlsrpt+gzip part)."""

from __future__ import annotations

import base64
import gzip
import io
import zipfile
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "reports"

GOOGLE_DMARC = DATA / "google-dmarc.xml"
MICROSOFT_DMARC = DATA / "microsoft-dmarc.xml"
GOOGLE_TLSRPT = DATA / "google-tlsrpt.json"


def zipped(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return out.getvalue()


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=1778371500)


def attachment(content_type: str, filename: str, data: bytes) -> bytes:
    """A base64 attachment part (header and body), lines of 76 characters (RFC 2045 §6.8)."""
    encoded = base64.b64encode(data).decode("ascii")
    lines = [encoded[i : i + 76] for i in range(0, len(encoded), 76)]
    return (
        f'Content-Type: {content_type}; name="{filename}"\r\n'
        f'Content-Disposition: attachment; filename="{filename}"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n" + "\r\n".join(lines) + "\r\n"
    ).encode("ascii")


def text_part(text: str) -> bytes:
    return (
        "Content-Type: text/plain; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: 7bit\r\n\r\n" + text + "\r\n"
    ).encode("utf-8")


def message(
    headers: dict[str, str],
    parts: list[bytes],
    subtype: str = "mixed",
    boundary: str = "000000000000a1b2c3d4e5f60718",
) -> bytes:
    """A multipart message of ``parts`` with ``headers`` on top."""
    params = f'boundary="{boundary}"'
    if subtype == "report":
        params = f'report-type="tlsrpt"; {params}'
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head += f"MIME-Version: 1.0\r\nContent-Type: multipart/{subtype}; {params}\r\n\r\n"
    body = b"".join(f"--{boundary}\r\n".encode() + part for part in parts)
    return head.encode("utf-8") + body + f"--{boundary}--\r\n".encode()


def google_dmarc(xml: bytes | None = None) -> bytes:
    """Google's daily aggregate report for example.org (12 messages from three sources)."""
    xml = GOOGLE_DMARC.read_bytes() if xml is None else xml
    name = "google.com!example.org!1778284800!1778371199"
    return message(
        {
            "Return-Path": "<noreply-dmarc-support@google.com>",
            "Date": "Sat, 09 May 2026 16:59:59 -0700",
            "From": "noreply-dmarc-support@google.com",
            "To": "dmarc@example.org",
            "Message-ID": "<5717107811868587391@google.com>",
            "Subject": "Report domain: example.org Submitter: google.com "
            "Report-ID: 5717107811868587391",
        },
        [attachment("application/zip", f"{name}.zip", zipped(f"{name}.xml", xml))],
    )


def microsoft_dmarc(content_type: str = "application/gzip") -> bytes:
    """Microsoft's (Enterprise Outlook) aggregate report for news.example.org, a gzip file."""
    name = "enterprise.protection.outlook.com!news.example.org!1778198400!1778284800.xml.gz"
    return message(
        {
            "From": "DMARC Aggregate Report <dmarcreport@microsoft.com>",
            "To": "dmarc@example.org",
            "Date": "Sat, 9 May 2026 03:41:12 +0000",
            "Message-ID": "<a7b2e1d3c4f5@mail.protection.outlook.com>",
            "Subject": "Report Domain: news.example.org Submitter: "
            "enterprise.protection.outlook.com Report-ID: <b4f3c2a1d0e94c6f8a7b2e1d3c4f5a6b>",
        },
        [
            text_part("This is a DMARC aggregate report from Microsoft Corporation."),
            attachment(content_type, name, gzipped(MICROSOFT_DMARC.read_bytes())),
        ],
    )


def google_tlsrpt(report: bytes | None = None) -> bytes:
    """Google's daily SMTP TLS report for example.org (1000 sessions, 3 failed)."""
    report = GOOGLE_TLSRPT.read_bytes() if report is None else report
    name = "google.com!example.org!1778284800!1778371199!001.json.gz"
    return message(
        {
            "From": "noreply-smtp-tls-reporting@google.com",
            "To": "tlsrpt@example.org",
            "Date": "Sun, 10 May 2026 01:04:31 -0700",
            "Message-ID": "<2026.05.09T00.00.00Z+example.org@google.com>",
            # RFC 8460 §5.3: the subject and the two header fields it defines.
            "Subject": "Report Domain: example.org Submitter: google.com "
            "Report-ID: <2026.05.09T00.00.00Z+example.org@google.com>",
            "TLS-Report-Domain": "example.org",
            "TLS-Report-Submitter": "google.com",
        },
        [
            text_part("This is an aggregate TLS report from google.com"),
            attachment("application/tlsrpt+gzip", name, gzipped(report)),
        ],
        subtype="report",
    )

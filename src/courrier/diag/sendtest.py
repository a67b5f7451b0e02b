"""``courrier send-test``'s work: a test message composed, handed to a server over SMTP, and the
conversation shown as it happens, the way swaks shows it.

Where the message goes: the given server, or the recipient domain's mail hosts (RFC 5321 §5.1:
the MX hosts by preference, else the domain's own address; :func:`courrier.queue.routing.route`),
each address tried until one greets. How: implicit TLS (RFC 8314), STARTTLS required (RFC
3207), or STARTTLS when the server offers it, its certificate unchecked (opportunistic, RFC
7435); AUTH PLAIN or LOGIN (RFC 4954). The conversation goes through the queue's SMTP client
(:mod:`courrier.smtp.client`) and its transcript hook. The marks are swaks's: ``<-`` the
server, ``->`` us, ``~`` in place of ``-`` once TLS is on, ``===`` what happened, ``***`` what
went wrong. Credentials are never shown.
"""

from __future__ import annotations

import email.policy
import email.utils
import ssl
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Final, Literal

import dns.asyncresolver
from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from courrier import __version__
from courrier.queue.routing import route
from courrier.queue.tlspolicy import opportunistic, verifying
from courrier.smtp.client import SMTPClient, SMTPClientError
from courrier.smtp.client_proto import TIMEOUTS, Envelope, Recipient

__all__ = ["Options", "Recorder", "Result", "Target", "compose", "mail_hosts", "send_test"]

#: "tls": implicit TLS; "starttls": STARTTLS or nothing; "optional": STARTTLS when offered.
Security = Literal["tls", "starttls", "optional"]
#: Prints one line of the transcript.
Emit = Callable[[str], None]

#: Lines of the message body shown in the transcript after its header; the rest is counted.
SHOWN_BODY_LINES: Final = 10


@dataclass(frozen=True, slots=True)
class Target:
    """One place to try: the name its certificate must carry, what to connect to, the port."""

    name: str
    address: str
    port: int


@dataclass(frozen=True, slots=True)
class Options:
    sender: str
    recipient: str
    helo: str
    security: Security = "optional"
    #: Check the certificate's chain and name (with "tls" and "starttls").
    verify: bool = True
    #: The CAs to trust instead of the system's (PEM).
    ca_file: str = ""
    #: AUTH as this user when not empty.
    username: str = ""
    password: str = ""
    #: Seconds for the connection and for each reply.
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class Result:
    #: The server took the message (2xx after its content).
    accepted: bool
    #: Why not, in one sentence: the server's refusal or what failed.
    problem: str = ""


def compose(
    sender: str,
    recipient: str,
    *,
    hostname: str,
    subject: str = "",
    body: str = "",
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """The test message (RFC 5322): Date, From, To, Subject, Message-ID and a body saying what
    it is; ``headers`` replace ours of the same name, or are added."""
    now = email.utils.formatdate(localtime=True)
    message = EmailMessage(policy=email.policy.SMTP)
    message["Date"] = now
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject or f"courrier send-test {now}"
    message["Message-ID"] = email.utils.make_msgid("send-test", domain=hostname)
    message["X-Mailer"] = f"courrier {__version__} send-test"
    ours = {name.lower() for name in message}
    for name, value in headers:
        if name.lower() in ours:
            message.replace_header(name, value)
            ours.discard(name.lower())  # a second header of that name is added
        else:
            message[name] = value
    message.set_content(
        body
        or f"This is a test message sent by courrier send-test\nfrom {hostname}\nto {recipient}\n"
        f"on {now}.\nIt needs no answer.\n"
    )
    return message.as_bytes()


async def mail_hosts(domain: str, resolver: dns.asyncresolver.Resolver, port: int) -> list[Target]:
    """The addresses of ``domain``'s mail hosts, in the order a sender tries them; the
    lookup's exceptions (:class:`~courrier.queue.routing.NoMail`,
    :class:`~courrier.queue.routing.LookupFailed`) are the caller's."""
    hosts = await route(domain, resolver)
    # A domain literal ([192.0.2.1]) names no host: its certificate is checked for the address.
    return [
        Target(address if host.name.startswith("[") else host.name, address, port)
        for host in hosts
        for address in host.addresses
    ]


async def send_test(
    targets: Sequence[Target], options: Options, content: bytes, emit: Emit
) -> Result:
    """Hand ``content`` to the first of ``targets`` that greets; the transcript goes to
    ``emit`` line by line as the conversation goes."""
    context = (
        verifying(options.ca_file)
        if options.verify and options.security != "optional"
        else opportunistic()
    )
    problem = "no server to try"
    for target in targets:
        where = f"[{target.address}]" if ":" in target.address else target.address
        if target.name != target.address:
            where = f"{target.name} [{target.address}]"
        emit(f"=== Trying {where}:{target.port}...")
        recorder = Recorder(emit, target, checked=context.check_hostname)
        try:
            client = await SMTPClient.connect(
                target.address,
                target.port,
                local_name=options.helo,
                tls=context if options.security == "tls" else None,
                server_hostname=target.name,
                connect_timeout=options.timeout,
                timeouts=dict.fromkeys(TIMEOUTS, options.timeout),
                transcript=recorder,
            )
        except SMTPClientError as exc:
            problem = _problem(exc)
            emit(f"*** {problem}")
            if exc.reply is not None:  # it greeted with a refusal: that is its answer
                return Result(False, problem)
            continue  # RFC 5321 §5.1: a host that cannot be reached, the next one
        return await _converse(client, target, options, context, content, emit)
    return Result(False, problem)


async def _converse(
    client: SMTPClient,
    target: Target,
    options: Options,
    context: ssl.SSLContext,
    content: bytes,
    emit: Emit,
) -> Result:
    recipient = Recipient(options.recipient)
    envelope = Envelope(
        options.sender,
        (recipient,),
        body="8BITMIME" if any(b > 127 for b in content) else "7BIT",
        smtputf8=not (options.sender + options.recipient).isascii(),
    )
    try:
        await client.hello()
        if options.security != "tls":
            if "STARTTLS" in client.extensions:
                await client.starttls(context, server_hostname=target.name)
            elif options.security == "starttls":
                raise SMTPClientError("the server does not offer STARTTLS")
        if options.username:
            await client.authenticate(options.username, options.password)
        (outcome,) = await client.send(envelope, content)
    except SMTPClientError as exc:
        emit(f"*** {_problem(exc)}")
        return Result(False, _problem(exc))
    finally:
        await client.quit()
        emit("=== Connection closed with remote host.")
    if outcome.delivered:
        return Result(True)
    return Result(False, f"the server did not take the message: {outcome.reply}")


def _problem(exc: SMTPClientError) -> str:
    if isinstance(exc.__cause__, ssl.SSLCertVerificationError):
        return f"{exc} (a private CA: give --ca-file; not checking at all: --insecure)"
    return str(exc)


class Recorder:
    """The transcript hook: each line the client writes or reads, with its mark."""

    def __init__(self, emit: Emit, target: Target, *, checked: bool) -> None:
        self.emit = emit
        self.target = target
        #: The certificate's chain and name are checked by the handshake.
        self.checked = checked
        self.connected = False
        self.tls_shown = False
        #: Inside an AUTH exchange (RFC 4954 §4: 334 asks for more): our lines are secrets.
        self.secret = False
        #: The server said 354: our next write is the message (RFC 5321 §4.1.1.4).
        self.content = False

    def __call__(self, client: SMTPClient, sent: bool, data: bytes) -> None:
        if not self.connected:
            self.connected = True
            self.emit(f"=== Connected to {self.target.address}.")
        if client.tls and not self.tls_shown:
            self.tls_shown = True
            self._tls(client)
        if sent:
            self._sent(data, " ~> " if client.tls else " -> ")
        else:
            self._received(data, "<~  " if client.tls else "<-  ")

    def _tls(self, client: SMTPClient) -> None:
        version, cipher = client.tls_session() or ("", "")
        self.emit(f"=== TLS started with cipher {version}:{cipher}")
        chain = client.peer_chain()
        if not chain:
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                leaf = x509.load_der_x509_certificate(chain[0])
        except ValueError as exc:
            self.emit(f"=== TLS certificate unreadable: {exc}")
            return
        self.emit(f"=== TLS certificate subject {leaf.subject.rfc4514_string()}")
        self.emit(f"=== TLS certificate issuer {leaf.issuer.rfc4514_string()}")
        how = f"checked for {self.target.name}" if self.checked else "not checked"
        self.emit(f"=== TLS certificate valid until {leaf.not_valid_after_utc:%Y-%m-%d}, {how}")

    def _received(self, data: bytes, mark: str) -> None:
        lines = data.decode("utf-8", "replace").splitlines()
        for line in lines:
            self.emit(mark + line)
        code = lines[-1][:3] if lines else ""
        self.secret = self.secret and code == "334"
        self.content = code == "354"

    def _sent(self, data: bytes, mark: str) -> None:
        if self.content:
            self.content = False
            self._message(data.removesuffix(b".\r\n"), mark)
            self.emit(mark + ".")
            return
        while data:
            raw, _, data = data.partition(b"\r\n")
            line = raw.decode("utf-8", "replace")
            verb, _, rest = line.partition(" ")
            if verb.upper() == "BDAT":  # RFC 3030 §2: the chunk follows its command
                self.emit(mark + line)
                size = int(rest.split(" ", 1)[0])
                self._message(data[:size], mark)
                data = data[size:]
                continue
            if self.secret:
                line = "***"
            elif verb.upper() == "AUTH":
                self.secret = True
                mechanism, _, initial = rest.partition(" ")
                line = f"{verb} {mechanism} ***" if initial else line
            self.emit(mark + line)

    def _message(self, content: bytes, mark: str) -> None:
        """The header and the first lines of the body; the rest counted."""
        lines = content.decode("utf-8", "replace").split("\r\n")
        if lines[-1] == "":
            lines.pop()
        end = lines.index("") + 1 if "" in lines else len(lines)
        shown = lines[: end + SHOWN_BODY_LINES]
        for line in shown:
            self.emit(mark + line)
        if len(lines) > len(shown):
            self.emit(f"=== {len(lines) - len(shown)} more lines of the message not shown")

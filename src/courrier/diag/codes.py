"""What SMTP reply codes mean: the basic codes of RFC 5321 §4.2 and the enhanced status codes of
RFC 3463 with every later entry of the IANA "SMTP Enhanced Status Codes" registry, each with
its likely cause and what to do; and the texts the big mailbox providers put in their bounces.

Data only; :mod:`courrier.diag.explain` finds codes in a bounce line and puts these together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["BASIC", "CLASSES", "DETAILS", "PROVIDERS", "SUBJECTS", "Meaning", "ProviderText"]


@dataclass(frozen=True, slots=True)
class Meaning:
    #: The registry's (or RFC 5321's) name for the code.
    name: str
    #: What it usually means in practice, and what to do about it.
    cause: str = ""
    action: str = ""
    reference: str = "RFC 3463"


#: RFC 5321 §4.2.1: the first digit.
BASIC_CLASSES: Final = {
    "2": "positive completion: the server did what was asked",
    "3": "positive intermediate: the server waits for more (the message text, an AUTH step)",
    "4": "transient negative completion: not now — the sender keeps the message and retries",
    "5": "permanent negative completion: refused — the sender must not retry; mail bounces",
}

#: RFC 5321 §4.2.2-§4.2.3 (and RFC 4954, RFC 7504, RFC 3030 for the codes they add).
BASIC: Final[dict[int, Meaning]] = {
    211: Meaning("System status, or system help reply", reference="RFC 5321 §4.2.2"),
    214: Meaning("Help message", reference="RFC 5321 §4.2.2"),
    220: Meaning(
        "<domain> Service ready", "The greeting of a server ready for mail.", "", "RFC 5321 §4.2.2"
    ),
    221: Meaning(
        "<domain> Service closing transmission channel",
        "The answer to QUIT.",
        "",
        "RFC 5321 §4.2.2",
    ),
    235: Meaning("Authentication succeeded", "", "", "RFC 4954 §6"),
    250: Meaning(
        "Requested mail action okay, completed",
        "After the message text: the server has taken responsibility for the message.",
        "",
        "RFC 5321 §4.2.2",
    ),
    251: Meaning("User not local; will forward to <forward-path>", "", "", "RFC 5321 §4.2.2"),
    252: Meaning(
        "Cannot VRFY user, but will accept message and attempt delivery", "", "", "RFC 5321 §4.2.2"
    ),
    334: Meaning(
        "Server challenge (AUTH)", "The server waits for the next step of AUTH.", "", "RFC 4954 §4"
    ),
    354: Meaning("Start mail input; end with <CRLF>.<CRLF>", "", "", "RFC 5321 §4.2.2"),
    421: Meaning(
        "<domain> Service not available, closing transmission channel",
        "The server is overloaded, shutting down, or limits how many connections or "
        "messages it takes from your address (rate limiting, greylisting).",
        "Nothing at once: your server retries. If it lasts, send more slowly and "
        "check your address's reputation.",
        "RFC 5321 §4.2.2",
    ),
    450: Meaning(
        "Requested mail action not taken: mailbox unavailable (e.g. busy)",
        "Often greylisting, or a temporary block of your address.",
        "Let your server retry; greylisting passes on the second try after minutes.",
        "RFC 5321 §4.2.2",
    ),
    451: Meaning(
        "Requested action aborted: local error in processing",
        "A temporary problem on the receiving side (DNS lookups failing, a filter "
        "down), or greylisting.",
        "Let your server retry.",
        "RFC 5321 §4.2.2",
    ),
    452: Meaning(
        "Requested action not taken: insufficient system storage",
        "The server's disk is full, or too many recipients in one transaction.",
        "Your server retries (and sends the remaining recipients in another transaction).",
        "RFC 5321 §4.2.2",
    ),
    455: Meaning("Server unable to accommodate parameters", "", "Retry later.", "RFC 5321 §4.2.2"),
    500: Meaning(
        "Syntax error, command unrecognized (or command line too long)",
        "The client sent something the server does not understand.",
        "Check the client software; an unexpected firewall or proxy can garble commands.",
        "RFC 5321 §4.2.2",
    ),
    501: Meaning(
        "Syntax error in parameters or arguments",
        "Often a malformed address in MAIL FROM or RCPT TO.",
        "Check the address's form (no spaces, angle brackets around it).",
        "RFC 5321 §4.2.2",
    ),
    502: Meaning("Command not implemented", "", "", "RFC 5321 §4.2.2"),
    503: Meaning(
        "Bad sequence of commands",
        "E.g. RCPT before MAIL, DATA without recipients, or AUTH required first.",
        "Authenticate before sending if the server asks for it.",
        "RFC 5321 §4.2.2",
    ),
    504: Meaning("Command parameter not implemented", "", "", "RFC 5321 §4.2.2"),
    521: Meaning(
        "Host does not accept mail",
        "The domain or host takes no mail at all.",
        "Check the recipient address.",
        "RFC 7504",
    ),
    530: Meaning(
        "Authentication required",
        "The server requires AUTH before MAIL.",
        "Configure the mail client to log in (SMTP authentication).",
        "RFC 4954 §6",
    ),
    534: Meaning(
        "Authentication mechanism is too weak", "", "Use a stronger mechanism.", "RFC 4954 §6"
    ),
    535: Meaning(
        "Authentication credentials invalid",
        "Wrong user name or password, or the account may not send.",
        "Check the user name (often the full address) and the password.",
        "RFC 4954 §6",
    ),
    538: Meaning(
        "Encryption required for requested authentication mechanism",
        "",
        "Use STARTTLS (or port 465) before AUTH.",
        "RFC 4954 §6",
    ),
    550: Meaning(
        "Requested action not taken: mailbox unavailable (not found, no access, "
        "or refused by policy)",
        "The address does not exist, or the server refuses the message by policy "
        "(spam, authentication, reputation): the enhanced code tells which.",
        "Read the enhanced code and the text; do not resend unchanged.",
        "RFC 5321 §4.2.2",
    ),
    551: Meaning("User not local; please try <forward-path>", "", "", "RFC 5321 §4.2.2"),
    552: Meaning(
        "Requested mail action aborted: exceeded storage allocation",
        "The mailbox is full, or the message is larger than the server accepts.",
        "Send a smaller message, or ask the recipient to make room.",
        "RFC 5321 §4.2.2",
    ),
    553: Meaning(
        "Requested action not taken: mailbox name not allowed",
        "The address's syntax is refused, or the sender address may not be used "
        "(not yours after login).",
        "Check the addresses.",
        "RFC 5321 §4.2.2",
    ),
    554: Meaning(
        "Transaction failed (or, as a greeting: no SMTP service here)",
        "Refused by policy, often for the whole message or connection (block list, spam content).",
        "Read the text; check your address on block lists.",
        "RFC 5321 §4.2.2",
    ),
    555: Meaning(
        "MAIL FROM/RCPT TO parameters not recognized or not implemented", "", "", "RFC 5321 §4.2.2"
    ),
    556: Meaning(
        "Domain does not accept mail",
        "The recipient domain has a null MX (RFC 7505): it takes no mail.",
        "Check the recipient address.",
        "RFC 7504",
    ),
}

#: RFC 3463 §2: the class digit of an enhanced code.
CLASSES: Final = {
    "2": "Success",
    "4": "Persistent Transient Failure: the message may be delivered if sent again later",
    "5": "Permanent Failure: sending the same message again will not work",
}

#: RFC 3463 §3: the subject digit.
SUBJECTS: Final = {
    "0": "Other or Undefined Status",
    "1": "Addressing Status",
    "2": "Mailbox Status",
    "3": "Mail System Status",
    "4": "Network and Routing Status",
    "5": "Mail Delivery Protocol Status",
    "6": "Message Content or Media Status",
    "7": "Security or Policy Status",
}


def _m(name: str, cause: str = "", action: str = "", reference: str = "RFC 3463") -> Meaning:
    return Meaning(name, cause, action, reference)


#: The IANA registry's subject.detail entries, with causes and what to do.
DETAILS: Final[dict[str, Meaning]] = {
    "0.0": _m("Other undefined Status", "The server gave no detail.", "Read the text."),
    "1.0": _m("Other address status", "Something about an address.", "Check the addresses."),
    "1.1": _m(
        "Bad destination mailbox address",
        "The recipient does not exist at that domain (a typo, a deleted account).",
        "Check the spelling of the address; ask the recipient for a working one.",
    ),
    "1.2": _m(
        "Bad destination system address",
        "The recipient's domain does not exist or takes no mail.",
        "Check the domain part of the address.",
    ),
    "1.3": _m(
        "Bad destination mailbox address syntax",
        "The address is malformed.",
        "Correct the address.",
    ),
    "1.4": _m("Destination mailbox address ambiguous", "", "Use a more precise address."),
    "1.5": _m("Destination address valid", "The recipient was accepted."),
    "1.6": _m(
        "Destination mailbox has moved, No forwarding address",
        "The person left; the address is closed.",
        "Find their new address.",
    ),
    "1.7": _m(
        "Bad sender's mailbox address syntax",
        "Your sender address is malformed.",
        "Correct the From / envelope sender address.",
    ),
    "1.8": _m(
        "Bad sender's system address",
        "Your sender domain does not resolve (no MX or A) to the receiver.",
        "Publish MX (and A) records for your sender domain.",
    ),
    "1.9": _m(
        "Message relayed to non-compliant mailer",
        "The message went on to a system that cannot send delivery reports.",
        "",
        "RFC 3886",
    ),
    "1.10": _m(
        "Recipient address has null MX",
        "The recipient domain publishes a null MX (RFC 7505): it takes no mail.",
        "Check the recipient address.",
        "RFC 7505",
    ),
    "2.0": _m("Other or undefined mailbox status", "", "Retry later or contact the recipient."),
    "2.1": _m(
        "Mailbox disabled, not accepting messages",
        "The account is suspended or closed.",
        "Contact the recipient another way.",
    ),
    "2.2": _m(
        "Mailbox full",
        "The recipient is over quota.",
        "Try later, or tell the recipient another way.",
    ),
    "2.3": _m(
        "Message length exceeds administrative limit",
        "The message is too large.",
        "Send smaller attachments, or a link.",
    ),
    "2.4": _m("Mailing list expansion problem", "", "Tell the list's owner."),
    "3.0": _m("Other or undefined mail system status", "", "Retry later."),
    "3.1": _m("Mail system full", "The receiving server is out of disk.", "Retry later."),
    "3.2": _m(
        "System not accepting network messages",
        "The server is shutting down or refuses mail for now.",
        "Retry later.",
    ),
    "3.3": _m(
        "System not capable of selected features",
        "The server lacks an extension the message needs (8BITMIME, SMTPUTF8…).",
        "",
    ),
    "3.4": _m(
        "Message too big for system",
        "Larger than the server's size limit.",
        "Send a smaller message.",
    ),
    "3.5": _m(
        "System incorrectly configured",
        "A set-up error on the receiving side.",
        "Tell the recipient's postmaster.",
    ),
    "3.6": _m("Requested priority was changed", "", "", "RFC 6710"),
    "4.0": _m("Other or undefined network or routing status", "", "Retry later."),
    "4.1": _m(
        "No answer from host",
        "The receiving server does not answer.",
        "Your server retries; if it lasts, the domain's MX is down.",
    ),
    "4.2": _m(
        "Bad connection", "The connection broke during the transaction.", "Your server retries."
    ),
    "4.3": _m(
        "Directory server failure",
        "Often a DNS failure looking up the domain.",
        "Check the domain's DNS; your server retries.",
    ),
    "4.4": _m(
        "Unable to route",
        "No MX or address found for the domain, or none reachable.",
        "Check the recipient domain's MX records.",
    ),
    "4.5": _m("Mail system congestion", "", "Retry later."),
    "4.6": _m(
        "Routing loop detected",
        "Too many Received hops: mail loops between servers.",
        "Check forwarding and MX set-up on both sides.",
    ),
    "4.7": _m(
        "Delivery time expired",
        "Your server gave up after retrying for days.",
        "Find out why the destination refused or did not answer; then resend.",
    ),
    "5.0": _m("Other or undefined protocol status", "", ""),
    "5.1": _m("Invalid command", "", "Check the client software."),
    "5.2": _m("Syntax error", "", "Check the client software."),
    "5.3": _m(
        "Too many recipients",
        "More recipients than the server takes at once.",
        "Send to fewer recipients per message.",
    ),
    "5.4": _m("Invalid command arguments", "", "Check the client software."),
    "5.5": _m("Wrong protocol version", "", ""),
    "5.6": _m("Authentication Exchange line is too long", "", "", "RFC 4954"),
    "6.0": _m("Other or undefined media error", "", ""),
    "6.1": _m("Media not supported", "", ""),
    "6.2": _m("Conversion required and prohibited", "", ""),
    "6.3": _m(
        "Conversion required but not supported",
        "The message needs 8BITMIME or SMTPUTF8, which the next server lacks.",
        "",
    ),
    "6.4": _m("Conversion with loss performed", "", ""),
    "6.5": _m("Conversion Failed", "", ""),
    "6.6": _m("Message content not available", "", "", "RFC 4468"),
    "6.7": _m(
        "Non-ASCII addresses not permitted for that sender/recipient",
        "An internationalized address reached a server without SMTPUTF8.",
        "Use an ASCII address for this recipient.",
        "RFC 6531",
    ),
    "6.8": _m(
        "UTF-8 string reply is required, but not permitted by the SMTP client", "", "", "RFC 6531"
    ),
    "6.9": _m(
        "UTF-8 header message cannot be transferred to one or more recipients, so the "
        "message must be rejected",
        "",
        "",
        "RFC 6531",
    ),
    "6.10": _m(
        "UTF-8 string reply is required, but not permitted by the SMTP client "
        "(duplicate of X.6.8, deprecated)",
        "",
        "",
        "RFC 6531",
    ),
    "7.0": _m(
        "Other or undefined security status",
        "Refused for security or policy reasons (often reputation).",
        "Read the text; check block lists and authentication.",
    ),
    "7.1": _m(
        "Delivery not authorized, message refused",
        "Refused by policy: relaying denied (you are not allowed to send through "
        "this server), your address or domain is blocked, or the message failed "
        "DMARC/spam checks.",
        "If you are sending through your own server, log in first (AUTH); otherwise "
        "check your address on block lists and your SPF/DKIM/DMARC.",
    ),
    "7.2": _m("Mailing list expansion prohibited", "", ""),
    "7.3": _m("Security conversion required but not possible", "", ""),
    "7.4": _m("Security features not supported", "", ""),
    "7.5": _m("Cryptographic failure", "", ""),
    "7.6": _m("Cryptographic algorithm not supported", "", ""),
    "7.7": _m("Message integrity failure", "", ""),
    "7.8": _m(
        "Authentication credentials invalid",
        "Wrong user name or password.",
        "Check the credentials.",
        "RFC 4954",
    ),
    "7.9": _m("Authentication mechanism is too weak", "", "Use a stronger mechanism.", "RFC 4954"),
    "7.10": _m(
        "Encryption Needed",
        "The server requires TLS for this.",
        "Use STARTTLS or port 465.",
        "RFC 5248",
    ),
    "7.11": _m(
        "Encryption required for requested authentication mechanism",
        "",
        "Use STARTTLS before AUTH.",
        "RFC 4954",
    ),
    "7.12": _m(
        "A password transition is needed", "", "Log in once with the new password.", "RFC 4954"
    ),
    "7.13": _m("User Account Disabled", "", "Contact the administrator.", "RFC 5248"),
    "7.14": _m("Trust relationship required", "", "", "RFC 5248"),
    "7.15": _m("Priority Level is too low", "", "", "RFC 6710"),
    "7.16": _m("Message is too big for the specified priority", "", "", "RFC 6710"),
    "7.17": _m(
        "Mailbox owner has changed",
        "The address now belongs to someone else.",
        "Remove the address from your list.",
        "RFC 7293",
    ),
    "7.18": _m("Domain owner has changed", "", "Remove the address from your list.", "RFC 7293"),
    "7.19": _m("RRVS test cannot be completed", "", "", "RFC 7293"),
    "7.20": _m(
        "No passing DKIM signature found",
        "The receiver requires a valid DKIM signature and found none.",
        "Sign your mail with DKIM and publish the key.",
        "RFC 7372",
    ),
    "7.21": _m(
        "No acceptable DKIM signature found",
        "Signatures were there but not acceptable (weak key, wrong domain).",
        "Sign with a 2048-bit key in your From domain.",
        "RFC 7372",
    ),
    "7.22": _m(
        "No valid author-matched DKIM signature found",
        "No valid signature whose d= matches the From domain.",
        "Sign with your From domain (DKIM alignment).",
        "RFC 7372",
    ),
    "7.23": _m(
        "SPF validation failed",
        "The sending server is not listed in the sender domain's SPF record.",
        "Add the server to the SPF record (ip4:, include:).",
        "RFC 7372",
    ),
    "7.24": _m(
        "SPF validation error",
        "The SPF record could not be evaluated (syntax error, over 10 lookups, DNS errors).",
        "Run courrier check on your domain and fix the SPF record.",
        "RFC 7372",
    ),
    "7.25": _m(
        "Reverse DNS validation failed",
        "The sending address has no PTR, or the PTR does not lead back to it.",
        "Ask your provider to set the PTR of the address to the server's name.",
        "RFC 7372",
    ),
    "7.26": _m(
        "Multiple authentication checks failed",
        "Both SPF and DKIM failed (Gmail uses it for unauthenticated mail).",
        "Publish SPF, sign with DKIM in your From domain, publish DMARC.",
        "RFC 7372",
    ),
    "7.27": _m(
        "Sender address has null MX",
        "Your sender domain says it takes no mail, so replies cannot reach it.",
        "Use a sender domain that receives mail.",
        "RFC 7505",
    ),
    "7.28": _m(
        "Mail flood detected",
        "Too much mail, too fast, from your address or domain.",
        "Slow down; look for a compromised account sending spam.",
        "draft-levine-mailbomb-header",
    ),
    "7.29": _m(
        "ARC validation failure",
        "The ARC chain of a forwarded message is broken.",
        "Tell the forwarder (mailing list) operator.",
        "RFC 8617",
    ),
    "7.30": _m(
        "REQUIRETLS support required",
        "The message asks for REQUIRETLS and the next server does not offer it.",
        "Send without REQUIRETLS, or to a server that supports it.",
        "RFC 8689",
    ),
}


@dataclass(frozen=True, slots=True)
class ProviderText:
    provider: str
    pattern: re.Pattern[str]
    meaning: str
    action: str


def _p(provider: str, pattern: str, meaning: str, action: str) -> ProviderText:
    return ProviderText(provider, re.compile(pattern, re.IGNORECASE), meaning, action)


#: Texts of the big providers' bounces (their help pages name them), most specific first.
PROVIDERS: Final = (
    _p(
        "Gmail",
        r"this mail is unauthenticated",
        "Gmail found neither a passing SPF nor a passing DKIM for your domain.",
        "Publish SPF, sign with DKIM, publish DMARC (Gmail requires them since 2024).",
    ),
    _p(
        "Gmail",
        r"sender does not pass SPF|not pass SPF checks",
        "The sending address is not allowed by your domain's SPF record.",
        "Add the sending server to SPF.",
    ),
    _p(
        "Gmail",
        r"does not have a PTR record|PTR record setup",
        "Gmail requires a PTR (reverse DNS) for the sending address.",
        "Ask your provider to set the PTR of your sending address.",
    ),
    _p(
        "Gmail",
        r"unsolicited mail originating from your IP|very low reputation|"
        r"likely unsolicited mail",
        "Gmail considers your address or domain a spam source.",
        "Check Google Postmaster Tools; authenticate your mail; send only wanted mail.",
    ),
    _p(
        "Gmail",
        r"receiving mail at a rate|4\.2\.1.*rate",
        "The recipient receives too much mail too fast (Gmail rate limit).",
        "Nothing: your server retries later.",
    ),
    _p(
        "Gmail",
        r"The email account that you tried to reach does not exist",
        "The Gmail address does not exist.",
        "Check the spelling of the address.",
    ),
    _p(
        "Gmail",
        r"inbox is out of storage|OverQuota",
        "The Gmail recipient's storage is full.",
        "Tell them another way; try later.",
    ),
    _p(
        "Outlook",
        r"5\.7\.6[0-4]\d|banned sending IP|Access denied.*banned",
        "Microsoft blocks your sending address (a 5.7.6xx code).",
        "Ask for delisting at https://sender.office.com.",
    ),
    _p(
        "Outlook",
        r"\bS3150\b|part of their network is on our block list",
        "Your address is on Microsoft's block list (S3150).",
        "Request delisting through the Outlook.com sender support form.",
    ),
    _p(
        "Outlook",
        r"\bS3140\b",
        "Microsoft's servers refuse mail from your address range (S3140).",
        "Request delisting through the Outlook.com sender support form.",
    ),
    _p(
        "Outlook",
        r"AS\(\d+\)",
        "Microsoft's anti-spam refused the message (the AS(…) code names the rule).",
        "Check your authentication and reputation; Microsoft's SNDS shows your address.",
    ),
    _p(
        "Yahoo",
        r"\[TSS0[14]\]",
        "Yahoo temporarily defers mail from your address (TSS04: unusual traffic).",
        "Slow down and retry; make sure your mail is authenticated and wanted.",
    ),
    _p(
        "Yahoo",
        r"\[TSS09\]|\[TS0[1-3]\]",
        "Yahoo refuses mail from your address for its reputation.",
        "Improve authentication and complaint rates; contact Yahoo's sender hub.",
    ),
    _p(
        "Spamhaus",
        r"spamhaus",
        "The receiver found your address on a Spamhaus list.",
        "Look the address up at https://check.spamhaus.org and follow its steps.",
    ),
)

"""Parse RFC 5322/MIME messages; compute IMAP ENVELOPE, BODYSTRUCTURE and search text.

``parse(raw)`` gives what the store saves at delivery; ``parse_mime(raw)`` gives the MIME tree
for section fetches (``MimePart.section``).
"""

from courrier.message.address import Address, format_addresses, parse_address_list
from courrier.message.headers import (
    ContentType,
    Disposition,
    Headers,
    Param,
    decode_words,
    param_text,
    parse_content_type,
    parse_disposition,
    parse_headers,
    split_header,
)
from courrier.message.imap import body_structures, envelope
from courrier.message.mime import MimePart, parse_mime
from courrier.message.parsed import ParsedMessage, base_subject, parse, part_text

__all__ = [
    "Address",
    "ContentType",
    "Disposition",
    "Headers",
    "MimePart",
    "Param",
    "ParsedMessage",
    "base_subject",
    "body_structures",
    "decode_words",
    "envelope",
    "format_addresses",
    "param_text",
    "parse",
    "parse_address_list",
    "parse_content_type",
    "parse_disposition",
    "parse_headers",
    "parse_mime",
    "part_text",
    "split_header",
]

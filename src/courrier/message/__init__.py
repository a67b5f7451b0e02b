"""Parse and compose RFC 5322/MIME messages; compute IMAP ENVELOPE and BODYSTRUCTURE."""

"""SMTP: the sans-IO protocol core, envelope addresses, and the MX and submission servers."""

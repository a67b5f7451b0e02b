"""Passwords, SASL, TLS contexts and certificates, rate limits and bans."""

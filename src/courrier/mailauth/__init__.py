"""Mail authentication: DKIM signing and its keys (RFC 6376, RFC 8463); the checks of inbound
mail, SPF (RFC 7208), DKIM, DMARC (RFC 7489) and ARC (RFC 8617), told in
Authentication-Results (RFC 8601) (:mod:`inbound` ties them together); ARC sealing of forwarded
mail; and the DMARC aggregate and TLS-RPT (RFC 8460) reports sent and received."""

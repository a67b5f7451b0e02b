"""Mail authentication: DKIM signing (RFC 6376, RFC 8463) and its keys; SPF, DMARC and ARC
checking come with the inbound authentication work."""

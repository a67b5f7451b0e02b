"""POP3 (RFC 1939): the sans-IO protocol core and its asyncio listeners on 110 and 995."""

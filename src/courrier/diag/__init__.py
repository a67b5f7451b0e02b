"""Diagnostics: what an operator asks an online tester (CaptainDNS, MXToolbox, internet.nl,
mail-tester, LearnDMARC) about a domain, a message or a bounce, answered locally and for any
domain, not only ours — ``courrier check``, ``courrier headers``, ``courrier explain``,
``courrier send-test``. Each finding says what was seen, why it matters and how to fix it
(:mod:`courrier.diag.findings`)."""

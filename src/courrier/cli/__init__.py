"""The `courrier` command: one thin module per command group (parse, call a service, print)."""

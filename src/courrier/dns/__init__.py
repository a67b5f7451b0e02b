"""DNS: recommended records for our domains (the authoritative server comes with its issue)."""

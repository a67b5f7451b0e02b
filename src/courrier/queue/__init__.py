"""The outbound queue: where mail for other servers goes (routing), and the workers that
deliver it with the SMTP client, retry it and report on it (runner)."""

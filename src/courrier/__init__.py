"""courrier: a complete, self-hosted mail service in one Python program."""

__version__ = "0.1.0"

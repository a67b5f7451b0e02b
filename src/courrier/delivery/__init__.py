"""Delivery: recipient resolution, quotas and filters; the one way mail enters a mailbox."""

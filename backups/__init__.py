"""LTR backups: the long-term-retention backup operations Azure lists for each server, kept as they were seen
(an operation Azure no longer lists stays, marked so), refreshed on demand and shown on the server's page."""

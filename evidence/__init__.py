"""Evidence of LTR backups for an auditor: per server over a period, readiness, pre-checks, LTR backups, gaps."""

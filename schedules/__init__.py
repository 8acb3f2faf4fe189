"""Scheduled checks: a set of servers checked at a cadence, as the schedule's owner (see schedules.firing)."""

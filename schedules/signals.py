"""Signals other apps (alerts) listen to; schedules imports none of them.

schedule_needs_owner(sender=Schedule, schedule=<Schedule>, reason=<str>): sent once when a due run found that
the owner's delegated token cannot be renewed without them (refresh token revoked or expired, MFA, consent,
CAE). The schedule is then in state owner_must_sign_in and runs nothing until its owner signs in again.
"""

from django.dispatch import Signal

schedule_needs_owner = Signal()

"""Jobs the checks worker runs now and then for the accounts side (settings.WORKER_PERIODIC_JOBS)."""

from django.contrib.sessions.models import Session
from django.utils import timezone


def clear_expired_sessions() -> int:
    """Delete expired sessions, and with them the sign-in flows pending in them: every anonymous visit to
    /auth/signin/ writes one, and Django deletes none by itself. Returns how many were deleted."""
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted

"""Jobs the checks worker runs now and then for the accounts side (settings.WORKER_PERIODIC_JOBS)."""

from django.contrib.sessions.models import Session
from django.utils import timezone

from armclient.onewriter import one_writer


def clear_expired_sessions() -> int:
    """Delete expired sessions, and with them the sign-in flows pending in them: every anonymous visit to
    /auth/signin/ writes one, and Django deletes none by itself. Returns how many were deleted."""
    with one_writer():  # run by the checks worker: a writer like the checks' own
        deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted

"""Bounded work per person: a fixed-window rate limit on POSTs per signed-in user and on sign-in starts per
client address, answered 429 with Retry-After.

The counters are rows in the database (`RateWindow`), incremented with one conditional UPDATE, so the limit
holds across every web process and machine (Django's database cache would read and write back: two processes
could both see 59 and both allow the 60th). The race we accept: the first hit of a window is an INSERT that can
collide with another process's; the loser adds its hit to the winner's row instead.
"""

import math
import time

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse

from armclient.onewriter import one_writer


class RateWindow(models.Model):
    key = models.CharField(max_length=120)
    window = models.BigIntegerField(help_text="the window's start, in seconds since the epoch")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "window"], name="ratewindow_unique")]

    def __str__(self) -> str:
        return f"{self.key} @ {self.window}: {self.count}"


def hit(key: str, limit: int, seconds: int) -> float | None:
    """Count one hit of `key`; None when within `limit` per `seconds`, else the seconds to wait."""
    now = time.time()
    window = int(now // seconds * seconds)
    rows = RateWindow.objects.filter(key=key, window=window)
    if not rows.update(count=F("count") + 1):
        try:
            with transaction.atomic():
                RateWindow.objects.create(key=key, window=window, count=1)
        except IntegrityError:  # another process made the row first
            rows.update(count=F("count") + 1)
    count = rows.values_list("count", flat=True).first() or 0
    return None if count <= limit else max(1.0, window + seconds - now)


def client_address(request: HttpRequest) -> str:
    if settings.BEHIND_PROXY:  # the proxy appends the client it saw; earlier entries are the client's to forge
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
        if forwarded:
            return forwarded
    return request.META.get("REMOTE_ADDR", "unknown")


def too_many(wait: float, what: str) -> HttpResponse:
    response = HttpResponse(f"Too many {what}: try again in {math.ceil(wait)} s.\n", status=429,
                            content_type="text/plain")
    response["Retry-After"] = str(math.ceil(wait))
    return response


class RateLimitMiddleware:
    """POSTs of a signed-in user, and anonymous starts of a sign-in, each within their limit per minute."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.user.is_authenticated:
            wait = hit(f"post:{request.user.pk}", settings.RATE_LIMIT_POSTS_PER_MINUTE, 60)
            if wait is not None:
                return too_many(wait, "changes in a minute")
        elif request.path == "/auth/signin/" and not request.user.is_authenticated:
            wait = hit(f"signin:{client_address(request)}", settings.RATE_LIMIT_SIGNINS_PER_MINUTE, 60)
            if wait is not None:
                return too_many(wait, "sign-in attempts from this address in a minute")
        return self.get_response(request)


def clear_old_windows() -> int:
    """Windows older than an hour count for nothing any more (settings.WORKER_PERIODIC_JOBS)."""
    with one_writer():  # run by the checks worker: a writer like the checks' own
        return RateWindow.objects.filter(window__lt=time.time() - 3600).delete()[0]

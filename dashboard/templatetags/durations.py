"""`{{ value|duration }}`: a timedelta or a number of seconds in dashboard.durations' words ("38 ms", "2.4 s",
"6 min 52 s"); nothing (None) reads as nothing. `{{ since|lasted:until }}`: how long from one moment to another
(now by default) in Django's timesince words, but "under a minute" where timesince says "0 minutes"."""

from datetime import timedelta

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

from dashboard.durations import duration_words

register = template.Library()


@register.filter
def duration(value) -> str:
    if value is None or value == "":
        return ""
    return duration_words(value.total_seconds() if isinstance(value, timedelta) else float(value))


@register.filter
def lasted(since, until=None) -> str:
    if since is None:
        return ""
    until = until or timezone.now()
    return "under a minute" if until - since < timedelta(minutes=1) else timesince(since, until)

"""`{{ value|duration }}`: a timedelta or a number of seconds in dashboard.durations' words ("38 ms", "2.4 s",
"6 min 52 s"); nothing (None) reads as nothing."""

from datetime import timedelta

from django import template

from dashboard.durations import duration_words

register = template.Library()


@register.filter
def duration(value) -> str:
    if value is None or value == "":
        return ""
    return duration_words(value.total_seconds() if isinstance(value, timedelta) else float(value))

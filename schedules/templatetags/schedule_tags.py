"""Template filters for the schedules pages."""

from django import template
from django.utils import timezone

register = template.Library()


def _span(seconds: int) -> str:
    if seconds < 60:
        return "less than a minute"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours} h {minutes} min" if hours < 3 and minutes else f"{hours} h"
    return f"{seconds // 86400} days"


@register.filter
def relative(moment, kind: str = "") -> str:
    """"in 3 h", "in 12 min", "5 min ago", "just now"; a next run (kind "next") already past is "due now"."""
    if not moment:
        return ""
    seconds = int((moment - timezone.now()).total_seconds())
    if seconds > 0:
        return f"in {_span(seconds)}"
    if kind == "next":
        return "due now"
    return "just now" if seconds > -60 else f"{_span(-seconds)} ago"

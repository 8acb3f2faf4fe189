"""Template filters for the fleet pages."""

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def ago(moment) -> str:
    """A short relative time: "just now", "3 min ago", "5 h ago", "12 days ago"."""
    if not moment:
        return ""
    seconds = int((timezone.now() - moment).total_seconds())
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    days = seconds // 86400
    return f"{days} day{'s' if days != 1 else ''} ago"

"""`{% subscription server.subscription_id %}`: a subscription by its display name, its GUID on hover; the GUID
itself where no name is known. The names come from the page's `subscription_names` (one query per page)."""

from django import template
from django.utils.html import format_html

from dashboard.subscriptions import name_of

register = template.Library()


@register.simple_tag(takes_context=True)
def subscription(context, subscription_id) -> str:
    names = context.get("subscription_names") or {}
    name = name_of(names, subscription_id)
    if not name:
        return format_html('<span class="mono">{}</span>', subscription_id)
    return format_html('<span class="subscription" title="{}">{}</span>', subscription_id, name)


@register.filter
def subscription_name(subscription_id, names) -> str:
    """`{{ id|subscription_name:subscription_names }}`: the name alone (or the GUID), for attributes and text."""
    return name_of(names or {}, subscription_id) or subscription_id

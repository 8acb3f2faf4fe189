"""`{% history_rows checks %}`: the history's rows of these checks, written by checks.history_row (`of_server=True`
on a server's own page: its rows say the backup name instead of the server)."""

from django import template

from checks import history_row

register = template.Library()


@register.simple_tag(takes_context=True)
def history_rows(context, checks, of_server=False):
    return history_row.rows(checks, of_server=of_server, subscription_names=context.get("subscription_names"))

"""The `last_backup` filter: what the server list's "Last LTR backup" cell says of a server (backups.summary)."""

from django import template

from backups import summary

register = template.Library()


@register.filter
def last_backup(server) -> dict:
    return summary.cell(server)

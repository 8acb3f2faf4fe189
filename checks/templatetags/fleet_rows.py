"""`{% fleet_row %}`: the server list's row of the server in the context, and `{% fleet_rows rows %}`: the rows of
a page, written by checks.fleet_row."""

from django import template
from django.utils.safestring import mark_safe

from checks import fleet_row as rows

register = template.Library()


@register.simple_tag(takes_context=True)
def fleet_row(context):
    can = context.get("can") or {}
    run_form = context.get("run_form")
    errors = run_form.errors.get("backup_name") if run_form is not None else None
    return rows.row(context["server"], strip=context.get("strip"), my_last_attempt=context.get("my_last_attempt"),
                    can_operate=bool(can.get("operate")), subscription_names=context.get("subscription_names"),
                    announce=context.get("announce", False), notice=context.get("notice", ""),
                    error=errors[0] if errors else "")


@register.simple_tag(takes_context=True)
def fleet_rows(context, page_rows):
    """Every row of the page in one tag: a loop of {% with %} and {% partial %} per row was ~1 ms a page."""
    can_operate = bool((context.get("can") or {}).get("operate"))
    names = context.get("subscription_names")
    return mark_safe("\n".join(  # noqa: S308 - each row is checks.fleet_row's, escaped where it must be
        rows.row(r["server"], strip=r["strip"], my_last_attempt=r["my_last_attempt"], can_operate=can_operate,
                 subscription_names=names) for r in page_rows))

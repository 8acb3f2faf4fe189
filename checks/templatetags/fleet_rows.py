"""`{% fleet_row %}`: the server list's row of the server in the context, written by checks.fleet_row."""

from django import template

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

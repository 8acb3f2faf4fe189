"""One check's row of the history, written in Python rather than by the template engine: the one writer of it.

Through the template partial a page of 50 rows was ~6 ms of template work (dozens of nodes a row resolved and
escaped, two includes and a simple tag among them): most of the page's time, and what kept the history filtered
by status within 6x of the admin changelist's same page. Here a row is a few f-strings, ~20 us. What comes from a
user or Azure (server and backup names, who ran it, ARM's codes, the summary) is escaped; our own words and
numbers are not.

The history page and a server page's history draw their rows through `{% history_rows %}`
(checks/templatetags/history_rows.py); the htmx poll of an active row (checks.views.history.check_row) answers
`row()` itself. The markup is what templates/checks/_status.html and _result.html say for a check. A server's own
page names the server once, in its heading: its rows (`of_server`) have the backup name instead, and their poll
keeps it so.
"""

from functools import cache
from html import escape

from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from armclient.outcomes import Category
from checks.models import Check, CheckQuerySet
from dashboard.subscriptions import name_of

SENTINEL = 987654321  # a primary key, replaced in each reversed URL by the row's
# What get_status_display() and get_category_display() say, read from a dict: those hash the field's choices
# on every call, and were 40% of a row's time.
STATUS_LABELS, CATEGORY_LABELS = dict(Check.Status.choices), dict(Category.choices)



def read(checks) -> "CheckQuerySet":
    """`checks` (a filtered history) newest first, with their servers, reading only HISTORY_ROW_FIELDS. (Making
    the instances from values_list without Model.__init__ saved ~0.7 ms a page; not worth leaning on Django's
    internals for.) Count the checks as given, not these: the join would be counted too."""
    return checks.select_related("server").only(*CheckQuerySet.HISTORY_ROW_FIELDS).newest_first()


@cache
def _url(name: str) -> str:
    """The URL named `name` for any primary key, as a str.format pattern: reversed once, not 100 times a page."""
    return reverse(name, args=[SENTINEL]).replace(str(SENTINEL), "{}")


@cache
def _remedy(category: str) -> str:
    return escape(Category(category).remedy)


def rows(checks, *, of_server: bool = False, subscription_names=None) -> SafeString:
    """The rows of `checks` (each with its server unless `of_server`), one a line."""
    return mark_safe("\n".join(  # noqa: S308 - each row escapes what it puts in
        _row(check, of_server, subscription_names) for check in checks))


def row(check, *, of_server: bool = False, subscription_names=None) -> SafeString:
    return mark_safe(_row(check, of_server, subscription_names))  # noqa: S308 - _row escapes what it puts in


def _row(check, of_server: bool, subscription_names) -> str:
    pk = check.pk
    poll = ""
    if check.is_active:
        query = "?of_server=1" if of_server else ""
        poll = (f' hx-get="{_url("check_row").format(pk)}{query}" hx-trigger="every {check.poll_interval}"'
                f' hx-swap="outerHTML"')
    started = check.created_label
    return (
        f'<tr id="check-{pk}"{poll}>\n'
        f'<td data-label="Started"><a href="{_url("check_detail").format(pk)}">'
        f'<time datetime="{check.created_local.isoformat()}" title="{started}">{started}</time></a></td>\n'
        f"{_where(check, of_server, subscription_names)}\n"
        f'<td data-label="Status">{_status(check)}</td>\n'
        f'<td data-label="Result" class="result">{_result(check)}</td>\n'
        f'<td data-label="Run by">{escape(check.requested_by_name)}</td>\n'
        f'<td data-label="Took">{check.took or "—"}</td>\n</tr>')


def _where(check, of_server: bool, subscription_names) -> str:
    backup = escape(check.backup_name)
    if of_server:
        return f'<td data-label="Backup name" class="small mono">{backup}</td>'
    server = check.server
    return (f'<td data-label="Server">{escape(server.name)} <span class="muted small">· '
            f"{_subscription(server.subscription_id, subscription_names)}</span>\n"
            f'<div class="muted small mono">{backup}</div></td>')


def _subscription(subscription_id: str, subscription_names) -> str:
    """What `{% subscription %}` (dashboard/templatetags/subscriptions.py) says: the name, the GUID on hover."""
    sub = escape(subscription_id)
    name = name_of(subscription_names or {}, subscription_id)
    if not name:
        return f'<span class="mono">{sub}</span>'
    return f'<span class="subscription" title="{sub}">{escape(name)}</span>'


def _status(check) -> str:
    """What checks/_status.html says of a check."""
    note = (f'\n<span class="muted small live-note">{escape(check.summary)}</span>'
            if check.is_active and check.summary else "")
    status = check.status
    return f'<span class="badge badge-{status} check-status">{STATUS_LABELS.get(status, status)}</span>{note}'


def _result(check) -> str:
    """What checks/_result.html says of a check."""
    if check.passed:
        n = check.number_of_containers
        return f"<strong>{n}</strong> container{pluralize(n)}"
    if check.is_active:
        return f'<span class="muted">{check.waiting_note}</span>'
    # check.result_label: the category, else the status.
    label = CATEGORY_LABELS.get(check.category, check.category) or STATUS_LABELS.get(check.status, check.status)
    parts = [f'<span class="category">{escape(label)}</span>']
    if check.error_code:
        parts.append(f'<code class="small" title="{escape(check.error_code)}">'
                     f"{escape(_truncated(check.specific_error_code, 60))}</code>")
    summary = check.summary
    parts.append(f'<div class="small summary" title="{escape(summary)}">{escape(_truncated(summary, 160))}</div>')
    if check.category:
        parts.append(f'<div class="small remedy-line">What to do: {_remedy(check.category)}</div>')
    return "\n".join(parts)


def _truncated(text: str, length: int) -> str:
    """`|truncatechars:length`; most texts are shorter, and Truncator reads every character of those too."""
    return text if len(text) <= length else Truncator(text).chars(length)

"""One server's row of the server list, written in Python rather than by the template engine.

A page of 100 rows through the template partial was ~2.5 ms of template work a row (hundreds of nodes, each
variable resolved and escaped): most of the page's time. Here a row is a few f-strings: what comes from a user
or Azure (names, labels, summaries) is escaped, our own words and numbers are not. The markup is the same
wherever the row is shown on the list: the page draws its rows through `{% fleet_row %}`
(checks/templatetags/fleet_rows.py), and so do the htmx answers that replace one row (server_row, run_check),
through the same template partial. The server page keeps the template partial's own branch (its row has the
backup name form). The row's htmx target and swap are the list's <tbody>'s (hx-target="closest tr"), and its
cells carry no data-label: the list's phone cards show none.
"""

from functools import cache
from html import escape

from django.contrib.humanize.templatetags.humanize import naturaltime
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime

from backups import summary
from dashboard.subscriptions import name_of

SENTINEL = 987654321  # a primary key, replaced in each reversed URL by the row's


@cache
def _url(name: str) -> str:
    """The URL named `name` for any primary key, as a str.format pattern: reversed once, not 300 times a page."""
    return reverse(name, args=[SENTINEL]).replace(str(SENTINEL), "{}")


def row(server, *, strip, my_last_attempt, can_operate: bool, subscription_names, announce=False,
        notice="", error="") -> SafeString:
    """The row; `notice` and `error` are the Run's answer when it refused (already running, a bad backup name)."""
    check = server.last_check
    poll = ""
    if server.active_check:
        every = (check.poll_interval if check else "") or "1s"
        poll = f' hx-get="{_url("server_row").format(server.pk)}" hx-trigger="every {every}"'
    readiness = getattr(server, "readiness", None)  # none before a conclusive check (an AttributeError)
    return mark_safe(  # noqa: S308 - every part from a user or Azure is escaped where it is put in
        f'<tr id="server-{server.pk}" class="server-row"{poll}>\n'
        f"{_select(server, can_operate)}\n{_name(server)}\n{_where(server, subscription_names)}\n"
        f"{_readiness(readiness)}\n"
        f'<td class="since-cell small muted">{_time(readiness.since) if readiness else ""}</td>\n'
        f'<td class="strip-cell">{strip.__html__() if strip else ""}</td>\n'
        f"{_last_check(server, check, my_last_attempt, announce)}\n{_last_backup(server)}\n"
        f"{_run(server, can_operate, notice, error)}\n</tr>")


def _time(value, css: str = "") -> str:
    """A time as the list shows it: "2 days ago", its exact time as the tooltip."""
    local = template_localtime(value)
    exact = local.strftime("%Y-%m-%d %H:%M:%S ") + (local.tzname() or "")
    return (f'<time{css} datetime="{local.isoformat(timespec="seconds")}" title="{exact}">'
            f"{naturaltime(value)}</time>")


def _select(server, can_operate: bool) -> str:
    if not can_operate:
        return '<td class="select-cell"></td>'
    return (f'<td class="select-cell"><input type="checkbox" name="server" value="{server.pk}" form="bulk-form" '
            f'data-select-row aria-label="Select {escape(server.name)}"></td>')


def _name(server) -> str:
    label = f' <span class="muted small label">{escape(server.label)}</span>' if server.label else ""
    return (f'<td class="name-cell"><a href="{_url("server_detail").format(server.pk)}">'
            f"<strong>{escape(server.name)}</strong></a>{label}</td>")


def _where(server, subscription_names) -> str:
    sub = escape(server.subscription_id)
    name = name_of(subscription_names or {}, server.subscription_id)
    subscription = (f'<span class="subscription" title="{sub}">{escape(name)}</span>' if name
                    else f'<span class="mono">{sub}</span>')
    group = escape(server.resource_group)
    return f'<td class="where-cell small"><span class="mono">{group}</span> · {subscription}</td>'


def _readiness(readiness) -> str:
    # The title has the whole reason where a one-line row ends it in "…".
    words = escape(readiness.words) if readiness else ""
    badge = (f'<span title="{words}" class="badge badge-{readiness.state}">{words}</span>' if readiness
             else '<span class="badge badge-never">Never checked</span>')
    return f'<td class="readiness-cell">{badge}</td>'


def _last_check(server, check, my_last_attempt, announce) -> str:
    parts = []
    if announce and check:
        # Moved by htmx (nested out-of-band swap) into the page's live region.
        parts.append(f'<div id="live-announcer" hx-swap-oob="true" class="visually-hidden" role="status" '
                     f'aria-live="polite">{escape(server.name)}: {escape(check.announcement)}.</div>')
    parts.append(_status(check))
    if check and not check.is_active:
        # When first: a phone's narrow card ends the line in "…", and the link to the check stays in view.
        parts.append(f'<a class="small" href="{_url("check_detail").format(check.pk)}">{_time(check.created_at)}</a>')
        parts.append(_outcome(check))
        if check.took:
            parts.append(f'<span class="muted small">· {escape(check.took)}</span>')
    elif check:
        parts.append(f'<span class="muted small">{escape(check.waiting_note)}</span>')
    if my_last_attempt:
        parts.append(f'<div class="small your-attempt">Your last attempt: {escape(str(my_last_attempt))}</div>')
    return f'<td class="check-cell">{chr(10).join(parts)}</td>'


def _status(check) -> str:
    """What checks/_status.html says."""
    if not check:
        return '<span class="badge badge-never check-status">Never checked</span>'
    note = (f' <span class="muted small live-note">{escape(check.summary)}</span>'
            if check.is_active and check.summary else "")
    return f'<span class="badge badge-{check.status} check-status">{check.get_status_display()}</span>{note}'


def _outcome(check) -> str:
    if check.passed:
        n = check.number_of_containers
        return f'<span class="small"><strong>{n}</strong> container{pluralize(n)}</span>'
    code = (f' <code class="small" title="{escape(check.error_code)}">{escape(check.specific_error_code)}</code>'
            if check.error_code else "")
    return (f'<span class="small category" title="{escape(check.summary)}">{escape(str(check.result_label))}</span>'
            f"{code}")


def _last_backup(server) -> str:
    """What backups/_last_backup_cell.html says."""
    b = summary.cell(server)
    parts = [f'<span class="badge badge-{b["badge"]}">{escape(b["words"])}</span>']
    if b.get("when"):
        parts.append(_time(b["when"], ' class="muted small"'))
    if b.get("succeeded") and not b.get("recent"):
        parts.append(f'<span class="muted small">· last success {naturaltime(b["succeeded"])}</span>')
    elif b["badge"] == "failed" and not b.get("succeeded"):
        parts.append('<span class="muted small">· no success kept</span>')
    return f'<td class="last-backup">{chr(10).join(parts)}</td>'


def _run(server, can_operate: bool, notice: str, error: str) -> str:
    if not can_operate:
        return '<td class="run-cell"><span class="muted" title="Running checks needs the Operator role">—</span></td>'
    # A button of the page's one #run-one form: one CSRF token for the page, not one a row (htmx sends the
    # page's token as a header). Not disabled while a check runs (a disabled button loses keyboard focus when
    # the row is swapped; htmx restores it by the id): a second click is answered "already in progress".
    url = _url("run_check").format(server.pk)
    busy = ' aria-disabled="true"' if server.active_check else ""
    said = f'<p class="notice small">{escape(str(notice))}</p>' if notice else ""
    if error:
        said = (f'<p class="field-error" id="backup-name-error-{server.pk}">Backup name: {escape(str(error))}</p>'
                f"{said}")
    return (f'<td class="run-cell"><div class="run-form"><button form="run-one" formaction="{url}" hx-post="{url}" '
            f'id="run-{server.pk}" class="small-button"{busy} aria-label="Run pre-backup check on '
            f'{escape(server.name)}">Run</button>{said}</div></td>')

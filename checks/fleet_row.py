"""One server's row of the server list, written in Python rather than by the template engine.

A page of 100 rows through the template partial was ~2.5 ms of template work a row (hundreds of nodes, each
variable resolved and escaped): most of the page's time. Here a row is a few f-strings: what comes from a user
or Azure (names, labels, summaries) is escaped, our own words and numbers are not. The markup is the same
wherever the row is shown on the list: the page draws its rows through `{% fleet_row %}`
(checks/templatetags/fleet_rows.py), and so do the htmx answers that replace one row (server_row, run_check),
through the same template partial. The server page keeps the template partial's own branch (its row has the
backup name form). The row's htmx target and swap are the list's <tbody>'s (hx-target="closest tr"), and its
cells carry no data-label: the list's phone cards show none.

Each byte is paid 50 times a page (issue 12: a page under 80 KB), so a row says each thing once: the cells
have no class (static/css/app.css styles the list's columns by position), the checkbox and the Run button
are named by aria-labelledby (the page's hidden words "Select" / "Run pre-backup check on", then the server's
name in its own cell), the checkboxes belong to the page's #bulk-form by being inside it, a time's exact
moment is its datetime (static/js/app.js makes it the tooltip), and Run's URL is written once (formaction:
the plain form post; app.js gives htmx the same URL).
"""

from functools import cache
from html import escape

from django.contrib.humanize.templatetags.humanize import naturaltime
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime

from backups import summary
from checks.readiness import unknown_words
from dashboard.subscriptions import name_of

SENTINEL = 987654321  # a primary key, replaced in each reversed URL by the row's
SELECT_WORDS, RUN_WORDS = "w-sel", "w-run"  # ids of the page's hidden words (templates/checks/server_list.html)
TITLED_WORDS = 18  # a readiness badge with more letters than this may be cut ("…"): its title has them whole


@cache
def _check_words(status: str, category: str) -> tuple[str, str]:
    """A check's status in words and its result label (Check's own properties, asked once per pair: Django's
    get_FOO_display costs ~10 µs a call, and a page asks hundreds of times)."""
    from checks.models import Check

    check = Check(status=status, category=category)
    return check.get_status_display(), str(check.result_label)


@cache
def _readiness_words(state: str, reason: str) -> str:
    from checks.readiness import Readiness

    return Readiness(state=state, reason=reason).words


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
        f"{_readiness(readiness, server.last_check_id is not None)}\n"
        f"<td>{_time(readiness.since) if readiness else ''}</td>\n"
        f"<td>{strip.__html__() if strip else ''}</td>\n"
        f"{_last_check(server, check, my_last_attempt, announce)}\n{_last_backup(server)}\n"
        f"{_run(server, can_operate, notice, error)}\n</tr>")


def _time(value) -> str:
    """A time as the list shows it: "2 days ago", its exact moment in datetime, in TIME_ZONE as every other page
    says times (app.js makes it the tooltip)."""
    return f'<time datetime="{template_localtime(value).isoformat(timespec="seconds")}">{naturaltime(value)}</time>'


def _select(server, can_operate: bool) -> str:
    if not can_operate:
        return "<td></td>"
    return (f'<td><input type="checkbox" name="server" value="{server.pk}" '
            f'aria-labelledby="{SELECT_WORDS} n-{server.pk}"></td>')


def _name(server) -> str:
    label = f' <span class="muted">{escape(server.label)}</span>' if server.label else ""
    return (f'<td><a href="{_url("server_detail").format(server.pk)}">'
            f'<strong id="n-{server.pk}">{escape(server.name)}</strong></a>{label}</td>')


def _where(server, subscription_names) -> str:
    sub = escape(server.subscription_id)
    name = name_of(subscription_names or {}, server.subscription_id)
    subscription = (f'<span class="subscription" title="{sub}">{escape(name)}</span>' if name
                    else f"<code>{sub}</code>")
    return f"<td><code>{escape(server.resource_group)}</code> · {subscription}</td>"


def _readiness(readiness, checked: bool) -> str:
    if not readiness:
        words, title = unknown_words(checked)
        title = f' title="{title}"' if title else ""
        return f'<td><span class="badge badge-never"{title}>{words}</span></td>'
    said = _readiness_words(readiness.state, readiness.reason)
    words = escape(said)
    # The title has the whole reason where a one-line row may end it in "…"; a short one is never cut.
    title = f' title="{words}"' if len(said) > TITLED_WORDS else ""
    return f'<td><span class="badge badge-{readiness.state}"{title}>{words}</span></td>'


def _last_check(server, check, my_last_attempt, announce) -> str:
    parts = []
    if announce and check:
        # Moved by htmx (nested out-of-band swap) into the page's live region.
        parts.append(f'<div id="live-announcer" hx-swap-oob="true" class="visually-hidden" role="status" '
                     f'aria-live="polite">{escape(server.name)}: {escape(check.announcement)}.</div>')
    parts.append(_status(check))
    if check and not check.is_active:
        # When first: a phone's narrow card ends the line in "…", and the link to the check stays in view.
        parts.append(f'<a href="{_url("check_detail").format(check.pk)}">{_time(check.created_at)}</a>')
        parts.append(_outcome(check))
        if check.took:
            parts.append(f'<span class="muted">· {escape(check.took)}</span>')
    elif check:
        parts.append(f'<span class="muted">{escape(check.waiting_note)}</span>')
    if my_last_attempt:
        parts.append(f'<div class="your-attempt">Your last attempt: {escape(str(my_last_attempt))}</div>')
    return f"<td>{chr(10).join(parts)}</td>"


def _status(check) -> str:
    """What checks/_status.html says."""
    if not check:
        return '<span class="badge badge-never check-status">Never checked</span>'
    note = (f' <span class="muted live-note">{escape(check.summary)}</span>'
            if check.is_active and check.summary else "")
    words = _check_words(check.status, check.category)[0]
    return f'<span class="badge badge-{check.status} check-status">{words}</span>{note}'


def _outcome(check) -> str:
    """What the check found. Its summary (Azure's whole message) is on the check's page, a click away."""
    if check.passed:
        n = check.number_of_containers
        return f"<strong>{n}</strong> container{pluralize(n)}"
    code = ""
    if check.error_code:
        # The specific code alone when it is the whole code; else the whole one as its title.
        whole = f' title="{escape(check.error_code)}"' if check.error_code != check.specific_error_code else ""
        code = f" <code{whole}>{escape(check.specific_error_code)}</code>"
    return f'<span class="category">{escape(_check_words(check.status, check.category)[1])}</span>{code}'


def _last_backup(server) -> str:
    """What backups/_last_backup_cell.html says."""
    b = summary.cell(server)
    parts = [f'<span class="badge badge-{b["badge"]}">{escape(b["words"])}</span>']
    if b.get("when"):
        parts.append(_time(b["when"]))
    if b.get("succeeded") and not b.get("recent"):
        parts.append(f'<span class="muted">· last success {naturaltime(b["succeeded"])}</span>')
    elif b["badge"] == "failed" and not b.get("succeeded"):
        parts.append('<span class="muted">· no success kept</span>')
    return f"<td>{chr(10).join(parts)}</td>"


def _run(server, can_operate: bool, notice: str, error: str) -> str:
    if not can_operate:
        return '<td><span class="muted" title="Running checks needs the Operator role">—</span></td>'
    # A button of the page's one #run-one form: one CSRF token for the page, not one a row (htmx sends the
    # page's token as a header; app.js makes formaction its hx-post). Not disabled while a check runs (a
    # disabled button loses keyboard focus when the row is swapped; htmx restores it by the id): a second
    # click is answered "already in progress".
    busy = ' aria-disabled="true"' if server.active_check else ""
    said = f'<p class="notice">{escape(str(notice))}</p>' if notice else ""
    if error:
        said = (f'<p class="field-error" id="backup-name-error-{server.pk}">Backup name: {escape(str(error))}</p>'
                f"{said}")
    return (f'<td><button form="run-one" formaction="{_url("run_check").format(server.pk)}" id="run-{server.pk}" '
            f'aria-labelledby="{RUN_WORDS} n-{server.pk}"{busy}>Run</button>{said}</td>')

"""Batches: the check run on many servers at once, its progress, cancelling it, re-running its failures."""

from datetime import UTC, datetime

from django.contrib import messages
from django.db.models import F
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from checks import fanout, fleet_state, resume
from checks.models import Batch, BatchInProgress, Check, QueueRefused
from dashboard import audit, entra
from dashboard.audit import Action
from dashboard.auth_views import sign_in_again
from dashboard.models import Server
from dashboard.roles import ADMIN, OPERATOR, forbidden, has_role, role_required

# The batch page shows its checks this many at a time; the poll only ever sends rows of the page shown.
ROWS_PER_PAGE = 100
# The servers left out (a check of theirs in flight) the batch page names; it counts all of them.
SKIPPED_NAMED = 10


def _get_batch_for_user(request: HttpRequest, pk: int) -> Batch:
    return get_object_or_404(Batch.objects.for_tenant(request.user.tenant_id).defer(*Batch.LONG_FIELDS), pk=pk)


@require_POST
@role_required(OPERATOR)
def batch_create(request: HttpRequest) -> HttpResponse:
    """Run the check on the selected servers, or on all servers matching the list's filters. The request
    records the batch and hands the queuing of its checks to a worker (checks.fanout): a handful of queries
    for 10 servers or 10,000. When Azure wants the user back first, the choice waits for the sign-in
    (checks.resume) and the batch starts then."""
    servers = chosen_servers(request, request.POST)
    back = reverse("server_list") + (f"?{request.POST.get('query')}" if request.POST.get("query") else "")
    if not servers:
        messages.error(request, "No server selected: tick some for “Run check on selected”, or use “Run on all”.")
        return redirect(back)
    if entra.arm_token(request.user).interaction_required:
        resume.park_batch(request)
        return sign_in_again(request, next_url=back)
    try:
        batch = start_batch(request, servers, request.POST)
    except QueueRefused as refused:
        return _refused(request, refused, back)
    return redirect("batch_detail", pk=batch.pk)


def chosen_servers(request: HttpRequest, data) -> list[int]:
    """The ids of the servers the form chose, by name: the ticked ones, or every one its filters match."""
    _form, _, matching = fleet_state.filtered_servers(request, data)
    matching = matching.order_by(Lower("name")).values_list("pk", flat=True)
    if data.get("scope") == "all":
        return list(matching)
    # isascii(): "²".isdigit() is true, and int("²") fails.
    ids = [int(v) for v in data.getlist("server") if v.isascii() and v.isdigit() and len(v) < 19]
    return list(matching.filter(pk__in=ids))


def start_batch(request: HttpRequest, servers: list[int], data, **audited) -> Batch:
    """The batch of `servers` by the signed-in user, audited; QueueRefused when it may not start."""
    batch = Batch.objects.start(servers, request.user)
    # Servers left out (a check of theirs in flight) are said on the batch page, which keeps saying it.
    audit.record(request, Action.BATCH_RUN, batch, servers=batch.server_count, skipped=batch.skipped_count,
                 scope="all" if data.get("scope") == "all" else "selected", **audited)
    return batch


def refusal_message(refused: QueueRefused):
    """Why nothing was queued; a batch already in progress is linked (the message is escaped, the link ours)."""
    if isinstance(refused, BatchInProgress):
        link = format_html('<a href="{}">Open batch {}</a>', reverse("batch_detail", args=[refused.batch.pk]),
                           refused.batch.pk)
        return format_html("{} {}", refused.message, link)
    return refused.message


def _refused(request: HttpRequest, refused: QueueRefused, back: str) -> HttpResponse:
    level = messages.WARNING if isinstance(refused, BatchInProgress) else messages.ERROR
    messages.add_message(request, level, refusal_message(refused))
    return redirect(back)


def _page_number(request: HttpRequest, total: int) -> tuple[int, int]:
    """The page asked for (1-based, clamped to the pages there are) and how many pages there are."""
    pages = max(1, -(-total // ROWS_PER_PAGE))
    raw = request.GET.get("page", "")
    number = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 9 else 1
    return min(max(number, 1), pages), pages


# A batch's rows by server name: the place each check was given when the batch was queued (Check.batch_position,
# read off its index); a batch queued before there were places, in the order its checks were made.
BATCH_ORDER = (F("batch_position").asc(nulls_last=True), "pk")


def _page_of_checks(batch: Batch, number: int):
    """The checks on page `number`, by server name (the batch's rows are paginated, ROWS_PER_PAGE a page)."""
    start = (number - 1) * ROWS_PER_PAGE
    return batch.checks.order_by(*BATCH_ORDER)[start:start + ROWS_PER_PAGE]


def _cursor(stamp: datetime | None) -> str:
    return str(int(stamp.timestamp() * 1_000_000)) if stamp else "0"


def _since(request: HttpRequest) -> datetime | None:
    """The cursor the poll sent back (microseconds since the epoch); None when absent or malformed."""
    raw = request.GET.get("since", "")
    if not (raw.isascii() and raw.isdigit() and len(raw) < 19):
        return None
    return datetime.fromtimestamp(int(raw) / 1_000_000, tz=UTC)


# The bar's segments, in the order they are drawn, and the width (SVG user units) they share.
BAR_SEGMENTS = ("passed", "failed", "cancelled", "running", "queued")
BAR_WIDTH = 1000


def bar_segments(progress: dict) -> list[dict]:
    """The progress bar's rectangles: each state's share of BAR_WIDTH (largest remainders, so they add up
    exactly), at least one unit for a state with any check (1 failed of 10,000 still shows); the checks not
    queued yet are drawn as queued. No rectangle for a state with no check."""
    counts = {kind: progress[kind] for kind in BAR_SEGMENTS}
    counts["queued"] += progress["unqueued"]
    total = sum(counts.values())
    if not total:
        return []
    exact = {kind: BAR_WIDTH * n / total for kind, n in counts.items()}
    widths = {kind: int(share) for kind, share in exact.items()}
    by_remainder = sorted(exact, key=lambda kind: exact[kind] - widths[kind], reverse=True)
    for kind in by_remainder[:BAR_WIDTH - sum(widths.values())]:
        widths[kind] += 1
    for kind in [kind for kind, n in counts.items() if n and not widths[kind]]:
        widths[kind] = 1
        widths[max(widths, key=widths.get)] -= 1
    segments, x = [], 0
    for kind in BAR_SEGMENTS:
        if widths[kind]:
            segments.append({"kind": kind, "x": x, "width": widths[kind], "count": counts[kind]})
            x += widths[kind]
    return segments


def _batch_context(request: HttpRequest, batch: Batch) -> dict:
    progress, newest = batch.progress_and_cursor()
    number, pages = _page_number(request, progress["total"])
    rerun = fanout.rerun_plan(batch, request.user) if progress["failed"] else None
    return {"batch": batch, "progress": progress, "cursor": _cursor(newest), "page": number, "pages": pages,
            "previous_page": number - 1, "next_page": number + 1 if number < pages else 0,
            "bar": bar_segments(progress), "bar_width": BAR_WIDTH, "rerun": rerun,
            "cancel_question": fanout.cancel_question(progress),
            "can_cancel": (progress["queued"] or progress["unqueued"]) and not batch.cancelled_at
            and _may_cancel(request, batch)}


def _may_cancel(request: HttpRequest, batch: Batch) -> bool:
    return batch.started_by_id == request.user.pk or has_role(request.user, ADMIN)


@require_GET
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _get_batch_for_user(request, pk)
    context = _batch_context(request, batch)
    context["checks"] = list(_page_of_checks(batch, context["page"]).select_related("server"))
    context["rows_shown"] = len(context["checks"])
    # The first few servers left out, by name (the count says how many).
    skipped = Batch.objects.filter(pk=batch.pk).values_list("skipped_ids", flat=True).get()[:SKIPPED_NAMED]
    context["skipped_names"] = sorted(Server.objects.for_tenant(batch.tenant_id).filter(pk__in=skipped)
                                      .values_list("name", flat=True))
    return render(request, "checks/batch.html", context)


@require_GET
def batch_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The poll: the counts, plus the rows of the page shown whose state changed since the cursor it sent
    (out-of-band swaps); every row of the page once the batch is done, and 286 so the polling stops."""
    batch = _get_batch_for_user(request, pk)
    context = _batch_context(request, batch)
    on_page = list(_page_of_checks(batch, context["page"]).values_list("pk", flat=True))
    changed = Check.objects.filter(pk__in=on_page)
    since = _since(request)
    # The page shows fewer rows than it has now (the worker queued some since): its rows are sent whole, in
    # order, and the next poll asks with their number.
    context["rows_shown"] = len(on_page)
    context["new_rows"] = since is None or request.GET.get("rows") != str(context["rows_shown"])
    if not context["new_rows"] and not context["progress"]["finished"]:
        changed = changed.alias(changed_at=Check.changed_at()).filter(changed_at__gt=since)
    context["changed"] = changed.select_related("server").order_by(*BATCH_ORDER)
    response = render(request, "checks/batch.html#progress", context)
    if context["progress"]["finished"]:
        response.status_code = HttpResponseStopPolling.status_code
    return response


@require_POST
@role_required(OPERATOR)
def batch_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancel what has not started (and the queuing, if a worker is still at it); say exactly what was done."""
    batch = _get_batch_for_user(request, pk)
    if not _may_cancel(request, batch):
        return forbidden(request, ADMIN, f"Only {batch.started_by_name}, who started this batch, or an admin "
                                         "can cancel it.")
    done = batch.cancel()
    audit.record(request, Action.BATCH_CANCEL, batch, cancelled=done.queued, not_queued=done.unqueued,
                 running=done.running, started_by=batch.started_by_name)
    (messages.success if done.cancelled_anything else messages.info)(request, done.message)
    return redirect("batch_detail", pk=batch.pk)


@require_POST
@role_required(OPERATOR)
def batch_rerun_failed(request: HttpRequest, pk: int) -> HttpResponse:
    """Re-run the checks that did not pass: by default only those that might pass now (fanout.rerun_plan
    says which are left out and why); all of them with which=all."""
    batch = _get_batch_for_user(request, pk)
    everything = request.POST.get("which") == "all"
    servers = fanout.servers_to_rerun(batch, request.user, only_might_pass=not everything)
    if not servers:
        messages.info(request, "No check of this batch failed; nothing to re-run." if everything else
                      "None of the checks that did not pass might pass now; nothing was re-run.")
        return redirect("batch_detail", pk=batch.pk)
    try:
        new_batch = Batch.objects.start(servers, request.user, rerun_of=batch)
    except QueueRefused as refused:
        return _refused(request, refused, reverse("batch_detail", args=[batch.pk]))
    audit.record(request, Action.BATCH_RERUN, new_batch, rerun_of=batch.pk, servers=new_batch.server_count,
                 which="all" if everything else "might pass now")
    return redirect("batch_detail", pk=new_batch.pk)

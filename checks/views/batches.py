"""Batches: the check run on many servers at once, its progress, cancelling it, re-running its failures."""

from datetime import UTC, datetime

from django.contrib import messages
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from checks import fleet_state
from checks.models import Batch, BatchInProgress, Check, QueueRefused
from dashboard import audit, entra
from dashboard.audit import Action
from dashboard.auth_views import sign_in_again
from dashboard.models import Server
from dashboard.roles import ADMIN, OPERATOR, forbidden, has_role, role_required

# The batch page shows its checks this many at a time; the poll only ever sends rows of the page shown.
ROWS_PER_PAGE = 100


def _get_batch_for_user(request: HttpRequest, pk: int) -> Batch:
    return get_object_or_404(Batch.objects.for_tenant(request.user.tenant_id), pk=pk)


@require_POST
@role_required(OPERATOR)
def batch_create(request: HttpRequest) -> HttpResponse:
    """Run the check on the selected servers, or on all servers matching the list's filters."""
    form, _, matching = fleet_state.filtered_servers(request, request.POST)
    matching = matching.only("pk", "name")  # all a check needs of its server to be queued
    if request.POST.get("scope") == "all":
        servers = list(matching)
    else:
        # isascii(): "²".isdigit() is true, and int("²") fails.
        ids = [int(v) for v in request.POST.getlist("server") if v.isascii() and v.isdigit() and len(v) < 19]
        servers = list(matching.filter(pk__in=ids))
    back = reverse("server_list") + (f"?{request.POST.get('query')}" if request.POST.get("query") else "")
    if not servers:
        messages.error(request, "No server selected: tick some for “Run check on selected”, or use “Run on all”.")
        return redirect(back)
    if entra.arm_token(request.user).interaction_required:
        return sign_in_again(request, next_url=back)
    try:
        batch, skipped = Batch.objects.queue(servers, request.user)
    except QueueRefused as refused:
        return _refused(request, refused, back)
    audit.record(request, Action.BATCH_RUN, batch, servers=len(servers) - len(skipped), skipped=len(skipped),
                 scope="all" if request.POST.get("scope") == "all" else "selected")
    if skipped:
        messages.info(request, f"{len(skipped)} server(s) already had a check in progress and were left out.")
    return redirect("batch_detail", pk=batch.pk)


def _refused(request: HttpRequest, refused: QueueRefused, back: str) -> HttpResponse:
    """Say why nothing was queued; a batch already in progress is linked (the message is escaped, the link ours)."""
    if isinstance(refused, BatchInProgress):
        link = format_html('<a href="{}">Open batch {}</a>', reverse("batch_detail", args=[refused.batch.pk]),
                           refused.batch.pk)
        messages.warning(request, format_html("{} {}", refused.message, link))
    else:
        messages.error(request, refused.message)
    return redirect(back)


def _page_number(request: HttpRequest, total: int) -> tuple[int, int]:
    """The page asked for (1-based, clamped to the pages there are) and how many pages there are."""
    pages = max(1, -(-total // ROWS_PER_PAGE))
    raw = request.GET.get("page", "")
    number = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 9 else 1
    return min(max(number, 1), pages), pages


def _page_of_checks(batch: Batch, number: int):
    """The checks on page `number`, by server name (the batch's rows are paginated, ROWS_PER_PAGE a page)."""
    start = (number - 1) * ROWS_PER_PAGE
    return batch.checks.order_by(Lower("server__name"), "pk")[start:start + ROWS_PER_PAGE]


def _cursor(stamp: datetime | None) -> str:
    return str(int(stamp.timestamp() * 1_000_000)) if stamp else "0"


def _since(request: HttpRequest) -> datetime | None:
    """The cursor the poll sent back (microseconds since the epoch); None when absent or malformed."""
    raw = request.GET.get("since", "")
    if not (raw.isascii() and raw.isdigit() and len(raw) < 19):
        return None
    return datetime.fromtimestamp(int(raw) / 1_000_000, tz=UTC)


def _batch_context(request: HttpRequest, batch: Batch) -> dict:
    progress, newest = batch.progress_and_cursor()
    number, pages = _page_number(request, progress["total"])
    return {"batch": batch, "progress": progress, "cursor": _cursor(newest), "page": number, "pages": pages,
            "previous_page": number - 1, "next_page": number + 1 if number < pages else 0}


@require_GET
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _get_batch_for_user(request, pk)
    context = _batch_context(request, batch)
    context["checks"] = _page_of_checks(batch, context["page"]).select_related("server")
    return render(request, "checks/batch.html", context)


@require_GET
def batch_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The poll: the counts, plus the rows of the page shown whose state changed since the cursor it sent
    (out-of-band swaps); every row of the page once the batch is done, and 286 so the polling stops."""
    batch = _get_batch_for_user(request, pk)
    context = _batch_context(request, batch)
    changed = Check.objects.filter(pk__in=_page_of_checks(batch, context["page"]).values("pk"))
    since = _since(request)
    if since is not None and not context["progress"]["finished"]:
        changed = changed.alias(changed_at=Check.changed_at()).filter(changed_at__gt=since)
    context["changed"] = changed.select_related("server").order_by(Lower("server__name"), "pk")
    response = render(request, "checks/batch.html#progress", context)
    if context["progress"]["finished"]:
        response.status_code = HttpResponseStopPolling.status_code
    return response


@require_POST
@role_required(OPERATOR)
def batch_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _get_batch_for_user(request, pk)
    if batch.started_by_id != request.user.pk and not has_role(request.user, ADMIN):
        return forbidden(request, ADMIN, f"Only {batch.started_by_name}, who started this batch, or an admin "
                                         "can cancel it.")
    cancelled = batch.cancel()
    audit.record(request, Action.BATCH_CANCEL, batch, cancelled=cancelled, started_by=batch.started_by_name)
    messages.success(request, f"Cancelled {cancelled} queued check{'s' if cancelled != 1 else ''}; "
                              "checks already running will finish.")
    return redirect("batch_detail", pk=batch.pk)


@require_POST
@role_required(OPERATOR)
def batch_rerun_failed(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _get_batch_for_user(request, pk)
    servers = list(Server.objects.for_tenant(request.user.tenant_id).active().filter(pk__in=batch.failed_servers()))
    if not servers:
        messages.info(request, "No check of this batch failed; nothing to re-run.")
        return redirect("batch_detail", pk=batch.pk)
    try:
        new_batch, skipped = Batch.objects.queue(servers, request.user, rerun_of=batch)
    except QueueRefused as refused:
        return _refused(request, refused, reverse("batch_detail", args=[batch.pk]))
    audit.record(request, Action.BATCH_RERUN, new_batch, rerun_of=batch.pk, servers=len(servers) - len(skipped))
    return redirect("batch_detail", pk=new_batch.pk)

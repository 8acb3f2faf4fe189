"""Batches: the check run on many servers at once, its progress, cancelling it, re-running its failures."""

from django.contrib import messages
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from checks import fleet_state
from checks.models import Batch, BatchInProgress, QueueRefused
from dashboard import entra
from dashboard.auth_views import sign_in_again
from dashboard.models import Server


def _get_batch_for_user(request: HttpRequest, pk: int) -> Batch:
    return get_object_or_404(Batch.objects.for_tenant(request.user.tenant_id), pk=pk)


@require_POST
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
        messages.error(request, "Select at least one server (or use “Run all matching”).")
        return redirect(back)
    if entra.arm_token(request.user).interaction_required:
        return sign_in_again(request, next_url=back)
    try:
        batch, skipped = Batch.objects.queue(servers, request.user)
    except QueueRefused as refused:
        return _refused(request, refused, back)
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


def _batch_context(batch: Batch) -> dict:
    checks = batch.checks.select_related("server").order_by(Lower("server__name"))
    return {"batch": batch, "progress": batch.progress(), "checks": checks}


@require_GET
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _get_batch_for_user(request, pk)
    return render(request, "checks/batch.html", _batch_context(batch))


@require_GET
def batch_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The whole batch in one poll: counts, bar and every check's state; 286 once nothing is left."""
    batch = _get_batch_for_user(request, pk)
    context = _batch_context(batch)
    response = render(request, "checks/batch.html#progress", context)
    if context["progress"]["finished"]:
        response.status_code = HttpResponseStopPolling.status_code
    return response


@require_POST
def batch_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _get_batch_for_user(request, pk)
    cancelled = batch.cancel()
    messages.success(request, f"Cancelled {cancelled} queued check{'s' if cancelled != 1 else ''}; "
                              "checks already running will finish.")
    return redirect("batch_detail", pk=batch.pk)


@require_POST
def batch_rerun_failed(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _get_batch_for_user(request, pk)
    servers = list(Server.objects.for_tenant(request.user.tenant_id).active().filter(pk__in=batch.failed_servers()))
    if not servers:
        messages.info(request, "No check of this batch failed; nothing to re-run.")
        return redirect("batch_detail", pk=batch.pk)
    try:
        new_batch, _ = Batch.objects.queue(servers, request.user, rerun_of=batch)
    except QueueRefused as refused:
        return _refused(request, refused, reverse("batch_detail", args=[batch.pk]))
    return redirect("batch_detail", pk=new_batch.pk)

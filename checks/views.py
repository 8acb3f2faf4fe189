"""Running a check, watching it, and the history: list, detail and CSV export."""

import csv

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models.functions import Lower
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from checks.forms import HistoryFilterForm, RunCheckForm
from checks.models import Batch, Check
from checks.tasks import AlreadyActive, cancel_batch, queue_batch, queue_check
from dashboard import entra, fleet
from dashboard.auth_views import sign_in_again
from dashboard.models import Server

HISTORY_PAGE_SIZE = 50


def _get_check_for_user(request: HttpRequest, pk: int) -> Check:
    return get_object_or_404(Check.objects.for_tenant(request.user.tenant_id).select_related("server"), pk=pk)


def poll_response(response: HttpResponse, check: Check | None) -> HttpResponse:
    """htmx stops polling on 286 (the finished row is still swapped in) and the page hears
    `check-finished`, so the counts at the top of the list catch up."""
    if check is None or not check.is_active:
        response.status_code = HttpResponseStopPolling.status_code
        response["HX-Trigger"] = "check-finished"
    return response


@require_POST
def run(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a check of one server. htmx gets the server's row back; a plain form post is redirected."""

    server = get_object_or_404(
        Server.objects.for_tenant(request.user.tenant_id).active().select_related("last_check"), pk=pk
    )
    form = RunCheckForm(request.POST)
    if form.is_valid() and entra.arm_token(request.user).interaction_required:
        # Azure wants the user back (expired or revoked sign-in, consent, MFA): sign in, then run this check.
        return _sign_in_then_run(request, server, form.cleaned_data["backup_name"])
    notice = ""
    status = 200
    queued = False
    if not form.is_valid():
        status = 422 if request.htmx else 400
    else:
        try:
            queue_check(server, request.user, form.cleaned_data["backup_name"], settings.AZURE_LTR_API_VERSION)
            queued = True
        except AlreadyActive as exc:
            server.last_check = exc.check
            notice = "A check of this server is already in progress; it was not started twice."
        server.refresh_from_db()
        form = None
    if not request.htmx:
        if status != 200:
            messages.error(request, "; ".join(form.errors.get("backup_name", ["Invalid backup name."])))
        elif notice:
            messages.info(request, notice)
        return redirect("server_detail", pk=server.pk)
    context = {**fleet.server_row_context(server, form, notice, request=request),
               "strip": fleet.recent_outcomes([server.pk])[server.pk]}
    response = render(request, "dashboard/server_list.html#server-row", context, status=status)
    if queued:
        # The server page's history listens for this and shows the new check at the top.
        response["HX-Trigger"] = "check-queued"
    return response


def _sign_in_then_run(request: HttpRequest, server: Server, backup_name: str, claims: str = "") -> HttpResponse:
    back = request.htmx.current_url_abs_path if request.htmx else reverse("server_detail", args=[server.pk])
    return sign_in_again(request, next_url=back, claims_challenge=claims or None,
                         after={"run": server.pk, "backup_name": backup_name})


@require_POST
def reauth(request: HttpRequest, pk: int) -> HttpResponse:
    """Sign in again (answering any claims challenge the check recorded), then re-run the check."""
    check = _get_check_for_user(request, pk)
    if check.server.archived_at is not None:
        raise Http404
    return _sign_in_then_run(request, check.server, check.backup_name, check.claims_challenge)


@require_GET
def check_row(request: HttpRequest, pk: int) -> HttpResponse:
    check = _get_check_for_user(request, pk)
    response = render(request, "checks/history.html#check-row", {"check": check})
    return poll_response(response, check)


def _filtered_history(request: HttpRequest) -> tuple[HistoryFilterForm, object]:
    tenant = request.user.tenant_id
    servers = Server.objects.for_tenant(tenant).order_by("name")
    form = HistoryFilterForm(request.GET or None, servers=servers)
    return form, form.filter(Check.objects.for_tenant(tenant).for_history())


@require_GET
def history(request: HttpRequest) -> HttpResponse:
    form, checks = _filtered_history(request)
    page = Paginator(checks, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "checks/history.html", {"form": form, "page": page, "query": query.urlencode()})


@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    check = _get_check_for_user(request, pk)
    return render(request, "checks/detail.html", {"check": check})


EXPORT_COLUMNS = [
    ("id", lambda c: c.pk),
    ("created_at", lambda c: c.created_at.isoformat()),
    ("finished_at", lambda c: c.finished_at.isoformat() if c.finished_at else ""),
    ("duration_seconds", lambda c: f"{c.duration.total_seconds():.3f}" if c.duration else ""),
    ("subscription_id", lambda c: c.server.subscription_id),
    ("resource_group", lambda c: c.server.resource_group),
    ("server", lambda c: c.server.name),
    ("backup_name", lambda c: c.backup_name),
    ("status", lambda c: c.status),
    ("category", lambda c: c.category),
    ("number_of_containers", lambda c: "" if c.number_of_containers is None else c.number_of_containers),
    ("http_status", lambda c: c.http_status or ""),
    ("error_code", lambda c: c.error_code),
    ("error_message", lambda c: c.error_message),
    ("requested_by", lambda c: c.requested_by_name),
    ("requested_by_oid", lambda c: c.requested_by_oid),
    ("api_version", lambda c: c.api_version),
    ("x_ms_request_id", lambda c: c.request_id),
    ("x_ms_correlation_request_id", lambda c: c.correlation_request_id),
    ("x_ms_client_request_id", lambda c: c.client_request_id),
    ("attempts", lambda c: c.attempts),
]


def _spreadsheet_safe(value) -> str:
    # A cell that starts with = + - @ is a formula in Excel; ARM error text is not ours to trust.
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _Echo:
    def write(self, value):
        return value


@require_GET
def export(request: HttpRequest) -> HttpResponse:
    form, checks = _filtered_history(request)
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow([name for name, _ in EXPORT_COLUMNS])
        for check in checks.iterator(chunk_size=500):
            yield writer.writerow([_spreadsheet_safe(get(check)) for _, get in EXPORT_COLUMNS])

    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    return StreamingHttpResponse(
        rows(),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="ltr-checks-{stamp}.csv"'},
    )


# ---- Batches: many servers at once -------------------------------------------------------------------


def _get_batch_for_user(request: HttpRequest, pk: int) -> Batch:
    return get_object_or_404(Batch.objects.for_tenant(request.user.tenant_id), pk=pk)


@require_POST
def batch_create(request: HttpRequest) -> HttpResponse:
    """Run the check on the selected servers, or on all servers matching the list's filters."""
    form, _, matching = fleet.filtered_servers(request, request.POST)
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
    batch, skipped = queue_batch(servers, request.user, settings.AZURE_LTR_API_VERSION)
    if skipped:
        messages.info(request, f"{len(skipped)} server(s) already had a check in progress and were left out.")
    return redirect("batch_detail", pk=batch.pk)


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
    cancelled = cancel_batch(batch)
    messages.success(request, f"Cancelled {cancelled} queued check{'s' if cancelled != 1 else ''}; "
                              "checks already running will finish.")
    return redirect("batch_detail", pk=batch.pk)


@require_POST
def batch_rerun_failed(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _get_batch_for_user(request, pk)
    server_ids = batch.checks.filter(status__in=Check.RERUNNABLE_STATUSES).values("server_id")
    servers = list(Server.objects.for_tenant(request.user.tenant_id).active().filter(pk__in=server_ids))
    if not servers:
        messages.info(request, "No check of this batch failed; nothing to re-run.")
        return redirect("batch_detail", pk=batch.pk)
    new_batch, skipped = queue_batch(servers, request.user, settings.AZURE_LTR_API_VERSION, rerun_of=batch)
    return redirect("batch_detail", pk=new_batch.pk)

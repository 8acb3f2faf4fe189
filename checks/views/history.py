"""Watching a check, and the history: list, one check's page, and the CSV export."""

import csv

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseStopPolling, trigger_client_event

from checks.forms import HistoryFilterForm
from checks.models import Check
from dashboard.models import Server

HISTORY_PAGE_SIZE = 50


def get_check_for_user(request: HttpRequest, pk: int) -> Check:
    """The user's tenant's check `pk`, with its server; 404 otherwise."""
    return get_object_or_404(Check.objects.for_tenant(request.user.tenant_id).select_related("server"), pk=pk)


def poll_response(response: HttpResponse, check: Check | None) -> HttpResponse:
    """htmx stops polling on 286 (the finished row is still swapped in) and the page hears
    `check-finished`, so the counts at the top of the list catch up."""
    if check is None or not check.is_active:
        response.status_code = HttpResponseStopPolling.status_code
        trigger_client_event(response, "check-finished")
    return response


@require_GET
def check_row(request: HttpRequest, pk: int) -> HttpResponse:
    check = get_check_for_user(request, pk)
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
    """A check's page; while it is active, htmx polls for the check's part of the page alone."""
    check = get_check_for_user(request, pk)
    template_name = "checks/detail.html"
    if request.htmx:
        template_name += "#check"
    return render(request, template_name, {"check": check})


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

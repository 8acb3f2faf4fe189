"""The evidence report as a page that prints cleanly, and as CSV and JSON with the same rows and header facts.

Tenant-scoped like the server list (the same filters, the tenant's active servers): nothing in it the viewer
could not see on the dashboard. A bad filter is said on the page and selects no server; a download asked
with one answers 400 with what is wrong, not a file that looks like an empty report.
"""

import csv
import io
from datetime import UTC

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from checks.fleet_state import apply_filters
from checks.views.history import FORMULA_STARTS
from dashboard import subscriptions
from dashboard.forms import refused_download
from dashboard.models import Server
from evidence import report
from evidence.forms import EvidenceForm


def _evidence(request: HttpRequest, last_changes: int | None = None) -> tuple[EvidenceForm, list[report.Row], dict]:
    """The form, the rows it selects, and the facts every form of the report carries at its head."""
    tenant_id = request.user.tenant_id
    everything = Server.objects.for_tenant(tenant_id).active()
    places = everything.order_by().values_list("subscription_id", "resource_group").distinct()
    form = EvidenceForm(request.GET, places=list(places), subscription_names=subscriptions.names_for(request))
    rows, start, end = [], None, None
    if form.is_valid():
        start, end = form.period()
        rows = report.build(apply_filters(everything, form.cleaned_data, tenant_id), tenant_id, start, end,
                            last_changes=last_changes)
    user = request.user
    facts = {
        "generated_by": f"{user} ({user.upn})" if user.upn else str(user),
        "generated_at": timezone.now().astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "tenant_id": tenant_id,
        "period_from": f"{form.cleaned_data['start']:%Y-%m-%d}" if start else "",
        "period_to": f"{form.cleaned_data['end']:%Y-%m-%d}" if end else "",
        "period_note": "whole days in UTC, both included",
        "filters": form.filter_words() if start else "invalid filters: no server selected",
        "servers": len(rows),
        "servers_without_ltr_success": sum(r.no_backup_in_period for r in rows),
        "servers_not_ready_at_end": sum(r.not_ready_at_end for r in rows),
    }
    return form, rows, facts


@require_GET
def report_page(request: HttpRequest) -> HttpResponse:
    form, rows, facts = _evidence(request, last_changes=report.PAGE_CHANGES)
    query = request.GET.urlencode()
    return render(request, "evidence/report.html", {
        "form": form, "rows": rows, "facts": facts, "query": query,
        "gaps": [r for r in rows if r.has_gap], "columns": len(report.COLUMNS),
        "subscription_names": subscriptions.names_for(request),  # (read once a request)
    })



def _filename(facts: dict, extension: str) -> str:
    return f"ltr-evidence-{facts['period_from'] or 'none'}-to-{facts['period_to'] or 'none'}.{extension}"


def _cell(value):
    """A CSV cell: text that a spreadsheet would run as a formula is defused (names and labels are not ours)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


@require_GET
def report_csv(request: HttpRequest) -> HttpResponse:
    """The columns, one row per server, the header facts as "# name: value" rows, then the end marker: a file
    cut short lacks that last row."""
    form, rows, facts = _evidence(request)
    if form.errors:
        return refused_download(form, "report")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(report.COLUMNS)
    for row in rows:
        writer.writerow([_cell(v) for v in row.columns().values()])
    for name, value in facts.items():
        writer.writerow([_cell(f"# {name}: {value}")])
    writer.writerow([f"# end of evidence report: {len(rows)} rows"])
    return HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{_filename(facts, "csv")}"'})


@require_GET
def report_json(request: HttpRequest) -> HttpResponse:
    """{"meta": the header facts and the columns, "servers": the rows (each with its readiness changes),
    "end_of_report": true}."""
    form, rows, facts = _evidence(request)
    if form.errors:
        return refused_download(form, "report")
    servers = [{**row.columns(), "readiness_change_list": [
        {"at": report.stamp(c["at"]), "from": row.words(c["from"]), "to": row.words(c["to"]), "reason": c["reason"]}
        for c in row.changes]} for row in rows]
    body = {"meta": {**facts, "columns": report.COLUMNS}, "servers": servers, "end_of_report": True}
    return JsonResponse(body, json_dumps_params={"ensure_ascii": False}, headers={
        "Content-Disposition": f'attachment; filename="{_filename(facts, "json")}"'})

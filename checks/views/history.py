"""Watching a check, and the history: list (keyset pages), one check's page, the server filter's suggestions,
and the exports (CSV and JSON Lines)."""

import csv
import io
import json
import logging
from datetime import timedelta

from django.db import connection
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseStopPolling, trigger_client_event

from checks import copy_export, history_row
from checks.forms import HistoryFilterForm
from checks.models import Check
from dashboard import keyset, subscriptions
from dashboard.models import Server

HISTORY_PAGE_SIZE = 50
log = logging.getLogger("checks.export")


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
    # A row of a server's own page has no Server column (checks/server_detail.html); its poll keeps it so.
    of_server = request.GET.get("of_server") == "1"
    names = {} if of_server else subscriptions.names_for(request)
    return poll_response(HttpResponse(history_row.row(check, of_server=of_server, subscription_names=names)), check)


def _filtered_history(request: HttpRequest) -> tuple[HistoryFilterForm, object]:
    form = HistoryFilterForm(request.GET or None, user=request.user)
    return form, form.filter(Check.objects.for_tenant(request.user.tenant_id).newest_first())


@require_GET
def history(request: HttpRequest) -> HttpResponse:
    form, checks = _filtered_history(request)
    query = request.GET.copy()
    query.pop("cursor", None)
    query.pop("page", None)  # links from before the pages had cursors
    # Unfiltered, the first 10,001 checks are counted in the page's order, off the (tenant, created_at, id)
    # index: unordered, PostgreSQL read them from the table itself (most rows are the larger tenant's), 3-10 ms
    # where the index takes ~1.5. Filtered, unordered lets it pick the index that has the filter's rows together
    # (in order, a rare status and category took 3x longer).
    counted = checks if not any(query.values()) else checks.order_by()
    page = keyset.paginate(history_row.read(checks), HISTORY_PAGE_SIZE, request.GET.get("cursor"), counted=counted)
    return render(request, "checks/history.html", {"form": form, "page": page, "query": query.urlencode()})


SERVER_SEARCH_LIMIT = 20


@require_GET
def server_names(request: HttpRequest) -> JsonResponse:
    """Suggestions for the history's server filter: up to 20 of the tenant's servers whose name has `q`."""
    q = request.GET.get("q", "").strip()[:100].replace("\x00", "")
    servers = Server.objects.for_tenant(request.user.tenant_id)
    if q:
        servers = servers.filter(name__icontains=q)
    rows = servers.order_by(Lower("name"), "resource_group").values_list("name", "resource_group")
    return JsonResponse({"servers": [{"name": n, "resource_group": g} for n, g in rows[:SERVER_SEARCH_LIMIT]]})


@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A check's page; while it is active, htmx polls for the check's part of the page alone."""
    check = get_check_for_user(request, pk)
    template_name = "checks/detail.html"
    if request.htmx:
        template_name += "#check"
    return render(request, template_name, {"check": check})


# The exported columns and the values they come from: the export reads these and nothing else.
EXPORT_COLUMNS = [
    ("id", "id"),
    ("created_at", "created_at"),
    ("finished_at", "finished_at"),
    ("duration_seconds", "started_at"),
    ("subscription_id", "server__subscription_id"),
    ("resource_group", "server__resource_group"),
    ("server", "server__name"),
    ("backup_name", "backup_name"),
    ("status", "status"),
    ("category", "category"),
    ("number_of_containers", "number_of_containers"),
    ("http_status", "http_status"),
    ("error_code", "error_code"),
    ("error_message", "error_message"),
    ("requested_by", "requested_by_name"),
    ("requested_by_oid", "requested_by_oid"),
    ("api_version", "api_version"),
    ("x_ms_request_id", "request_id"),
    ("x_ms_correlation_request_id", "correlation_request_id"),
    ("x_ms_client_request_id", "client_request_id"),
    ("attempts", "attempts"),
    # Last, so files read by position keep their columns; the id stays in subscription_id.
    ("subscription_name", "server__subscription_id"),
]
EXPORT_NAMES = [name for name, _ in EXPORT_COLUMNS]
# Rows are read from the database this many at a time, and sent in pieces of about this many characters.
EXPORT_CHUNK_ROWS = 2000
EXPORT_BUFFER_CHARS = 256 * 1024
# On PostgreSQL the rows are written by COPY (checks.copy_export); off, the Python export (tests compare them).
EXPORT_WITH_COPY = True


def _export_records(checks, names: dict[str, str]):
    """Each check as a list of plain values (str, int, float or None) in EXPORT_COLUMNS' order; `names` gives
    the subscription's display name (empty where none is known)."""
    for row in checks.values_list(*(field for _, field in EXPORT_COLUMNS)).iterator(chunk_size=EXPORT_CHUNK_ROWS):
        record = list(row)
        record[-1] = names.get(record[-1].lower(), "")
        created, finished, started = record[1], record[2], record[3]
        # Always with microseconds, as PostgreSQL's to_char writes them for the COPY export.
        record[1] = created.isoformat(timespec="microseconds")
        record[2] = finished.isoformat(timespec="microseconds") if finished else None
        record[3] = _seconds(finished - started) if started and finished else None
        record[11] = record[11] or None  # http_status: 0 means no answer
        yield record


def _seconds(duration) -> float:
    """The duration in seconds to the millisecond, half away from zero on the exact microseconds (as
    PostgreSQL's round() of a numeric does, so the COPY export writes the same digits)."""
    micro = duration // timedelta(microseconds=1)
    millis = (abs(micro) + 500) // 1000
    return (millis if micro >= 0 else -millis) / 1000


# A cell that starts with one of these is a formula in Excel; ARM error text (and names) are not ours to trust.
FORMULA_STARTS = frozenset("=+-@\t\r")


def _csv_cells(record: list) -> list:
    """A record as CSV cells, text defused; one pass per row, as the export runs it a million times."""
    if record[3] is not None:
        record[3] = f"{record[3]:.3f}"
    if record[10] is not None and record[10] < 0:
        record[10] = str(record[10])
    return [("'" + v if v[:1] in FORMULA_STARTS else v) if type(v) is str else v for v in record]


class CsvLines:
    """CSV as PostgreSQL's COPY writes it (so both exports are the same bytes): every value quoted, an
    empty cell for no value, lines ending in \n; the header and the end line as they are, unquoted."""

    content_type, extension = "text/csv; charset=utf-8", "csv"

    def __init__(self):
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\n", quoting=csv.QUOTE_NOTNULL)

    def head(self) -> None:
        self.buffer.write(",".join(EXPORT_NAMES) + "\n")

    def record(self, record) -> None:
        self.writer.writerow(_csv_cells(record))

    def end(self, rows: int) -> None:
        self.buffer.write(f"# end of export: {rows} rows\n")

    def failed(self, rows: int) -> None:
        self.buffer.write(f"# export FAILED after {rows} rows: this file is incomplete\n")


def _json_time(iso: str | None) -> str | None:
    """A UTC time as PostgreSQL's to_json writes it (the COPY export's): no trailing zeros in the fraction of a
    second, no fraction at all when it is 0 (2026-11-27T21:00:00.12+00:00)."""
    if iso is None:
        return None
    return iso[:-6].rstrip("0").rstrip(".") + iso[-6:]


class JsonLines(CsvLines):
    content_type, extension = "application/jsonl; charset=utf-8", "jsonl"

    def head(self) -> None:
        pass

    def record(self, record) -> None:
        record[1], record[2] = _json_time(record[1]), _json_time(record[2])
        self.buffer.write(json.dumps(dict(zip(EXPORT_NAMES, record, strict=True)), ensure_ascii=False) + "\n")

    def end(self, rows: int) -> None:
        self.buffer.write(json.dumps({"end_of_export": True, "rows": rows}) + "\n")

    def failed(self, rows: int) -> None:
        self.buffer.write(json.dumps({"export_failed": True, "rows": rows}) + "\n")


def _stream(checks, lines: CsvLines, names: dict[str, str]):
    """The export in large pieces, ending in a line that says it is complete and how many rows it has.

    A file cut short (worker killed, connection lost) lacks that line; one that failed here says so.
    """
    lines.head()
    rows = 0
    try:
        for record in _export_records(checks, names):
            lines.record(record)
            rows += 1
            if lines.buffer.tell() >= EXPORT_BUFFER_CHARS:
                yield _drain(lines.buffer)
        lines.end(rows)
    except Exception:
        log.exception("The export failed after %s rows", rows)
        lines.failed(rows)
    yield _drain(lines.buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _export(request: HttpRequest, lines: CsvLines) -> StreamingHttpResponse:
    _form, checks = _filtered_history(request)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    copying = EXPORT_WITH_COPY and connection.vendor == "postgresql"
    as_json = isinstance(lines, JsonLines)
    names = subscriptions.names_for(request)
    return StreamingHttpResponse(
        copy_export.stream(checks, lines, EXPORT_COLUMNS, EXPORT_BUFFER_CHARS, names=names, as_json=as_json)
        if copying else _stream(checks, lines, names),
        content_type=lines.content_type,
        headers={"Content-Disposition": f'attachment; filename="ltr-checks-{stamp}.{lines.extension}"'},
    )


@require_GET
def export(request: HttpRequest) -> HttpResponse:
    return _export(request, CsvLines())


@require_GET
def export_jsonl(request: HttpRequest) -> HttpResponse:
    return _export(request, JsonLines())

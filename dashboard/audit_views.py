"""The audit trail's pages, for the tenant's admins: the list (keyset pages, filters) and its CSV export.

Every query starts from the user's tenant: another tenant's events never appear, whatever the filters say.
"""

import csv
import io
import json
from datetime import datetime, time, timedelta

from django import forms
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from dashboard import keyset
from dashboard.audit import Action, AuditEvent
from dashboard.forms import DayField, refused_download
from dashboard.models import User
from dashboard.roles import ADMIN, role_required

PAGE_SIZE = 50
CURSOR_SALT = "dashboard.audit.cursor"
EXPORT_COLUMNS = ["created_at", "actor_name", "actor_oid", "actor_id", "action", "target_type", "target_id",
                  "target_name", "details", "client_ip"]
EXPORT_CHUNK_ROWS = 2000
# A cell that starts with one of these is a formula in a spreadsheet; names and details are people's text.
FORMULA_STARTS = frozenset("=+-@\t\r")


class AuditFilterForm(forms.Form):
    who = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Who")
    action = forms.ChoiceField(required=False, choices=[("", "Any action"), *Action.choices], label="Action")
    since = DayField(label="From")
    until = DayField(label="To")

    def __init__(self, *args, tenant_id: str, **kwargs):
        super().__init__(*args, **kwargs)
        people = User.objects.filter(tenant_id=tenant_id).order_by("display_name", "pk")
        self.fields["who"].choices = [("", "Anyone"), *((u.pk, str(u)) for u in people)]

    def filter(self, events):
        if not self.is_bound:
            return events
        if not self.is_valid():
            return events.none()
        data = self.cleaned_data
        if data["who"] is not None:
            events = events.filter(actor_id=data["who"])
        if data["action"]:
            events = events.filter(action=data["action"])
        zone = timezone.get_current_timezone()
        if data["since"]:
            events = events.filter(created_at__gte=datetime.combine(data["since"], time.min, zone))
        if data["until"]:
            events = events.filter(created_at__lt=datetime.combine(data["until"] + timedelta(days=1), time.min, zone))
        return events


def _filtered(request: HttpRequest):
    form = AuditFilterForm(request.GET or None, tenant_id=request.user.tenant_id)
    return form, form.filter(AuditEvent.objects.for_tenant(request.user.tenant_id).order_by("-created_at", "-id"))


@require_GET
@role_required(ADMIN)
def audit_list(request: HttpRequest) -> HttpResponse:
    form, events = _filtered(request)
    page = keyset.paginate(events, PAGE_SIZE, request.GET.get("cursor"), salt=CURSOR_SALT, noun="event")
    query = request.GET.copy()
    query.pop("cursor", None)
    return render(request, "dashboard/audit.html", {"form": form, "page": page, "query": query.urlencode()})


def _cell(value) -> object:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def _stream(events):
    """The CSV in pieces of EXPORT_CHUNK_ROWS rows, ending in a line that says it is complete."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    rows = 0
    for record in events.values_list(*EXPORT_COLUMNS).iterator(chunk_size=EXPORT_CHUNK_ROWS):
        writer.writerow([_cell(v) for v in record])
        rows += 1
        if rows % EXPORT_CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    writer.writerow([f"# end of export: {rows} rows"])
    yield buffer.getvalue()


@require_GET
@role_required(ADMIN)
def audit_export(request: HttpRequest) -> HttpResponse:
    form, events = _filtered(request)
    if form.errors:  # what is wrong, not a file that looks like an empty trail
        return refused_download(form, "export")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    return StreamingHttpResponse(_stream(events), content_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="ltr-audit-{stamp}.csv"'})

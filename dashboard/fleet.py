"""What the server list shows about the fleet: filters, the counts at the top, each server's recent
outcomes, and the context of one server's row (shared by the list, the row poll and the run view)."""

from datetime import timedelta

from django.conf import settings
from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber
from django.http import HttpRequest
from django.utils import timezone

from checks.forms import RunCheckForm, proposed_backup_name
from checks.models import Check
from dashboard.forms import ServerFilterForm
from dashboard.models import Server, ServerQuerySet

RECENT_OUTCOMES = 20


def stale_before():
    return timezone.now() - timedelta(hours=settings.STALE_AFTER_HOURS)


def _state_q(state: str) -> Q:
    finished = ~Q(last_check__status__in=Check.ACTIVE_STATUSES)
    return {
        "ready": Q(last_check__status=Check.Status.SUCCEEDED, last_check__created_at__gte=stale_before()),
        "failing": Q(last_check__isnull=False) & finished & ~Q(last_check__status=Check.Status.SUCCEEDED),
        "never": Q(last_check__isnull=True),
        "stale": Q(last_check__status=Check.Status.SUCCEEDED, last_check__created_at__lt=stale_before()),
        "active": Q(last_check__status__in=Check.ACTIVE_STATUSES),
    }[state]


def apply_filters(servers: ServerQuerySet, data: dict) -> ServerQuerySet:
    if data.get("q"):
        servers = servers.filter(Q(name__icontains=data["q"]) | Q(label__icontains=data["q"]))
    if data.get("subscription"):
        servers = servers.filter(subscription_id=data["subscription"])
    if data.get("resource_group"):
        servers = servers.filter(resource_group=data["resource_group"])
    if data.get("state"):
        servers = servers.filter(_state_q(data["state"]))
    return servers


def counts(servers: ServerQuerySet) -> dict:
    return {state: servers.filter(_state_q(state)).count() for state in ("ready", "failing", "never", "stale")}


def recent_outcomes(server_ids: list[int]) -> dict[int, list[Check]]:
    """The last RECENT_OUTCOMES checks of each server, oldest first, in one query."""
    ranked = (
        Check.objects.filter(server_id__in=server_ids)
        .annotate(rank=Window(RowNumber(), partition_by=[F("server_id")], order_by=[F("created_at").desc()]))
        .filter(rank__lte=RECENT_OUTCOMES)
        .only("id", "server_id", "status", "created_at", "number_of_containers", "error_code")
    )
    strips: dict[int, list[Check]] = {pk: [] for pk in server_ids}
    for check in ranked:
        strips[check.server_id].append(check)
    for strip in strips.values():
        strip.sort(key=lambda c: c.created_at)
    return strips


def server_row_context(server: Server, form: RunCheckForm | None = None, notice: str = "", request=None) -> dict:
    return {
        "server": server,
        "run_form": form or RunCheckForm(initial={"backup_name": proposed_backup_name(server.name)}),
        "notice": notice,
        # The same row sits on the server's own page, without the list's checkbox and link.
        "on_detail": request is not None and "on_detail" in (request.GET if request.method == "GET" else request.POST),
    }


def filtered_servers(request: HttpRequest, data) -> tuple[ServerFilterForm, object, object]:
    """The tenant's active servers, the filter form over them, and the servers it selects."""
    everything = Server.objects.for_tenant(request.user.tenant_id).active()
    form = ServerFilterForm(data or None, servers=list(everything.only("subscription_id", "resource_group")))
    if form.is_bound and not form.is_valid():
        return form, everything, everything.none()
    return form, everything, apply_filters(everything, form.cleaned_data if form.is_bound else {})

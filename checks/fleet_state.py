"""What the server list shows about the fleet: each server's state (ready, failing, never checked, stale,
checking now), the filters over it, the counts at the top, and each server's recent outcomes."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, F, Q, Window
from django.db.models.functions import RowNumber
from django.http import HttpRequest
from django.utils import timezone

from checks.forms import ServerFilterForm
from checks.models import Check
from dashboard.models import Server, ServerQuerySet

RECENT_OUTCOMES = 20
COUNTED_STATES = ("ready", "failing", "never", "stale")


def stale_before():
    return timezone.now() - timedelta(hours=settings.STALE_AFTER_HOURS)


def state_q(state: str) -> Q:
    """The servers in `state`, judged by their last check."""
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
        servers = servers.filter(state_q(data["state"]))
    return servers


def counts(servers: ServerQuerySet) -> dict:
    """How many servers are in each state, and in all: one query."""
    return servers.aggregate(
        total=Count("pk"), **{state: Count("pk", filter=state_q(state)) for state in COUNTED_STATES}
    )


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


def filtered_servers(request: HttpRequest, data) -> tuple[ServerFilterForm, ServerQuerySet, ServerQuerySet]:
    """The tenant's active servers, the filter form over them, and the servers it selects."""
    everything = Server.objects.for_tenant(request.user.tenant_id).active()
    form = ServerFilterForm(data or None, servers=list(everything.only("subscription_id", "resource_group")))
    if form.is_bound and not form.is_valid():
        return form, everything, everything.none()
    return form, everything, apply_filters(everything, form.cleaned_data if form.is_bound else {})

"""What the server list shows about the fleet: each server's readiness (ready, not ready, never checked,
stale, checking now; see checks.readiness), the filters over it, the counts at the top, each server's recent
outcomes, and the signed-in user's own last attempt where it failed for a reason of theirs."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, F, OuterRef, Q, Subquery, Window
from django.db.models.functions import RowNumber
from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from armclient.outcomes import Category
from backups import summary
from checks.forms import ServerFilterForm
from checks.models import Check
from checks.readiness import State
from dashboard import subscriptions
from dashboard.models import Server, ServerQuerySet

RECENT_OUTCOMES = 20
COUNTED_STATES = ("ready", "not_ready", "never", "stale")


def stale_before():
    return timezone.now() - timedelta(hours=settings.STALE_AFTER_HOURS)


def state_q(state: str) -> Q:
    """The servers in `state`, judged by their readiness (what the last conclusive check said)."""
    return {
        "ready": Q(readiness__state=State.READY, readiness__last_conclusive_at__gte=stale_before()),
        "not_ready": Q(readiness__state=State.NOT_READY),
        "never": Q(readiness__isnull=True),
        "stale": Q(readiness__state=State.READY, readiness__last_conclusive_at__lt=stale_before()),
        "active": Q(last_check__status__in=Check.ACTIVE_STATUSES),
    }[state]


def with_my_last_attempt(servers: ServerQuerySet, user) -> ServerQuerySet:
    """Each server with the category and time of `user`'s own newest finished check of it."""
    mine = Check.objects.filter(server=OuterRef("pk"), requested_by=user, finished_at__isnull=False).order_by(
        "-created_at", "-id")
    return servers.select_related("readiness").annotate(
        my_last_category=Subquery(mine.values("category")[:1]), my_last_at=Subquery(mine.values("finished_at")[:1]))


def my_last_attempt_note(server) -> str:
    """ "Permission missing" when the user's own newest attempt failed for a reason of theirs (not the
    server's) after the server's last conclusive check; else ""."""
    category = getattr(server, "my_last_category", None)
    if not category or Category(category).is_about_the_server:
        return ""
    readiness = getattr(server, "readiness", None)  # None when never conclusively checked
    if readiness is not None and server.my_last_at <= readiness.last_conclusive_at:
        return ""
    return Category(category).label


def apply_filters(servers: ServerQuerySet, data: dict, tenant_id: str = "") -> ServerQuerySet:
    if data.get("q"):
        servers = servers.filter(Q(name__icontains=data["q"]) | Q(label__icontains=data["q"]))
    if data.get("subscription"):
        servers = servers.filter(subscription_id=data["subscription"])
    if data.get("resource_group"):
        servers = servers.filter(resource_group=data["resource_group"])
    if data.get("state"):
        servers = servers.filter(state_q(data["state"]))
    if data.get("backup"):
        servers = summary.filter_last_backup(servers, data["backup"], tenant_id)
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
        .only("id", "server_id", "status", "category", "created_at", "number_of_containers", "error_code")
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
    form = ServerFilterForm(data or None, servers=list(everything.only("subscription_id", "resource_group")),
                            subscription_names=SimpleLazyObject(lambda: subscriptions.names_for(request)))
    if form.is_bound and not form.is_valid():
        return form, everything, everything.none()
    return form, everything, apply_filters(everything, form.cleaned_data if form.is_bound else {},
                                           request.user.tenant_id)

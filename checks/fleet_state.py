"""What the server list shows about the fleet: each server's readiness (ready, not ready, never checked,
stale, checking now; see checks.readiness), the filters over it, the counts at the top, the sorts, a page of
servers with each one's recent outcomes (checks.strip), and the signed-in user's own last attempt where it
failed for a reason of theirs."""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce, Lower
from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from armclient.outcomes import Category
from backups import summary
from checks import fleet_read
from checks.forms import ServerFilterForm
from checks.models import Check
from checks.readiness import State
from dashboard import subscriptions
from dashboard.models import Server, ServerQuerySet

SERVERS_PER_PAGE = 50
COUNTED_STATES = ("ready", "not_ready", "never", "stale")

# ?sort=<key> sorts the worst or the oldest first, ?sort=-<key> the other way. Each key's columns are those of
# an index of the servers' table, tenant first (dashboard.Server.Meta.indexes), read forwards or backwards: never
# changed counts as since the server was added, never checked as check 0. The last LTR backup: backups.summary.
SORTS = {
    "name": ("Sort by name", [Lower("name"), F("resource_group"), F("subscription_id")]),
    "readiness": ("Sort by readiness: not known yet, then not ready, then ready",
                  [F("readiness_state"), Lower("name"), F("id")]),
    "changed": ("Sort by when the readiness last changed, oldest first",
                [Coalesce("readiness_since", "added_at"), F("id")]),
    "checked": ("Sort by the last check, oldest (and never) first", [Coalesce("last_check_id", Value(0)), F("id")]),
    summary.SORT_KEY: ("Sort by the last successful LTR backup, oldest (and none) first", None),
}
DEFAULT_SORT = "name"


def stale_before():
    return timezone.now() - timedelta(hours=settings.STALE_AFTER_HOURS)


def state_q(state: str) -> Q:
    """The servers in `state`, judged by their readiness (what the last conclusive check said)."""
    return {
        "ready": Q(readiness__state=State.READY, readiness__last_conclusive_at__gte=stale_before()),
        # These two from the server's own copy of its readiness's state (kept with it: checks.readiness, .ending),
        # read off the list's indexes of the servers' table without a join.
        "not_ready": Q(readiness_state=State.NOT_READY),
        "never": Q(readiness_state=""),
        "stale": Q(readiness__state=State.READY, readiness__last_conclusive_at__lt=stale_before()),
        "active": Q(last_check__status__in=Check.ACTIVE_STATUSES),
    }[state]


def my_last_attempt_note(server) -> str:
    """ "Permission missing" when the user's own newest attempt failed for a reason of theirs (not the
    server's) after the server's last conclusive check; else ""."""
    mine = getattr(server, "my_last", None) or {}
    category = mine.get("category")
    if not category or Category(category).is_about_the_server:
        return ""
    readiness = getattr(server, "readiness", None)  # None when never conclusively checked
    if readiness is not None and _moment(mine["at"]) <= readiness.last_conclusive_at:
        return ""
    return Category(category).label


def _moment(text: str) -> datetime:
    """A time as JSON has it: ISO with its offset (PostgreSQL), or naive UTC (SQLite)."""
    at = datetime.fromisoformat(text)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


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


# The counts at the top, in one statement written once (Django built it anew for every page: 2 ms of 6): the tenant's
# active servers grouped by place and by the copy of their readiness's state they keep, read off one index
# (dashboard.Server's server_places_state_idx: PostgreSQL reads no table), each group with how many of the tenant's
# ready servers were checked since the cut-off (their readiness rows, less archived servers': one subquery that
# does not depend on the group, read once). Joining every server to its readiness instead was most of the
# list's database time (7.8 ms at 9,000 servers). Plain SQL that SQLite runs too.
_OVERVIEW = """
SELECT s.subscription_id, s.resource_group, s.readiness_state, COUNT(s.id),
       (SELECT COUNT(r.server_id) FROM checks_readiness r
        WHERE r.tenant_id = %s AND r.state = %s AND r.last_conclusive_at >= %s
          AND NOT EXISTS (SELECT 1 FROM dashboard_server a WHERE a.id = r.server_id AND a.archived_at IS NOT NULL))
FROM dashboard_server s
WHERE s.tenant_id = %s AND s.archived_at IS NULL
GROUP BY s.subscription_id, s.resource_group, s.readiness_state
"""


def overview(tenant_id: str) -> tuple[dict, list[tuple[str, str]]]:
    """How many of the tenant's active servers are in each state, and in all (stale: ready, but not checked
    since the cut-off), and the places (subscription, resource group) they are in, for the filters' choices."""
    with connection.cursor() as cursor:
        cutoff = connection.ops.adapt_datetimefield_value(stale_before())  # (SQLite: the text Django stores)
        cursor.execute(_OVERVIEW, [tenant_id, State.READY, cutoff, tenant_id])
        grouped = cursor.fetchall()
    totals = dict.fromkeys(("total", *COUNTED_STATES), 0)
    places = {}
    ready = 0
    for subscription, group, state, n, fresh_ready in grouped:
        places[subscription, group] = True
        totals["total"] += n
        totals["ready"] = fresh_ready
        if state == State.READY:
            ready += n
        elif state in ("", State.NOT_READY):  # (as the filters select them: state_q)
            totals["never" if not state else "not_ready"] += n
    totals["stale"] = ready - totals["ready"]
    return totals, list(places)


def sort_of(query) -> str:
    """The list's sort as asked (?sort=), or by name when it names no sort."""
    sort = query.get("sort", "")
    return sort if sort.removeprefix("-") in SORTS else DEFAULT_SORT


def sort_links(query) -> dict[str, dict]:
    """Each sortable column's head: the query that sorts by it (or reverses it, when sorted by it already), its
    title, and aria-sort when the list is sorted by it. The filters stay; the page starts again."""
    current = sort_of(query)
    links = {}
    for key, (title, _) in SORTS.items():
        link = query.copy()
        link.pop("page", None)
        link["sort"] = "-" + key if current == key else key
        aria = {key: "ascending", "-" + key: "descending"}.get(current, "")
        links[key] = {"query": link.urlencode(), "aria": aria, "title": title}
    return links


def ordered(servers: ServerQuerySet, sort: str) -> ServerQuerySet:
    key, descending = sort.removeprefix("-"), sort.startswith("-")
    if key == summary.SORT_KEY:
        return summary.order_by_last_backup(servers, sort)  # (a join: no annotation, no gap days read)
    return servers.order_by(*(column.desc() if descending else column.asc() for column in SORTS[key][1]))


def page_of_servers(selected: ServerQuerySet, request: HttpRequest,
                    total: int | None = None) -> tuple[Page, list[Server]]:
    """The requested page of the selected servers, in the sort asked for (SORTS), each with its
    last check, readiness, recent outcomes (checks.strip), last LTR backup and the user's own last attempt.

    Two steps: the page's ids from the servers alone (the tenant's servers sorted, without any join), then
    those 50 servers with what each row shows (checks.fleet_read). In one query the planner joined every
    server's last check (a scan of the whole history) before it sorted and cut the page. `total`: how many servers are
    selected, when known already (no second COUNT).
    """
    ids_in_order = ordered(selected, sort_of(request.GET)).values_list("pk", flat=True)
    first = None
    if total is None and request.GET.get("page", "1") == "1":
        # Page 1 of a search or filter: its ids and one more tell whether it is the only page; if it is (a
        # search finds a few), they are counted by reading them, not by a COUNT(*) over the tenant's servers.
        first = list(ids_in_order[:SERVERS_PER_PAGE + 1])
        if len(first) <= SERVERS_PER_PAGE:
            total = len(first)
    paginator = Paginator(ids_in_order, SERVERS_PER_PAGE)
    if total is not None:  # counted already (the counts at the top, or page 1): not a second COUNT(*)
        paginator.count = total
    page = paginator.get_page(request.GET.get("page"))
    ids = first[:SERVERS_PER_PAGE] if first is not None else list(page.object_list)
    page.object_list = ids
    return page, fleet_read.servers(ids, request.user)


def filtered_servers(request: HttpRequest, data,
                     places=None) -> tuple[ServerFilterForm, ServerQuerySet, ServerQuerySet]:
    """The tenant's active servers, the filter form over them, and the servers it selects. `places`: the
    (subscription, resource group) pairs of the tenant's servers, when read already."""
    everything = Server.objects.for_tenant(request.user.tenant_id).active()
    if places is None:
        # The filters' choices from the distinct places (a few dozen), not from every server of the tenant.
        places = list(everything.order_by().values_list("subscription_id", "resource_group").distinct())
    form = ServerFilterForm(data or None, places=places,
                            subscription_names=SimpleLazyObject(lambda: subscriptions.names_for(request)))
    if form.is_bound and not form.is_valid():
        return form, everything, everything.none()
    return form, everything, apply_filters(everything, form.cleaned_data if form.is_bound else {},
                                           request.user.tenant_id)


def counted_total(form: ServerFilterForm, counts: dict) -> int | None:
    """How many servers the list shows, when the counts at the top say it already: all of them (no filter),
    or those of one counted state (the state filter alone); else None (counted with the page)."""
    if form.is_bound and not form.is_valid():
        return None
    chosen = {name for name, value in (form.cleaned_data if form.is_bound else {}).items() if value}
    if not chosen:
        return counts["total"]
    state = form.cleaned_data["state"] if chosen == {"state"} else ""
    return counts[state] if state in COUNTED_STATES else None


def counted_servers(request: HttpRequest, data) -> tuple[ServerFilterForm, ServerQuerySet, ServerQuerySet, dict]:
    """filtered_servers, and the counts at the top of the list (the places from the same query)."""
    counts, places = overview(request.user.tenant_id)
    return (*filtered_servers(request, data, places), counts)

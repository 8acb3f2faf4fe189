"""The charts' own URLs, each loaded by htmx into its placeholder after the page (so a page's own time is not
theirs): the fleet's share of servers ready per day (the server list), one server's readiness band and checks
(the server's page). Without htmx each answers a small page of its own. The drawing is checks.charts."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from checks import charts, fleet_state
from dashboard.views import get_server_for_user

# The list's filters the fleet chart follows: where the servers are and what they are called. Not the state
# (a chart of the ready servers alone is 100% every day) nor the last LTR backup.
FOLLOWED_FILTERS = ("q", "subscription", "resource_group")


def _followed(request: HttpRequest) -> dict[str, str]:
    return {name: request.GET[name][:100] for name in FOLLOWED_FILTERS if request.GET.get(name)}


def _template(request: HttpRequest, name: str) -> str:
    return f"checks/{name}.html#chart" if request.htmx else f"checks/{name}.html"


@require_GET
def fleet_chart(request: HttpRequest) -> HttpResponse:
    """The share of the tenant's servers (as the list filters them) ready on each of the last 7, 30 or 90 days."""
    days = charts.window(request.GET.get("days"))
    filters = _followed(request)
    tenant = request.user.tenant_id
    # Through the list's own form: the same servers as the list (its search trimmed; a bad value, such as a NUL
    # PostgreSQL refuses, matches nothing) rather than the raw query string.
    _, _, servers = fleet_state.filtered_servers(request, filters)
    per_day = charts.fleet_days(servers, tenant, days)
    drawn = charts.bars(per_day)
    context = {
        "days": days, "windows": charts.WINDOWS, "filters": filters, "per_day": per_day, "bars": drawn,
        "summary": charts.fleet_summary(per_day, days), "axis": charts.fleet_axis(drawn),
        "gridlines": charts.gridlines(), "width": charts.WIDTH, "left": charts.LEFT,
        "plot_width": charts.WIDTH - charts.LEFT,
    }
    return render(request, _template(request, "_chart_fleet"), context)


@require_GET
def server_timeline(request: HttpRequest, pk: int) -> HttpResponse:
    """One server's readiness over the last 7, 30 or 90 days, with its checks as ticks."""
    server = get_server_for_user(request, pk, active_only=False)
    days = charts.window(request.GET.get("days"))
    data = charts.server_timeline(server, days)
    band = charts.band(data["start"], data["end"], data["segments"])
    context = {
        "server": server, "days": days, "windows": charts.WINDOWS, "segments": data["segments"], "band": band,
        "widened": any(r.widened for r in band), "left": charts.LEFT, "plot_width": charts.WIDTH - charts.LEFT,
        "ticks": charts.ticks(data["start"], data["end"], data["checks"]), "truncated": data["truncated"],
        "most_ticks": charts.MOST_TICKS, "axis": charts.time_axis(data["start"], data["end"]),
        "summary": charts.timeline_summary(data["segments"], data["checks"], days), "width": charts.WIDTH,
    }
    return render(request, _template(request, "_chart_timeline"), context)

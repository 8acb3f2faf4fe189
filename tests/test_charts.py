"""The pictures of readiness: the geometry from data alone (an empty fleet, one day, a server never checked, 100%
and 0%), and the charts' URLs: the tenant's servers only, the list's filters, and a number of queries that does
not grow with the fleet or its history."""

import html
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from checks import charts
from checks.models import Check, Readiness, ReadinessChange
from dashboard.demo import CONTOSO, FABRIKAM, FABRIKAM_PROD, PROD, STAGING
from dashboard.models import Server
from tests.conftest import ALICE, CHARLIE, make_server
from tests.factories import make_check

TODAY = date(2026, 11, 27)
START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 11, 11, tzinfo=UTC)
INNER = charts.WIDTH - charts.LEFT - charts.RIGHT


# ---- geometry ------------------------------------------------------------------------------------------------

def test_an_empty_fleet_draws_empty_days_and_says_so():
    days = charts.days_back(TODAY, 7, ready_now=0, total_now=0, net_ready={}, added={})
    assert [d.day for d in days] == [TODAY - timedelta(days=n) for n in range(6, -1, -1)]
    assert all(d.share is None for d in days)
    drawn = charts.bars(days)
    assert len(drawn) == 7
    assert {(b.height, b.track_height) for b in drawn} == {(0, 0)}
    assert charts.fleet_summary(days, 7) == "Share of servers ready per day, last 7 days: no server registered."
    assert charts.bars([]) == [] and charts.fleet_axis([]) == []


def test_one_day_is_one_bar_across_the_chart_with_one_label():
    [bar] = charts.bars([charts.Day(TODAY, ready=1, total=4)])
    assert charts.LEFT <= bar.x < charts.LEFT + 2 and bar.x + bar.width == pytest.approx(charts.WIDTH - charts.RIGHT,
                                                                                          abs=2)
    assert bar.height == charts.BARS_HEIGHT / 4
    assert [label for _, label, _ in charts.fleet_axis([bar])] == ["Nov 27"]


def test_all_ready_is_a_full_bar_and_none_ready_an_empty_one_on_its_track():
    full, empty = charts.bars([charts.Day(TODAY - timedelta(days=1), 5, 5), charts.Day(TODAY, 0, 5)])
    assert (full.y, full.height) == (charts.BARS_TOP, charts.BARS_HEIGHT)
    assert (empty.height, empty.y, empty.track_height) == (0, charts.BARS_TOP + charts.BARS_HEIGHT, charts.BARS_HEIGHT)
    assert full.day.words == "2026-11-26: 100% ready (5 of 5)"
    assert empty.day.words == "2026-11-27: 0% ready (0 of 5)"
    summary = charts.fleet_summary([full.day, empty.day], 7)
    assert "100% on 2026-11-26" in summary and "lowest 0% on 2026-11-27" in summary


def test_each_day_back_undoes_that_days_changes_and_registrations():
    days = charts.days_back(TODAY, 3, ready_now=8, total_now=10,
                            net_ready={TODAY: 3, TODAY - timedelta(days=1): -1}, added={TODAY: 2})
    assert [(d.ready, d.total) for d in days] == [(6, 8), (5, 8), (8, 10)]


def test_a_server_never_checked_is_one_unknown_segment_across_the_window():
    pieces = charts.segments(START, END, "unknown", [], [], timedelta(hours=24))
    assert pieces == [charts.Segment(START, END, "unknown")]
    [rect] = charts.band(START, END, pieces)
    assert (rect.x, rect.width, rect.css) == (charts.LEFT, INNER, "unknown")
    assert charts.timeline_summary(pieces, [], 30) == (
        "Readiness over the last 30 days: not known 100%; 0 checks, 0 not passed.")


def test_changes_cut_the_band_and_a_ready_stretch_goes_stale_after_its_last_confirmation():
    day = timedelta(days=1)
    changes = [(START + 2 * day, "ready"), (START + 6 * day, "not_ready"), (START + 8 * day, "ready")]
    confirmations = [START + 2 * day, START + 3 * day, START + 6 * day, START + 8 * day, START + 9 * day]
    pieces = charts.segments(START, END, "unknown", changes, confirmations, timedelta(hours=24))
    assert [(p.start - START, p.end - START, p.state) for p in pieces] == [
        (0 * day, 2 * day, "unknown"),
        (2 * day, 4 * day, "ready"),  # confirmed on day 2 and 3: ready until a day after the last
        (4 * day, 6 * day, "stale"),
        (6 * day, 8 * day, "not_ready"),
        (8 * day, 10 * day, "ready"),  # day 9's confirmation keeps it ready to the end (day 10)
    ]
    shares = charts.share_of_time(pieces)
    assert shares == {"unknown": 20, "ready": 40, "stale": 20, "not_ready": 20}
    rects = charts.band(START, END, pieces)
    assert [r.css for r in rects] == ["unknown", "ready", "stale", "not-ready", "ready"]
    assert rects[1].x == pytest.approx(charts.LEFT + INNER * 0.2)
    assert sum(r.width for r in rects) == pytest.approx(INNER, abs=0.1)


def test_ready_before_the_window_counts_the_confirmation_before_it():
    pieces = charts.segments(START, END, "ready", [], [START - timedelta(hours=20)], timedelta(hours=24))
    assert [(p.end - START, p.state) for p in pieces] == [(timedelta(hours=4), "ready"), (END - START, "stale")]


def test_checks_are_ticks_passed_failed_or_still_running():
    checks = [(START, "succeeded", "passed"), (START + timedelta(days=5), "failed", "throttled"),
              (END, "running", "")]
    drawn = charts.ticks(START, END, checks)
    assert [(t.x, t.css) for t in drawn] == [(charts.LEFT, "passed"), (charts.LEFT + INNER / 2, "failed"),
                                             (charts.WIDTH - charts.RIGHT, "active")]
    assert charts.window("90") == 90 and charts.window("365") == 30 and charts.window(None) == 30


# ---- the URLs ------------------------------------------------------------------------------------------------

def conclude(server, category: str, days_ago: float) -> Check:
    """A check of `server` that ended `days_ago` with `category`, taken in by its readiness."""
    check = make_check(server, status="succeeded" if category == "passed" else "failed", category=category,
                       minutes_ago=days_ago * 24 * 60)
    Readiness.observe(check)
    return check


def bars_in(html: str) -> int:
    return len(re.findall(r'<rect class="chart-bar"', html))


@pytest.mark.django_db
def test_the_fleet_chart_never_counts_another_tenants_servers(client, logged_in):
    long_ago = timezone.now() - timedelta(days=10)
    mine = [make_server(name=f"pg-{n}", added_at=long_ago) for n in range(3)]
    theirs = make_server(tenant_id=FABRIKAM, subscription_id=FABRIKAM_PROD, resource_group="rg-f", name="pg-f",
                         added_at=long_ago)
    conclude(mine[0], "passed", days_ago=3)
    conclude(mine[1], "server_not_ready", days_ago=1)
    conclude(theirs, "passed", days_ago=2)
    logged_in(ALICE["upn"])
    response = client.get("/servers/chart/?days=7", headers={"HX-Request": "true"})
    assert response.status_code == 200
    days = response.context["per_day"]
    assert [(d.ready, d.total) for d in days[-5:]] == [(0, 3), (1, 3), (1, 3), (1, 3), (1, 3)]
    html = response.content.decode()
    assert "<html" not in html and bars_in(html) == 7
    assert f"<title>{timezone.localdate():%Y-%m-%d}: 33% ready (1 of 3)</title>" in html  # the bar's hover
    assert "Share of servers ready per day, last 7 days" in html and "<table>" in html
    client.logout()
    logged_in(CHARLIE["upn"])
    days = client.get("/servers/chart/?days=7", headers={"HX-Request": "true"}).context["per_day"]
    assert (days[-1].ready, days[-1].total) == (1, 1)


@pytest.mark.django_db
def test_the_fleet_chart_follows_the_lists_place_filters_and_leaves_out_archived_servers(client, logged_in):
    prod = make_server(name="pg-prod", added_at=timezone.now() - timedelta(days=2))
    staging = make_server(subscription_id=STAGING, resource_group="rg-staging", name="pg-staging",
                          added_at=timezone.now() - timedelta(days=2))
    archived = make_server(name="pg-gone", archived_at=timezone.now())
    for server in (prod, staging, archived):
        conclude(server, "passed", days_ago=1)
    logged_in(ALICE["upn"])
    everything = client.get("/servers/chart/").context["per_day"]
    assert len(everything) == 30 and (everything[-1].ready, everything[-1].total) == (2, 2)
    only = client.get(f"/servers/chart/?subscription={STAGING}&state=not_ready&days=90").context
    assert len(only["per_day"]) == 90 and (only["per_day"][-1].ready, only["per_day"][-1].total) == (1, 1)
    assert only["filters"] == {"subscription": STAGING}
    page = client.get("/servers/chart/?days=90").content.decode()
    assert "<html" in page and 'aria-current="true">90 days' in page  # without htmx: a page of its own


def make_history(tenant: str, servers: int, changes_each: int, first: int = 0) -> None:
    """`servers` servers, each with `changes_each` readiness changes over the last 80 days, in bulk."""
    now = timezone.now()
    made = Server.objects.bulk_create(
        Server(tenant_id=tenant, subscription_id=PROD, resource_group="rg", name=f"pg-{tenant[:4]}-{first + n}",
               added_at=now - timedelta(days=100)) for n in range(servers))
    checks = Check.objects.bulk_create(
        Check(server=s, tenant_id=tenant, backup_name="b", status="succeeded", category="passed",
              requested_by_tenant=tenant, created_at=now - timedelta(days=80 - k), finished_at=now - timedelta(days=80 - k))
        for s in made for k in range(changes_each))
    states = ["ready", "not_ready"]
    ReadinessChange.objects.bulk_create(
        ReadinessChange(server=c.server, tenant_id=tenant, at=c.finished_at, caused_by=c,
                        from_state=states[(k - 1) % 2] if k else "unknown", to_state=states[k % 2])
        for k, c in ((i % changes_each, c) for i, c in enumerate(checks)))
    Readiness.objects.bulk_create(
        Readiness(server=s, tenant_id=tenant, state=states[(changes_each - 1) % 2], since=now, changed_by=checks[0],
                  last_conclusive=checks[0], last_conclusive_at=now) for s in made)


def queries_of(client, url: str) -> int:
    client.get(url)  # the session and the user's roles cached, as on any later request
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, headers={"HX-Request": "true"}).status_code == 200
    return len(queries)


@pytest.mark.django_db
def test_the_fleet_charts_queries_stay_flat_from_10_to_1000_servers(client, logged_in):
    logged_in(ALICE["upn"])
    make_history(CONTOSO, 10, 3)
    few = queries_of(client, "/servers/chart/?days=90")
    make_history(CONTOSO, 990, 3, first=10)
    assert queries_of(client, "/servers/chart/?days=90") == few
    days = client.get("/servers/chart/?days=90").context["per_day"]
    assert (days[-1].ready, days[-1].total) == (1000, 1000)
    # Each server: unknown -> ready 80 days ago, not ready 79 days ago, ready again 78 days ago.
    assert [d.ready for d in days[-82:-78]] == [0, 1000, 0, 1000]


@pytest.mark.django_db
def test_a_servers_timeline_is_bounded_in_queries_and_scoped_to_the_tenant(client, logged_in):
    server, other = make_server(name="pg-one"), make_server(name="pg-many")
    conclude(server, "passed", days_ago=5)
    for n in range(300):
        conclude(other, "passed" if n % 3 else "server_not_ready", days_ago=n * 0.25)
    logged_in(ALICE["upn"])
    assert queries_of(client, f"/servers/{server.pk}/timeline/") == queries_of(client, f"/servers/{other.pk}/timeline/")
    html = client.get(f"/servers/{other.pk}/timeline/?days=90", headers={"HX-Request": "true"}).content.decode()
    assert html.count('class="chart-tick ') == 300
    assert html.count('class="seg seg-') >= 2 and "Readiness over the last 90 days" in html
    client.logout()
    logged_in(CHARLIE["upn"])
    assert client.get(f"/servers/{server.pk}/timeline/").status_code == 404


@pytest.mark.django_db
def test_the_list_and_the_server_page_load_their_charts_after_the_page(client, logged_in):
    server = make_server()
    logged_in(ALICE["upn"])
    listing = client.get(f"/?subscription={PROD}&page=1").content.decode()
    assert 'hx-get="/servers/chart/?subscription=' in listing and 'hx-trigger="load"' in listing
    detail = client.get(f"/servers/{server.pk}/").content.decode()
    assert f'hx-get="/servers/{server.pk}/timeline/"' in detail
    never = client.get(f"/servers/{server.pk}/timeline/", headers={"HX-Request": "true"}).content.decode()
    assert never.count('class="seg seg-unknown"') == 1 and "Not known (no check had said)" in never


@pytest.mark.django_db
def test_the_fleet_chart_asks_for_itself_again_with_its_days_and_filters_when_a_check_finishes(client, logged_in):
    make_server(name="pg-prod", added_at=timezone.now() - timedelta(days=2))
    make_server(name="pg-other", added_at=timezone.now() - timedelta(days=2))
    logged_in(ALICE["upn"])
    chart = client.get("/servers/chart/?days=7&q=pg-prod", headers={"HX-Request": "true"}).content.decode()
    section = re.search(r'<section id="fleet-chart"[^>]*>', chart).group(0)
    assert 'hx-trigger="check-finished from:body throttle:5s"' in section
    again = client.get(html.unescape(re.search(r'hx-get="([^"]+)"', section).group(1)), headers={"HX-Request": "true"})
    assert again.context["days"] == 7 and again.context["per_day"][-1].total == 1, "the same window and filters"


@pytest.mark.django_db
def test_the_fleet_chart_reads_the_lists_search_as_the_list_does(client, logged_in):
    """The list's form trims the search and refuses what no name holds (a NUL): the chart under it must select
    the same servers, not search for "pg-prod " (none) or answer 500 (PostgreSQL refuses a NUL in a query)."""
    make_server(name="pg-prod", added_at=timezone.now() - timedelta(days=2))
    make_server(name="pg-other", added_at=timezone.now() - timedelta(days=2))
    logged_in(ALICE["upn"])
    listed = client.get("/?q=pg-prod+").context["page"].paginator.count
    charted = client.get("/servers/chart/?q=pg-prod+").context["per_day"][-1].total
    assert (listed, charted) == (1, 1)
    nul = client.get("/servers/chart/?q=pg%00prod")
    assert nul.status_code == 200 and nul.context["per_day"][-1].total == 0, "bad filters match nothing, as on the list"


@pytest.mark.django_db
def test_the_bands_hover_and_its_table_give_the_same_times_outside_utc(client, logged_in, settings):
    """The table under the band says its times in TIME_ZONE (|date); the hover titles must too."""
    settings.TIME_ZONE = "Asia/Tokyo"  # UTC+9 all year: a day and an hour apart from UTC most of the time
    server = make_server(name="pg-tokyo")
    logged_in(ALICE["upn"])
    html = client.get(f"/servers/{server.pk}/timeline/?days=7", headers={"HX-Request": "true"}).content.decode()
    first_row = re.search(r"<tbody>\s*<tr><td>([^<]+)</td>", html).group(1)
    hover = re.search(r'<rect class="seg seg-unknown"[^>]*>\s*<title>([^<]+)</title>', html).group(1)
    assert f": {first_row} to " in hover, (first_row, hover)


@pytest.mark.django_db
def test_without_javascript_the_charts_are_a_link_to_their_own_pages(client, logged_in):
    server = make_server()
    logged_in(ALICE["upn"])
    for page, link in (("/?q=pg", "/servers/chart/?q=pg"), (f"/servers/{server.pk}/", f"/servers/{server.pk}/timeline/")):
        noscript = re.search(r"<noscript>(.*?)</noscript>", client.get(page).content.decode(), re.S).group(1)
        href = html.unescape(re.search(r'href="([^"]+)"', noscript).group(1))
        assert href == link
        whole = client.get(href)  # without htmx: the whole page, the chart in it
        assert whole.status_code == 200 and "<html" in whole.content.decode() and 'class="chart' in whole.content.decode()


def test_a_few_minutes_ready_on_a_30_day_band_is_drawn_wide_enough_to_see():
    """3 minutes of 30 days is 0.05 units of 672: drawn MIN_SEGMENT wide, taken from its neighbours, which keep
    their places; the band still spans the drawing area, and the rect says it was widened."""
    ready_at = START + timedelta(days=12)
    changes = [(START + timedelta(days=2), "not_ready"), (ready_at, "ready"), (ready_at + timedelta(minutes=3),
                                                                                 "not_ready")]
    end = START + timedelta(days=30)
    pieces = charts.segments(START, end, "unknown", changes, [ready_at], timedelta(hours=24))
    assert [p.state for p in pieces] == ["unknown", "not_ready", "ready", "not_ready"]
    rects = charts.band(START, end, pieces)
    short = rects[2]
    assert short.css == "ready" and short.width == pytest.approx(charts.MIN_SEGMENT) and short.widened
    assert short.x == pytest.approx(charts.LEFT + INNER * 12 / 30, abs=0.01)
    assert not any(r.widened for r in rects if r is not short)
    assert rects[0].width == pytest.approx(INNER * 2 / 30, abs=0.01)
    assert sum(r.width for r in rects) == pytest.approx(INNER, abs=0.05)
    assert all(a.x + a.width == pytest.approx(b.x, abs=0.01) for a, b in zip(rects, rects[1:], strict=False))


def test_a_short_stretch_at_now_takes_its_width_from_the_one_before_and_many_share_the_band():
    pieces = [charts.Segment(START, END - timedelta(minutes=1), "not_ready"),
              charts.Segment(END - timedelta(minutes=1), END, "ready")]
    last = charts.band(START, END, pieces)[-1]
    assert last.x + last.width == pytest.approx(charts.WIDTH - charts.RIGHT) and last.width == charts.MIN_SEGMENT
    hour = timedelta(hours=1)
    many = [charts.Segment(START + i * hour, START + (i + 1) * hour, ("ready", "stale")[i % 2]) for i in range(720)]
    rects = charts.band(START, END, many)
    assert all(r.width == pytest.approx(INNER / 720, abs=0.02) for r in rects), "too many to widen: equal shares"

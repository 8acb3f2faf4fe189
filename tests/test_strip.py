"""The strip of each server's last 20 outcomes on the server list: kept by the write path (checks.strip) where a
check ends, however it ends, and read with the server, so the list costs the same queries whatever the history."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from checks import strip
from checks.models import Batch, Check
from tests.conftest import make_server
from tests.factories import make_check


@pytest.fixture
def client_alice(client, alice):
    client.force_login(alice)
    return client


def ticks(html: str, server) -> list[tuple[str, str]]:
    """The (check id, kind) of each tick in `server`'s row, oldest first."""
    row = html.split(f'<tr id="server-{server.pk}"', 1)[1].split("</tr>", 1)[0]
    return [(str(pk), kind) for pk, kind, _ in strip.decode(re.search(r'data-ticks="([^"]*)"', row).group(1))]


def fleet_with_history(alice, servers: int, checks_each: int) -> list:
    made = []
    for _ in range(servers):
        server = make_server(name=f"pg-s-{len(made):04d}-{servers}")
        for k in range(checks_each):
            make_check(server, alice, status="failed" if k % 3 else "succeeded",
                       category="throttled" if k % 3 else "passed", minutes_ago=checks_each - k)
        made.append(server)
    return made


def test_the_list_costs_the_same_queries_with_a_small_or_a_long_history(client_alice, alice,
                                                                         django_assert_num_queries):
    fleet_with_history(alice, 3, 1)
    with CaptureQueriesContext(connection) as few:
        client_alice.get("/")
    servers = fleet_with_history(alice, 120, 25)  # more than a page of servers, more than a strip of checks
    with django_assert_num_queries(len(few)) as queries:
        html = client_alice.get("/").content.decode()
    assert html.count('class="server-row"') == 50
    assert not any("ROW_NUMBER" in q["sql"].upper() for q in queries.captured_queries), "no window over the history"
    shown = ticks(html, servers[0])
    newest = list(Check.objects.filter(server=servers[0]).order_by("-created_at", "-id")[:20])[::-1]
    assert shown == [(str(c.pk), "ready" if c.category == "passed" else "caller") for c in newest]


def test_a_check_in_flight_is_the_last_tick(client_alice, alice, server):
    for k in range(25):
        make_check(server, alice, minutes_ago=30 - k)
    queued = make_check(server, alice, status="queued")
    shown = ticks(client_alice.get("/").content.decode(), server)
    assert len(shown) == 20 and shown[-1] == (str(queued.pk), "active")


def test_a_finished_check_appends_its_tick_once(alice, server):
    check = Check.objects.queue(server, alice, "b-1", api_version="2024-08-01")
    assert check.finish(status=Check.Status.FAILED, category="server_not_ready")
    assert not check.finish(status=Check.Status.SUCCEEDED, category="passed"), "a late result changes nothing"
    [entry] = server.recent_outcomes.outcomes
    assert entry == [check.pk, int(check.created_at.timestamp()), "failed", "server_not_ready"]


def test_cancelled_and_interrupted_checks_get_their_ticks(alice, server, staging_server):
    from dashboard.models import Server

    batch, _ = Batch.objects.queue([server, staging_server], alice)
    Check.objects.filter(server=staging_server).update(status="running", started_at=timezone.now() - timedelta(hours=1))
    assert batch.cancel().queued == 1
    assert Check.objects.mark_interrupted(stale_after=60) == 1
    kinds = {s.name: [e[2] for e in s.recent_outcomes.outcomes] for s in Server.objects.select_related("recent_outcomes")}
    assert kinds == {"pg-payments-01": ["cancelled"], "pg-staging-01": ["interrupted"]}


def test_the_strip_keeps_the_last_20_oldest_first(alice, server):
    checks = [make_check(server, alice, minutes_ago=40 - k) for k in range(25)]
    assert [e[0] for e in server.recent_outcomes.outcomes] == [c.pk for c in checks[-strip.LENGTH:]]


def test_the_strip_is_one_group_saying_its_ticks_in_words_with_a_link_to_the_history(client_alice, alice, server):
    for k in range(20):
        make_check(server, alice, status="failed" if k < 3 else "succeeded",
                   category=["server_not_ready", "server_not_ready", "throttled"][k] if k < 3 else "passed",
                   minutes_ago=30 - k)
    html = client_alice.get("/").content.decode()
    assert ('role="group" aria-label="Last 20 checks: 17 passed, 2 not ready, 1 said nothing"' in html)
    assert f'href="/checks/?server={server.pk}">All checks of {server.name}</a>' in html
    assert '<script id="strip-legend" type="application/json">' in html


def test_the_encoded_ticks_carry_each_checks_id_and_minute(alice, server):
    checks = [make_check(server, alice, minutes_ago=5000 - 1000 * k) for k in range(4)]
    shown = strip.strip_of(type(server).objects.select_related("recent_outcomes").get(pk=server.pk))
    assert [(pk, minute) for pk, _, minute in strip.decode(strip.encode(shown))] == [
        (c.pk, int(c.created_at.timestamp()) // 60) for c in checks]
    legend = strip.legend()
    assert legend["href"] == "/checks/{}/" and legend["kinds"][shown[0].code] == ["ready", "Passed"]


def test_checks_ending_one_by_one_keep_the_last_20_on_the_strip(alice, server):
    """checks.ending appends a check's tick in SQL on the row (SQLite's json functions, PostgreSQL's jsonb): the
    strip still holds the last LENGTH, oldest first, as strip.record keeps them."""
    ended = []
    for k in range(strip.LENGTH + 5):
        check = Check.objects.queue(server, alice, f"b-{k}", api_version="2024-08-01")
        assert check.finish(status=Check.Status.FAILED if k % 2 else Check.Status.SUCCEEDED,
                            category="server_not_ready" if k % 2 else "passed")
        ended.append(check)
    server.recent_outcomes.refresh_from_db()
    assert server.recent_outcomes.outcomes == [strip.entry(c) for c in ended[-strip.LENGTH:]]

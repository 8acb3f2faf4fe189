"""The compact server list (issues 15 and 12): its sorts (every column, both ways, the filters kept), the
selection's scopes, the filters' errors in the user's words, and a query count that does not grow with the fleet."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from checks import fleet_state
from checks.models import Batch, Check
from checks.readiness import Readiness
from dashboard.models import Server
from tests.batching import fan_out_queued
from tests.conftest import ALICE, CONTOSO, PROD, make_server
from tests.factories import make_check


def order_on(html: str, names) -> list[str]:
    return sorted(names, key=lambda n: html.index(f">{n}</strong>"))


def conclude(server, user, category, minutes_ago):
    status = "succeeded" if category == "passed" else "failed"
    check = make_check(server, user, status=status, category=category, minutes_ago=minutes_ago)
    Readiness.observe(Check.objects.select_related("server").get(pk=check.pk))
    return check


@pytest.fixture
def four(alice):
    """b ready (changed 3 h ago, checked last), a not ready (30 min ago), d ready (1 h ago), c never checked."""
    servers = {n: make_server(name=n) for n in ("pg-a", "pg-b", "pg-c", "pg-d")}
    conclude(servers["pg-b"], alice, "passed", 180)
    conclude(servers["pg-a"], alice, "server_not_ready", 30)
    conclude(servers["pg-d"], alice, "passed", 60)
    conclude(servers["pg-b"], alice, "passed", 5)  # the newest check, no change of readiness
    return servers


@pytest.mark.parametrize(("sort", "expected"), [
    ("name", ["pg-a", "pg-b", "pg-c", "pg-d"]),
    ("-name", ["pg-d", "pg-c", "pg-b", "pg-a"]),
    ("readiness", ["pg-c", "pg-a", "pg-b", "pg-d"]),  # never checked, not ready, ready
    ("-readiness", ["pg-d", "pg-b", "pg-a", "pg-c"]),
    ("changed", ["pg-c", "pg-b", "pg-d", "pg-a"]),  # never changed: since it was added (a day ago)
    ("-changed", ["pg-a", "pg-d", "pg-b", "pg-c"]),
    ("checked", ["pg-c", "pg-a", "pg-d", "pg-b"]),  # never checked first, then by the last check
    ("-checked", ["pg-b", "pg-d", "pg-a", "pg-c"]),
])
def test_every_column_sorts_both_ways_and_says_so(client, alice, four, sort, expected):
    Server.objects.filter(name="pg-c").update(added_at=timezone.now() - timedelta(days=1))
    client.force_login(alice)
    html = client.get("/", {"sort": sort}).content.decode()
    assert order_on(html, four) == expected
    key = sort.lstrip("-")
    head = re.search(r'<th scope="col" aria-sort="(\w+)">\s*<a href="\?([^"]*)"', html)
    assert head.group(1) == ("descending" if sort.startswith("-") else "ascending")
    reverse = key if sort.startswith("-") else "-" + key
    assert head.group(2) == f"sort={reverse}", "the sorted column's link reverses it"
    assert html.count("aria-sort=") == 1


def test_a_bad_sort_is_ignored_and_the_list_is_by_name(client, alice, four):
    client.force_login(alice)
    for bad in ("nonsense", "-", "--name", "last_check_id", "pk"):
        response = client.get("/", {"sort": bad})
        assert response.status_code == 200
        html = response.content.decode()
        assert order_on(html, four) == ["pg-a", "pg-b", "pg-c", "pg-d"]
        assert re.search(r'aria-sort="ascending">\s*<a href="\?sort=-name"', html)


def test_the_sort_links_keep_the_filters_and_the_filters_keep_the_sort(client, alice, four):
    client.force_login(alice)
    html = client.get("/", {"q": "pg-", "state": "ready", "sort": "-checked", "page": "1"}).content.decode()
    assert 'href="?q=pg-&amp;state=ready&amp;sort=checked"' in html, "reverses, keeps the filters, page 1 again"
    assert 'href="?q=pg-&amp;state=ready&amp;sort=readiness"' in html
    assert '<input type="hidden" name="sort" value="-checked">' in html
    assert order_on(html, ["pg-b", "pg-d"]) == ["pg-b", "pg-d"] and ">pg-a</strong>" not in html


def test_the_readiness_a_check_changes_is_copied_onto_its_server_for_the_sort(alice, four):
    a = Server.objects.get(name="pg-a")
    assert (a.readiness_state, a.readiness_since) == ("not_ready", Readiness.objects.get(server=a).since)
    assert Server.objects.get(name="pg-c").readiness_state == ""


def test_select_all_matching_is_offered_beyond_one_page_and_posts_every_matching_server(client, sim, signed_in):
    Server.objects.bulk_create([Server(tenant_id=CONTOSO, subscription_id=PROD, resource_group="rg",
                                       name=f"pg-many-{i:03d}") for i in range(120)])
    make_server(name="pg-other")
    signed_in(ALICE["upn"])
    html = client.get("/", {"q": "many"}).content.decode()
    assert "Select all 120 matching" in html and "Run on all 120 matching" in html
    assert 'aria-label="Select the 50 servers on this page"' in html
    response = client.post("/batches/", {"scope": "all", "q": "many"})
    assert response.status_code == 302
    fan_out_queued()  # the worker's queuing of the batch's checks
    assert Batch.objects.get().checks.count() == 120, "every matching server, not only this page's"


def test_one_page_offers_no_select_all_matching(client, alice, four):
    client.force_login(alice)
    html = client.get("/").content.decode()
    assert "Select all" not in html and "Run on all 4 servers" in html


def test_nothing_selected_names_the_buttons_as_they_read(client, alice, four):
    client.force_login(alice)
    page = client.get("/").content.decode()
    message = client.post("/batches/", {"scope": "selected"}, follow=True).content.decode()
    assert "“Run check on selected”" in message and "“Run on all”" in message
    assert ">Run check on selected</button>" in page and ">Run on all 4 servers</button>" in " ".join(page.split())


@pytest.mark.parametrize(("param", "value", "says"), [
    ("q", "x" * 300, "Search: at most 100 characters (this has 300)."),
    ("subscription", "not-a-subscription", "Subscription: Select a valid choice."),
    ("resource_group", "rg-nowhere", "Resource group: Select a valid choice."),
    ("state", "sideways", "State: Select a valid choice."),
    ("backup", "yesterday", "Last LTR backup: Select a valid choice."),
])
def test_every_filter_error_names_its_field_as_the_page_labels_it(client, alice, four, param, value, says):
    client.force_login(alice)
    html = client.get("/", {param: value}).content.decode()
    assert says in html and "No server matches." in html
    assert "Q:" not in html and "Ensure this value" not in html


def test_the_list_costs_the_same_queries_for_10_or_1000_servers(client, alice):
    client.force_login(alice)
    counts = []
    for total in (10, 1000):
        have = Server.objects.count()
        Server.objects.bulk_create([Server(tenant_id=CONTOSO, subscription_id=PROD, resource_group=f"rg-{i % 7}",
                                           name=f"pg-q-{i:04d}") for i in range(have, total)])
        if not have:
            for server in Server.objects.order_by("pk"):
                conclude(server, alice, "passed", 10)
        for sort in ("", "-readiness", "checked", "-changed", "last_backup"):
            with CaptureQueriesContext(connection) as queries:
                assert client.get("/", {"sort": sort} if sort else {}).status_code == 200
            counts.append((total, sort, len(queries)))
    small = {sort: n for total, sort, n in counts if total == 10}
    large = {sort: n for total, sort, n in counts if total == 1000}
    assert small == large, counts
    assert max(small.values()) <= 9, counts


def test_the_row_htmx_brings_is_the_row_the_list_shows_and_the_page_has_one_csrf_token(client, alice, four):
    # checks.fleet_row writes both: the list's rows and the row the poll (server_row) answers with.
    client.force_login(alice)
    html = client.get("/").content.decode()
    server = four["pg-a"]
    listed = re.search(rf'<tr id="server-{server.pk}".*?</tr>', html, re.S).group(0)
    polled = client.get(f"/servers/{server.pk}/row/", headers={"HX-Request": "true"}).content.decode().strip()
    # The poll's row also says the finished check to the page's live region (an out-of-band swap).
    assert re.sub(r'<div id="live-announcer".*?</div>\n', "", polled) == listed
    # Sign-out, the bulk toolbar and the rows' one #run-one: not one a row.
    assert html.count('name="csrfmiddlewaretoken"') == 3
    # Run's URL once (app.js gives htmx the formaction); the checkbox and Run named by the server's name cell.
    assert f'form="run-one" formaction="/servers/{server.pk}/run/" id="run-{server.pk}"' in listed
    assert "hx-post" not in listed and 'form="bulk-form"' not in listed
    assert f'<strong id="n-{server.pk}">pg-a</strong>' in listed and listed.count("pg-a") == 2  # the name, the strip's link
    assert f'aria-labelledby="w-sel n-{server.pk}"' in listed and f'aria-labelledby="w-run n-{server.pk}"' in listed
    assert '<span id="w-sel" hidden>Select</span><span id="w-run" hidden>Run pre-backup check on</span>' in html
    assert "data-label" not in listed


def test_the_server_page_history_names_the_backup_not_the_server_again(client, alice):
    server = make_server(name="pg-once")
    done = make_check(server, alice, backup_name="pg-once-ltr-done")
    running = make_check(server, alice, status="running", backup_name="pg-once-ltr-running")
    client.force_login(alice)
    history = client.get(f"/servers/{server.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert ">Backup name</th>" in history and ">Server</th>" not in history
    assert "pg-once-ltr-done" in history and f'/checks/{running.pk}/row/?of_server=1"' in history
    polled = client.get(f"/checks/{running.pk}/row/", {"of_server": "1"}).content.decode()
    assert 'data-label="Server"' not in polled and "pg-once-ltr-running" in polled
    assert 'data-label="Server"' in client.get(f"/checks/{done.pk}/row/").content.decode(), "the history page's row"


def test_a_row_says_each_thing_once_and_stays_under_1450_bytes(client, alice):
    # Issue 12: 50 rows a page and the page under 80 KB. A row with every part a busy fleet's has: a label, a
    # readiness reason, a strip of 20 checks spread over a year (ids far apart, as in a history of a million),
    # a failed last check with its code. It was 1,935 bytes (the bench's not-ready rows) before each thing was
    # said once.
    server = make_server(name="pg-fleet-00042", label="team 7")
    for k in range(19):
        make_check(server, alice, minutes_ago=525_000 - 26_000 * k, id=100_000 + 9_973 * k)
    make_check(server, alice, status="failed", category="server_not_ready", minutes_ago=60, id=400_000,
               error_code="PostgreSQLFlexOperationFailedUserError",
               error_details=[{"code": "ServerNotReadyForLongTermBackup"}],
               summary="The server is not in a state that allows long-term backup: its state is Stopped.")
    Readiness.observe(Check.objects.select_related("server").get(pk=400_000))
    client.force_login(alice)
    html = client.get("/").content.decode()
    row = re.search(rf'<tr id="server-{server.pk}".*?</tr>', html, re.S).group(0)
    assert "Not ready: Server not ready" in row and "ServerNotReadyForLongTermBackup" in row
    assert row.count("pg-fleet-00042") == 2, "the name cell and the strip's link; the rest refers to the name cell"
    assert "title=" in row and row.count("datetime=") == 2 and "its state is Stopped" not in row
    # 1,379 bytes when written, with single-digit ids (PostgreSQL's sequences run on between tests: longer ids).
    assert len(row.encode()) < 1450, len(row.encode())


def test_the_list_counts_its_servers_once_when_the_counts_at_the_top_say_how_many(client, alice, four, monkeypatch):
    # The counts at the top and the filters' places come from one grouped query; the page's total is one of
    # those counts when no filter or the state filter alone applies (no second COUNT), the rows of page 1 when
    # they are all there are (a search that finds a few), and counted otherwise.
    client.force_login(alice)
    for query, says, counted in (({}, "Run on all 4 servers", False), ({"state": "ready"}, "Run on all 2 matching", False),
                                 ({"state": "ready", "q": "pg-b"}, "Run on all 1 matching", False),
                                 ({"q": "pg-a"}, "Run on all 1 matching", False),
                                 ({"q": "pg-", "per_page": 3}, "Run on all 4 matching", True),
                                 ({"q": "pg-", "per_page": 3, "page": 2}, "Run on all 4 matching", True)):
        monkeypatch.setattr(fleet_state, "SERVERS_PER_PAGE", query.pop("per_page", 50))
        with CaptureQueriesContext(connection) as queries:
            html = " ".join(client.get("/", query).content.decode().split())
        assert says in html, query
        assert any("COUNT(*)" in q["sql"] for q in queries.captured_queries) == counted, query
        assert not any("DISTINCT" in q["sql"] for q in queries.captured_queries), "the places: from the counts"


def test_the_lists_exact_times_are_in_the_sites_time_zone_as_every_other_page_says_them(client, alice, settings):
    # The tooltip app.js makes from <time datetime> reads like the history's and the timeline's times.
    settings.TIME_ZONE = "Europe/Berlin"
    server = make_server(name="pg-berlin")
    make_check(server, alice, minutes_ago=60)
    client.force_login(alice)
    html = client.get("/").content.decode()
    row = re.search(rf'<tr id="server-{server.pk}".*?</tr>', html, re.S).group(0)
    moments = re.findall(r'<time datetime="([^"]+)"', row)
    assert moments and all(m.endswith(("+01:00", "+02:00")) for m in moments), moments


def test_a_server_whose_checks_said_nothing_about_it_reads_not_known_yet_not_never_checked(client, alice):
    # Found in a walkthrough: servers checked many times (permission missing: about the caller) read "Never
    # checked" and were counted so. The list's row and the server's own page say the same words.
    checked = make_server(name="pg-asked")
    make_check(checked, alice, status="failed", category="permission_missing", minutes_ago=5)
    Server.objects.filter(pk=checked.pk).update(last_check=Check.objects.get(server=checked))
    make_server(name="pg-never")
    client.force_login(alice)
    html = client.get("/").content.decode()
    asked = re.search(rf'<tr id="server-{checked.pk}".*?</tr>', html, re.S).group(0)
    never = re.search(r'<tr id="server-\d+"[^>]*>(?:(?!</tr>).)*pg-never.*?</tr>', html, re.S).group(0)
    assert ">Not known yet</span>" in asked and "Never checked" not in asked
    assert ">Never checked</span>" in never
    assert "<strong>2</strong> not known yet" in " ".join(html.split())
    page = client.get(f"/servers/{checked.pk}/").content.decode()
    assert 'title="No check has said yet whether this server is ready: see its last check.">Not known yet' in page


def test_each_count_at_the_top_is_how_many_its_link_lists(client, alice, four, settings):
    # The counts come from the servers' copy of their readiness's state and a count of the recently checked ready
    # ones (checks.fleet_state.overview), the filters from the readiness rows: both must say the same of a fleet
    # with a stale server, a ready one archived, one only checked by a check that said nothing of it (not known
    # yet), and another tenant's ready server.
    stale = make_server(name="pg-stale")
    conclude(stale, alice, "passed", 60 * (settings.STALE_AFTER_HOURS + 2))
    archived = make_server(name="pg-archived")
    conclude(archived, alice, "passed", 10)
    Server.objects.filter(pk=archived.pk).update(archived_at=timezone.now())
    make_check(make_server(name="pg-unknown"), alice, status="failed", category="permission_missing")
    conclude(make_server(tenant_id="22222222-2222-4222-8222-222222222222", name="pg-elsewhere"), alice, "passed", 10)
    client.force_login(alice)
    html = client.get("/").content.decode()
    counts = dict(re.findall(r'<a href="\?state=(\w+)"><strong>(\d+)</strong>', html))
    assert counts == {"ready": "2", "not_ready": "1", "never": "2", "stale": "1"}, counts
    for state, n in counts.items():
        listed = client.get("/", {"state": state}).content.decode()
        assert len(re.findall(r'<tr id="server-\d+"', listed)) == int(n), state


def test_the_server_pages_last_check_says_its_failure_once(client, alice):
    # Found in a walkthrough: the server page's row said the category and the code, then the result said both again
    # above Azure's message. Now: the status, when, and the result (category, code, message, what to do) once.
    server = make_server(name="pg-once-failed")
    conclude(server, alice, "server_not_ready", 5)
    Check.objects.filter(server=server).update(error_code="ServerNotReadyForLongTermBackup",
                                               summary="The server is stopped.")
    Server.objects.filter(pk=server.pk).update(last_check=Check.objects.get(server=server))
    client.force_login(alice)
    page = client.get(f"/servers/{server.pk}/").content.decode()
    row = re.search(rf'<tr id="server-{server.pk}".*?</tr>', page, re.S).group(0)
    cell = re.search(r'<td class="check-cell".*?</td>', row, re.S).group(0)
    assert cell.count(">Server not ready</span>") == 1, cell
    assert cell.count(">ServerNotReadyForLongTermBackup</code>") == 1 and "The server is stopped." in cell


def test_the_rows_reader_keeps_to_the_users_tenant_whatever_ids_it_is_given(alice):
    # checks.fleet_read is handed ids the tenant's queries chose; it keeps to the tenant itself too.
    from checks import fleet_read

    mine = make_server(name="pg-mine")
    theirs = make_server(tenant_id="22222222-2222-4222-8222-222222222222", name="pg-theirs")
    assert [s.name for s in fleet_read.servers([theirs.pk, mine.pk], alice)] == ["pg-mine"]


def test_a_row_read_by_fleet_read_asks_nothing_more_of_the_database(alice, django_assert_num_queries):
    # The list's rows (and a single row's answers) are read in one statement: every object a row or the server
    # page reaches from the server is there, known present or known absent.
    from checks import fleet_read

    checked, never = make_server(name="pg-read"), make_server(name="pg-unread")
    conclude(checked, alice, "server_not_ready", 5)
    Server.objects.filter(pk=checked.pk).update(last_check=Check.objects.get(server=checked))
    with django_assert_num_queries(1):
        read = fleet_read.servers([checked.pk, never.pk], alice)
        a, b = read
        assert (a.last_check.server, a.readiness.server, a.recent_outcomes.server) == (a, a, a)
        assert a.readiness.state == "not_ready" and len(a.recent_outcomes.outcomes) == 1 and a.gap_days == 7
        assert a.my_last["category"] == "server_not_ready"
        assert b.last_check is None and getattr(b, "readiness", None) is None
        assert getattr(b, "recent_outcomes", None) is None and b.my_last is None

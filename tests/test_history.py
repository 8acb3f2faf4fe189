"""The history page: everyone's checks in the tenant, newest first, filterable, paginated, exportable."""

import csv
import io
import json
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.core import signing
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checks.models import Check
from checks.views import history
from dashboard.demo import FABRIKAM
from tests.conftest import make_server
from tests.factories import make_check


@pytest.fixture
def client_alice(client, alice):
    client.force_login(alice)
    return client


def test_it_lists_checks_newest_first(client_alice, alice, server):
    make_check(server, alice, backup_name="older", minutes_ago=10)
    make_check(server, alice, backup_name="newer", minutes_ago=1)
    html = client_alice.get("/checks/").content.decode()
    assert html.index("newer") < html.index("older")


def test_it_filters_by_server_and_outcome(client_alice, alice, server, staging_server):
    make_check(server, alice, backup_name="one-passed")
    make_check(server, alice, status="failed", backup_name="one-failed")
    make_check(staging_server, alice, backup_name="other-passed")
    html = client_alice.get("/checks/", {"server": server.pk, "outcome": "failed"}).content.decode()
    assert "one-failed" in html
    assert "one-passed" not in html and "other-passed" not in html


def older_link(html: str) -> str:
    return re.search(r'href="([^"]*)" rel="next"', html).group(1).replace("&amp;", "&")


def newer_link(html: str) -> str:
    return re.search(r'href="([^"]*)" rel="prev"', html).group(1).replace("&amp;", "&")


def test_it_paginates(client_alice, alice, server):
    for i in range(55):
        make_check(server, alice, backup_name=f"run-{i:02d}", minutes_ago=100 - i)
    first = client_alice.get("/checks/").content.decode()
    second = client_alice.get("/checks/" + older_link(first)).content.decode()
    assert "run-54" in first and "run-05" in first and "run-04" not in first
    assert "run-04" in second and "run-00" in second
    assert "55 checks" in first  # was "Page 1 of 2": keyset pages have no page numbers


def test_it_shows_only_the_users_tenant(client, charlie, alice, server, fabrikam_server):
    make_check(server, alice, backup_name="contoso-check")
    make_check(fabrikam_server, charlie, backup_name="fabrikam-check")
    client.force_login(charlie)
    html = client.get("/checks/").content.decode()
    assert "fabrikam-check" in html and "contoso-check" not in html
    assert "pg-payments-01" not in html, "another tenant's servers are not even offered as a filter"
    exported = client.get("/checks/export.csv")
    body = b"".join(exported.streaming_content).decode()
    assert "fabrikam-check" in body and "contoso-check" not in body


@pytest.mark.parametrize(
    "query",
    [{"server": "abc"}, {"server": "-1"}, {"server": "999999"}, {"outcome": "exploded"},
     {"page": "abc"}, {"page": "-5"}, {"page": "99999999999999999999"}, {"server": "1e9"}],
)
def test_bad_filter_values_give_a_message_or_an_empty_result_never_an_error(client_alice, alice, server, query):
    make_check(server, alice, backup_name="visible-check")
    response = client_alice.get("/checks/", query)
    assert response.status_code == 200
    html = response.content.decode()
    if "page" in query:
        assert "visible-check" in html  # Django's get_page() falls back to a real page
    else:
        assert "visible-check" not in html
        assert "Showing no checks" in html


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(server=st.text(max_size=40), outcome=st.text(max_size=40), page=st.text(max_size=20))
def test_the_history_survives_arbitrary_query_text(client_alice, server, outcome, page):
    response = client_alice.get("/checks/", {"server": server, "outcome": outcome, "page": page})
    assert response.status_code == 200
    response = client_alice.get("/checks/export.csv", {"server": server, "outcome": outcome})
    assert response.status_code == 200


def csv_rows(response) -> list[dict]:
    """The export's data rows, after checking that its last line says it is complete and how many rows."""
    text = b"".join(response.streaming_content).decode()
    lines = text.splitlines()
    marker = re.fullmatch(r"# end of export: (\d+) rows", lines[-1])
    assert marker, f"the export does not end with its end marker: {lines[-1]!r}"
    rows = list(csv.DictReader(io.StringIO("\n".join(lines[:-1]) + "\n")))
    assert int(marker.group(1)) == len(rows)
    return rows


def test_the_export_is_a_csv_of_the_filtered_history(client_alice, alice, server, staging_server):
    check = make_check(server, alice, backup_name="exported", request_id="req-1", client_request_id="cli-1")
    make_check(staging_server, alice, backup_name="filtered-out")
    response = client_alice.get("/checks/export.csv", {"server": server.pk})
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = csv_rows(response)
    assert [row["backup_name"] for row in rows] == ["exported"]
    assert rows[0]["id"] == str(check.pk)
    assert rows[0]["x_ms_request_id"] == "req-1" and rows[0]["number_of_containers"] == "2"


def test_the_export_defuses_spreadsheet_formulas_from_azure(client_alice, alice, server):
    make_check(server, alice, status="failed", error_message='=HYPERLINK("http://evil","x")')
    rows = csv_rows(client_alice.get("/checks/export.csv"))
    assert rows[0]["error_message"].startswith("'=")


def test_the_empty_history_says_what_to_do(client_alice):
    assert "No check has been run yet" in client_alice.get("/checks/").content.decode()


def test_an_archived_servers_history_stays_visible(client_alice, alice):
    server = make_server(name="pg-gone-01")
    make_check(server, alice, backup_name="kept-check")
    client_alice.post(f"/servers/{server.pk}/archive/")
    assert "kept-check" in client_alice.get("/checks/").content.decode()
    assert client_alice.get(f"/servers/{server.pk}/").status_code == 200


def test_the_server_page_does_not_query_once_per_check(client, alice, server, django_assert_max_num_queries):
    for i in range(20):
        make_check(server, alice, backup_name=f"b-{i}", minutes_ago=i)
    client.force_login(alice)
    with django_assert_max_num_queries(15):
        response = client.get(f"/servers/{server.pk}/")
    assert response.content.decode().count('<tr id="check-') == 20


def test_a_queued_check_refreshes_only_the_server_pages_history(client, alice, server):
    make_check(server, alice, backup_name="b-old")
    client.force_login(alice)
    fragment = client.get(f"/servers/{server.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert fragment.lstrip().startswith('<section id="server-history"') and "<html" not in fragment
    assert "b-old" in fragment and "Run pre-backup check" not in fragment


# ---- Keyset pages, filters, the server search and the exports (issue 12).

def bulk_checks(server, user, n, *, at=None, **fields):
    """`n` checks of `server`, one minute apart (or all at the instant `at`), in one insert; their tenant is
    filled by the queryset, as for any bulk insert."""
    now = timezone.now()
    rows = [Check(server=server, backup_name=f"bulk-{i:04d}", status="failed", category="throttled",
                  requested_by=user, requested_by_oid=user.object_id, requested_by_name=str(user),
                  requested_by_tenant=user.tenant_id, api_version="2024-08-01",
                  created_at=at or now - timedelta(minutes=i), **fields) for i in range(n)]
    return Check.objects.bulk_create(rows)


def history_queries(client, url, params=None) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url, params or {}).status_code == 200
    return len(queries)


@pytest.mark.parametrize("params", [{}, {"outcome": "failed"}, {"category": "throttled"}, {"by": "me"},
                                    {"server": "pg-payments-01"},
                                    {"outcome": "failed", "category": "throttled", "by": "me"}])
def test_the_history_costs_the_same_queries_with_10_or_500_checks(client_alice, alice, server, params,
                                                                   django_assert_num_queries):
    bulk_checks(server, alice, 10)
    few = history_queries(client_alice, "/checks/", params)
    bulk_checks(server, alice, 490)
    with django_assert_num_queries(few):
        first = client_alice.get("/checks/", params).content.decode()
    assert first.count('<tr id="check-') == 50 and "500 checks" in first
    # A deeper page costs the same too: no OFFSET, no count of everything before it.
    with django_assert_num_queries(few):
        client_alice.get("/checks/" + older_link(first))


def test_the_server_page_costs_the_same_queries_with_10_or_500_checks(client_alice, alice, server,
                                                                      django_assert_num_queries):
    bulk_checks(server, alice, 10)
    few = history_queries(client_alice, f"/servers/{server.pk}/")
    bulk_checks(server, alice, 490)
    with django_assert_num_queries(few):
        html = client_alice.get(f"/servers/{server.pk}/").content.decode()
    assert html.count('<tr id="check-') == 25
    second = client_alice.get(f"/servers/{server.pk}/" + older_link(html)).content.decode()
    assert len(row_ids(second)) == 25 and not set(row_ids(second)) & set(row_ids(html))


def row_ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr id="check-(\d+)"', html)]


def test_the_cursor_goes_older_and_back_newer_without_losing_or_repeating_checks(client_alice, alice, server):
    # Checks of the very same instant must neither be skipped nor shown twice at a page's edge.
    now = timezone.now()
    everything = [*bulk_checks(server, alice, 70, at=now), *bulk_checks(server, alice, 50, at=now - timedelta(hours=1))]
    pages, html = [], client_alice.get("/checks/").content.decode()
    while True:
        pages.append(row_ids(html))
        if 'rel="next"' not in html:
            break
        html = client_alice.get("/checks/" + older_link(html)).content.decode()
    seen = [pk for page in pages for pk in page]
    assert len(pages) == 3 and sorted(seen) == sorted(c.pk for c in everything) and len(set(seen)) == len(seen)
    assert seen == sorted(seen, key=lambda pk: (next(c.created_at for c in everything if c.pk == pk), pk),
                          reverse=True)
    back = client_alice.get("/checks/" + newer_link(html)).content.decode()
    assert row_ids(back) == pages[1]
    top = client_alice.get("/checks/" + newer_link(back)).content.decode()
    assert row_ids(top) == pages[0] and 'rel="prev"' not in top


def test_the_cursor_keeps_the_filters(client_alice, alice, server, staging_server):
    bulk_checks(server, alice, 60)
    bulk_checks(staging_server, alice, 60)
    first = client_alice.get("/checks/", {"server": "pg-staging-01"}).content.decode()
    assert "server=pg-staging-01" in older_link(first)
    second = client_alice.get("/checks/" + older_link(first)).content.decode()
    assert len(row_ids(second)) == 10 and "pg-payments-01</td>" not in second


@pytest.mark.parametrize("tamper", [
    lambda c: c[:-1] + ("A" if c[-1] != "A" else "B"),  # the signature no longer matches
    lambda c: "x" + c,
    lambda c: "garbage",
    lambda c: signing.dumps(["o", "not a date", 5], salt="checks.keyset.cursor"),  # signed, but nonsense
    lambda c: signing.dumps(["o", "2026-01-01T00:00:00", 5], salt="checks.keyset.cursor"),  # no time zone
    lambda c: signing.dumps(["sideways", timezone.now().isoformat(), 5], salt="checks.keyset.cursor"),
    lambda c: signing.dumps(["o", timezone.now().isoformat(), 5], salt="another.salt"),
])
def test_a_tampered_cursor_says_so_and_shows_the_first_page(client_alice, alice, server, tamper):
    bulk_checks(server, alice, 60)
    first = client_alice.get("/checks/").content.decode()
    cursor = parse_qs(urlparse(older_link(first)).query)["cursor"][0]
    response = client_alice.get("/checks/", {"cursor": tamper(cursor)})
    html = response.content.decode()
    assert response.status_code == 200
    assert "That page link was cut or edited" in html
    assert row_ids(html) == row_ids(first)


def test_the_server_filter_takes_a_name_in_any_case_or_an_id(client_alice, alice, server, staging_server):
    make_check(server, alice, backup_name="payments-check")
    make_check(staging_server, alice, backup_name="staging-check")
    for value in ("PG-Staging-01", " pg-staging-01 ", str(staging_server.pk)):
        html = client_alice.get("/checks/", {"server": value}).content.decode()
        assert "staging-check" in html and "payments-check" not in html, value
    html = client_alice.get("/checks/", {"server": "pg-staging"}).content.decode()
    assert "no server is named “pg-staging” in your tenant" in html and "staging-check" not in html


def test_the_server_filter_does_not_reach_another_tenants_server(client, charlie, alice, server, fabrikam_server):
    make_check(server, alice, backup_name="contoso-check")
    client.force_login(charlie)
    for value in ("pg-payments-01", str(server.pk)):
        html = client.get("/checks/", {"server": value}).content.decode()
        assert "contoso-check" not in html and "Showing no checks" in html


def test_the_history_filters_by_category_and_by_who_ran_it(client_alice, alice, bob, server):
    make_check(server, alice, status="failed", category="throttled", backup_name="alice-throttled")
    make_check(server, alice, status="failed", category="permission_missing", backup_name="alice-permission")
    make_check(server, bob, status="failed", category="permission_missing", backup_name="bob-permission")
    html = client_alice.get("/checks/", {"category": "permission_missing"}).content.decode()
    assert "alice-permission" in html and "bob-permission" in html and "alice-throttled" not in html
    html = client_alice.get("/checks/", {"category": "permission_missing", "by": "me"}).content.decode()
    assert "alice-permission" in html and "bob-permission" not in html and "alice-throttled" not in html
    assert 'value="permission_missing" selected' in html and "Permission missing" in html
    html = client_alice.get("/checks/", {"category": "exploded"}).content.decode()
    assert "Showing no checks" in html and "alice-permission" not in html


def server_names(client, q="") -> list[str]:
    response = client.get("/checks/servers.json", {"q": q})
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    return [s["name"] for s in response.json()["servers"]]


def test_the_server_search_offers_at_most_20_of_the_tenants_names(client_alice, alice, db):
    for i in range(30):
        make_server(name=f"pg-orders-{i:02d}", resource_group=f"rg-{i}")
    make_server(name="pg-billing-01")
    names = server_names(client_alice, "ORDERS")
    assert names == [f"pg-orders-{i:02d}" for i in range(20)]
    assert server_names(client_alice, "billing") == ["pg-billing-01"]
    assert server_names(client_alice, "nothing-like-it") == []
    assert server_names(client_alice, "\x00") and server_names(client_alice, "%") == []


def test_the_server_search_never_shows_another_tenants_servers(client, charlie, server, fabrikam_server):
    client.force_login(charlie)
    assert server_names(client) == ["pg-fabrikam-01"]
    assert server_names(client, "payments") == []


def test_the_server_search_needs_a_sign_in(client, server):
    response = client.get("/checks/servers.json", {"q": "pg"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("signin"))
    assert b"pg-payments-01" not in response.content


def jsonl_lines(response) -> list[dict]:
    return [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]


def test_the_exports_end_with_a_marker_and_their_row_count(client_alice, alice, server, staging_server):
    bulk_checks(server, alice, 4500)  # more than one chunk read and more than one piece sent
    make_check(staging_server, alice, status="failed", category="permission_missing", backup_name="the-one",
               error_message='=cmd|"/c calc"')
    rows = csv_rows(client_alice.get("/checks/export.csv"))
    assert len(rows) == 4501 and rows[0]["backup_name"] == "the-one"
    lines = jsonl_lines(client_alice.get("/checks/export.jsonl"))
    assert lines[-1] == {"end_of_export": True, "rows": 4501} and len(lines) == 4502
    filtered = jsonl_lines(client_alice.get("/checks/export.jsonl", {"category": "permission_missing"}))
    assert filtered[-1] == {"end_of_export": True, "rows": 1}
    record = filtered[0]
    assert record["backup_name"] == "the-one" and record["server"] == "pg-staging-01"
    assert record["error_message"] == '=cmd|"/c calc"', "JSON is not a spreadsheet: the text stays as Azure sent it"
    assert record["number_of_containers"] is None and record["duration_seconds"] == 2.0
    assert list(record) == [name for name, _ in history.EXPORT_COLUMNS]


def test_the_jsonl_export_keeps_to_the_tenant_and_its_filters(client, charlie, alice, server, fabrikam_server):
    make_check(server, alice, backup_name="contoso-check")
    make_check(fabrikam_server, charlie, backup_name="fabrikam-check")
    client.force_login(charlie)
    response = client.get("/checks/export.jsonl")
    assert response["Content-Type"].startswith("application/jsonl") and ".jsonl" in response["Content-Disposition"]
    lines = jsonl_lines(response)
    assert [line.get("backup_name") for line in lines[:-1]] == ["fabrikam-check"]
    assert jsonl_lines(client.get("/checks/export.jsonl", {"server": "pg-payments-01"})) == [
        {"end_of_export": True, "rows": 0}]


def test_an_export_that_fails_midway_says_it_is_incomplete(client_alice, alice, server, monkeypatch):
    make_check(server, alice, backup_name="first")
    real = history._export_records

    def one_then_fail(checks, names):
        yield next(real(checks, names))
        raise DatabaseError("connection lost")

    monkeypatch.setattr(history, "_export_records", one_then_fail)
    monkeypatch.setattr(history, "EXPORT_WITH_COPY", False)  # COPY's failure: tests/test_export_copy.py
    text = b"".join(client_alice.get("/checks/export.csv").streaming_content).decode()
    assert text.splitlines()[-1] == "# export FAILED after 1 rows: this file is incomplete"
    assert "end of export" not in text
    lines = jsonl_lines(client_alice.get("/checks/export.jsonl"))
    assert lines[-1] == {"export_failed": True, "rows": 1}


def test_checks_carry_their_servers_tenant_however_they_are_made(alice, server, fabrikam_server):
    queued = Check.objects.queue(server, alice, "b-1", api_version="2024-08-01")
    made = make_check(fabrikam_server, alice)
    [bulk] = bulk_checks(fabrikam_server, alice, 1)
    assert queued.tenant_id == server.tenant_id
    assert Check.objects.get(pk=made.pk).tenant_id == Check.objects.get(pk=bulk.pk).tenant_id == FABRIKAM
    with pytest.raises(IntegrityError), transaction.atomic():
        Check.objects.filter(pk=made.pk).update(tenant_id="")


# ---- One writer of a history row (checks.history_row): the history, a server's page and the row's poll.

def test_a_row_is_the_same_on_the_history_on_its_servers_page_and_in_its_poll(client_alice, alice, server):
    running = make_check(server, alice, status="running", summary="Asking <Azure>", minutes_ago=1)
    html = client_alice.get("/checks/").content.decode()
    polled = client_alice.get(f"/checks/{running.pk}/row/").content.decode()
    assert polled.startswith(f'<tr id="check-{running.pk}" hx-get="/checks/{running.pk}/row/"') and polled in html
    on_server = client_alice.get(f"/checks/{running.pk}/row/", {"of_server": "1"}).content.decode()
    assert on_server in client_alice.get(f"/servers/{server.pk}/").content.decode()
    assert f'hx-get="/checks/{running.pk}/row/?of_server=1"' in on_server and 'data-label="Server"' not in on_server
    assert "Asking &lt;Azure&gt;" in polled and "Asking <Azure>" not in polled


def test_a_row_escapes_every_text_from_a_user_or_azure(client_alice, alice):
    evil = "<b>x</b>&\"'"
    server = make_server(name=evil, subscription_id=evil)
    check = make_check(server, alice, status="failed", category="throttled", backup_name=evil, summary=evil,
                       requested_by_name=evil, error_code=evil, error_details=[{"code": evil}])
    for url in ("/checks/", f"/servers/{server.pk}/", f"/checks/{check.pk}/row/"):
        row = re.search(r'<tr id="check-\d+".*?</tr>', client_alice.get(url).content.decode(), re.S).group(0)
        assert "<b>" not in row and "&lt;b&gt;x&lt;/b&gt;&amp;&quot;&#x27;" in row, url


def test_a_row_says_what_the_status_and_result_partials_say(client_alice, alice, server, staging_server):
    long_summary = "s" * 200
    make_check(server, alice, status="failed", category="permission_missing", summary=long_summary,
               error_code="AuthorizationFailed", error_details=[{"code": "LinkedAuthorizationFailed"}], minutes_ago=2)
    make_check(staging_server, alice, status="succeeded", number_of_containers=1, minutes_ago=1)
    html = client_alice.get("/checks/").content.decode()
    assert '<span class="badge badge-failed check-status">Failed</span>' in html
    assert '<span class="category">Permission missing</span>' in html and "What to do: Ask an owner" in html
    assert '<code class="small" title="AuthorizationFailed">LinkedAuthorizationFailed</code>' in html
    assert f'title="{long_summary}">{"s" * 159}…</div>' in html
    assert '<span class="badge badge-succeeded check-status">Passed</span>' in html
    assert "<strong>1</strong> container\n" in html or "<strong>1</strong> container<" in html


def test_active_rows_cost_no_query_each(client_alice, alice, django_assert_num_queries):
    """An active row's poll interval reads the check's batch: it is read with the row, not once a row."""
    servers = [make_server(name=f"pg-active-{i}") for i in range(4)]
    make_check(servers[0], alice, status="running")
    few = history_queries(client_alice, "/checks/")
    for s in servers[1:]:
        make_check(s, alice, status="queued")
    with django_assert_num_queries(few):
        html = client_alice.get("/checks/").content.decode()
    assert html.count('hx-trigger="every ') == 4


def test_the_rows_read_make_the_same_checks_as_the_orm(client_alice, alice, server):
    """history_row.read reads only the row's fields: the same row as the ORM's whole instances, and a field it
    did not read is still read when asked for."""
    from checks import history_row

    make_check(server, alice, status="failed", category="throttled", error_code="TooManyRequests", summary="slow")
    make_check(server, alice, status="running", minutes_ago=1)
    read = list(history_row.read(Check.objects.filter(server=server)))
    orm = list(Check.objects.filter(server=server).select_related("server").order_by("-created_at", "-id"))
    assert [c.pk for c in read] == [c.pk for c in orm] and read[0] == orm[0]
    assert history_row.rows(read, subscription_names={}) == history_row.rows(orm, subscription_names={})
    assert read[0].server.name == "pg-payments-01" and read[0].server.pk == server.pk
    assert read[0].api_version == "2024-08-01" and read[0].requested_by == alice

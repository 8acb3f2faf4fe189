"""The history page: everyone's checks in the tenant, newest first, filterable, paginated, exportable."""

import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


def test_it_paginates(client_alice, alice, server):
    for i in range(55):
        make_check(server, alice, backup_name=f"run-{i:02d}", minutes_ago=100 - i)
    first = client_alice.get("/checks/").content.decode()
    second = client_alice.get("/checks/", {"page": 2}).content.decode()
    assert "run-54" in first and "run-05" in first and "run-04" not in first
    assert "run-04" in second and "run-00" in second
    assert "Page 1 of 2" in first


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


def test_the_export_is_a_csv_of_the_filtered_history(client_alice, alice, server, staging_server):
    check = make_check(server, alice, backup_name="exported", request_id="req-1", client_request_id="cli-1")
    make_check(staging_server, alice, backup_name="filtered-out")
    response = client_alice.get("/checks/export.csv", {"server": server.pk})
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["backup_name"] for row in rows] == ["exported"]
    assert rows[0]["id"] == str(check.pk)
    assert rows[0]["x_ms_request_id"] == "req-1" and rows[0]["number_of_containers"] == "2"


def test_the_export_defuses_spreadsheet_formulas_from_azure(client_alice, alice, server):
    make_check(server, alice, status="failed", error_message='=HYPERLINK("http://evil","x")')
    rows = list(csv.DictReader(io.StringIO(b"".join(client_alice.get("/checks/export.csv").streaming_content).decode())))
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

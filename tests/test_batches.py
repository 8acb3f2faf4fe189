"""Checking many servers at once: a batch, its single progress poll, cancel, and re-running failures."""

import re

import pytest

from checks import strip
from checks.models import Batch, Check
from dashboard.demo import STAGING
from tests.batching import fan_out_queued
from tests.conftest import ALICE


@pytest.fixture
def alice_in(logged_in):
    return logged_in(ALICE["upn"])


def start(client, *names, fleet=None, **extra):
    """POST the batch, then let the worker queue its checks (the fan-out), as it would within the second."""
    data = {"scope": "selected", "server": [fleet[n].pk for n in names], **extra}
    response = client.post("/batches/", data)
    fan_out_queued()
    return response


def test_selected_servers_run_as_one_batch(client, alice_in, fleet, worker):
    response = start(client, "pg-payments-01", "pg-orders", "pg-staging-01", fleet=fleet)
    batch = Batch.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/batches/{batch.pk}/"
    assert (batch.started_by, batch.started_by_name, batch.tenant_id) == (alice_in, "Alice Admin", ALICE["tid"])
    assert sorted(batch.checks.values_list("server__name", flat=True)) == ["pg-orders", "pg-payments-01", "pg-staging-01"]
    assert batch.progress() == {"total": 3, "done": 0, "unqueued": 0, "queued": 3, "running": 0, "passed": 0,
                                "failed": 0, "cancelled": 0, "percent": 0, "finished": False}
    polling = client.get(f"/batches/{batch.pk}/progress/")
    assert polling.status_code == 200 and 'hx-trigger="every 1s"' in polling.content.decode()
    worker()
    progress = Batch.objects.get().progress()
    assert (progress["done"], progress["passed"], progress["failed"], progress["finished"]) == (3, 2, 1, True)
    final = client.get(f"/batches/{batch.pk}/progress/")
    html = final.content.decode()
    assert final.status_code == 286
    assert "3 / 3 done" in html and "2 passed" in html and "1 not passed" in html
    assert html.count('<tr id="check-') == 3, "one response carries every check: no per-row polling"
    assert "hx-get" not in html


def test_run_all_matching_the_current_filter(client, alice_in, fleet, worker):
    client.post("/batches/", {"scope": "all", "subscription": STAGING})
    fan_out_queued()
    batch = Batch.objects.get()
    assert sorted(batch.checks.values_list("server__name", flat=True)) == ["pg-flip-01", "pg-staging-01", "pg-staging-02"]


def test_nothing_selected_is_a_message_not_an_empty_batch(client, alice_in, fleet):
    response = client.post("/batches/", {"scope": "selected"}, follow=True)
    assert "No server selected" in response.content.decode()
    assert not Batch.objects.exists()


def test_servers_with_a_check_in_flight_are_left_out(client, alice_in, fleet):
    client.post(f"/servers/{fleet['pg-payments-01'].pk}/run/", {"backup_name": "b-1"}, headers={"HX-Request": "true"})
    response = start(client, "pg-payments-01", "pg-staging-01", fleet=fleet)
    assert Batch.objects.get().checks.count() == 1
    assert "already had a check in progress" in client.get(response["Location"]).content.decode()


def test_cancel_cancels_queued_checks_only(client, alice_in, fleet, worker):
    start(client, "pg-payments-01", "pg-staging-01", fleet=fleet)
    batch = Batch.objects.get()
    running = batch.checks.first()
    Check.objects.filter(pk=running.pk).update(status="running")
    client.post(f"/batches/{batch.pk}/cancel/")
    statuses = dict(batch.checks.values_list("server__name", "status"))
    assert sorted(statuses.values()) == ["cancelled", "running"]
    worker()
    assert Check.objects.filter(status="cancelled").count() == 1, "the worker does not run a cancelled check"
    assert Batch.objects.get().cancelled_at is not None


def test_cancelled_checks_are_counted_apart_and_not_re_run(client, alice_in, fleet, worker):
    start(client, "pg-orders", "pg-staging-01", fleet=fleet)
    batch = Batch.objects.get()
    Check.objects.filter(server=fleet["pg-orders"]).update(status="running")
    client.post(f"/batches/{batch.pk}/cancel/")
    Check.objects.filter(server=fleet["pg-orders"]).update(status="failed")
    progress = batch.progress()
    assert (progress["failed"], progress["cancelled"], progress["passed"]) == (1, 1, 0)
    html = client.get(f"/batches/{batch.pk}/progress/").content.decode()
    assert "1 cancelled" in html and "Re-run the 1 not passed" in html
    client.post(f"/batches/{batch.pk}/rerun-failed/")
    fan_out_queued()
    rerun = Batch.objects.exclude(pk=batch.pk).get()
    assert list(rerun.checks.values_list("server__name", flat=True)) == ["pg-orders"]


def test_rerun_failed_starts_a_batch_of_the_failures_only(client, alice_in, fleet, worker):
    start(client, "pg-payments-01", "pg-orders", "pg-analytics", fleet=fleet)
    worker()
    first = Batch.objects.get()
    response = client.post(f"/batches/{first.pk}/rerun-failed/", {"which": "all"})
    fan_out_queued()
    second = Batch.objects.exclude(pk=first.pk).get()
    assert response["Location"] == f"/batches/{second.pk}/"
    assert second.rerun_of == first
    assert sorted(second.checks.values_list("server__name", flat=True)) == ["pg-analytics", "pg-orders"]


def test_another_tenant_cannot_see_or_touch_a_batch_or_smuggle_servers_in(client, logged_in, fleet):
    logged_in(ALICE["upn"])
    start(client, "pg-payments-01", fleet=fleet)
    batch = Batch.objects.get()
    logged_in("charlie@fabrikam.example")
    for path in (f"/batches/{batch.pk}/", f"/batches/{batch.pk}/progress/"):
        assert client.get(path).status_code == 404
    assert client.post(f"/batches/{batch.pk}/cancel/").status_code == 404
    assert client.post(f"/batches/{batch.pk}/rerun-failed/").status_code == 404
    client.post("/batches/", {"scope": "selected", "server": [fleet["pg-payments-02"].pk, fleet["pg-fabrikam-01"].pk]})
    fan_out_queued()
    smuggled = Batch.objects.exclude(pk=batch.pk).get()
    assert list(smuggled.checks.values_list("server__name", flat=True)) == ["pg-fabrikam-01"]


@pytest.mark.parametrize("ids", [["abc"], ["-1"], ["99999999999999999999999"], [""], ["²"], ["١٢"]])
def test_bad_server_ids_are_ignored(client, alice_in, fleet, ids):
    response = client.post("/batches/", {"scope": "selected", "server": ids})
    assert response.status_code == 302
    assert not Batch.objects.exists()


def test_the_server_list_counts_filters_and_shows_the_outcome_strip(client, alice_in, fleet, worker):
    start(client, "pg-payments-01", "pg-orders", fleet=fleet)
    worker()
    html = client.get("/").content.decode()
    assert "<strong>1</strong> ready" in html and "<strong>1</strong> not ready" in html
    assert "<strong>12</strong> not known yet" in html
    assert sorted(kind for ticks in re.findall(r'data-ticks="([^"]*)"', html)
                  for _, kind, _ in strip.decode(ticks)) == ["not-ready", "ready"]
    failing = client.get("/", {"state": "not_ready"}).content.decode()
    assert "pg-orders" in failing and "pg-payments-01</strong>" not in failing
    searched = client.get("/", {"q": "staging"}).content.decode()
    assert "pg-staging-01" in searched and "pg-orders" not in searched
    bad = client.get("/", {"state": "exploded"})
    assert bad.status_code == 200 and "State: Select a valid choice" in bad.content.decode()


def test_the_server_list_pages_a_large_fleet_and_run_all_covers_every_page(client, alice_in, django_assert_max_num_queries):
    from dashboard.models import Server

    Server.objects.bulk_create([Server(tenant_id=ALICE["tid"], subscription_id=STAGING, resource_group="rg-big",
                                       name=f"pg-big-{i:03d}") for i in range(250)])
    with django_assert_max_num_queries(20):
        first = client.get("/").content.decode()
    assert first.count('class="server-row"') == 50
    assert "Page 1 of 5" in first and "Run on all 250 servers" in first
    last = client.get("/", {"page": 5}).content.decode()
    assert last.count('class="server-row"') == 50
    client.post("/batches/", {"scope": "all"})
    fan_out_queued()
    assert Batch.objects.get().checks.count() == 250


def test_a_finished_check_refreshes_only_the_counts_fragment_in_one_counting_query(
    client, alice_in, fleet, worker, django_assert_max_num_queries
):
    start(client, "pg-payments-01", "pg-orders", fleet=fleet)
    worker()
    # What the counts ask for when they hear `check-finished`: the fragment alone, counted in one query.
    with django_assert_max_num_queries(4) as queries:
        response = client.get("/", headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<ul class="counts" id="fleet-counts"') and "<html" not in html
    assert "<strong>1</strong> ready" in html and "<strong>1</strong> not ready" in html
    assert "<strong>12</strong> not known yet" in html and 'class="server-row"' not in html
    assert sum("COUNT(" in q["sql"].upper() for q in queries.captured_queries) == 1

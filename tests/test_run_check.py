"""Running a check from the server list: queued, then the worker, then the result, live through htmx."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from checks.models import YOUNG_CHECK_SECONDS, Check
from tests.batching import fan_out_queued
from tests.conftest import ALICE

HTMX = {"HX-Request": "true", "HX-Target": "server-1"}


@pytest.fixture
def alice_in(signed_in):
    return signed_in(ALICE["upn"])


def run(client, server, backup_name="pg-payments-01-ltr-1"):
    return client.post(f"/servers/{server.pk}/run/", {"backup_name": backup_name}, headers=HTMX)


def test_the_list_has_a_small_run_and_the_server_page_proposes_an_editable_backup_name(client, alice_in, server):
    listed = client.get("/").content.decode()
    assert 'name="backup_name"' not in listed, "no backup name in every row"
    # Named "Run pre-backup check on pg-payments-01": the page's hidden words, then the server's name.
    assert f'aria-labelledby="w-run n-{server.pk}">Run</button>' in listed
    assert '<span id="w-run" hidden>Run pre-backup check on</span>' in listed
    assert f'<strong id="n-{server.pk}">pg-payments-01</strong>' in listed
    page = client.get(f"/servers/{server.pk}/").content.decode()
    assert 'name="backup_name" value="pg-payments-01-ltr-' in page and ">Run pre-backup check</button>" in page


@pytest.mark.parametrize("posted", [{}, {"backup_name": ""}, {"backup_name": "   "}])
def test_a_run_without_a_backup_name_uses_the_proposed_one(client, alice_in, server, posted):
    response = client.post(f"/servers/{server.pk}/run/", posted, headers=HTMX)
    assert response.status_code == 200
    assert re.fullmatch(r"pg-payments-01-ltr-\d{8}-\d{4}", Check.objects.get().backup_name)


def test_a_click_queues_a_check_and_returns_a_row_that_polls(client, alice_in, server):
    response = run(client, server)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Queued" in html
    # A young single check is asked after every 200 ms (it takes ~50 ms), not once a second.
    assert f'hx-get="/servers/{server.pk}/row/"' in html and 'hx-trigger="every 200ms"' in html
    assert json.loads(response["HX-Trigger"]) == {"check-queued": {}}
    check = Check.objects.get()
    assert (check.status, check.backup_name, check.requested_by, check.api_version) == (
        "queued", "pg-payments-01-ltr-1", alice_in, "2024-08-01")
    assert (check.requested_by_oid, check.requested_by_tenant, check.requested_by_name) == (
        ALICE["oid"], ALICE["tid"], "Alice Admin")
    # Only the primary key travels to the worker: no token, no user data.
    task = DBTaskResult.objects.get()
    assert task.args_kwargs == {"args": [check.pk], "kwargs": {}}


def test_the_worker_finishes_the_check_and_the_poll_stops(client, alice_in, server, worker):
    run(client, server)
    worker()
    check = Check.objects.get()
    assert check.status == "succeeded"
    assert check.number_of_containers == 1
    assert check.http_status == 200 and check.attempts == 1
    assert check.request_id and check.correlation_request_id and check.client_request_id
    assert check.started_at <= check.finished_at
    response = client.get(f"/servers/{server.pk}/row/", headers=HTMX)
    assert response.status_code == 286
    assert json.loads(response["HX-Trigger"]) == {"check-finished": {}}, "the counts at the top of the list refresh"
    html = response.content.decode()
    assert "Passed" in html and "<strong>1</strong> container" in html
    assert "hx-trigger" not in html
    assert '<div id="live-announcer" hx-swap-oob="true"' in html and "pg-payments-01: Passed, 1 container." in html


def test_the_backup_name_chosen_or_proposed_is_the_one_azure_is_asked_about(client, alice_in, server, worker,
                                                                            sim):
    run(client, server, backup_name="before-the-migration")
    worker()
    client.post(f"/servers/{server.pk}/run/", {}, headers=HTMX)
    worker()
    asked = [json.loads(r.body)["backupSettings"]["backupName"] for r in sim.received("/ltrPreBackup", "POST")]
    recorded = list(Check.objects.order_by("pk").values_list("backup_name", flat=True))
    assert asked == recorded and asked[0] == "before-the-migration"
    assert re.fullmatch(r"pg-payments-01-ltr-\d{8}-\d{4}", asked[1])


def test_the_api_version_setting_is_the_one_azure_is_called_with(client, alice_in, server, worker, sim, settings):
    settings.AZURE_LTR_API_VERSION = "2025-08-01"
    run(client, server)
    worker()
    assert sim.received("/ltrPreBackup", "POST")[-1].query["api-version"] == "2025-08-01"
    assert Check.objects.get().api_version == "2025-08-01"


def test_a_second_click_while_queued_does_not_start_a_duplicate(client, alice_in, server, worker):
    run(client, server)
    response = run(client, server)
    assert response.status_code == 200
    assert "already in progress" in response.content.decode()
    assert Check.objects.count() == 1
    assert DBTaskResult.objects.count() == 1
    worker()
    run(client, server)
    assert Check.objects.count() == 2


@pytest.mark.parametrize("backup_name", ["-x", "has space", "a" * 129, "<script>alert(1)</script>"])
def test_an_invalid_backup_name_is_refused_with_a_message(client, alice_in, server, backup_name):
    response = run(client, server, backup_name)
    assert response.status_code == 422
    html = response.content.decode()
    assert "field-error" in html and "Backup name: " in html
    assert "<script>alert(1)</script>" not in html
    assert not Check.objects.exists()


def test_a_plain_form_post_without_htmx_is_redirected_to_the_server(client, alice_in, server):
    response = client.post(f"/servers/{server.pk}/run/", {"backup_name": "b-1"})
    assert response.status_code == 302 and response["Location"] == f"/servers/{server.pk}/"
    assert Check.objects.get().status == "queued"


def test_an_archived_server_cannot_be_checked(client, alice_in, server):
    client.post(f"/servers/{server.pk}/archive/")
    assert run(client, server).status_code == 404
    assert not Check.objects.exists()


def test_the_server_page_shows_its_history_newest_first(client, alice_in, server, worker):
    run(client, server, "first-run")
    worker()
    run(client, server, "second-run")
    html = client.get(f"/servers/{server.pk}/").content.decode()
    assert html.index("second-run") < html.index("first-run")
    assert 'hx-trigger="check-queued from:body"' in html


def test_a_check_still_running_after_its_first_seconds_is_polled_once_a_second(client, alice_in, server):
    run(client, server)
    Check.objects.update(created_at=timezone.now() - timedelta(seconds=YOUNG_CHECK_SECONDS + 1))
    html = client.get(f"/servers/{server.pk}/row/", headers=HTMX).content.decode()
    assert 'hx-trigger="every 1s"' in html


def test_the_checks_of_a_batch_are_polled_once_a_second_even_when_young(client, alice_in, server):
    client.post("/batches/", {"scope": "selected", "server": [server.pk]})
    fan_out_queued()  # the worker queues the batch's checks
    html = client.get(f"/servers/{server.pk}/row/", headers=HTMX).content.decode()
    assert 'hx-trigger="every 1s"' in html and "every 200ms" not in html

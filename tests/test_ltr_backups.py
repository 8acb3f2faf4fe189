"""LTR backups on the server's page: read from the simulator with the user's token, kept, shown; paging, an
operation that disappears, faults that change nothing, tenant scoping, CSRF, flat queries."""

import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from armclient import pacing
from armclient.models import RateBucket
from armclient.pacing import BucketKey
from backups.models import LtrBackup, LtrRefresh
from dashboard.demo import PROD, STAGING
from tests.conftest import ALICE, make_server

RG = "rg-payments-prod"


def refresh(client, server):
    return client.post(f"/servers/{server.pk}/backups/refresh/", headers={"HX-Request": "true"})


def fragment(client, server):
    return client.get(f"/servers/{server.pk}/backups/", headers={"HX-Request": "true"})


def test_the_server_page_loads_the_fragment_which_asks_for_a_refresh_first(client, logged_in, server):
    logged_in(ALICE["upn"])
    page = client.get(f"/servers/{server.pk}/").content.decode()
    assert f'hx-get="/servers/{server.pk}/backups/" hx-trigger="load"' in page
    html = fragment(client, server).content.decode()
    assert "Not read from Azure yet" in html and "Refresh from Azure" in html


def test_a_success_and_a_running_backup_progress_to_succeeded(client, logged_in, server, sim):
    sim.set_ltr_backups(PROD, RG, "pg-payments-01", [
        {"name": "weekly", "status": "Succeeded", "started_ago": 3 * 86400, "duration": 412, "size": 42949672960},
        {"name": "now", "status": "Running", "started_ago": 0, "duration": 2, "size": 1000, "transferred": 600},
    ])
    logged_in(ALICE["upn"])
    response = refresh(client, server)
    html = response.content.decode()
    assert response.status_code == 200, "a running backup keeps the fragment polling"
    assert f'hx-post="/servers/{server.pk}/backups/refresh/" hx-trigger="every 5s"' in html and "<progress" in html
    assert "Azure lists 2 LTR backup operations" in html and "40.0\xa0GB" in html and "6 min 52 s" in html
    now = LtrBackup.objects.get(backup_name="now")
    assert now.status == "Running" and now.percent_complete < 100 and now.end_time is None
    time.sleep(2.1)
    refresh(client, server)
    now.refresh_from_db()
    assert now.status == "Succeeded" and now.percent_complete == 100 and now.data_transferred_bytes == 600
    done = fragment(client, server)
    assert done.status_code == 286, "nothing running: htmx stops polling"
    assert "every 5s" not in done.content.decode()


def test_a_failure_shows_its_error_in_words_with_its_code_escaped(client, logged_in, server, sim):
    sim.set_ltr_backups(PROD, RG, "pg-payments-01", [
        {"name": "monthly", "status": "Failed", "error_code": "UserErrorSasUriExpired",
         "error_message": "The SAS <b>URI</b> expired"},
        {"name": "odd", "status": "Paused"},
    ])
    logged_in(ALICE["upn"])
    html = refresh(client, server).content.decode()
    assert "The SAS &lt;b&gt;URI&lt;/b&gt; expired" in html and "UserErrorSasUriExpired" in html
    assert "Azure says “Paused”" in html, "an unknown status is kept and shown as Azure said it"
    assert LtrBackup.objects.get(backup_name="odd").status == "Paused"


def test_none_at_all(client, logged_in, sim):
    server = make_server(name="pg-orders")
    logged_in(ALICE["upn"])
    html = refresh(client, server).content.decode()
    assert "Azure lists no LTR backup operations for this server." in html
    assert LtrRefresh.objects.get(server=server).listed == 0


def test_every_page_is_read_on_the_read_bucket(client, logged_in, sim, monkeypatch):
    server = make_server(subscription_id=STAGING, resource_group="rg-staging", name="pg-inventory-01")
    monkeypatch.setattr(sim.inventory, "ltr_page_size", 10)
    logged_in(ALICE["upn"])
    refresh(client, server)
    assert len(sim.received("/pg-inventory-01/ltrBackupOperations", "GET")) == 5
    assert LtrBackup.objects.filter(server=server).count() == 45
    bucket = RateBucket.objects.get(kind="reads", scope=STAGING.lower(), principal_oid=ALICE["oid"])
    # Tokens are leased a few at a time (armclient.pacing): the ones held unused were taken by no request.
    taken = bucket.issued - pacing.unused_tokens(BucketKey(bucket.kind, bucket.scope, bucket.principal_oid))
    assert taken == 5 and not RateBucket.objects.filter(kind="writes").exists()


def test_an_operation_azure_no_longer_lists_stays_marked_so(client, logged_in, server, sim):
    logged_in(ALICE["upn"])
    refresh(client, server)
    sim.remove_ltr_backup(PROD, RG, "pg-payments-01", "ltr-2026-weekly")
    html = refresh(client, server).content.decode()
    gone = LtrBackup.objects.get(backup_name="ltr-2026-weekly")
    assert gone.gone_from_azure_at is not None and "no longer listed by Azure" in html
    first_gone = gone.gone_from_azure_at
    refresh(client, server)
    gone.refresh_from_db()
    assert gone.gone_from_azure_at == first_gone, "marked once, when first missed"


def test_a_503_is_retried_then_the_list_is_read(client, logged_in, server, sim):
    sim.set_ltr_backups(PROD, RG, "pg-payments-01", behaviour={"outcome": "unavailable", "fail_times": 1,
                                                                "retry_after": 1})
    logged_in(ALICE["upn"])
    html = refresh(client, server).content.decode()
    assert "Azure lists 2 LTR backup operations" in html
    assert len(sim.received("/pg-payments-01/ltrBackupOperations", "GET")) == 2


def test_a_missing_permission_says_why_and_keeps_what_was_seen(client, logged_in, server, sim):
    logged_in(ALICE["upn"])
    refresh(client, server)
    seen = {b.backup_name: b.last_seen_at for b in LtrBackup.objects.all()}
    last = LtrRefresh.objects.get().refreshed_at
    sim.set_ltr_backups(PROD, RG, "pg-payments-01", [], behaviour={"outcome": "forbidden"})
    html = refresh(client, server).content.decode()
    assert "could not be read from Azure" in html and "does not have authorization" in html
    assert "AuthorizationFailed" in html and "ltrBackupOperations/read" in html
    assert {b.backup_name: b.last_seen_at for b in LtrBackup.objects.all()} == seen
    assert not LtrBackup.objects.exclude(gone_from_azure_at=None).exists()
    assert LtrRefresh.objects.get().refreshed_at == last


def test_a_plain_form_post_redirects_with_a_message(client, logged_in, server, sim):
    logged_in(ALICE["upn"])
    response = client.post(f"/servers/{server.pk}/backups/refresh/", follow=True)
    assert response.redirect_chain[-1][0] == f"/servers/{server.pk}/"
    assert "Azure lists 2 LTR backup operations" in response.content.decode()


def test_another_tenants_server_answers_404(client, logged_in, fabrikam_server, sim):
    logged_in(ALICE["upn"])
    assert fragment(client, fabrikam_server).status_code == 404
    assert refresh(client, fabrikam_server).status_code == 404
    assert not sim.received("/ltrBackupOperations")


def test_refresh_needs_csrf_and_login(alice, server, sim):
    client = Client(enforce_csrf_checks=True)
    assert client.get(f"/servers/{server.pk}/backups/").status_code == 302
    client.force_login(alice)
    assert client.post(f"/servers/{server.pk}/backups/refresh/").status_code == 403
    assert not sim.received("/ltrBackupOperations") and not LtrBackup.objects.exists()


@pytest.mark.parametrize("count", [10, 100])
def test_the_fragment_takes_the_same_queries_for_10_or_100_backups(client, logged_in, server, count,
                                                                     django_assert_num_queries):
    now = timezone.now()
    LtrBackup.objects.bulk_create(
        LtrBackup(server=server, tenant_id=server.tenant_id, backup_name=f"b{i}", status="Succeeded",
                  start_time=now - timedelta(days=i), end_time=now - timedelta(days=i) + timedelta(minutes=5),
                  percent_complete=100, first_seen_at=now, last_seen_at=now) for i in range(count))
    logged_in(ALICE["upn"])
    with django_assert_num_queries(5):
        response = fragment(client, server)
    assert response.content.decode().count('data-backup=') == count

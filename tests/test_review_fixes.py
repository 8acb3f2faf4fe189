"""Bugs a code review found, each with the test that would have caught it."""

import socket
import threading
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from checks.models import Check
from checks.tasks import mark_interrupted, queue_check
from dashboard.models import Server
from dashboard.views import _register
from tests.conftest import ALICE, make_server
from tests.factories import make_check


def _within(seconds, fn):
    """Run fn in a thread; the result, or a failure if it is still running after `seconds` (a hang)."""
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("value", fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds} s: a call without a timeout"
    return box["value"]


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_a_silent_identity_provider_does_not_hang_sign_in(client, db, settings, silent_server):
    settings.AZURE_AUTHORITY_HOST = silent_server
    settings.ARM_CONNECT_TIMEOUT = 0.5
    settings.ENTRA_READ_TIMEOUT = 0.5
    response = _within(20, lambda: client.get("/auth/signin/"))
    assert response.status_code == 503


def test_a_late_result_does_not_overwrite_a_check_marked_interrupted(alice, server):
    check = make_check(server, alice, status="running", finished_at=None,
                       started_at=timezone.now() - timedelta(hours=1))
    mark_interrupted()
    assert check.finish(status=Check.Status.SUCCEEDED, number_of_containers=3) is False
    check.refresh_from_db()
    assert (check.status, check.number_of_containers) == ("interrupted", None)


def test_a_queued_check_whose_task_was_lost_is_interrupted_but_a_waiting_one_is_not(alice, server, staging_server):
    lost = queue_check(server, alice, "b-1", "2024-08-01")
    waiting = queue_check(staging_server, alice, "b-2", "2024-08-01")
    Check.objects.update(created_at=timezone.now() - timedelta(hours=1))
    DBTaskResult.objects.filter(args_kwargs__args__0=lost.pk).update(status="FAILED")
    assert mark_interrupted() == 1
    lost.refresh_from_db()
    waiting.refresh_from_db()
    assert (lost.status, waiting.status) == ("interrupted", "queued")


def test_a_registration_racing_another_is_refused_not_an_error(db):
    first = make_server(name="pg-race")
    # What the second of two simultaneous "Add server" posts does after both passed the form's check.
    twin = Server(tenant_id=first.tenant_id, subscription_id=first.subscription_id,
                  resource_group="RG-PAYMENTS-PROD", name="PG-RACE")
    assert _register(twin) is False
    assert Server.objects.count() == 1


def test_the_server_page_does_not_query_once_per_check(client, alice, server, django_assert_max_num_queries):
    for i in range(20):
        make_check(server, alice, backup_name=f"b-{i}", minutes_ago=i)
    client.force_login(alice)
    with django_assert_max_num_queries(15):
        response = client.get(f"/servers/{server.pk}/")
    assert response.content.decode().count('<tr id="check-') == 20


@pytest.mark.django_db(transaction=True)
def test_import_does_not_sleep_through_a_long_retry_after(client, signed_in, sim):
    signed_in(ALICE["upn"])
    sim.inventory.throttle_retry_after = 120
    try:
        response = _within(20, lambda: client.get("/servers/import/"))
    finally:
        sim.inventory.throttle_retry_after = None
    html = response.content.decode()
    assert response.status_code == 200 and "could not be listed" in html and "SubscriptionRequestsThrottled" in html

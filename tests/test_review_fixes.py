"""Bugs a code review found in talking to Azure (timeouts, Retry-After), each with the test that would have
caught it. The review's other findings live with the features they belong to."""

import socket
import threading

import pytest
from django.db import connections

from tests.conftest import ALICE


def _within(seconds, fn):
    """Run fn in a thread; the result, or a failure if it is still running after `seconds` (a hang)."""
    box = {}

    def run():
        try:
            box["value"] = fn()
        finally:
            # The thread's own connection (the view's): left open, it outlived the test until the garbage
            # collector came by, and on PostgreSQL the test database could not be dropped at the end.
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
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


# Transactional: the view runs in a thread of its own, whose writes (the sign-in rate limit's counter) must not
# wait for the test's open transaction.
@pytest.mark.django_db(transaction=True)
def test_a_silent_identity_provider_does_not_hang_sign_in(client, settings, silent_server):
    settings.AZURE_AUTHORITY_HOST = silent_server
    settings.ARM_CONNECT_TIMEOUT = 0.5
    settings.ENTRA_READ_TIMEOUT = 0.5
    response = _within(20, lambda: client.get("/auth/signin/"))
    assert response.status_code == 503


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

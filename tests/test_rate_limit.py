"""Bounded work per person: POSTs per user and sign-in starts per address, 429 with Retry-After beyond the
limit, counted in the database so every web process shares the count."""

import time
from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client

from checks.models import Check
from dashboard.ratelimit import RateWindow, clear_old_windows


@pytest.fixture
def limits(settings):
    """Small limits, and the clock at the start of a minute (the windows are the clock's minutes: a test that
    crossed into the next one would see its count start again)."""
    settings.RATE_LIMIT_POSTS_PER_MINUTE = 3
    settings.RATE_LIMIT_SIGNINS_PER_MINUTE = 2
    with time_machine.travel(datetime.fromtimestamp((time.time() // 60 + 1) * 60, UTC), tick=True):
        yield settings


def test_a_users_posts_beyond_the_limit_get_429_and_change_nothing(limits, sim, alice, bob, server):
    first, second = Client(), Client()  # two browsers (or two web processes): one count
    first.force_login(alice)
    second.force_login(alice)
    answers = [c.post(f"/servers/{server.pk}/run/", {"backup_name": "b-1"}).status_code
               for c in (first, second, first)]
    assert 429 not in answers
    refused = second.post(f"/servers/{server.pk}/run/", {"backup_name": "b-2"})
    assert refused.status_code == 429 and 1 <= int(refused["Retry-After"]) <= 60
    assert "try again in" in refused.content.decode()
    assert not Check.objects.filter(backup_name="b-2").exists()
    other = Client()
    other.force_login(bob)
    assert other.post(f"/servers/{server.pk}/run/", {"backup_name": "b-3"}).status_code != 429, "per user"
    assert first.get("/").status_code == 200, "reading is not limited"


def test_anonymous_sign_in_starts_are_limited_per_address(limits, sim, db):
    answers = [Client(REMOTE_ADDR="192.0.2.7").get("/auth/signin/").status_code for _ in range(3)]
    assert answers[:2] == [302, 302] and answers[2] == 429
    assert Client(REMOTE_ADDR="192.0.2.8").get("/auth/signin/").status_code == 302


def test_behind_a_proxy_sign_in_starts_are_limited_per_client_the_proxy_saw(limits, sim, db):
    """BEHIND_PROXY: every request comes from the proxy's address; the client is the last X-Forwarded-For hop
    (the one the proxy appended), and what the client wrote before it changes nothing."""
    limits.BEHIND_PROXY = True

    def start(forwarded):
        return Client(REMOTE_ADDR="10.0.0.2").get("/auth/signin/", headers={"X-Forwarded-For": forwarded}).status_code

    assert [start("1.1.1.1, 192.0.2.7"), start("2.2.2.2, 192.0.2.7"), start("192.0.2.7")] == [302, 302, 429]
    assert start("192.0.2.7, 192.0.2.8") == 302, "another client behind the same proxy has its own count"


def test_old_windows_are_cleared(db):
    RateWindow.objects.create(key="post:1", window=0, count=5)
    assert clear_old_windows() == 1 and not RateWindow.objects.exists()

"""A real checks_worker process keeps doing its periodic work while it runs, not only at start: it marks a check
that lost its worker "interrupted" (README: "until any worker's reaper marks it") and opens an LTR backup gap
when the days pass (README: "the worker looks every LTR_GAP_POLL_SECONDS"), the alert reaching a webhook."""

import json
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Channel
from backups.models import LtrRefresh
from checks.models import Check
from tests.conftest import ALICE, ROOT, make_server
from tests.factories import make_check
from tests.test_alerts import allow_loopback, receiver  # noqa: F401 (fixtures)
from tests.test_worker import _worker_env


def _wait_for(condition, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.django_db(transaction=True)
def test_a_running_worker_reaps_lost_checks_and_opens_ltr_gaps_on_its_rounds(signed_in, sim, allow_loopback,  # noqa: F811
                                                                           receiver):  # noqa: F811
    alice = signed_in(ALICE["upn"])
    catcher = receiver()
    channel = Channel(tenant_id=alice.tenant_id, name="hook", kind="webhook")
    channel.set_target(f"{catcher.url}/x", "hint")
    channel.save()
    env = {**_worker_env(sim), "LTR_GAP_POLL_SECONDS": "0.2", "ALERT_WEBHOOK_ALLOW_PRIVATE": "1",
           "ALERT_WEBHOOK_ALLOW_HTTP": "1"}
    first = make_check(make_server(name="pg-lost-first"), alice, status="running", minutes_ago=60)
    worker = subprocess.Popen([sys.executable, "manage.py", "checks_worker", "--interval", "0.05",
                               "--reap-interval", "0.2"], cwd=ROOT, env=env)
    try:
        # Its first round is over (a round runs the periodic jobs, then reaps): what follows is a later one's.
        assert _wait_for(lambda: Check.objects.get(pk=first.pk).status == "interrupted", 60)
        assert catcher.received == []
        lost = make_check(make_server(name="pg-lost"), alice, status="running", minutes_ago=60)
        gap = make_server(name="pg-no-backup")
        LtrRefresh.objects.create(server=gap, tenant_id=gap.tenant_id, refreshed_at=timezone.now(),
                                  last_status="Succeeded", last_started_at=timezone.now() - timedelta(days=9),
                                  last_succeeded_at=timezone.now() - timedelta(days=9))
        assert _wait_for(lambda: Check.objects.get(pk=lost.pk).status == "interrupted")
        assert _wait_for(lambda: len(catcher.received) >= 1)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()  # never left polling the next tests' database
            raise
    assert "did not finish within 600 s" in Check.objects.get(pk=lost.pk).summary
    assert [json.loads(c.body)["title"] for c in catcher.received] == [
        "No successful LTR backup of pg-no-backup in 7 days"]

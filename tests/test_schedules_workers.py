"""Two real checks_worker processes fire 50 due schedules: each exactly once, through the normal pipeline.

The workers find due schedules through WORKER_PERIODIC_JOBS (polling every 0.2 s here), claim each run in
the database, queue its batch as the owner, and run the checks against the simulator.
"""

import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from checks.models import Batch, Check
from dashboard.demo import PROD
from dashboard.models import Server
from schedules.models import Schedule
from tests.conftest import ALICE, ROOT
from tests.test_worker import _worker_env

COUNT = 50


def _start(sim, log_path):
    env = {**_worker_env(sim), "SCHEDULES_POLL_SECONDS": "0.2", "LOG_LEVEL": "INFO"}
    with open(log_path, "wb") as log:
        return subprocess.Popen([sys.executable, "manage.py", "checks_worker", "--interval", "0.05", "--threads", "4"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


@pytest.mark.django_db(transaction=True)
def test_two_workers_fire_50_due_schedules_exactly_once_each(signed_in, sim, tmp_path):
    alice = signed_in(ALICE["upn"])
    names = [f"pg-sched-{i:03d}" for i in range(COUNT)]
    for name in names:
        sim.set_behaviour(PROD, "rg-payments-prod", name, outcome="success", latency_ms=20)
    Server.objects.bulk_create(Server(tenant_id=alice.tenant_id, subscription_id=PROD,
                                      resource_group="rg-payments-prod", name=name) for name in names)
    # Due a moment after both workers are up, so that both are polling when the runs fall due.
    due = timezone.now() + timedelta(seconds=4)
    Schedule.objects.bulk_create(
        Schedule(tenant_id=alice.tenant_id, owner=alice, name=f"Every 6 h: {name}", scope="search", search=name,
                 cadence="every", every_hours=6, time_zone="UTC", next_run_at=due) for name in names)

    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    workers = [_start(sim, path) for path in logs]
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (
            Schedule.objects.filter(last_batch__isnull=True).exists()
            or Check.objects.filter(status__in=Check.ACTIVE_STATUSES).exists()
        ):
            time.sleep(0.2)
        time.sleep(1)  # more polls, in which nothing may fire again
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            proc.wait(timeout=60)

    assert Batch.objects.count() == COUNT
    assert Schedule.objects.values("last_batch").distinct().count() == COUNT
    assert Check.objects.filter(status="succeeded").count() == COUNT
    assert {c.requested_by_id for c in Check.objects.all()} == {alice.pk}
    many = {key: n for key, n in sim.stats.arm_calls.items() if key[2].startswith("pg-sched-")}
    assert len(many) == COUNT and set(many.values()) == {1}, "every server was checked exactly once"
    for schedule in Schedule.objects.all():
        assert schedule.next_run_at == due + timedelta(hours=6), "advanced by one slot, once"

    fired = Counter()
    for path in logs:
        for match in re.finditer(r"Schedule (\d+) ran as user", path.read_text()):
            fired[match.group(1)] += 1
    assert len(fired) == COUNT and set(fired.values()) == {1}, "no schedule fired in both processes"
    print("runs fired per worker:", [len(re.findall(r"ran as user", p.read_text())) for p in logs])

"""The queue's rows are final when their task ends, so a worker killed afterwards leaves none "running".

Before, checks_worker marked the tasks that had run successful only in its next claim's transaction: a worker
killed in between left rows "running" in django-tasks-db's table for checks long finished. Now a check's row
is ended in the transaction that writes the check's result, any other task's right after it ran. Real worker
processes on the test database, as in tests/test_worker.py.
"""

import signal
import time

import pytest
from django.core.management import call_command
from django.tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from checks.models import Batch, Check
from dashboard.demo import PROD
from tests.conftest import ALICE, make_server
from tests.test_worker import _start_worker


def wait_until(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_after_a_check_finished_leaves_its_task_row_final(client, signed_in, sim):
    signed_in(ALICE["upn"])
    sim.set_behaviour(PROD, "rg-payments-prod", "pg-quick", outcome="success")
    sim.set_behaviour(PROD, "rg-payments-prod", "pg-slow", outcome="success", latency_ms=5000)
    quick, slow = make_server(name="pg-quick"), make_server(name="pg-slow")
    for server in (slow, quick):
        client.post(f"/servers/{server.pk}/run/", {"backup_name": "b-1"}, headers={"HX-Request": "true"})
    victim = _start_worker(sim, "--threads", "2")
    try:
        wait_until(lambda: Check.objects.get(server=quick).status == "succeeded"
                   and Check.objects.get(server=slow).status == "running")
    finally:
        victim.send_signal(signal.SIGKILL)  # at once: the slow check is still running
        victim.wait(timeout=10)
    quick_row = DBTaskResult.objects.get(args_kwargs__args__0=Check.objects.get(server=quick).pk)
    assert (quick_row.status, quick_row.return_value) == (TaskResultStatus.SUCCESSFUL, "succeeded")
    assert quick_row.finished_at == Check.objects.get(server=quick).finished_at
    slow_row = DBTaskResult.objects.get(args_kwargs__args__0=Check.objects.get(server=slow).pk)
    assert slow_row.status == TaskResultStatus.RUNNING, "its check is still running: the reaper's, as before"


@pytest.mark.django_db(transaction=True)
def test_run_on_all_then_the_threaded_worker_leaves_every_row_final(client, signed_in, sim):
    signed_in(ALICE["upn"])
    for name in ("pg-payments-01", "pg-payments-02x", "pg-orders"):
        make_server(name=name)
    client.post("/batches/", {"scope": "all"})
    call_command("checks_worker", "--batch", "--threads", "2", "--interval", "0.05")
    batch = Batch.objects.get()
    assert (batch.fan_out, batch.checks.count(), batch.progress()["finished"]) == ("done", 3, True)
    rows = DBTaskResult.objects.values_list("task_path", "status")
    assert sorted(rows) == [("checks.tasks.fan_out", "SUCCESSFUL")] + [("checks.tasks.run_check", "SUCCESSFUL")] * 3

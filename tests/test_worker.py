"""The checks worker: several checks at once, never one twice, nothing stuck after a crash.

The multi-process tests start real worker processes on the test database (a file for SQLite, the test
database on the PostgreSQL server in CI's second run).
"""

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from checks.models import Check
from checks.tasks import run_check
from dashboard.demo import PROD, STAGING
from dashboard.models import Server
from tests.conftest import ALICE, ROOT, make_server
from tests.factories import make_check


def test_a_check_left_running_by_a_dead_worker_is_marked_interrupted(alice, server):
    check = make_check(server, alice, status="running", finished_at=None, started_at=timezone.now() - timedelta(hours=1))
    fresh = make_check(make_server(name="pg-other"), alice, status="running", finished_at=None)
    assert Check.objects.mark_interrupted() == 1
    check.refresh_from_db()
    fresh.refresh_from_db()
    assert check.status == "interrupted" and "stopped" in check.summary and check.finished_at
    assert fresh.status == "running"


def test_an_interrupted_check_can_be_run_again(client, signed_in, server, worker):
    alice = signed_in(ALICE["upn"])
    make_check(server, alice, status="running", finished_at=None, started_at=timezone.now() - timedelta(hours=1))
    Check.objects.mark_interrupted()
    client.post(f"/servers/{server.pk}/run/", {"backup_name": "b-2"}, headers={"HX-Request": "true"})
    worker()
    assert list(Check.objects.order_by("id").values_list("status", flat=True)) == ["interrupted", "succeeded"]


@pytest.mark.django_db(transaction=True)
def test_the_threaded_worker_runs_the_queue_and_exits_in_batch_mode(client, signed_in, sim):
    signed_in(ALICE["upn"])
    servers = [make_server(subscription_id=STAGING, resource_group="rg-staging", name=n)
               for n in ("pg-staging-01", "pg-staging-02")]
    client.post("/batches/", {"scope": "selected", "server": [s.pk for s in servers]})
    call_command("checks_worker", "--batch", "--threads", "2", "--interval", "0.05")
    assert sorted(Check.objects.values_list("status", "number_of_containers")) == [("succeeded", 1), ("succeeded", 8)]


@pytest.mark.django_db(transaction=True)
def test_a_worker_has_worker_threads_checks_at_azure_at_once(client, signed_in, sim, settings):
    """WORKER_THREADS (8 as shipped): 20 checks answered after 0.5 s each reach the simulator at most 8 within
    any 0.45 s (a thread's next call comes after its last answer), and more than half of 8 at the start."""
    assert settings.WORKER_THREADS == 8, "the shipped default"
    signed_in(ALICE["upn"])
    names = [f"pg-slow-{i:02}" for i in range(20)]
    for name in names:
        sim.set_behaviour(PROD, "rg-payments-prod", name, outcome="success", latency_ms=500)
    client.post("/batches/", {"scope": "selected", "server": [make_server(name=n).pk for n in names]})
    call_command("checks_worker", "--batch", "--interval", "0.05")  # no --threads: the setting's
    arrivals = sorted(r.arrived_at for r in sim.received("/ltrPreBackup", "POST"))
    assert len(arrivals) == 20 and Check.objects.filter(status="succeeded").count() == 20
    at_once = max(sum(1 for later in arrivals if at <= later < at + 0.45) for at in arrivals)
    assert 4 < at_once <= 8, at_once


def _worker_env(sim) -> dict:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        url = f"sqlite:///{db['NAME']}"
    else:
        url = f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {**os.environ, "DATABASE_URL": url, "DEMO_MODE": "1", "AZURE_AUTHORITY_HOST": sim.https_url,
            "AZURE_ARM_ENDPOINT": sim.https_url, "AZURE_CA_BUNDLE": str(sim.ca_path), "LOG_LEVEL": "WARNING"}


def _start_worker(sim, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", "checks_worker", "--interval", "0.05", *args],
                            cwd=ROOT, env=_worker_env(sim))


@pytest.mark.django_db(transaction=True)
def test_two_workers_run_200_checks_each_exactly_once(client, signed_in, sim):
    signed_in(ALICE["upn"])
    servers = []
    for i in range(200):
        sub, rg = (PROD, "rg-payments-prod") if i % 2 else (STAGING, "rg-staging")
        name = f"pg-many-{i:03d}"
        sim.set_behaviour(sub, rg, name, outcome="success", latency_ms=20)
        servers.append(Server(tenant_id=ALICE["tid"], subscription_id=sub, resource_group=rg, name=name))
    Server.objects.bulk_create(servers)
    client.post("/batches/", {"scope": "all"})
    assert not Check.objects.exists(), "the POST leaves the queuing of the checks to a worker"
    workers = [_start_worker(sim, "--batch", "--threads", "4") for _ in range(2)]
    for proc in workers:
        assert proc.wait(timeout=240) == 0
    assert Check.objects.filter(status="succeeded").count() == 200
    calls = sim.stats.arm_calls
    many = {key: n for key, n in calls.items() if key[2].startswith("pg-many-")}
    assert len(many) == 200 and set(many.values()) == {1}, "every server was called exactly once"
    assert len(set(Check.objects.values_list("request_id", flat=True))) == 200


@pytest.mark.django_db(transaction=True)
def test_a_killed_workers_check_is_recovered_and_sigterm_lets_a_check_finish(client, signed_in, sim):
    signed_in(ALICE["upn"])
    sim.set_behaviour(PROD, "rg-payments-prod", "pg-slow", outcome="success", latency_ms=3000)
    server = make_server(name="pg-slow")
    client.post(f"/servers/{server.pk}/run/", {"backup_name": "b-1"}, headers={"HX-Request": "true"})
    victim = _start_worker(sim, "--threads", "1")
    deadline = time.monotonic() + 30
    while Check.objects.get().status != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    assert Check.objects.get().status == "running", "SIGKILL left it running, as a crash would"
    assert Check.objects.mark_interrupted(stale_after=0) == 1
    interrupted = Check.objects.get()
    assert interrupted.status == "interrupted"

    # Run it again; this time stop the worker politely mid-check: the check finishes first.
    client.post(f"/servers/{server.pk}/run/", {"backup_name": "b-2"}, headers={"HX-Request": "true"})
    polite = _start_worker(sim, "--threads", "1")
    rerun = Check.objects.exclude(pk=interrupted.pk).get()
    deadline = time.monotonic() + 30
    while Check.objects.get(pk=rerun.pk).status != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    polite.send_signal(signal.SIGTERM)
    assert polite.wait(timeout=30) == 0
    rerun.refresh_from_db()
    assert rerun.status == "succeeded"


@pytest.mark.django_db(transaction=True)
def test_a_late_result_does_not_overwrite_a_check_marked_interrupted(client, logged_in, sim):
    sim.set_behaviour(PROD, "rg-payments-prod", "pg-late", latency_ms=1500)
    server = make_server(name="pg-late")
    logged_in(ALICE["upn"])
    client.post(f"/servers/{server.pk}/run/", {"backup_name": "b-1"}, headers={"HX-Request": "true"})
    check = Check.objects.get()

    def work():
        try:
            run_check.call(check.pk)
        finally:
            connections.close_all()

    thread = threading.Thread(target=work)
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not sim.received("/ltrPreBackup", "POST"):
        time.sleep(0.05)
    # The reaper believes the worker lost while ARM is still answering.
    assert Check.objects.mark_interrupted(stale_after=0) == 1
    thread.join()
    check.refresh_from_db()
    assert (check.status, check.number_of_containers) == ("interrupted", None)


def test_a_queued_check_whose_task_was_lost_is_interrupted_but_a_waiting_one_is_not(alice, server, staging_server):
    lost = Check.objects.queue(server, alice, "b-1", api_version="2024-08-01")
    waiting = Check.objects.queue(staging_server, alice, "b-2", api_version="2024-08-01")
    Check.objects.update(created_at=timezone.now() - timedelta(hours=1))
    DBTaskResult.objects.filter(args_kwargs__args__0=lost.pk).update(status="FAILED")
    assert Check.objects.mark_interrupted() == 1
    lost.refresh_from_db()
    waiting.refresh_from_db()
    assert (lost.status, waiting.status) == ("interrupted", "queued")


def test_another_tasks_waiting_row_with_the_same_argument_does_not_keep_a_lost_check_queued(alice, server):
    """Only a run_check task stands for a check: the subscription names' read after a sign-in takes a user's id
    as its one argument, which may equal the id of a check whose own task was lost."""
    from dashboard.subscriptions import read_names_as

    lost = Check.objects.queue(server, alice, "b-1", api_version="2024-08-01")
    Check.objects.update(created_at=timezone.now() - timedelta(hours=1))
    DBTaskResult.objects.filter(args_kwargs__args__0=lost.pk).update(status="FAILED")
    read_names_as.enqueue(lost.pk)  # waits its turn, with the same number as its argument
    assert Check.objects.mark_interrupted() == 1


def test_sqlites_writer_lock_file_is_shared_by_a_group(tmp_path):
    # The README: web and workers take turns on <db>.writer-lock, which two users of one group can both open.
    from armclient import onewriter

    database = str(tmp_path / "shared.sqlite3")
    old = os.umask(0o002)
    try:
        descriptor = onewriter._writer_file(database)
    finally:
        os.umask(old)
        onewriter._writer_files.pop(database, None)
    os.close(descriptor)
    assert oct(os.stat(database + ".writer-lock").st_mode & 0o777) == oct(0o660)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's writers take no turns")
def test_on_postgresql_a_writer_takes_no_lock_and_opens_no_lock_file(db):
    from armclient import onewriter

    with onewriter.one_writer():
        free = onewriter._sqlite_writer.acquire(blocking=False)  # this process's lock was not taken
        onewriter._sqlite_writer.release()
    assert free and onewriter._writer_files == {}

"""A schedule's run also reads its servers' LTR backups as its owner (a task, paced to the read bucket), and keeps
the outcome on the schedule, shown on the schedules page, a failure included."""

from datetime import time

from backups.models import LtrBackup, LtrRefresh
from dashboard.demo import PROD
from schedules.firing import fire_due_schedules
from schedules.models import Schedule
from tests.conftest import ALICE, make_server
from tests.test_schedules_firing import make_schedule

RG = "rg-payments-prod"


def test_a_run_reads_each_servers_ltr_backups_as_the_owner_and_a_failure_is_kept_and_shown(
        client, signed_in, sim, worker):
    ok = make_server(name="pg-payments-01")
    denied = make_server(name="pg-payments-02")
    sim.set_ltr_backups(PROD, RG, "pg-payments-01", [{"name": "weekly", "status": "Succeeded", "started_ago": 3600}])
    sim.set_ltr_backups(PROD, RG, "pg-payments-02", [], behaviour={"outcome": "forbidden"})
    alice = signed_in(ALICE["upn"])
    schedule = make_schedule(alice, cadence="every", every_hours=6, daily_at=None)
    assert fire_due_schedules() == 1
    worker()
    reads = sim.received("/ltrBackupOperations", "GET")
    assert sorted(r.path.split("/")[-2] for r in reads) == ["pg-payments-01", "pg-payments-02"]
    assert all(r.headers["Authorization"].startswith("Bearer ") for r in reads)
    assert LtrBackup.objects.get(server=ok).status == "Succeeded"
    assert LtrRefresh.objects.get(server=ok).refreshed_by == alice
    assert not LtrRefresh.objects.filter(server=denied).exists(), "a read that failed changes nothing"
    schedule.refresh_from_db()
    assert schedule.backups_read == 1 and schedule.backups_read_at is not None
    assert schedule.backups_problem.startswith("The LTR backups of 1 of 2 server(s) could not be read: pg-payments-02:")
    html = client.get("/schedules/").content.decode()
    assert "LTR backups of 1 server" in html and "could not be read: pg-payments-02" in html


def test_a_run_that_queues_nothing_reads_nothing(client, signed_in, sim, worker):
    make_server(name="pg-payments-01")
    alice = signed_in(ALICE["upn"])
    make_schedule(alice, scope="search", search="no-such-server", cadence="daily", daily_at=time(2, 30))
    Schedule.objects.update(next_run_at=Schedule.objects.get().created_at)
    fire_due_schedules()
    worker()
    assert sim.received("/ltrBackupOperations") == []

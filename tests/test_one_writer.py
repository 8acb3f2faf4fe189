"""Every write transaction a checks worker's process makes on SQLite waits its turn on the database's lock file
(armclient.onewriter), as the claims, the checks' ends and the pacing leases do: each test holds the file as
another process would (a descriptor of its own, flock), runs one of the worker's writes in a thread of its own
and sees it neither fail ("database is locked") nor write while the file is held, then write once it is free.
"""

import fcntl
import os
import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import connection, connections
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from alerts import Alert, AlertKind, raise_alert
from alerts.models import Channel, Delivery
from armclient import onewriter
from armclient.onewriter import one_writer
from backups.models import LtrRefresh
from checks.models import Batch, Check
from dashboard.models import SubscriptionName, TokenCache
from dashboard.ratelimit import RateWindow
from tests.conftest import make_server

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the write's thread sees the rows made here; the test sees its write
    pytest.mark.skipif(connection.vendor != "sqlite", reason="the lock file is SQLite's (nothing on PostgreSQL)"),
]

HELD = 0.5  # seconds the file is held: a write that does not wait for it is done long before


@contextmanager
def lock_file_held():
    """<database>.writer-lock held as another process holds it while it writes (its own open file: flock)."""
    descriptor = os.open(f"{connection.settings_dict['NAME']}.writer-lock", os.O_RDWR | os.O_CREAT, 0o660)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)


def waits_for_the_lock_file(write, written) -> None:
    """`write()` in a thread of its own (its own connection, as a worker thread's) while the file is held has not
    happened (`written()` is false) after HELD seconds, and has, without an error, once the file is let go."""
    outcome = {}

    def run():
        try:
            outcome["value"] = write()
        except BaseException as exc:  # noqa: BLE001 (any error is the test's finding)
            outcome["error"] = exc
        finally:
            connections.close_all()

    with lock_file_held():
        thread = threading.Thread(target=run, name="writer-under-test")
        thread.start()
        thread.join(HELD)
        waited, early = thread.is_alive(), written()
    thread.join(20)
    assert "error" not in outcome, f"the write failed: {outcome.get('error')!r}"
    assert not early, "it wrote while another process held the lock file (it did not queue on it)"
    assert waited and not thread.is_alive() and written()


def _fresh(model, pk):
    return model.objects.filter(pk=pk).first()


def running_check(alice, **fields) -> Check:
    check = Check.new_queued(make_server(), alice, "b-1")
    check.status, check.started_at = Check.Status.RUNNING, timezone.now()
    for name, value in fields.items():
        setattr(check, name, value)
    check.save()
    return check


# ---- A check's own writes --------------------------------------------------------------------------------------

def test_a_checks_live_note(alice):
    check = running_check(alice)
    waits_for_the_lock_file(lambda: check.note("Throttled by Azure; retrying in 2 s"),
                            lambda: _fresh(Check, check.pk).summary.startswith("Throttled"))


def test_a_checks_claim_by_its_task(alice):
    check = Check.objects.queue(make_server(), alice, "b-1")
    waits_for_the_lock_file(lambda: Check.objects.claim(check.pk),
                            lambda: _fresh(Check, check.pk).status == Check.Status.RUNNING)


def test_the_failure_of_a_check_whose_task_raised(alice, monkeypatch):
    from checks.management.commands.checks_worker import Dispatcher

    check = Check.objects.queue(make_server(), alice, "b-1")
    Check.objects.filter(pk=check.pk).update(status=Check.Status.RUNNING, started_at=timezone.now())
    task = DBTaskResult.objects.get()
    task.preclaimed = Check.objects.for_run([check.pk])[check.pk]  # claimed with its task, as the dispatcher does

    def crash(check):
        raise RuntimeError("a bug")

    monkeypatch.setattr("checks.tasks.ask_azure", crash)
    dispatcher = Dispatcher(1, interval=0, batch=True, worker_id="w")
    waits_for_the_lock_file(lambda: dispatcher.run_task(task),
                            lambda: _fresh(Check, check.pk).status == Check.Status.FAILED)
    assert DBTaskResult.objects.get().status == TaskResultStatus.FAILED


def test_the_failure_of_a_task_that_raised_before_writing_anything(db):
    from checks.management.commands.checks_worker import Dispatcher
    from checks.tasks import fan_out

    fan_out.enqueue(batch_id=10**9)  # no such batch: the task raises, and only its row is written
    task = DBTaskResult.objects.get()
    dispatcher = Dispatcher(1, interval=0, batch=True, worker_id="w")
    waits_for_the_lock_file(lambda: dispatcher.run_task(task),
                            lambda: DBTaskResult.objects.get().status == TaskResultStatus.FAILED)


# ---- The reaper ----------------------------------------------------------------------------------------------

def test_the_reaper_marking_a_check_whose_worker_died_interrupted(alice):
    check = running_check(alice, started_at=timezone.now() - timedelta(hours=1))
    waits_for_the_lock_file(Check.objects.mark_interrupted,
                            lambda: _fresh(Check, check.pk).status == Check.Status.INTERRUPTED)


def test_the_reaper_marking_a_check_whose_task_was_lost_interrupted(alice):
    check = Check.objects.queue(make_server(), alice, "b-1")
    Check.objects.update(created_at=timezone.now() - timedelta(hours=1))
    DBTaskResult.objects.update(status=TaskResultStatus.FAILED)
    waits_for_the_lock_file(Check.objects.mark_interrupted,
                            lambda: _fresh(Check, check.pk).status == Check.Status.INTERRUPTED)


def test_the_reaper_marking_a_lost_fan_out_failed(alice):
    from checks import fanout

    batch = Batch.objects.create(tenant_id=alice.tenant_id, started_by=alice, server_ids=[1], server_count=1,
                                 fan_out=Batch.FanOut.QUEUING)
    Batch.objects.update(created_at=timezone.now() - timedelta(hours=1))
    waits_for_the_lock_file(fanout.mark_lost, lambda: _fresh(Batch, batch.pk).fan_out == Batch.FanOut.FAILED)


def test_the_reaper_pruning_the_queues_old_rows(db, monkeypatch):
    from checks.management.commands import checks_worker
    from checks.tasks import fan_out

    fan_out.enqueue(batch_id=1)
    DBTaskResult.objects.update(status=TaskResultStatus.SUCCESSFUL, finished_at=timezone.now() - timedelta(days=8))
    # Nothing for its other two writes to do; they would take the turn first (their tests are above).
    monkeypatch.setattr(Check.objects, "mark_interrupted", lambda: 0)
    monkeypatch.setattr(checks_worker.fanout, "mark_lost", lambda: 0)
    waits_for_the_lock_file(checks_worker.reap, lambda: not DBTaskResult.objects.exists())


# ---- The periodic jobs and the other tasks a worker runs ---------------------------------------------------------

def test_a_due_schedule_claimed_for_firing(alice):
    from schedules.firing import fire_due_schedules
    from tests.test_schedules_firing import make_schedule

    schedule = make_schedule(alice, next_run_at=timezone.now() - timedelta(minutes=1))
    seen = schedule.next_run_at
    waits_for_the_lock_file(fire_due_schedules, lambda: _fresh(type(schedule), schedule.pk).next_run_at != seen)


def test_expired_sessions_cleared(db):
    from dashboard.housekeeping import clear_expired_sessions

    store = SessionStore()
    store.set_expiry(-60)
    store.save()
    waits_for_the_lock_file(clear_expired_sessions, lambda: not Session.objects.exists())


def test_old_rate_windows_cleared(db):
    from dashboard.ratelimit import clear_old_windows

    RateWindow.objects.create(key="signin:127.0.0.1", window=0, count=1)
    waits_for_the_lock_file(clear_old_windows, lambda: not RateWindow.objects.exists())


def channel_of(tenant_id: str) -> Channel:
    return Channel.objects.create(tenant_id=tenant_id, name="hook", kind="webhook", target_hint="x")


def test_an_alerts_deliveries_queued(alice):
    channel_of(alice.tenant_id)
    alert = Alert(tenant_id=alice.tenant_id, kind=AlertKind.TEST, title="t", text="x")
    waits_for_the_lock_file(lambda: raise_alert(alert), Delivery.objects.exists)
    assert DBTaskResult.objects.filter(task_path="alerts.delivery.deliver").exists()


def test_a_delivery_whose_worker_died_reaped(alice):
    from alerts.delivery import reap_stuck

    stuck = Delivery.objects.create(tenant_id=alice.tenant_id, channel=channel_of(alice.tenant_id),
                                    channel_name="hook", kind="test", title="t", payload={}, attempts=1,
                                    sending_since=timezone.now() - timedelta(hours=1))
    waits_for_the_lock_file(reap_stuck, lambda: _fresh(Delivery, stuck.pk).sending_since is None)


def test_a_users_renewed_tokens_kept(alice):
    from dashboard import tokencache

    cache = tokencache.UserTokenCache()
    cache.has_state_changed = True
    waits_for_the_lock_file(lambda: tokencache.save(alice, cache), TokenCache.objects.exists)


def test_subscription_names_remembered(alice):
    from dashboard import inventory
    from dashboard.subscriptions import remember

    seen = [inventory.Subscription(id="00000000-0000-0000-0000-000000000001", name="Prod", state="Enabled")]
    waits_for_the_lock_file(lambda: remember(alice, seen), SubscriptionName.objects.exists)


def test_a_servers_ltr_backups_recorded(alice):
    from backups.refresh import record

    server = make_server()
    waits_for_the_lock_file(lambda: record(server, [], alice), LtrRefresh.objects.exists)


def test_a_gap_in_ltr_backups_alerted(alice):
    from backups.watch import alert_gaps

    long_ago = timezone.now() - timedelta(days=400)
    row = LtrRefresh.objects.create(server=make_server(), tenant_id=alice.tenant_id, refreshed_at=long_ago,
                                    first_read_at=long_ago)
    waits_for_the_lock_file(alert_gaps, lambda: _fresh(LtrRefresh, row.pk).gap_alerted_at is not None)


def test_a_schedules_ltr_backup_read_recorded(alice):
    from schedules.ltr_backups import _record
    from tests.test_schedules_firing import make_schedule

    schedule = make_schedule(alice)
    waits_for_the_lock_file(lambda: _record(schedule.pk, ""),
                            lambda: _fresh(type(schedule), schedule.pk).backups_read_at is not None)


# ---- The lock itself -------------------------------------------------------------------------------------------

def _file_free() -> bool:
    """Whether another process could take the lock file now."""
    descriptor = os.open(f"{connection.settings_dict['NAME']}.writer-lock", os.O_RDWR | os.O_CREAT, 0o660)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(descriptor)
    return True


def test_a_writer_inside_a_writer_goes_on_and_only_the_outer_one_frees_the_file(db):
    # A check's end raises an alert whose delivery row is written by a function that queues on its own when
    # called alone: nested, it must neither wait for the place its own thread holds (a deadlock) nor free it.
    with one_writer():
        with one_writer():
            pass
        still_held = not _file_free()
    assert still_held and _file_free()
    assert onewriter._sqlite_writer.acquire(blocking=False)
    onewriter._sqlite_writer.release()

"""The task worker for checks: django-tasks-db's tasks run by several threads of one process.

A check spends nearly all its time waiting for ARM, so one process runs WORKER_THREADS checks side by side.
One dispatcher per process claims tasks for the threads that are idle, several in one transaction (statements
written once, checks.claiming: SKIP LOCKED on PostgreSQL, SQLite's write lock), claims their checks with a
conditional update in it, so neither two threads nor two machines ever run the same check, reads those checks
for running, and hands the tasks over through an in-process queue; a thread that finishes wakes the
dispatcher, which claims the next task at once (after at most GATHER_SECONDS for a few more threads to free
up; no polling gap between checks), and only an empty queue is polled, by that one thread, every `--interval`
seconds (not by every thread). A task is run by django-tasks-db's own `Worker.run_task` (signals, result row).
A task's row is final when the task ends: a check's in the transaction that writes the check's result (no
write of its own), any other task's right after it. Every `--reap-interval` seconds it also marks checks whose
worker died mid-check (SIGKILL, a lost machine) as interrupted, and batches whose queuing worker died as
failed (checks.fanout), and prunes the task queue's finished rows (the checks' history is the Check table, kept
forever). It also runs the WORKER_PERIODIC_JOBS other apps list (the schedules app's firing of due
schedules), each at its own interval, without importing those apps.

On PostgreSQL the worker's connections commit without waiting for the WAL flush (synchronous_commit off):
a flush took 3.5 ms on our 2-core machine, several a check. What a database crash can lose is the last
fraction of a second of claims and results, never consistency: a lost claim leaves its task ready (the check
runs again), a lost result leaves the check running until the reaper marks it interrupted. They also prepare the
statements written once that each check runs (checks.prepared): PostgreSQL plans them once per connection, not
once per check.

SIGTERM or Ctrl-C: no new check is claimed, in-flight checks finish (each is bounded by
ARM_CHECK_DEADLINE), then the process exits. A second signal exits at once; the checks it cuts short
are marked interrupted by the next worker's reaper.
"""

import logging
import queue
import signal
import threading
import time

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS, OperationalError, close_old_connections, connections
from django.db.backends.signals import connection_created
from django.tasks import TaskResultStatus
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.module_loading import import_string
from django_tasks_db.compat import task_finished, task_started
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from checks import claiming, fanout, prepared
from checks.models import Check, one_writer, preclaimed, running_task

log = logging.getLogger("checks.worker")

# How long the dispatcher waits for more threads to free up before it claims for the few that have (Dispatcher.
# gather): a claim is a write transaction, better shared by several tasks; a check waits at most this for its turn.
GATHER_SECONDS = 0.01


class Command(BaseCommand):
    help = "Run queued checks, several at once, until stopped (SIGTERM lets in-flight checks finish)."

    def add_arguments(self, parser):
        parser.add_argument("--threads", type=int, default=None, help="checks at once (default WORKER_THREADS)")
        parser.add_argument("--interval", type=float, default=0.5, help="seconds between polls of an empty queue")
        parser.add_argument("--batch", action="store_true", help="exit when the queue is empty")
        parser.add_argument("--reap-interval", type=float, default=30.0)
        parser.add_argument("--worker-id", default=None)

    def handle(self, *args, threads, interval, batch, reap_interval, worker_id, **options):
        threads = threads or settings.WORKER_THREADS
        # Each thread keeps its database connection between checks: SQLite's CONN_MAX_AGE of 0 (right for web
        # requests) reopened it for every check, ~2 ms each.
        connection_created.connect(_tune_connection)
        db = connections.settings[DEFAULT_DB_ALIAS]
        conn_max_age = db.get("CONN_MAX_AGE")
        db["CONN_MAX_AGE"] = None if conn_max_age is None else max(60, conn_max_age)
        try:
            self.run_threads(threads, interval, batch, worker_id, reap_interval)
        finally:
            db["CONN_MAX_AGE"] = conn_max_age  # as it was (a test may call this command in its own process)
            connection_created.disconnect(_tune_connection)

    def run_threads(self, threads: int, interval: float, batch: bool, worker_id: str | None, reap_interval: float):
        dispatcher = Dispatcher(threads, interval=interval, batch=batch, worker_id=worker_id or get_random_string(12))
        stopping = threading.Event()

        def stop(signum, frame):
            if stopping.is_set():
                log.warning("Second signal: exiting now")
                raise SystemExit(1)
            log.info("Stopping: finishing in-flight checks, claiming no new ones")
            stopping.set()
            dispatcher.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        workers = dispatcher.start()
        log.info("Checks worker %s running %s check(s) at once", dispatcher.worker_id, threads)
        self.reap_while_running(workers, stopping, reap_interval)
        connections.close_all()

    def reap_while_running(self, workers: list[threading.Thread], stopping: threading.Event, every: float) -> None:
        """Until the threads end: now and then mark lost checks interrupted and prune the queue's old rows."""
        next_reap = 0.0
        jobs = [[import_string(path), seconds, 0.0] for path, seconds in settings.WORKER_PERIODIC_JOBS]
        while any(thread.is_alive() for thread in workers):
            if not stopping.is_set():
                _run_due_jobs(jobs)
            if not stopping.is_set() and time.monotonic() >= next_reap:
                reap()
                next_reap = time.monotonic() + every
            # One short wait a round, not a join per thread: 32 threads joined in turn held periodic jobs 6 s apart.
            time.sleep(0.2)


def reap() -> None:
    """Mark lost checks interrupted and lost fan-outs failed, and prune the queue's old rows: each write
    transaction takes its turn as the one writer (checks.models, checks.fanout, here)."""
    close_old_connections()
    Check.objects.mark_interrupted()
    fanout.mark_lost()
    # The queue's own rows are plumbing, not history (that is the Check table): keep a week.
    with one_writer():
        call_command("prune_db_task_results", "--min-age-days", "7", "--failed-min-age-days", "30", verbosity=0)


def _run_due_jobs(jobs: list) -> None:
    """Each [function, every seconds, next time] whose time has come; one failing job stops no other."""
    for job in jobs:
        function, every, due = job
        if time.monotonic() >= due:
            close_old_connections()
            try:
                function()
            except Exception:
                log.exception("Periodic job %s failed", function.__qualname__)
            job[2] = time.monotonic() + every


class Dispatcher:
    """Claims tasks (and their checks) for this process's idle threads, several per transaction, and hands each
    to one thread, which runs it and leaves its row final.

    On SQLite every write transaction waits for the one write lock (its busy handler sleeps 1-100 ms when it
    is taken); per check there are two (this claim, shared by the tasks it claims; the check's result, which
    also ends the task's row), where there were six. The rows used to be marked successful in the next
    claim's transaction: a worker killed in between left them "running" with their check long finished."""

    def __init__(self, threads: int, *, interval: float, batch: bool, worker_id: str):
        self.threads, self.interval, self.batch, self.worker_id = threads, interval, batch, worker_id
        self.tasks: queue.Queue = queue.Queue()
        self.idle = threads
        self.wake = threading.Condition()
        self.running = True
        self.claim_empty = False

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.work, args=(n,), name=f"checks-{n}") for n in range(self.threads)]
        threads.append(threading.Thread(target=self.dispatch, name="checks-dispatcher"))
        for thread in threads:
            thread.start()
        return threads

    def stop(self) -> None:
        with self.wake:
            self.running = False
            self.wake.notify_all()

    def dispatch(self) -> None:
        """Claim for the idle threads; when nothing is ready, wait `interval` or until a thread frees up."""
        try:
            while self.running:
                with self.wake:
                    while self.running and self.idle == 0:
                        self.wake.wait()
                    self.gather()
                    wanted = self.idle
                if not self.running:
                    break
                claimed = self.claim(wanted)
                with self.wake:
                    self.idle -= len(claimed)
                for task in claimed:
                    self.tasks.put(task)
                if not claimed:
                    if self.batch and self.idle == self.threads and self.claim_empty:
                        break  # --batch: the queue is empty and nothing runs that could queue more
                    with self.wake:
                        self.wake.wait(self.interval)
        finally:
            for _ in range(self.threads):
                self.tasks.put(None)
            connections.close_all()

    def gather(self) -> None:
        """While other threads still run, wait a moment (GATHER_SECONDS at most) for a few more to free up, so that
        one claim serves several: checks that end one at a time (0 ms ARM latency) each woke a claim of one task,
        a write transaction of its own. Call holding `wake`."""
        until = time.monotonic() + GATHER_SECONDS
        enough = max(1, self.threads // 4)
        while self.running and self.idle < min(enough, self.threads) and (left := until - time.monotonic()) > 0:
            self.wake.wait(left)

    def claim(self, n: int) -> list[DBTaskResult]:
        """Up to `n` ready tasks marked running by this worker, and their queued checks claimed, in one
        transaction."""
        self.claim_empty = False
        close_old_connections()
        try:
            with one_writer(), exclusive_transaction(DEFAULT_DB_ALIAS):
                now = timezone.now()
                tasks = claiming.claim_tasks(n, now, self.worker_id)
                claimed_checks = Check.objects.for_run(
                    sorted(claiming.claim_checks([_check_id(task) for task in tasks], now)))
        except OperationalError as exc:
            if not is_locked_database_exception(exc):
                raise
            return []  # SQLite busy: try again on the next round
        for task in tasks:
            task.preclaimed = claimed_checks.get(_check_id(task))
        self.claim_empty = not tasks
        return tasks

    def work(self, n: int) -> None:
        """Run the tasks handed over, one at a time, until told to stop (None)."""
        try:
            while (task := self.tasks.get()) is not None:
                try:
                    self.run_task(task)
                finally:
                    close_old_connections()
                    with self.wake:
                        self.idle += 1
                        self.wake.notify_all()
        finally:
            connections.close_all()

    def run_task(self, db_task: DBTaskResult) -> None:
        """django-tasks-db's Worker.run_task, but a check's success is written with its result (one write
        fewer); see Check.finish and `running_task`."""
        ending = {"id": db_task.pk, "final": False}
        try:
            task, result = db_task.task, db_task.task_result
            backend = type(task.get_backend())
            task_started.send(sender=backend, task_result=result)
            token = preclaimed.set(getattr(db_task, "preclaimed", None))
            ending_token = running_task.set(ending)
            try:
                db_task.return_value = task.call(*result.args, **result.kwargs)
            finally:
                running_task.reset(ending_token)
                preclaimed.reset(token)
        except BaseException as exc:
            with one_writer():
                db_task.set_failed(exc)  # at once, as django-tasks-db does: a failure is rare and worth seeing
            try:
                task_finished.send(sender=type(db_task.task.get_backend()), task_result=db_task.task_result)
            except (ImportError, SuspiciousOperation):
                log.exception("Task %s failed unexpectedly", db_task.id)
            return
        if not ending["final"]:  # not a check, or its result came too late to be written
            with one_writer(), exclusive_transaction(DBTaskResult.objects.db):
                _mark_successful([db_task])
        task_finished.send(sender=backend, task_result=db_task.task_result)


def _tune_connection(sender, connection, **kwargs) -> None:
    """A new connection of this worker: on PostgreSQL, commits without the flush wait and prepared statements."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO off")
        prepared.prepare(connection)


def _check_id(task: DBTaskResult) -> int | None:
    args = (task.args_kwargs or {}).get("args") or []
    return args[0] if task.task_path == "checks.tasks.run_check" and args else None


def _mark_successful(tasks: list[DBTaskResult]) -> None:
    now = timezone.now()
    for task in tasks:
        task.status, task.finished_at = TaskResultStatus.SUCCESSFUL, now
        task.exception_class_path = task.traceback = ""
    DBTaskResult.objects.bulk_update(tasks, ["status", "return_value", "finished_at", "exception_class_path",
                                             "traceback"])

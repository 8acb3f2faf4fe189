"""The task worker for checks: django-tasks-db's worker loop, several at once in one process.

A check spends nearly all its time waiting for ARM, so one process runs WORKER_THREADS of
django-tasks-db's worker loops side by side; each claims its next task with SELECT ... FOR UPDATE SKIP
LOCKED (PostgreSQL) and the check itself with a conditional update, so neither two threads nor two
machines ever run the same check. Every `--reap-interval` seconds it also marks checks whose worker died
mid-check (SIGKILL, a lost machine) as interrupted, and prunes the task queue's finished rows (the
checks' history is the Check table, kept forever). It also runs the WORKER_PERIODIC_JOBS other apps list
(the schedules app's firing of due schedules), each at its own interval, without importing those apps.

SIGTERM or Ctrl-C: no new check is claimed, in-flight checks finish (each is bounded by
ARM_CHECK_DEADLINE), then the process exits. A second signal exits at once; the checks it cuts short
are marked interrupted by the next worker's reaper.
"""

import logging
import signal
import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import close_old_connections, connections
from django.utils.crypto import get_random_string
from django.utils.module_loading import import_string
from django_tasks_db.management.commands.db_worker import Worker

from checks.models import Check

log = logging.getLogger("checks.worker")


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
        base_id = worker_id or get_random_string(12)
        loops = [
            Worker(
                queue_names=["default"],
                interval=interval,
                batch=batch,
                backend_name="default",
                startup_delay=False,
                max_tasks=None,
                worker_id=f"{base_id}-{n}",
                excluded_queue_names=[],
            )
            for n in range(threads)
        ]
        stopping = threading.Event()

        def stop(signum, frame):
            if stopping.is_set():
                log.warning("Second signal: exiting now")
                raise SystemExit(1)
            log.info("Stopping: finishing in-flight checks, claiming no new ones")
            stopping.set()
            for loop in loops:
                loop.running = False

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

        def run(loop: Worker) -> None:
            try:
                loop.run()
            finally:
                connections.close_all()

        workers = [threading.Thread(target=run, args=(loop,), name=f"checks-{n}") for n, loop in enumerate(loops)]
        for thread in workers:
            thread.start()
        log.info("Checks worker %s running %s check(s) at once", base_id, threads)
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
                close_old_connections()
                Check.objects.mark_interrupted()
                # The queue's own rows are plumbing, not history (that is the Check table): keep a week.
                call_command("prune_db_task_results", "--min-age-days", "7", "--failed-min-age-days", "30",
                             verbosity=0)
                next_reap = time.monotonic() + every
            # One short wait a round, not a join per thread: 32 threads joined in turn held periodic jobs 6 s apart.
            time.sleep(0.2)


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

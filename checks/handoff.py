"""Queuing many checks at once: their rows, their tasks and their servers' last_check, a few queries per chunk.

Batch.objects.queue cuts the servers into chunks of QUEUE_CHUNK and calls queue_chunk() for each. A chunk is
one transaction: the Check rows in one INSERT that skips any server whose check a concurrent single "Run"
inserted meanwhile (the partial unique index check_one_active_per_server: ON CONFLICT DO NOTHING on
PostgreSQL, INSERT OR IGNORE on SQLite), one SELECT of what was made, the tasks in one INSERT, the servers'
last_check in one UPDATE. The worker sees the tasks only once the chunk commits, and then their checks exist.
"""

from django.db import transaction
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.compat import normalize_json
from django_tasks_db.models import DBTaskResult, get_date_max

from checks.models import Check, proposed_backup_name
from dashboard.models import Server

QUEUE_CHUNK = 500


def queue_chunk(batch, servers: list, user, api_version: str) -> list:
    """Queue a check of each server in `batch`; the servers left out because a check of theirs is in flight."""
    with transaction.atomic():
        rows = [Check.new_queued(server, user, proposed_backup_name(server.name), api_version=api_version,
                                 batch=batch) for server in servers]
        Check.objects.bulk_create(rows, ignore_conflicts=True)
        made = dict(Check.objects.filter(batch=batch, server_id__in=[s.pk for s in servers])
                    .values_list("server_id", "pk"))
        enqueue_run_check([made[s.pk] for s in servers if s.pk in made])
        Server.objects.bulk_update([Server(pk=server_id, last_check_id=pk) for server_id, pk in made.items()],
                                   ["last_check"], batch_size=len(made) or None)
    return [server for server in servers if server.pk not in made]


def enqueue_run_check(check_ids: list[int]) -> None:
    """Enqueue checks.tasks.run_check for each check, in one INSERT when the backend is django-tasks-db.

    Coupled to django-tasks-db (0.13): DatabaseBackend.enqueue() is one DBTaskResult.objects.create() per task
    with the fields set below, and its pre_save signal turns run_after=None into get_date_max(); bulk_create
    sends no signal, so that is done here. The `task_enqueued` signal is not sent (nothing here listens to it;
    Django's own receiver only logs at DEBUG). tests/test_batches.py pins this: a bulk-queued check is run by
    the real db_worker. Any other backend, or an id_function option, goes through the public enqueue().
    """
    from checks.tasks import run_check  # checks.tasks imports checks.models

    backend = run_check.get_backend()
    if not isinstance(backend, DatabaseBackend) or backend.options.get("id_function"):
        for pk in check_ids:
            run_check.enqueue(pk)
        return
    backend.validate_task(run_check)
    DBTaskResult.objects.bulk_create([
        DBTaskResult(args_kwargs=normalize_json({"args": [pk], "kwargs": {}}), priority=run_check.priority,
                     task_path=run_check.module_path, queue_name=run_check.queue_name,
                     run_after=run_check.run_after or get_date_max(), backend_name=backend.alias)
        for pk in check_ids
    ])

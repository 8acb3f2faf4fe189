"""Queuing many checks at once: their rows, their tasks and their servers' last_check, a few queries per chunk.

Batch.objects.queue cuts the servers into chunks of QUEUE_CHUNK and calls queue_chunk() for each. A chunk is
one transaction: the Check rows in one INSERT that skips any server whose check a concurrent single "Run"
inserted meanwhile (the partial unique index check_one_active_per_server: ON CONFLICT DO NOTHING on
PostgreSQL, INSERT OR IGNORE on SQLite), one SELECT of what was made, the tasks in one INSERT, the servers'
last_check in one UPDATE. The worker sees the tasks only once the chunk commits, and then their checks exist.

The INSERTs are written here rather than by bulk_create(): building 10,000 model instances and preparing
each of their 25 fields cost ~5 s for a fleet of 10,000, the statements themselves a fraction of that. The
values still come from the models: a check's fields from Check.new_queued() (once per chunk; only the server
and the backup name differ from row to row), each prepared for the database by its own field.
"""

from django.db import connection, transaction
from django.utils import timezone
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult, get_date_max

from checks.models import Check, proposed_backup_name
from dashboard.models import Server

QUEUE_CHUNK = 500


def queue_chunk(batch, servers: list, user, api_version: str, *, first_position: int) -> list:
    """Queue a check of each server in `batch` (`servers` in the batch's order, the first at `first_position`);
    the servers left out because a check of theirs is in flight."""
    with transaction.atomic():
        prototype = Check.new_queued(servers[0], user, "", api_version=api_version, batch=batch)
        stamp = timezone.now()
        positions = {server.pk: first_position + n for n, server in enumerate(servers)}
        # What differs from one check of the chunk to the next; every other field is the prototype's.
        per_server = {"server_id": lambda server: server.pk,
                      "backup_name": lambda server: proposed_backup_name(server.name, stamp),
                      "batch_position": lambda server: positions[server.pk]}
        insert_rows(Check, prototype, per_server, servers, ignore_conflicts=True)
        made = dict(Check.objects.filter(batch=batch, server_id__in=[s.pk for s in servers], status=Check.Status.QUEUED)
                    .values_list("server_id", "pk"))
        enqueue_run_check([made[s.pk] for s in servers if s.pk in made])
        point_servers_at(made)
    return [server for server in servers if server.pk not in made]


def insert_rows(model, prototype, per_row: dict, items: list, *, ignore_conflicts: bool = False) -> None:
    """One multi-row INSERT of `model`: one row per item, the fields in `per_row` computed from the item, every
    other concrete field (but an auto primary key) taken from `prototype`; each value prepared by its field."""
    fields = [f for f in model._meta.concrete_fields if not (f.primary_key and f.attname not in per_row)]
    row = [None if f.attname in per_row else f.get_db_prep_save(getattr(prototype, f.attname), connection)
           for f in fields]
    varying = [(i, f, per_row[f.attname]) for i, f in enumerate(fields) if f.attname in per_row]
    rows = []
    for item in items:
        for i, field, compute in varying:
            row[i] = field.get_db_prep_save(compute(item), connection)
        rows.append(list(row))
    quote = connection.ops.quote_name
    head = f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"
    if connection.vendor == "postgresql":
        # One array per column, as Django's own bulk_create does: PostgreSQL plans 25 parameters, not 12,500.
        arrays = ", ".join(f"(%s)::{f.db_type(connection).split('(')[0]}[]" for f in fields)
        sql = f"{head} SELECT * FROM UNNEST({arrays})"  # noqa: S608 (names from the models; values are parameters)
        sql += " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
        params = [list(column) for column in zip(*rows, strict=True)]
    else:
        placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
        sql = head.replace("INSERT", "INSERT OR IGNORE", 1) if ignore_conflicts else head
        sql += f" VALUES {', '.join([placeholders] * len(rows))}"
        params = [value for values in rows for value in values]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def point_servers_at(made: dict[int, int]) -> None:
    """Set each server's last_check to its new check (server id -> check id) in one UPDATE."""
    if not made:
        return
    quote = connection.ops.quote_name
    whens = " ".join(["WHEN %s THEN %s"] * len(made))
    sql = (f"UPDATE {quote(Server._meta.db_table)} SET {quote('last_check_id')} = CASE {quote('id')} {whens} END "  # noqa: S608
           f"WHERE {quote('id')} IN ({', '.join(['%s'] * len(made))})")
    with connection.cursor() as cursor:
        cursor.execute(sql, [value for pair in made.items() for value in pair] + list(made))


def enqueue_run_check(check_ids: list[int]) -> None:
    """Enqueue checks.tasks.run_check for each check, in one INSERT when the backend is django-tasks-db.

    Coupled to django-tasks-db (0.13): DatabaseBackend.enqueue() is one DBTaskResult.objects.create() per task
    with the fields set below, and its pre_save signal turns run_after=None into get_date_max(); no signal is
    sent here, so that is done here. The `task_enqueued` signal is not sent either (nothing of ours listens;
    Django's own receiver only logs it). tests/test_batch_bulk.py pins this: a bulk-queued task row equals the
    row enqueue() writes, and the real db_worker runs it. Another backend, or an id_function option, goes
    through the public enqueue().
    """
    from checks.tasks import run_check  # checks.tasks imports checks.models

    backend = run_check.get_backend()
    if not isinstance(backend, DatabaseBackend) or backend.options.get("id_function"):
        for pk in check_ids:
            run_check.enqueue(pk)
        return
    if not check_ids:
        return
    backend.validate_task(run_check)
    prototype = DBTaskResult(args_kwargs={}, priority=run_check.priority, task_path=run_check.module_path,
                             queue_name=run_check.queue_name, run_after=run_check.run_after or get_date_max(),
                             backend_name=backend.alias)
    id_field = DBTaskResult._meta.pk
    prototype.enqueued_at = DBTaskResult._meta.get_field("enqueued_at").pre_save(prototype, add=True)
    per_task = {"id": lambda pk: id_field.get_default(), "args_kwargs": lambda pk: {"args": [pk], "kwargs": {}}}
    insert_rows(DBTaskResult, prototype, per_task, check_ids)

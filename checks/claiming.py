"""The worker's claim as SQL written once: up to n ready tasks marked running, then their queued checks.

checks_worker's dispatcher claims for its idle threads several times a second; Django built its four
statements anew each time (the tasks' locked read, their update, the checks' locked read, their update) and
decoded every task row through the ORM: about 1.5 ms of CPU a claim, as much as the rest of a check. Here each
is one UPDATE ... RETURNING (the rows it updates are locked by it; SKIP LOCKED on PostgreSQL, SQLite's write
lock there), the rows decoded by the fields' own converters into the same DBTaskResult objects. Call inside
the claim's transaction (django_tasks_db.utils.exclusive_transaction).
"""

import json
from functools import cache

from django.db import connections
from django.tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult, get_date_max

from checks import prepared

TABLE = DBTaskResult._meta.db_table


def claim_tasks(n: int, now, worker_id: str, *, queues=("default",), backend: str = "default",
                using: str = "default") -> list[DBTaskResult]:
    """Up to `n` ready tasks (as DBTaskResult.objects.ready(), in its order), marked running by `worker_id`."""
    connection = connections[using]
    at, forever = (connection.ops.adapt_datetimefield_value(value) for value in (now, get_date_max()))
    worker = json.dumps([worker_id]) if connection.vendor == "postgresql" else worker_id
    params = [at, worker, forever, at, backend, *queues, n]
    with prepared.cursor(connection) as cursor:
        cursor.execute(_claim_sql(connection.vendor, len(queues)), params)
        rows = cursor.fetchall()
    fields = _fields(connection.alias)
    tasks = [DBTaskResult.from_db(using, [f.attname for f, _, _ in fields], _converted(fields, row, connection))
             for row in rows]
    # RETURNING gives no order: the queue's (priority first, then oldest).
    tasks.sort(key=lambda t: (-t.priority, t.run_after, t.enqueued_at))
    return tasks


def claim_checks(pks: list, now, *, using: str = "default") -> set[int]:
    """Move the queued ones of these checks to running; the ids moved."""
    pks = [pk for pk in pks if pk is not None]
    if not pks:
        return set()
    connection = connections[using]
    marks = ", ".join(["%s"] * len(pks))
    with prepared.cursor(connection) as cursor:
        cursor.execute(f"UPDATE checks_check SET status = 'running', started_at = %s "  # noqa: S608 (placeholders)
                       f"WHERE status = 'queued' AND id IN ({marks}) RETURNING id",
                       [connection.ops.adapt_datetimefield_value(now), *pks])
        return {row[0] for row in cursor.fetchall()}


@cache
def _fields(alias: str) -> list:
    """Each column of the task table with the converters the ORM would apply to it (UUID, JSON, datetimes)."""
    connection = connections[alias]
    out = []
    for field in DBTaskResult._meta.concrete_fields:
        col = field.get_col(TABLE)
        out.append((field, col, connection.ops.get_db_converters(col) + field.get_db_converters(connection)))
    return out


def _converted(fields, row, connection) -> list:
    values = []
    for (_, col, converters), value in zip(fields, row, strict=True):
        for converter in converters:
            value = converter(value, col, connection)
        values.append(value)
    return values


@cache
def _claim_sql(vendor: str, queues: int) -> str:
    columns = ", ".join(f.column for f in DBTaskResult._meta.concrete_fields)
    running, ready = TaskResultStatus.RUNNING.value, TaskResultStatus.READY.value
    append = "worker_ids || %s::jsonb" if vendor == "postgresql" else "json_insert(worker_ids, '$[#]', %s)"
    lock = " FOR UPDATE SKIP LOCKED" if vendor == "postgresql" else ""
    marks = ", ".join(["%s"] * queues)
    return (f"UPDATE {TABLE} SET status = '{running}', started_at = %s, worker_ids = {append} "  # noqa: S608
            f"WHERE id IN (SELECT id FROM {TABLE} WHERE status = '{ready}' AND (run_after = %s OR run_after <= %s) "
            f"AND backend_name = %s AND queue_name IN ({marks}) "
            f"ORDER BY priority DESC, run_after ASC, enqueued_at ASC LIMIT %s{lock}) RETURNING {columns}")

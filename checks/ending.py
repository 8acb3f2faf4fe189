"""The end of one check written in as few statements as the database allows, as SQL written once.

A check's end is four writes in one transaction: the check's row (only while it is still queued or running),
its tick appended to its server's strip (checks.strip), its queue row marked successful (checks_worker), and,
when its outcome says something about the server, the readiness's conditional update (checks.readiness).
Django built those statements anew for every check (with the strip's locked read, five statements and most of
a worker's Python time); here each is a string made once per shape. On PostgreSQL the four are one statement
(data-modifying CTEs, each write made to depend on the check's own update), on SQLite four small ones. The
strip's append is done by the database on the locked row (an UPDATE, or an INSERT ... ON CONFLICT for a
server's first check), so two checks of one server ending at once are both kept, as strip.record keeps them.

What is not written here is rare and stays in the ORM: a readiness that changes (or a server's first), the
bulk ends (a batch cancelled, checks marked interrupted: strip.record).
"""

import json
from dataclasses import dataclass
from functools import cache

from django.db import connections

from checks import strip
from checks.strip import LENGTH


@dataclass(frozen=True)
class Ended:
    ended: bool  # the check's row was still active and now holds its end
    task_final: bool  # its queue row was marked successful
    readiness_kept: bool  # the readiness's conditional update matched (the state did not change)


def write(check, fields: dict, *, task_id=None, readiness: tuple | None = None, using: str = "default") -> Ended:
    """Write `fields` (Check field names -> values) as the check's end, its tick, its task row (`task_id`) and
    `readiness` ((state, reason): the conditional update of an unchanged readiness). Call inside a transaction."""
    from checks.models import Check

    connection = connections[using]
    names = tuple(fields)
    values = [Check._meta.get_field(name).get_db_prep_save(value, connection) for name, value in fields.items()]
    tick = json.dumps(strip.entry(check))
    at = fields["finished_at"]
    task = [] if task_id is None else [at, *_task_values(connection, check.status, task_id)]
    ready = [] if readiness is None else [check.pk, at, check.server_id, *readiness]
    if connection.vendor == "postgresql":
        sql = _postgresql(names, task_id is not None, readiness is not None)
        with connection.cursor() as cursor:
            cursor.execute(sql, [*values, check.pk, check.server_id, f"[{tick}]", *task, *ready])
            ended, task_final, kept, _ = cursor.fetchone()
        return Ended(bool(ended), bool(task_final), bool(kept))
    return _one_by_one(connection, names, values, check, tick, task, ready)


def _task_values(connection, return_value, task_id) -> list:
    """The task row's return value (JSON) and id (a UUID: 32 hex characters on SQLite), as Django writes them."""
    from django_tasks_db.models import DBTaskResult

    return [DBTaskResult._meta.get_field("return_value").get_db_prep_save(return_value, connection),
            DBTaskResult._meta.pk.get_db_prep_value(task_id, connection)]


def _one_by_one(connection, names, values, check, tick, task, ready) -> Ended:
    sql = _statements(names)
    with connection.cursor() as cursor:
        cursor.execute(sql["check"], [*values, check.pk])
        if not cursor.rowcount:
            return Ended(False, False, False)
        cursor.execute(sql["strip"], [tick, tick, check.server_id])
        if not cursor.rowcount:  # the server's first check ever (one active check per server: no race)
            cursor.execute(sql["strip_first"], [check.server_id, tick])
        task_final = kept = False
        if task:
            cursor.execute(sql["task"], task)
            task_final = bool(cursor.rowcount)
        if ready:
            cursor.execute(sql["readiness"], ready)
            kept = bool(cursor.rowcount)
    return Ended(True, task_final, kept)


def _set_clause(names) -> tuple[str, list[str]]:
    from checks.models import Check

    columns = [Check._meta.get_field(name).column for name in names]
    return ", ".join(f"{column} = %s" for column in columns), columns


_ACTIVE = "status IN ('queued', 'running')"
_TASK = ("UPDATE django_tasks_database_dbtaskresult SET status = 'SUCCESSFUL', finished_at = %s, return_value = %s, "
         "exception_class_path = '', traceback = '' WHERE id = %s")
_READINESS = ("UPDATE checks_readiness SET last_conclusive_id = %s, last_conclusive_at = %s "
              "WHERE server_id = %s AND state = %s AND reason = %s")


@cache
def _statements(names: tuple) -> dict:
    """SQLite: one statement each. The strip keeps its last strip.LENGTH entries (it never holds more)."""
    assignments, _ = _set_clause(names)
    append = "json_insert(outcomes, '$[#]', json(%s))"
    return {
        "check": f"UPDATE checks_check SET {assignments} WHERE id = %s AND {_ACTIVE}",  # noqa: S608 (our names)
        "strip": (f"UPDATE checks_recentoutcomes SET outcomes = CASE "  # noqa: S608 (constants)
                  f"WHEN json_array_length(outcomes) >= {LENGTH} THEN json_remove({append}, '$[0]') ELSE {append} END "
                  "WHERE server_id = %s"),
        "strip_first": "INSERT INTO checks_recentoutcomes (server_id, outcomes) VALUES (%s, json_array(json(%s)))",
        "task": _TASK,
        "readiness": _READINESS,
    }


@cache
def _postgresql(names: tuple, task: bool, readiness: bool) -> str:
    """One statement: each write after the check's own happens only if that one matched (EXISTS ... c)."""
    assignments, _ = _set_clause(names)
    parts = [
        f"c AS (UPDATE checks_check SET {assignments} WHERE id = %s AND {_ACTIVE} RETURNING 1)",  # noqa: S608
        # The strip: appended on the row (locked by the write), its last LENGTH entries kept; a first check inserts.
        "s AS (INSERT INTO checks_recentoutcomes (server_id, outcomes) SELECT %s, %s::jsonb "  # noqa: S608
        "WHERE EXISTS "
        "(SELECT 1 FROM c) ON CONFLICT (server_id) DO UPDATE SET outcomes = (SELECT COALESCE(jsonb_agg(e ORDER BY n), "
        "'[]'::jsonb) FROM jsonb_array_elements(checks_recentoutcomes.outcomes || EXCLUDED.outcomes) "
        "WITH ORDINALITY AS t(e, n) WHERE n > jsonb_array_length(checks_recentoutcomes.outcomes) "
        f"+ jsonb_array_length(EXCLUDED.outcomes) - {LENGTH}) RETURNING 1)",
    ]
    if task:
        parts.append(f"t AS ({_TASK} AND EXISTS (SELECT 1 FROM c) RETURNING 1)")  # noqa: S608 (constants)
    if readiness:
        parts.append(f"r AS ({_READINESS} AND EXISTS (SELECT 1 FROM c) RETURNING 1)")  # noqa: S608 (constants)
    counts = ["(SELECT count(*) FROM c)", "(SELECT count(*) FROM t)" if task else "0",
              "(SELECT count(*) FROM r)" if readiness else "0"]
    # The strip's CTE is read too: a data-modifying CTE runs whether read or not, but reading it costs nothing.
    return f"WITH {', '.join(parts)} SELECT {', '.join(counts)}, (SELECT count(*) FROM s)"  # noqa: S608

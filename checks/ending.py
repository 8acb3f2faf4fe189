"""The end of one check written in as few statements as the database allows, as SQL written once.

A check's end is four writes in one transaction: the check's row (only while it is still queued or running),
its tick appended to its server's strip (checks.strip), its queue row marked successful (checks_worker), and,
when its outcome says something about the server, the readiness's conditional update (checks.readiness).
Django built those statements anew for every check (with the strip's locked read, five statements and most of
a worker's Python time); here each is a string made once per shape. On PostgreSQL the four are one statement
(data-modifying CTEs, each write made to depend on the check's own update), on SQLite four small ones. The
strip's append is done by the database on the locked row (an UPDATE, or an INSERT ... ON CONFLICT for a
server's first check), so two checks of one server ending at once are both kept, as strip.record keeps them.

The readiness is an upsert: a server's first conclusive check inserts its row (and the change "never
checked -> ready/not ready", and the server's copy of the state), a check that says what the last one said
updates it, and one that says something else writes nothing here: checks.readiness takes the change on its
locked path, in the same transaction. What stays in the ORM is rare: a readiness that changes, the bulk ends
(a batch cancelled, checks marked interrupted: strip.record).
"""

import json
from dataclasses import dataclass
from functools import cache

from django.db import connections

from checks import prepared, strip
from checks.strip import LENGTH


@dataclass(frozen=True)
class Ended:
    ended: bool  # the check's row was still active and now holds its end
    task_final: bool  # its queue row was marked successful
    readiness_kept: bool  # the readiness was written: unchanged (its conditional update) or the server's first
    first_change: int | None = None  # the id of the ReadinessChange a server's first conclusive check made


def write(check, fields: dict, *, task_id=None, readiness: tuple | None = None, using: str = "default") -> Ended:
    """Write `fields` (Check field names -> values) as the check's end, its tick, its task row (`task_id`) and
    `readiness` ((state, reason) the check says: kept if unchanged, inserted if the server has none). Call
    inside a transaction."""
    from checks.models import Check

    connection = connections[using]
    names = tuple(fields)
    values = [Check._meta.get_field(name).get_db_prep_save(value, connection) for name, value in fields.items()]
    tick = json.dumps(strip.entry(check))
    at = connection.ops.adapt_datetimefield_value(fields["finished_at"])
    task = [] if task_id is None else [at, *_task_values(connection, check.status, task_id)]
    ready = [] if readiness is None else [check.server_id, check.server.tenant_id, *readiness, check.pk, at]
    if connection.vendor == "postgresql":
        sql = _postgresql(names, task_id is not None, readiness is not None)
        with prepared.cursor(connection) as cursor:
            cursor.execute(sql, [*values, check.pk, check.server_id, f"[{tick}]", *task, *ready])
            ended, task_final, kept, change, _ = cursor.fetchone()
        return Ended(bool(ended), bool(task_final), bool(kept), change)
    return _one_by_one(connection, names, values, check, tick, task, ready)


def _task_values(connection, return_value, task_id) -> list:
    """The task row's return value (JSON) and id (a UUID: 32 hex characters on SQLite), as Django writes them."""
    from django_tasks_db.models import DBTaskResult

    return [DBTaskResult._meta.get_field("return_value").get_db_prep_save(return_value, connection),
            DBTaskResult._meta.pk.get_db_prep_value(task_id, connection)]


def _one_by_one(connection, names, values, check, tick, task, ready) -> Ended:
    sql = _statements(names)
    task_final = kept = False
    change = None
    with connection.cursor() as cursor:
        cursor.execute(sql["check"], [*values, check.pk])
        if not cursor.rowcount:
            return Ended(False, False, False)
        cursor.execute(sql["strip"], [tick, tick, check.server_id])
        if not cursor.rowcount:  # the server's first check ever (one active check per server: no race)
            cursor.execute(sql["strip_first"], [check.server_id, tick])
        if task:
            cursor.execute(sql["task"], task)
            task_final = bool(cursor.rowcount)
        if ready:
            server_id, tenant_id, state, reason, check_id, at = ready
            cursor.execute(sql["readiness"], [check_id, at, server_id, state, reason])
            kept = bool(cursor.rowcount)
            if not kept:
                cursor.execute(sql["readiness_first"], [*ready, check_id, at])
                if cursor.rowcount:  # none was there: "never checked" -> state, as the locked path writes it
                    kept = True
                    cursor.execute(sql["server_state"], [state, at, server_id])
                    cursor.execute(sql["first_change"], [server_id, tenant_id, at, state, reason, check_id])
                    change = cursor.fetchone()[0]
    return Ended(True, task_final, kept, change)


def _set_clause(names) -> str:
    from checks.models import Check

    return ", ".join(f"{Check._meta.get_field(name).column} = %s" for name in names)


_ACTIVE = "status IN ('queued', 'running')"
_TASK = ("UPDATE django_tasks_database_dbtaskresult SET status = 'SUCCESSFUL', finished_at = %s, return_value = %s, "
         "exception_class_path = '', traceback = '' WHERE id = %s")
_READINESS_COLUMNS = ("(server_id, tenant_id, state, reason, changed_by_id, since, last_conclusive_id, "
                      "last_conclusive_at)")
_SERVER_STATE = "UPDATE dashboard_server SET readiness_state = %s, readiness_since = %s WHERE id = %s"
_FIRST_CHANGE = ("INSERT INTO checks_readinesschange (server_id, tenant_id, at, from_state, to_state, reason, "
                 "caused_by_id)")


@cache
def _statements(names: tuple) -> dict:
    """SQLite: one statement each. The strip keeps its last strip.LENGTH entries (it never holds more)."""
    append = "json_insert(outcomes, '$[#]', json(%s))"
    return {
        "check": f"UPDATE checks_check SET {_set_clause(names)} WHERE id = %s AND {_ACTIVE}",  # noqa: S608
        "strip": (f"UPDATE checks_recentoutcomes SET outcomes = CASE "  # noqa: S608 (constants)
                  f"WHEN json_array_length(outcomes) >= {LENGTH} THEN json_remove({append}, '$[0]') ELSE {append} END "
                  "WHERE server_id = %s"),
        "strip_first": "INSERT INTO checks_recentoutcomes (server_id, outcomes) VALUES (%s, json_array(json(%s)))",
        "task": _TASK,
        "readiness": ("UPDATE checks_readiness SET last_conclusive_id = %s, last_conclusive_at = %s "
                      "WHERE server_id = %s AND state = %s AND reason = %s"),
        # The check's id and time twice: it set the state (changed_by, since) and is the last conclusive one.
        "readiness_first": (f"INSERT INTO checks_readiness {_READINESS_COLUMNS} "  # noqa: S608 (constants)
                            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (server_id) DO NOTHING"),
        "server_state": _SERVER_STATE,
        "first_change": f"{_FIRST_CHANGE} VALUES (%s, %s, %s, 'unknown', %s, %s, %s) RETURNING id",
    }


@cache
def _postgresql(names: tuple, task: bool, readiness: bool) -> str:
    """One statement: each write after the check's own happens only if that one matched (EXISTS ... c)."""
    parts = [
        f"c AS (UPDATE checks_check SET {_set_clause(names)} WHERE id = %s AND {_ACTIVE} RETURNING 1)",  # noqa: S608
        # The strip: appended on the row (locked by the write), its last LENGTH entries kept; a first check inserts.
        "s AS (INSERT INTO checks_recentoutcomes (server_id, outcomes) SELECT %s, %s::jsonb "  # noqa: S608
        "WHERE EXISTS (SELECT 1 FROM c) ON CONFLICT (server_id) DO UPDATE SET outcomes = (SELECT "
        "COALESCE(jsonb_agg(e ORDER BY n), '[]'::jsonb) FROM jsonb_array_elements(checks_recentoutcomes.outcomes "
        "|| EXCLUDED.outcomes) WITH ORDINALITY AS t(e, n) WHERE n > jsonb_array_length(checks_recentoutcomes.outcomes) "
        f"+ jsonb_array_length(EXCLUDED.outcomes) - {LENGTH}) RETURNING 1)",
    ]
    if task:
        parts.append(f"t AS ({_TASK} AND EXISTS (SELECT 1 FROM c) RETURNING 1)")  # noqa: S608 (constants)
    if readiness:
        # Inserted (xmax = 0) for a server's first; updated when unchanged; no row when the state changes.
        parts += [
            f"r AS (INSERT INTO checks_readiness {_READINESS_COLUMNS} "  # noqa: S608 (constants)
            "SELECT s_id, t_id, st, re, c_id, at, c_id, at "
            "FROM (SELECT %s::bigint AS s_id, %s::text AS t_id, %s::text AS st, %s::text AS re, %s::bigint AS c_id, "
            "%s::timestamptz AS at) AS v WHERE EXISTS (SELECT 1 FROM c) ON CONFLICT (server_id) DO UPDATE SET "
            "last_conclusive_id = EXCLUDED.last_conclusive_id, last_conclusive_at = EXCLUDED.last_conclusive_at "
            "WHERE checks_readiness.state = EXCLUDED.state AND checks_readiness.reason = EXCLUDED.reason "
            "RETURNING (xmax = 0) AS inserted, server_id, tenant_id, state, reason, since, changed_by_id)",
            "v AS (UPDATE dashboard_server d SET readiness_state = r.state, readiness_since = r.since FROM r "
            "WHERE d.id = r.server_id AND r.inserted RETURNING 1)",
            f"h AS ({_FIRST_CHANGE} SELECT server_id, tenant_id, since, 'unknown', "  # noqa: S608 (constants)
            "state, reason, changed_by_id "
            "FROM r WHERE inserted RETURNING id)",
        ]
    counts = ["(SELECT count(*) FROM c)", "(SELECT count(*) FROM t)" if task else "0",
              "(SELECT count(*) FROM r)" if readiness else "0", "(SELECT id FROM h)" if readiness else "NULL",
              # Read so that no one wonders whether it ran (a data-modifying CTE runs whether read or not).
              "(SELECT count(*) FROM s)" + (" + (SELECT count(*) FROM v)" if readiness else "")]  # noqa: S608
    return f"WITH {', '.join(parts)} SELECT {', '.join(counts)}"  # noqa: S608 (constants)

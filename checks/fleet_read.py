"""The servers a page of the list shows, with all that their rows say, read by SQL written once.

A row (checks.fleet_row) shows a server with its last check, its readiness, its strip's outcomes
(checks.strip.RecentOutcomes), its last LTR backup (backups.summary) and the signed-in user's own last attempt
(checks.fleet_state.my_last_attempt_note). Through the ORM (select_related, three annotations) Django compiled
that query anew on every page and built it into objects through its generic machinery: 8.6 ms for 50 servers at
9,000, of which 4.1 ms was the database. Here the statement is made once per database and its rows decoded by the
fields' own converters into the same objects (Server, its last Check, Readiness, RecentOutcomes, the same
attributes), as checks/claiming.py does for the worker: the list's page, the row a poll or a Run answers with,
and the server page all read a server this way, so they cannot say different things.
"""

import json
from functools import cache

from django.conf import settings
from django.db import connection
from django.db.models import Model
from django.db.models.base import ModelState

from backups.models import LtrRefresh
from checks.models import Check
from checks.readiness import Readiness
from checks.strip import RecentOutcomes
from dashboard.models import Server

# What a row never shows of its server's last check: not read (the check's page has them). The JSON ones were
# most of a page's decoding, the texts most of its bytes from the database.
CHECK_LEAVES_OUT = {"attempt_log", "error_additional_info", "error_message", "response_excerpt", "claims_challenge",
                    "error_target"}
# The last LTR backup's summary (backups.models.LtrRefresh), named as backups.summary.cell reads it.
BACKUP = {"last_backup_status": "last_status", "last_backup_started_at": "last_started_at",
          "last_backup_succeeded_at": "last_succeeded_at", "last_backup_read_at": "refreshed_at"}


def servers(ids: list[int], user) -> list[Server]:
    """The servers of `ids` (in that order; ids not found left out), each with `last_check`, `readiness` and
    `recent_outcomes` (where it has them; None known where not), `my_last` (`user`'s own newest finished check of
    it: its category and when, for fleet_state.my_last_attempt_note), `gap_days` (the tenant's "no successful LTR
    backup in N days") and the last_backup_* values (backups.summary.cell)."""
    if not ids:
        return []
    parts = _parts(connection.vendor)
    params = [user.tenant_id, settings.LTR_GAP_DAYS, user.pk, user.tenant_id, *ids]
    with connection.cursor() as cursor:
        cursor.execute(_sql(connection.vendor, len(ids)), params)
        rows = cursor.fetchall()
    by_id = {}
    width = len(parts["columns"])
    for row in rows:
        values = _decoded(parts["converted"], row[:width])
        server = _instance(Server, parts["server"], values)
        for name in ("last_check", "readiness", "recent_outcomes"):
            model, fields, key = parts[name]
            # As select_related leaves it: the related object, or None known (no query when it is asked for).
            related = _instance(model, fields, values) if values[key] is not None else None
            Server._meta.get_field(name).set_cached_value(server, related)
            if related is not None:  # (each of them is of this server: its `server` is known too)
                model._meta.get_field("server").set_cached_value(related, server)
        for attribute, index in parts["backup"].items():
            setattr(server, attribute, values[index])
        # The computed columns, after the fields, in COMPUTED's order.
        for (attribute, decode), value in zip(COMPUTED, row[width:], strict=True):
            setattr(server, attribute, decode(value))
        by_id[server.pk] = server
    return [by_id[pk] for pk in ids if pk in by_id]


def _instance(model: type[Model], fields: list, values: list) -> Model:
    """What Model.from_db makes of these values (each field's value in the instance's __dict__, a ModelState saying
    it came from this database, fields not read deferred), without Model.__init__'s setattr a field and its
    pre_init/post_init signals (this project has no receivers of them): 200 instances a page, 2 ms of its 28."""
    instance = model.__new__(model)
    state = instance._state = ModelState()
    state.adding, state.db = False, connection.alias
    instance.__dict__.update({field.attname: values[i] for field, i in fields})
    return instance


def _decoded(converted: list, row: tuple) -> list:
    """The row's values as the fields hold them: only the columns with converters are touched (on PostgreSQL 2 of
    52, the JSON ones; the driver hands over the rest as they are kept)."""
    values = list(row)
    for i, col, converters in converted:
        for converter in converters:
            values[i] = converter(values[i], col, connection)
    return values


@cache
def _parts(vendor: str) -> dict:
    """The statement's model columns in order, each with the converters the ORM would apply (datetimes, JSON),
    and where each model's fields and the last backup's values sit among them."""
    columns, parts = [], {}

    def add(alias, fields):
        placed = []
        for field in fields:
            col = field.get_col(alias)
            columns.append((col, connection.ops.get_db_converters(col) + field.get_db_converters(connection)))
            placed.append((field, len(columns) - 1))
        return placed

    parts["server"] = add("s", Server._meta.concrete_fields)
    check = add("c", [f for f in Check._meta.concrete_fields if f.name not in CHECK_LEAVES_OUT])
    readiness = add("r", Readiness._meta.concrete_fields)
    outcomes = add("o", RecentOutcomes._meta.concrete_fields)
    # (model, its fields, the column that is NULL when the server has none: the primary key)
    parts["last_check"] = (Check, check, check[0][1])
    parts["readiness"] = (Readiness, readiness, readiness[0][1])
    parts["recent_outcomes"] = (RecentOutcomes, outcomes, outcomes[0][1])
    parts["backup"] = {attribute: add("l", [LtrRefresh._meta.get_field(name)])[0][1]
                       for attribute, name in BACKUP.items()}
    parts["columns"] = columns
    parts["converted"] = [(i, col, converters) for i, (col, converters) in enumerate(columns) if converters]
    return parts


def _json(value):
    """The my_last object: PostgreSQL's driver may hand it over decoded or as text; SQLite as text."""
    return json.loads(value) if isinstance(value, str | bytes) else value


# The statement's computed columns (after the models' fields, in this order, as _sql writes them): the
# attribute each sets on the server, and how its value is read.
COMPUTED = [("gap_days", int), ("my_last", _json)]


@cache
def _sql(vendor: str, n: int) -> str:
    parts = _parts(vendor)
    names = [f"{col.alias}.{col.target.column}" for col, _ in parts["columns"]]
    build = "json_build_object" if vendor == "postgresql" else "json_object"
    marks = ", ".join(["%s"] * n)
    return (
        f"SELECT {', '.join(names)}, "  # noqa: S608 (columns and placeholders of ours)
        # COMPUTED, in its order: gap_days, my_last.
        "COALESCE((SELECT days_without_success FROM backups_ltralertsetting WHERE tenant_id = %s ORDER BY id "
        "LIMIT 1), %s), "
        f"(SELECT {build}('category', m.category, 'at', m.finished_at) FROM checks_check m "
        "WHERE m.server_id = s.id AND m.requested_by_id = %s AND m.finished_at IS NOT NULL "
        "ORDER BY m.created_at DESC, m.id DESC LIMIT 1) "
        "FROM dashboard_server s "
        "LEFT JOIN checks_check c ON c.id = s.last_check_id "
        "LEFT JOIN checks_readiness r ON r.server_id = s.id "
        "LEFT JOIN checks_recentoutcomes o ON o.server_id = s.id "
        "LEFT JOIN backups_ltrrefresh l ON l.server_id = s.id "
        f"WHERE s.tenant_id = %s AND s.id IN ({marks})"  # (the ids are the tenant's: said again, to be sure)
    )

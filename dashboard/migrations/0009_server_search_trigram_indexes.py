"""The server list's search (issue 12) by trigram indexes on PostgreSQL: `?q=` is a case-insensitive substring of
the name or the label (Django's icontains: `UPPER(col) LIKE UPPER('%q%')`), which no b-tree serves; at 9,000
servers a tenant it read the whole table (7.5 ms). A GIN index of each column's trigrams (pg_trgm) answers it
from the index for three letters and more.

pg_trgm is a trusted extension (PostgreSQL 13+: the database's owner may create it). Where it cannot be created
(an older server, or Azure Database for PostgreSQL, which creates only the extensions listed in its
`azure.extensions` server parameter), the search works as before, reading the table, and this migration says so
instead of failing the deployment; run `manage.py search_indexes` once it is allowed (it runs `create` alone:
migrating back to 0008 and forward again would undo every later migration). SQLite: nothing (its LIKE reads the
table; a demo fleet is small).
"""

import logging

from django.db import DatabaseError, migrations, transaction

log = logging.getLogger(__name__)

INDEXES = {"server_search_name_trgm_idx": "name", "server_search_label_trgm_idx": "label"}


def create(apps, schema_editor) -> bool:
    """The extension and the indexes, if they can be made; whether they are there."""
    if schema_editor.connection.vendor != "postgresql":
        return False
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as error:
        log.warning("The server search's trigram indexes were not made: pg_trgm could not be created (%s). "
                    "The search still works, reading the table; `manage.py search_indexes` makes them once it is "
                    "allowed.", str(error).strip())
        return False
    for name, column in INDEXES.items():
        # The expression is the one Django's icontains writes, so the planner can match it.
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS {name} ON dashboard_server '  # noqa: S608 (constants)
            f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops) WHERE archived_at IS NULL')
    return True


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):

    dependencies = [
        ("dashboard", "0008_server_places_state_index"),
    ]

    operations = [migrations.RunPython(create, drop)]

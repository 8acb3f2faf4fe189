"""The server list's search by trigram indexes on PostgreSQL (dashboard migration 0009): the query Django writes
for `?q=` is one the indexes serve, and a database that cannot create pg_trgm still migrates (the search then
reads the table)."""

import importlib
import io
import logging

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection

from checks import fleet_state
from dashboard.models import Server
from tests.conftest import CONTOSO, PROD

migration = importlib.import_module("dashboard.migrations.0009_server_search_trigram_indexes")
postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="trigram indexes are PostgreSQL's")


@postgresql_only
@pytest.mark.django_db(transaction=True)  # (VACUUM: a new GIN index's pending entries make it look dear)
def test_the_lists_search_reads_the_trigram_indexes():
    # At a fleet's size (fewer rows are read faster whole, and the planner says so).
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'dashboard_server'")
        assert set(migration.INDEXES) <= {row[0] for row in cursor.fetchall()}
    Server.objects.bulk_create([Server(tenant_id=CONTOSO, subscription_id=PROD, resource_group=f"rg-{i % 9}",
                                       name=f"pg-fleet-{i:05d}") for i in range(10_000)])
    searched = fleet_state.apply_filters(Server.objects.for_tenant(CONTOSO).active(), {"q": "fleet-00042"})
    sql, params = searched.values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE dashboard_server")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "server_search_name_trgm_idx" in plan and "server_search_label_trgm_idx" in plan, plan


class RefusingEditor:
    """A schema editor on a PostgreSQL that will not create the extension (Azure's azure.extensions list)."""

    class connection:  # noqa: N801 - the attribute the migration reads
        vendor, alias = "postgresql", "default"

    def __init__(self):
        self.executed = []

    def execute(self, sql):
        self.executed.append(sql)
        if sql.startswith("CREATE EXTENSION"):
            raise DatabaseError('permission denied to create extension "pg_trgm"')


def test_a_database_without_pg_trgm_migrates_and_says_why_the_search_has_no_index(db, caplog):
    editor = RefusingEditor()
    with caplog.at_level(logging.WARNING):
        migration.create(None, editor)
    assert editor.executed == ["CREATE EXTENSION IF NOT EXISTS pg_trgm"], "no index without the extension"
    assert "pg_trgm could not be created (permission denied" in caplog.text
    assert "The search still works, reading the table; `manage.py search_indexes` makes them" in caplog.text


def _search_indexes() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'dashboard_server'")
        return {row[0] for row in cursor.fetchall()} & set(migration.INDEXES)


@postgresql_only
def test_search_indexes_makes_what_a_refused_migration_left_out_and_says_when_still_refused(db):
    with connection.cursor() as cursor:
        cursor.execute("DROP EXTENSION pg_trgm CASCADE")  # a database that refused it when it was migrated
        cursor.execute("CREATE ROLE ltr_no_create_test")  # no CREATE on the database: pg_trgm is refused
        cursor.execute("SET ROLE ltr_no_create_test")
    assert not _search_indexes()
    with pytest.raises(CommandError, match="pg_trgm could not be created .*nothing was changed"):
        call_command("search_indexes")
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")
    assert not _search_indexes()
    out = io.StringIO()
    call_command("search_indexes", stdout=out)
    assert _search_indexes() == set(migration.INDEXES)
    assert "The server search's indexes are there" in out.getvalue()
    call_command("search_indexes", stdout=io.StringIO())  # again: nothing to do, no error
    assert _search_indexes() == set(migration.INDEXES)


@pytest.mark.skipif(connection.vendor == "postgresql", reason="SQLite's answer")
def test_search_indexes_on_sqlite_says_there_are_none_to_make(db):
    with pytest.raises(CommandError, match="PostgreSQL's; on SQLite the search reads the table"):
        call_command("search_indexes")

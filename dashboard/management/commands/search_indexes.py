"""Make the server list's trigram search indexes (dashboard migration 0009) on a database that could not make them
when it was migrated: where pg_trgm was not yet allowed (Azure Database for PostgreSQL creates only the extensions
listed in its `azure.extensions` server parameter), the migration succeeded without them and said so.

Running the migration again would mean migrating back past it first, which would undo every later migration too;
this runs its work alone, and is safe to run again (IF NOT EXISTS).
"""

import importlib

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

migration = importlib.import_module("dashboard.migrations.0009_server_search_trigram_indexes")


class Command(BaseCommand):
    help = "Create the server search's trigram indexes (PostgreSQL, pg_trgm) if they are missing."

    def add_arguments(self, parser):
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, database, **options):
        connection = connections[database]
        if connection.vendor != "postgresql":
            raise CommandError("The search's trigram indexes are PostgreSQL's; on SQLite the search reads the table.")
        with connection.schema_editor() as editor:
            made = migration.create(None, editor)
        if not made:
            raise CommandError("pg_trgm could not be created (see the warning above); nothing was changed. On Azure, "
                               "add PG_TRGM to the server parameter azure.extensions, then run this again.")
        self.stdout.write(f"The server search's indexes are there: {', '.join(migration.INDEXES)}.")

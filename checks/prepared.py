"""A cursor for the checks worker's statements written once (a check's end, the claim, the claimed checks' read):
on PostgreSQL it binds the values on the server, so that the worker's connections can run each statement as a
prepared statement, parsed and planned once per connection instead of once per check.

Django's psycopg connections bind on the client (the SQL is sent as text with the values quoted into it), which
psycopg never prepares, and Django turns preparing off (`prepare_threshold` None) for connection poolers' sake.
A check's end is one statement of up to eight CTEs (checks.ending): PostgreSQL spent 0.65-0.8 ms planning it for
0.7-0.9 ms of executing it (EXPLAIN ANALYZE), on every check. Prepared, the end of a check with its commit took
1.1-1.35 ms of the backend's CPU instead of 2.7-2.9, and 0.94-1.04 ms of the worker's instead of 1.44-1.49 (one
connection, 1,000 ends; PostgreSQL 15 keeps to its generic plan). checks_worker turns preparing on for its own
connections (`prepare`); web requests and tests keep Django's default, so there this cursor binds on the server
without preparing. psycopg forgets a connection's prepared statements at a ROLLBACK (rare in the worker: a
statement is prepared again on its next run). SQLite: Django's own cursor (it caches its statements itself).
"""

from contextlib import contextmanager

from django.db.backends.base.base import BaseDatabaseWrapper


@contextmanager
def cursor(connection: BaseDatabaseWrapper):
    """Django's cursor of `connection` (statements are counted and logged as any other), binding on the server on
    PostgreSQL."""
    if connection.vendor != "postgresql":
        with connection.cursor() as django_cursor:
            yield django_cursor
        return
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.ensure_connection()
    psycopg_connection = connection.connection
    factory = psycopg_connection.cursor_factory
    psycopg_connection.cursor_factory = ServerBindingCursor  # this cursor only: the ORM's bind on the client
    try:
        django_cursor = connection.cursor()
    finally:
        psycopg_connection.cursor_factory = factory
    with django_cursor:
        yield django_cursor


def prepare(connection: BaseDatabaseWrapper) -> None:
    """Have `connection` (a new PostgreSQL connection) prepare the statements run through `cursor` from their first
    execution on (the ORM's client-side binding cursors are never prepared, whatever this says)."""
    if connection.vendor == "postgresql":
        connection.connection.prepare_threshold = 0

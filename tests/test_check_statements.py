"""What one check costs the database: a small, fixed number of SQL statements, whatever the fleet's size.

Profiled before (issue 12): about 14 statements a check, six of them small writes, plus the queue's; the
sweep ran ~110 checks a second where a plain pool of threads calls the same endpoint at 600-840 a second.
The statements are counted at the connection, for checks run one after another as a worker runs them."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from checks.models import Check
from checks.tasks import run_check
from dashboard.demo import PROD
from tests.conftest import ALICE, make_server

# A check whose server's readiness does not change: claim it (an update), then one read of it, its server, its
# user and the version of the user's token cache; then its end (checks.ending): the check's row, its tick on the
# server's strip of recent outcomes (so the list never reads the history) and the readiness's conditional
# update, three statements on SQLite and one on PostgreSQL. Once every few checks the pacing lease adds its
# locked read and write of the bucket. (Savepoints are not counted: outside a test they are the BEGIN and
# COMMIT of the result's transaction.) Before issue 12: 14 a check; before its third round: 7.
STEADY_STATEMENTS = {"sqlite": 5, "postgresql": 3}[connection.vendor]
# A server's first check: its readiness row, its first change and the server's copy of the state are written
# too, and its strip's row inserted: four more statements on SQLite, none on PostgreSQL (the same one).
FIRST_STATEMENTS = {"sqlite": 9, "postgresql": 3}[connection.vendor]
LEASE_STATEMENTS = 2


def _servers(sim, n: int) -> list:
    servers = []
    for i in range(n):
        name = f"pg-count-{i:03d}"
        sim.set_behaviour(PROD, "rg-payments-prod", name, outcome="success")
        servers.append(make_server(name=name))
    return servers


def _run_each(servers, user) -> list[list[str]]:
    """Queue and run one check per server, one after another; the statements each run made."""
    per_check = []
    for server in servers:
        check = Check.objects.queue(server, user, "b-1", api_version="2024-08-01")
        with CaptureQueriesContext(connection) as queries:
            assert run_check.call(check.pk) == "succeeded"
        per_check.append([q["sql"][:80] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]])
    return per_check


@pytest.mark.parametrize("fleet_size", [10, 40])
def test_a_check_takes_a_few_statements_and_no_more_as_checks_add_up(signed_in, sim, fleet_size):
    alice = signed_in(ALICE["upn"])
    servers = _servers(sim, fleet_size)
    first = _run_each(servers, alice)  # the first checks: each server's readiness is new
    counts = sorted(len(statements) for statements in first)
    assert counts[len(counts) // 2] == FIRST_STATEMENTS, first[len(counts) // 2]
    again = _run_each(servers, alice)
    counts = sorted(len(statements) for statements in again)
    assert counts[len(counts) // 2] == STEADY_STATEMENTS, again[len(counts) // 2]
    assert counts[-1] <= STEADY_STATEMENTS + LEASE_STATEMENTS, max(again, key=len)
    # The lease is taken once per few checks, not per check: the total stays near 7 a check at any size.
    assert sum(counts) <= (STEADY_STATEMENTS + 1) * fleet_size


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_a_workers_connection_plans_a_checks_statements_once_not_once_a_check(signed_in, sim):
    """checks_worker's connections prepare the statements written once (checks.prepared): PostgreSQL's own view of
    the session's prepared statements shows the end of a check planned as one statement, run once per check."""
    from checks.management.commands.checks_worker import _tune_connection

    alice = signed_in(ALICE["upn"])
    servers = _servers(sim, 4)
    _run_each(servers, alice)  # not prepared: this test's connection is a web request's so far
    assert _prepared() == {}
    _tune_connection(sender=None, connection=connection)  # as when the worker opens a connection
    _run_each(servers, alice)
    _run_each(servers, alice)
    prepared = _prepared()
    ends = {sql: runs for sql, runs in prepared.items() if sql.startswith("WITH c AS (UPDATE checks_check")}
    assert list(ends.values()) == [8], prepared  # one statement, planned once, run for each of the 8 checks
    reads = [runs for sql, runs in prepared.items() if "dashboard_tokencache" in sql]
    assert sum(reads) == 8, prepared  # each check's read for running, from one prepared statement
    assert connection.connection.cursor_factory.__name__ == "Cursor"  # the ORM's cursors still bind on the client


def _prepared() -> dict[str, int]:
    """This session's prepared statements (PostgreSQL's view): their text and how often each was run."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
        return dict(cursor.fetchall())

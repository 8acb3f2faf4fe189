"""Review of issue 12's list reading (branch review): rows read by checks.fleet_read never load a left-out field of
the last check, and dashboard migration 0009 survives a real refusal of pg_trgm inside the migration's transaction."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dashboard.models import Server
from tests.conftest import make_server
from tests.factories import make_check


def test_rows_of_every_status_ask_no_deferred_field(client, alice):
    for i, (status, category) in enumerate([("succeeded", "passed"), ("failed", "server_not_ready"),
                                            ("failed", "permission_missing"), ("signin_required", ""),
                                            ("cancelled", ""), ("interrupted", ""), ("running", ""),
                                            ("queued", "")]):
        server = make_server(name=f"pg-{i}-{status}")
        check = make_check(server, alice, status=status, category=category, error_code="X", error_message="m",
                           error_target="t", response_excerpt="r", claims_challenge="c")
        Server.objects.filter(pk=server.pk).update(last_check=check)
    client.force_login(alice)
    ids = list(Server.objects.values_list("pk", flat=True))
    with CaptureQueriesContext(connection) as queries:
        client.get("/")
        for pk in ids:
            client.get(f"/servers/{pk}/")
            client.get(f"/servers/{pk}/row/")
    deferred = [q["sql"] for q in queries if re.search(r'FROM "checks_check" WHERE "checks_check"."id" = ', q["sql"])]
    assert not deferred, deferred[:3]


def test_probe_sanity_a_deferred_field_read_is_seen(alice):
    from checks import fleet_read
    server = make_server(name="pg-x")
    check = make_check(server, alice, status="failed", category="server_not_ready", error_message="m")
    Server.objects.filter(pk=server.pk).update(last_check=check)
    s = fleet_read.servers([server.pk], alice)[0]
    with CaptureQueriesContext(connection) as queries:
        assert s.last_check.error_message == "m"
    assert re.search(r'FROM "checks_check" WHERE "checks_check"."id" = ', queries[0]["sql"])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's extension")
def test_a_refused_extension_leaves_the_migrations_transaction_usable(db, caplog):
    # The fake editor of test_server_search_index cannot tell whether the savepoint is there: a real refusal
    # aborts PostgreSQL's transaction, and the migration's own bookkeeping would then fail.
    import importlib

    from django.db import transaction
    migration = importlib.import_module("dashboard.migrations.0009_server_search_trigram_indexes")

    class Refused:
        def __init__(self, real):
            self.real, self.connection = real, real.connection

        def execute(self, sql):
            self.real.execute(sql.replace("EXISTS pg_trgm", "EXISTS ltr_no_such_extension"))

    with transaction.atomic(), connection.schema_editor(atomic=False) as editor:
        migration.create(None, Refused(editor))
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
    assert "could not be created" in caplog.text


def test_your_last_attempt_is_your_last_finished_one_while_another_of_yours_runs(client, alice):
    # fleet_read's my_last reads finished checks only: a check of yours still queued or running says nothing yet.
    from tests.test_fleet_view import conclude

    server = make_server(name="pg-mine")
    conclude(server, alice, "passed", 60)
    make_check(server, alice, status="failed", category="permission_missing", minutes_ago=30)
    running = make_check(server, alice, status="running", category="", minutes_ago=0)
    Server.objects.filter(pk=server.pk).update(last_check=running)
    client.force_login(alice)
    assert "Your last attempt: Permission missing" in client.get("/").content.decode()
    assert "Your last attempt: Permission missing" in client.get(f"/servers/{server.pk}/").content.decode()


def test_rows_are_the_instances_the_orm_would_build(alice):
    # fleet_read builds its instances without Model.__init__: the same field values as the ORM's own, known to
    # be from the database (a save is an UPDATE of that row, not an INSERT), related objects cached both ways.
    from checks import fleet_read
    from checks.models import Check
    from checks.readiness import Readiness
    from tests.test_fleet_view import conclude

    server = make_server(name="pg-same", label="Same")
    conclude(server, alice, "passed", 60)
    read = fleet_read.servers([server.pk], alice)[0]
    orm = Server.objects.select_related("last_check", "readiness", "recent_outcomes").get(pk=server.pk)

    def fields(instance):
        return {f.attname: instance.__dict__[f.attname] for f in type(instance)._meta.concrete_fields
                if f.attname in instance.__dict__}

    assert fields(read) == fields(orm)
    check_fields = fields(read.last_check)
    assert check_fields == {k: v for k, v in fields(orm.last_check).items() if k in check_fields}
    assert set(fields(orm.last_check)) - set(check_fields) == fleet_read.CHECK_LEAVES_OUT
    assert fields(read.readiness) == fields(orm.readiness)
    assert fields(read.recent_outcomes) == fields(orm.recent_outcomes)
    for instance in (read, read.last_check, read.readiness, read.recent_outcomes):
        assert (instance._state.adding, instance._state.db) == (False, "default")
    assert read.last_check.server is read and read.readiness.server is read
    with CaptureQueriesContext(connection) as queries:
        read.label = "Renamed"
        read.save(update_fields=["label"])
    assert [q["sql"].split()[0] for q in queries] == ["UPDATE"]
    assert Server.objects.get(pk=server.pk).label == "Renamed"
    assert isinstance(read.last_check, Check) and isinstance(read.readiness, Readiness)


def test_no_model_a_row_builds_listens_to_its_initialisation():
    # fleet_read skips Model.__init__ and with it pre_init/post_init: a receiver added to one of these models
    # would not run for the list's rows. If this fails, build them with Model.from_db again.
    from django.db.models import signals

    from checks.models import Check
    from checks.readiness import Readiness
    from checks.strip import RecentOutcomes

    for model in (Server, Check, Readiness, RecentOutcomes):
        assert not signals.pre_init.has_listeners(model) and not signals.post_init.has_listeners(model), model

"""Readiness means the server: only outcomes about the server move it, each change is recorded once with the
check that caused it, and the history kept before readiness existed is replayed into it."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from armclient.outcomes import Category
from checks.models import Check, Readiness, ReadinessChange
from checks.readiness import readiness_changed
from tests.conftest import ALICE, BOB
from tests.factories import make_check


def run(client, server, worker) -> Check:
    client.post(f"/servers/{server.pk}/run/", {"backup_name": "b-1"}, headers={"HX-Request": "true"})
    worker()
    return Check.objects.filter(server=server).latest("created_at")


@pytest.mark.parametrize(
    ("category", "about_the_server"),
    [(Category.PASSED, True), (Category.SERVER_NOT_READY, True), (Category.NOT_FOUND, True),
     (Category.PROVIDER_NOT_REGISTERED, True), (Category.BUSY, True), (Category.PERMISSION_MISSING, False),
     (Category.SIGNIN_REQUIRED, False), (Category.THROTTLED, False), (Category.NETWORK, False),
     (Category.AZURE_FAILURE, False), (Category.UNEXPECTED_RESPONSE, False), (Category.REJECTED, False)],
)
def test_which_outcomes_speak_for_the_server(category, about_the_server):
    assert category.is_about_the_server is about_the_server


def test_bob_lacking_permission_does_not_make_pg_ledger_not_ready(client, signed_in, sim, worker, fleet):
    ledger = fleet["pg-ledger"]
    signed_in(ALICE["upn"])
    assert run(client, ledger, worker).category == Category.PASSED
    client.logout()
    signed_in(BOB["upn"])
    assert run(client, ledger, worker).category == Category.PERMISSION_MISSING
    readiness = Readiness.objects.get(server=ledger)
    assert (readiness.state, readiness.reason) == ("ready", "")
    assert list(ReadinessChange.objects.filter(server=ledger).values_list("from_state", "to_state")) == [
        ("unknown", "ready")]


def test_each_change_is_recorded_once_with_its_check_and_announced_after_commit(client, signed_in, sim, worker,
                                                                             fleet, django_capture_on_commit_callbacks):
    from dashboard.demo import PROD

    server = fleet["pg-payments-01"]
    heard = []
    readiness_changed.connect(lambda sender, change, **kw: heard.append(change.to_state), weak=False,
                              dispatch_uid="test-heard")
    try:
        signed_in(ALICE["upn"])
        with django_capture_on_commit_callbacks(execute=True):
            first = run(client, server, worker)
            run(client, server, worker)  # passes again: no change
            sim.set_behaviour(PROD, "rg-payments-prod", "pg-payments-01", outcome="not_ready", state="Stopped")
            stopped = run(client, server, worker)
            sim.set_behaviour(PROD, "rg-payments-prod", "pg-payments-01", outcome="success")
            back = run(client, server, worker)
    finally:
        readiness_changed.disconnect(dispatch_uid="test-heard")
    changes = list(ReadinessChange.objects.filter(server=server).order_by("at"))
    assert [(c.from_state, c.to_state, c.reason, c.caused_by_id) for c in changes] == [
        ("unknown", "ready", "", first.pk), ("ready", "not_ready", "server_not_ready", stopped.pk),
        ("not_ready", "ready", "", back.pk)]
    assert heard == ["ready", "not_ready", "ready"]
    readiness = Readiness.objects.get(server=server)
    assert (readiness.state, readiness.since, readiness.last_conclusive_id) == ("ready", back.finished_at, back.pk)


def test_the_list_shows_the_servers_readiness_and_apart_from_it_your_own_failed_attempt(client, signed_in, sim,
                                                                                       worker, fleet):
    ledger = fleet["pg-ledger"]
    signed_in(ALICE["upn"])
    run(client, ledger, worker)
    client.logout()
    signed_in(BOB["upn"])
    run(client, ledger, worker)
    bob_sees = client.get("/", {"q": "pg-ledger"}).content.decode()
    assert "Your last attempt: Permission missing" in bob_sees
    assert 'class="badge badge-ready">Ready<' in bob_sees
    assert "<strong>1</strong> ready" in bob_sees and "<strong>0</strong> not ready" in bob_sees
    assert 'aria-label="Last 2 checks: 1 passed, 1 said nothing"' in bob_sees  # the strip, in words
    assert "says nothing about the server" in bob_sees
    client.logout()
    signed_in(ALICE["upn"])
    alice_sees = client.get("/", {"q": "pg-ledger"}).content.decode()
    assert "Your last attempt" not in alice_sees and 'class="badge badge-ready">Ready<' in alice_sees


def test_the_server_page_shows_readiness_since_and_its_timeline(client, signed_in, sim, worker, fleet):
    from dashboard.demo import PROD

    server = fleet["pg-payments-01"]
    signed_in(ALICE["upn"])
    run(client, server, worker)
    sim.set_behaviour(PROD, "rg-payments-prod", "pg-payments-01", outcome="not_ready", state="Stopped")
    stopped = run(client, server, worker)
    html = " ".join(client.get(f"/servers/{server.pk}/").content.decode().split())
    assert "Not ready: Server not ready</span> since" in html
    assert "Ready → <strong>Not ready</strong> (Server not ready) for under a minute so far" in html
    assert "(under a minute)" in html and "0 minutes" not in html
    assert "Not known → <strong>Ready</strong>" in html
    assert f'href="/checks/{stopped.pk}/">the check that said so' in html


def test_the_list_and_its_readiness_cost_the_same_queries_for_5_or_50_servers(client, alice,
                                                                              django_assert_max_num_queries):
    from tests.conftest import make_server

    client.force_login(alice)
    for count in (5, 50):
        for i in range(count):
            check = make_check(make_server(name=f"pg-q-{count}-{i}"), alice, category="passed")
            Readiness.observe(Check.objects.select_related("server").get(pk=check.pk))
        # session, user, filter places, counts, page count, page ids, the tenant's LTR gap days, the rows,
        # subscription names: the same 9 for 5 or 50 servers.
        with django_assert_max_num_queries(9):
            assert client.get("/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_the_history_kept_before_readiness_is_replayed(alice, server):
    before = [("checks", "0006_readiness")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old_check = executor.loader.project_state(before).apps.get_model("checks", "Check")

        def old(category, minutes_ago):
            at = timezone.now() - timedelta(minutes=minutes_ago)
            return old_check.objects.create(
                server_id=server.pk, backup_name="b", status="failed", category=category, requested_by_oid="o",
                requested_by_name="n", requested_by_tenant=server.tenant_id, api_version="2024-08-01",
                created_at=at, started_at=at, finished_at=at).pk

        ok, _, down = old("passed", 30), old("permission_missing", 20), old("not_found", 10)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert list(ReadinessChange.objects.order_by("at").values_list("to_state", "caused_by_id")) == [
        ("ready", ok), ("not_ready", down)]
    assert Readiness.objects.get(server=server).state == "not_ready"


def test_a_quick_check_says_milliseconds_and_a_bad_filter_names_its_field(client, alice, server):
    from datetime import timedelta

    check = make_check(server, alice)
    check.finished_at = check.started_at + timedelta(milliseconds=38)
    assert check.took == "38 ms"
    check.finished_at = check.started_at + timedelta(seconds=2)
    assert check.took == "2.0 s"
    client.force_login(alice)
    html = client.get("/", {"q": "x" * 300}).content.decode()
    assert "Search: at most 100 characters (this has 300)." in html and "Q:" not in html

"""Subscription names instead of GUIDs: read from ARM's subscription list with the user's own token (through
armclient, the read bucket), kept per tenant, refreshed by the import and by the worker when a day old, shown
wherever a subscription is (the GUID on hover), with the GUID kept in exports; one query per page."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboard.demo import CONTOSO, FABRIKAM, PROD, SANDBOX, STAGING
from dashboard.models import SubscriptionName
from dashboard.subscriptions import refresh_old_names
from tests.conftest import ALICE, CHARLIE, make_server
from tests.factories import make_check

NAMED = f'<span class="subscription" title="{PROD}">Contoso Production</span>'


def _name(subscription_id=PROD, display_name="Contoso Production", tenant_id=CONTOSO, **extra):
    return SubscriptionName.objects.create(tenant_id=tenant_id, subscription_id=subscription_id,
                                           display_name=display_name, fetched_at=timezone.now(), **extra)


def _subscription_reads(sim) -> list:
    return [r for r in sim.received(method="GET") if r.path.rstrip("/").lower() == "/subscriptions"]


def test_opening_the_import_page_remembers_the_names_with_the_users_token(client, logged_in, sim):
    alice = logged_in(ALICE["upn"])
    sim.world.subscriptions[SANDBOX].state = "Disabled"
    client.get("/servers/import/")
    rows = {r.subscription_id: r for r in SubscriptionName.objects.filter(tenant_id=CONTOSO)}
    assert {s: r.display_name for s, r in rows.items()} == {
        PROD: "Contoso Production", STAGING: "Contoso Staging", SANDBOX: "Contoso Sandbox"}
    assert rows[SANDBOX].state == "Disabled" and rows[PROD].fetched_by == alice
    assert len(_subscription_reads(sim)) == 1
    assert "Bearer " in _subscription_reads(sim)[0].headers["Authorization"]
    html = client.get("/servers/import/").content.decode()
    assert "Contoso Sandbox" not in html, "a disabled subscription is named, not offered for import"


def test_the_server_list_names_subscriptions_in_the_column_and_the_filter(client, logged_in):
    logged_in(ALICE["upn"])
    _name()
    make_server(name="pg-orders")
    make_server(subscription_id=STAGING, resource_group="rg-staging", name="pg-staging-01")
    html = client.get("/").content.decode()
    assert NAMED in html
    assert f'<code>{STAGING}</code>' in html, "no name known: the GUID itself"
    assert f'<option value="{PROD}" title="{PROD}">Contoso Production</option>' in html
    assert f'<option value="{STAGING}">{STAGING}</option>' in html
    filtered = client.get("/", {"subscription": PROD}).content.decode()
    assert "pg-orders" in filtered and "pg-staging-01" not in filtered


def test_the_server_page_history_and_check_page_name_the_subscription(client, logged_in):
    alice = logged_in(ALICE["upn"])
    _name()
    server = make_server(name="pg-orders")
    check = make_check(server, alice)
    for path in (f"/servers/{server.pk}/", "/checks/", f"/checks/{check.pk}/"):
        assert NAMED in client.get(path).content.decode(), path


def test_schedules_name_their_subscription(client, logged_in):
    logged_in(ALICE["upn"])
    _name()
    make_server(name="pg-orders")
    html = client.get("/schedules/new/").content.decode()
    assert f'<option value="{PROD}" title="{PROD}">Contoso Production</option>' in html
    client.post("/schedules/new/", {"name": "Nightly", "scope": "subscription", "subscription_id": PROD,
                                    "cadence": "every", "every_hours": "6", "time_zone": "UTC"})
    assert NAMED in client.get("/schedules/").content.decode()


def test_exports_keep_the_guid_and_add_the_name(client, logged_in):
    alice = logged_in(ALICE["upn"])
    _name()
    make_check(make_server(name="pg-orders"), alice)
    make_check(make_server(subscription_id=STAGING, resource_group="rg-staging", name="pg-staging-01"), alice)
    text = b"".join(client.get("/checks/export.csv").streaming_content).decode()
    head, *rows = csv.reader(io.StringIO(text))  # every value quoted (the COPY export writes them so)
    columns = head
    assert columns[-1] == "subscription_name" and "subscription_id" in columns
    by_server = {r[columns.index("server")]: r for r in rows if r and not r[0].startswith("#")}
    assert by_server["pg-orders"][columns.index("subscription_id")] == PROD
    assert by_server["pg-orders"][-1] == "Contoso Production" and by_server["pg-staging-01"][-1] == ""
    lines = [json.loads(line) for line in b"".join(client.get("/checks/export.jsonl").streaming_content).splitlines()]
    orders = next(line for line in lines if line.get("server") == "pg-orders")
    assert orders["subscription_id"] == PROD and orders["subscription_name"] == "Contoso Production"


def test_another_tenants_names_are_not_shown(client, logged_in):
    logged_in(CHARLIE["upn"])
    _name()  # Contoso's name for a GUID that Fabrikam also has a server in
    make_server(tenant_id=FABRIKAM, name="pg-odd")
    html = client.get("/").content.decode()
    assert "Contoso Production" not in html and f'<code>{PROD}</code>' in html


def test_a_hostile_display_name_is_escaped(client, logged_in):
    logged_in(ALICE["upn"])
    _name(display_name='<img src=x onerror=alert(1)>')
    make_server(name="pg-orders")
    html = client.get("/").content.decode()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


@pytest.mark.parametrize("path", ["/", "/checks/"])
def test_names_cost_one_query_per_page_however_many_servers(client, logged_in, path):
    alice = logged_in(ALICE["upn"])
    subs = [f"0b5e00{i:02d}-0000-4000-8000-0000000000{i:02d}" for i in range(10, 20)]
    for sub in subs:
        _name(subscription_id=sub, display_name=f"Sub {sub[4:6]}")
    counts = []
    for n in (10, 60):
        for i in range(len(counts) * 10, n):
            make_check(make_server(subscription_id=subs[i % 10], resource_group="rg", name=f"pg-{i:03d}"), alice)
        client.get(path)  # warm: the session's first writes
        with CaptureQueriesContext(connection) as queries:
            html = client.get(path).content.decode()
        counts.append(len(queries))
        assert html.count('class="subscription"') >= min(n, 50)
    assert counts[0] == counts[1], f"queries for 10 vs 60 servers: {counts}"
    assert sum("subscriptionname" in q["sql"].lower() for q in queries.captured_queries) == 1


def test_the_worker_refreshes_names_a_day_old_as_the_person_who_read_them(logged_in, sim):
    alice = logged_in(ALICE["upn"])
    old = timezone.now() - timedelta(hours=25)
    _name(display_name="Old name", fetched_by=alice)
    SubscriptionName.objects.update(fetched_at=old)
    sim.world.subscriptions[PROD].name = "Contoso Production (renamed)"
    assert refresh_old_names() == 1
    assert len(_subscription_reads(sim)) == 1
    assert SubscriptionName.objects.get(subscription_id=PROD).display_name == "Contoso Production (renamed)"
    assert SubscriptionName.objects.filter(tenant_id=CONTOSO).count() == 3
    assert refresh_old_names() == 0 and len(_subscription_reads(sim)) == 1, "fresh names are not read again"


def test_a_refresh_that_cannot_get_a_token_leaves_the_names(alice, sim):
    _name(display_name="Kept", fetched_by=alice)  # alice has no token cache: nothing silent to use
    SubscriptionName.objects.update(fetched_at=timezone.now() - timedelta(days=2))
    assert refresh_old_names() == 0
    assert SubscriptionName.objects.get().display_name == "Kept" and not _subscription_reads(sim)


def test_the_filter_gives_the_name_or_the_guid_for_text_and_attributes(db):
    from django.template import Context, Template

    template = Template("{% load subscriptions %}{{ a|subscription_name:subscription_names }}|"
                        "{{ b|subscription_name:subscription_names }}")
    names = {PROD: "Contoso <Production>"}
    assert template.render(Context({"a": PROD.upper(), "b": STAGING, "subscription_names": names})) == \
        f"Contoso &lt;Production&gt;|{STAGING}"


@pytest.fixture
def names_at_sign_in(settings):
    settings.SUBSCRIPTION_NAMES_AT_SIGN_IN = True


@pytest.mark.usefixtures("names_at_sign_in")
def test_the_first_sign_in_to_a_tenant_has_its_names_read_by_the_worker(client, signed_in, sim, worker):
    """Nobody opened the import: the names still come, read with the signed-in person's own token."""
    alice = signed_in(ALICE["upn"])
    assert not _subscription_reads(sim), "the sign-in itself does not wait for ARM"
    worker()
    assert len(_subscription_reads(sim)) == 1
    assert "Bearer " in _subscription_reads(sim)[0].headers["Authorization"]
    assert SubscriptionName.objects.get(subscription_id=PROD).fetched_by == alice
    make_server(name="pg-orders")
    assert NAMED in client.get("/").content.decode()


@pytest.mark.usefixtures("names_at_sign_in")
def test_a_sign_in_to_a_tenant_with_fresh_names_reads_nothing(client, signed_in, sim, worker):
    _name()
    signed_in(ALICE["upn"])
    worker()
    assert not _subscription_reads(sim)


@pytest.mark.usefixtures("names_at_sign_in")
def test_a_sign_in_to_a_tenant_with_old_names_reads_them_again(client, signed_in, sim, worker):
    _name(display_name="Old name")
    SubscriptionName.objects.update(fetched_at=timezone.now() - timedelta(days=2))
    signed_in(ALICE["upn"])
    worker()
    assert SubscriptionName.objects.get(subscription_id=PROD).display_name == "Contoso Production"


@pytest.mark.usefixtures("names_at_sign_in")
def test_a_tenant_with_no_subscriptions_is_read_once_not_at_every_sign_in(client, signed_in, sim, worker):
    """ARM lists nothing: the empty read is remembered (a row named nothing, never shown), so the next sign-in
    queues no read; once that row is old, a sign-in reads again."""
    sim.world.subscriptions.clear()
    signed_in(ALICE["upn"])
    worker()
    assert len(_subscription_reads(sim)) == 1
    client.logout()
    signed_in(ALICE["upn"])
    worker()
    assert len(_subscription_reads(sim)) == 1, "nothing to read: the second sign-in queues no read"
    make_server(name="pg-orders")
    assert '<span class="subscription"' not in client.get("/").content.decode()
    SubscriptionName.objects.update(fetched_at=timezone.now() - timedelta(days=2))
    client.logout()
    signed_in(ALICE["upn"])
    worker()
    assert len(_subscription_reads(sim)) == 2

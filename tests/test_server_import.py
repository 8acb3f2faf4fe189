"""Import from Azure: list what the user's own token can see, register what they pick."""

import socket
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from checks.models import Check
from dashboard import registry
from dashboard.audit import Action
from dashboard.demo import CONTOSO, PROD, SANDBOX, STAGING
from dashboard.models import AuditEvent, ImportListing, Server
from tests.conftest import ALICE, BOB, CHARLIE, make_server


def test_it_lists_the_servers_of_the_users_subscriptions(client, logged_in):
    logged_in(ALICE["upn"])
    html = client.get("/servers/import/").content.decode()
    for name in ("pg-payments-01", "pg-orders", "pg-gateway-flaky", "pg-staging-02"):
        assert f"<strong>{name}</strong>" in html
    assert "Contoso Production" in html and "Contoso Staging" in html
    assert "MissingSubscriptionRegistration" in html, "a subscription that cannot be listed says why"
    assert "pg-fabrikam-01" not in html and "Fabrikam" not in html
    assert "<td data-label=\"State\">Stopped</td>" in html


def test_servers_already_registered_are_counted_not_offered(client, logged_in):
    logged_in(ALICE["upn"])
    make_server(name="PG-PAYMENTS-01")
    html = client.get("/servers/import/").content.decode()
    assert f'value="{PROD}|rg-payments-prod|pg-payments-01"' not in html
    assert f'value="{PROD}|rg-payments-prod|pg-orders"' in html
    assert "1 registered here" in html


def test_all_pages_of_a_long_list_are_read(client, logged_in, sim, monkeypatch):
    monkeypatch.setattr(sim.inventory, "page_size", 2)
    logged_in(ALICE["upn"])
    html = client.get("/servers/import/").content.decode()
    assert html.count('name="server"') == 12


@pytest.mark.parametrize(("host", "scheme"), [("127.0.0.1", "http"), ("127.0.0.2", "https")])
def test_a_next_page_on_another_host_is_not_followed_and_the_user_is_told(client, logged_in, sim, monkeypatch,
                                                                          host, scheme):
    """A nextLink off the ARM endpoint would carry the user's bearer token to that host: nothing reaches it
    (ARM's own scheme and host on another port, or https to another host)."""
    elsewhere = socket.create_server((host, 0))
    elsewhere.setblocking(False)
    monkeypatch.setattr(sim.inventory, "page_size", 2)
    monkeypatch.setattr(sim.inventory, "next_link_base", f"{scheme}://{host}:{elsewhere.getsockname()[1]}")
    logged_in(ALICE["upn"])
    html = client.get("/servers/import/").content.decode()
    assert "Azure&#x27;s next page pointed outside Azure Resource Manager; it was not followed." in html
    with pytest.raises(BlockingIOError):
        elsewhere.accept()  # no connection came
    elsewhere.close()


def test_every_page_read_takes_a_token_from_the_read_bucket_of_its_subscription(client, signed_in, sim, monkeypatch):
    from armclient import pacing
    from armclient.models import RateBucket
    from armclient.pacing import BucketKey

    monkeypatch.setattr(sim.inventory, "page_size", 2)
    signed_in(ALICE["upn"])
    client.get("/servers/import/")
    gets = [r for r in sim.received(method="GET") if r.path.startswith("/subscriptions")]
    buckets = RateBucket.objects.filter(kind="reads", principal_oid=ALICE["oid"])
    # Tokens are leased a few at a time (armclient.pacing): the ones held unused were taken by no request.
    taken = sum(b.issued - pacing.unused_tokens(BucketKey(b.kind, b.scope, b.principal_oid)) for b in buckets)
    assert taken == len(gets) > 4
    assert {b.scope for b in buckets} >= {"tenant", PROD.lower(), STAGING.lower()}
    assert not RateBucket.objects.filter(kind="writes").exists()


def test_picked_servers_are_registered_in_the_users_tenant(client, logged_in):
    alice = logged_in(ALICE["upn"])
    make_server(name="pg-orders")
    response = client.post("/servers/import/", {"server": [
        f"{PROD}|rg-payments-prod|pg-payments-01",
        f"{STAGING}|rg-staging|pg-staging-01",
        f"{PROD}|rg-payments-prod|pg-orders",
        f"{PROD}|rg-payments-prod|bad--name",
        "garbage",
    ]}, follow=True)
    assert "Imported 2 servers. 1 already registered. 2 not valid and left out." in response.content.decode()
    imported = Server.objects.filter(added_by=alice)
    assert sorted(imported.values_list("name", "tenant_id")) == [("pg-payments-01", CONTOSO), ("pg-staging-01", CONTOSO)]


def test_another_tenant_sees_its_own_subscriptions_only(client, logged_in):
    logged_in(CHARLIE["upn"])
    html = client.get("/servers/import/").content.decode()
    assert "pg-fabrikam-01" in html and "Contoso" not in html


def test_without_an_azure_sign_in_it_sends_the_user_to_sign_in(client, alice, sim):
    client.force_login(alice)
    response = client.get("/servers/import/")
    assert response.status_code == 302 and response["Location"].startswith(sim.http_url)


@pytest.mark.parametrize("settings_change", [{"AZURE_ARM_ENDPOINT": "https://127.0.0.1:9"}])
def test_an_unreachable_azure_is_explained(client, logged_in, settings, settings_change):
    logged_in(ALICE["upn"])
    for name, value in settings_change.items():
        setattr(settings, name, value)
    html = client.get("/servers/import/").content.decode()
    assert "could not be listed" in html and "could not be reached" in html


def test_nothing_new_to_import_says_so(client, logged_in):
    logged_in(CHARLIE["upn"])
    make_server(tenant_id=CHARLIE["tid"], subscription_id="0b5e0003-0000-4000-8000-000000000003",
                resource_group="rg-fabrikam", name="pg-fabrikam-01")
    html = client.get("/servers/import/").content.decode()
    assert "nothing new to import" in html and "Import selected servers" not in html


def test_the_admin_tells_a_non_operator_plainly(client, alice):
    client.force_login(alice)
    response = client.get("/admin/", follow=True)
    assert response.status_code == 403
    # Alice holds the Operator role: the page must not tell her the admin is for operators.
    assert "for the people who run this deployment (staff accounts), whatever your role" in response.content.decode()
    assert 'name="password"' not in response.content.decode()


# -- the listing is kept a few minutes ---------------------------------------------------------------------

def _arm_reads(sim) -> int:
    return len([r for r in sim.received(method="GET") if r.path.lower().startswith("/subscriptions")])


def test_two_loads_within_the_ttl_ask_azure_once(client, logged_in, sim):
    logged_in(ALICE["upn"])
    first = client.get("/servers/import/").content.decode()
    reads = _arm_reads(sim)
    assert reads >= 4, "the subscriptions, then each subscription's servers"
    second = client.get("/servers/import/").content.decode()
    assert _arm_reads(sim) == reads, "a reload within the TTL is answered from the kept listing"
    assert "<strong>pg-inventory-01</strong>" in second and "Listed from Azure at" in second
    assert first.count('name="server"') == second.count('name="server"')


def test_refresh_from_azure_lists_again(client, logged_in, sim):
    logged_in(ALICE["upn"])
    client.get("/servers/import/")
    reads = _arm_reads(sim)
    response = client.post("/servers/import/refresh/")
    assert response.status_code == 302 and response["Location"] == "/servers/import/"
    client.get("/servers/import/")
    assert _arm_reads(sim) == 2 * reads


def test_a_listing_older_than_the_ttl_is_read_again(client, logged_in, sim, settings):
    settings.IMPORT_LISTING_TTL_SECONDS = 60
    logged_in(ALICE["upn"])
    client.get("/servers/import/")
    reads = _arm_reads(sim)
    ImportListing.objects.update(fetched_at=timezone.now() - timedelta(seconds=61))
    client.get("/servers/import/")
    assert _arm_reads(sim) == 2 * reads


def test_the_listing_is_kept_per_user(client, logged_in, sim):
    logged_in(ALICE["upn"])
    client.get("/servers/import/")
    reads = _arm_reads(sim)
    logged_in(BOB["upn"])
    client.get("/servers/import/")
    assert _arm_reads(sim) > reads, "Bob's token may see other servers: his listing is his own"


@pytest.mark.parametrize("settings_change", [{"AZURE_ARM_ENDPOINT": "https://127.0.0.1:9"}])
def test_a_listing_that_failed_is_not_kept(client, logged_in, sim, settings, settings_change):
    logged_in(ALICE["upn"])
    endpoint = settings.AZURE_ARM_ENDPOINT
    settings.AZURE_ARM_ENDPOINT = settings_change["AZURE_ARM_ENDPOINT"]
    assert "could not be listed" in client.get("/servers/import/").content.decode()
    settings.AZURE_ARM_ENDPOINT = endpoint
    assert "<strong>pg-orders</strong>" in client.get("/servers/import/").content.decode()


# -- registering in bulk -----------------------------------------------------------------------------------

def _picks(n: int, subscription_id: str = PROD) -> list[str]:
    return [f"{subscription_id}|rg-bulk|pg-bulk-{i:05d}" for i in range(n)]


def test_import_registers_in_bulk_with_flat_queries(client, logged_in):
    logged_in(ALICE["upn"])
    client.post("/servers/import/", {"server": _picks(1, SANDBOX)})  # the session's and rate window's first writes
    counts = []
    for n, sub in ((10, PROD), (1000, STAGING)):
        with CaptureQueriesContext(connection) as queries:
            response = client.post("/servers/import/", {"server": _picks(n, sub)}, follow=False)
        assert response.status_code == 302
        counts.append(len(queries))
    assert Server.objects.filter(resource_group="rg-bulk").count() == 1011
    assert counts[0] == counts[1], f"queries for 10 vs 1,000 servers: {counts}"


def test_an_archived_server_comes_back_with_its_history(client, logged_in):
    logged_in(ALICE["upn"])
    old = make_server(name="pg-orders", archived_at=timezone.now())
    response = client.post("/servers/import/", {"server": [f"{PROD}|rg-payments-prod|PG-ORDERS",
                                                           f"{PROD}|rg-payments-prod|pg-ledger"]}, follow=True)
    assert "Imported 2 servers." in response.content.decode()
    old.refresh_from_db()
    assert old.archived_at is None
    assert Server.objects.filter(name__iexact="pg-orders").count() == 1


def test_the_same_server_picked_twice_is_registered_once(client, logged_in):
    logged_in(ALICE["upn"])
    response = client.post("/servers/import/", {"server": [f"{PROD}|rg-payments-prod|pg-orders",
                                                           f"{PROD.upper()}|RG-PAYMENTS-PROD|PG-Orders"]}, follow=True)
    assert "Imported 1 server." in response.content.decode()
    assert Server.objects.count() == 1


def test_more_than_one_import_takes_are_left_for_the_next(client, logged_in, settings):
    settings.IMPORT_MAX_PER_POST = 3
    logged_in(ALICE["upn"])
    response = client.post("/servers/import/", {"server": _picks(5)}, follow=True)
    html = response.content.decode()
    assert "Imported 3 servers." in html
    assert "One import takes at most 3 servers: the other 2 picked were left out" in html
    assert Server.objects.count() == 3


def test_the_page_picks_no_more_than_one_import_takes(client, logged_in, settings):
    settings.IMPORT_MAX_PER_POST = 2
    logged_in(ALICE["upn"])
    html = client.get("/servers/import/").content.decode()
    assert html.count('name="server"') > 2 and html.count(" checked>") == 2
    assert "One import takes at most 2 servers" in html


def test_a_registration_racing_the_import_is_counted_once(client, logged_in, monkeypatch):
    """Another request registers pg-orders after this import looked: the unique index refuses the bulk insert,
    and the import settles each server on its own rather than failing."""
    alice = logged_in(ALICE["upn"])
    make_server(name="pg-orders")
    monkeypatch.setattr(registry, "_registrations", lambda picks, tenant_id: (set(), {}))
    names, already = registry.register_many(
        [(PROD, "rg-payments-prod", "pg-orders"), (PROD, "rg-payments-prod", "pg-ledger")],
        tenant_id=CONTOSO, added_by=alice)
    assert (names, already) == (["pg-ledger"], 1)
    assert Server.objects.count() == 2


# -- servers Azure no longer lists ---------------------------------------------------------------------------

def test_registered_servers_azure_no_longer_lists_are_offered_for_archiving(client, logged_in):
    logged_in(ALICE["upn"])
    gone = make_server(name="pg-gone-01")
    make_server(subscription_id=SANDBOX, resource_group="rg-sandbox", name="pg-sandbox-unlisted")
    make_server(subscription_id="0b5e0009-0000-4000-8000-000000000009", resource_group="rg-x", name="pg-unseen")
    make_server(tenant_id=CHARLIE["tid"], name="pg-gone-fabrikam")
    make_server(name="pg-orders")
    html = client.get("/servers/import/").content.decode()
    section = html.split('id="orphans"')[1].split("</section>")[0]
    assert f'value="{gone.pk}"' in section and "pg-gone-01" in section
    assert "pg-sandbox-unlisted" not in section, "its subscription failed to list: nothing is known of its servers"
    assert "pg-unseen" not in section, "a subscription the user cannot see says nothing either"
    assert "pg-gone-fabrikam" not in section and "pg-orders" not in section
    assert "Contoso Production" in section, "the subscription by its name"


def test_archiving_them_goes_through_archive_and_only_what_azure_no_longer_lists(client, logged_in):
    logged_in(ALICE["upn"])
    gone = make_server(name="pg-gone-01")
    listed = make_server(name="pg-orders")
    failed_to_list = make_server(subscription_id=SANDBOX, resource_group="rg-sandbox", name="pg-sandbox-unlisted")
    other_tenant = make_server(tenant_id=CHARLIE["tid"], name="pg-gone-fabrikam")
    client.get("/servers/import/")
    response = client.post("/servers/import/archive/",
                           {"server": [gone.pk, listed.pk, failed_to_list.pk, other_tenant.pk]}, follow=True)
    assert "Archived 1 server Azure no longer lists." in response.content.decode()
    assert set(Server.objects.filter(archived_at__isnull=False)) == {gone}
    event = AuditEvent.objects.get(action=Action.SERVER_ARCHIVE)
    assert event.target_id == str(gone.pk) and event.details == {"why": "no longer listed by Azure"}


def test_a_server_with_a_check_in_progress_is_not_archived(client, logged_in):
    alice = logged_in(ALICE["upn"])
    gone = make_server(name="pg-gone-01")
    gone.last_check = Check.objects.create(server=gone, tenant_id=CONTOSO, backup_name="b1",
                                           requested_by=alice, status=Check.Status.RUNNING)
    gone.save(update_fields=["last_check"])
    client.get("/servers/import/")
    response = client.post("/servers/import/archive/", {"server": [gone.pk]}, follow=True)
    assert "Not archived while a check is in progress: pg-gone-01." in response.content.decode()
    gone.refresh_from_db()
    assert gone.archived_at is None


def test_archiving_needs_a_listing_still_fresh(client, logged_in):
    logged_in(ALICE["upn"])
    gone = make_server(name="pg-gone-01")
    response = client.post("/servers/import/archive/", {"server": [gone.pk]}, follow=True)
    assert "out of date" in response.content.decode()
    gone.refresh_from_db()
    assert gone.archived_at is None


def test_ticking_more_than_one_import_takes_is_answered_not_refused_with_a_400(client, logged_in):
    """Django refuses a POST of more than DATA_UPLOAD_MAX_NUMBER_FIELDS fields (1,000 by default) with a bare 400
    before the view runs: 1,200 ticked servers must get the import's own message instead."""
    logged_in(ALICE["upn"])
    response = client.post("/servers/import/", {"server": _picks(1200)}, follow=True)
    assert response.status_code == 200
    assert "Imported 1000 servers." in response.content.decode()
    assert "the other 200 picked were left out" in response.content.decode()


# -- a fleet's listing: one deadline for all subscriptions, not a retry's wait ---------------------------------

def test_a_long_listing_is_not_bound_by_the_wait_before_a_retry(client, logged_in, sim, settings, monkeypatch):
    # Every page of every subscription within IMPORT_LISTING_SECONDS together: ARM_MAX_RETRY_WAIT bounds one
    # wait for a retry, and a many-page list of a big subscription outlasts it.
    settings.ARM_MAX_RETRY_WAIT = 0.001
    monkeypatch.setattr(sim.inventory, "page_size", 1)
    logged_in(ALICE["upn"])
    html = client.get("/servers/import/").content.decode()
    assert html.count('name="server"') == 12 and "took longer than" not in html


def test_a_listing_past_its_time_says_which_subscriptions_were_not_listed(logged_in, sim, settings):
    from dashboard import entra, inventory

    alice = logged_in(ALICE["upn"])
    tokens = entra.token_source(alice)
    seen = inventory.tenant_subscriptions(tokens, alice.object_id, alice.tenant_id)
    sim.reset_calls()
    settings.IMPORT_LISTING_SECONDS = 0  # the subscriptions' list took it all
    groups = inventory.list_fleet(tokens, alice, seen)
    assert [g["error"]["message"] for g in groups] == [
        "Not listed: listing the fleet took longer than 0 s before this subscription's turn."] * len(seen)
    assert not sim.received(method="GET"), "no subscription's list was asked for"


def test_a_list_of_more_pages_than_one_list_reads_is_cut_and_says_so(client, logged_in, sim, monkeypatch):
    from armclient import operations

    monkeypatch.setattr(operations, "MAX_PAGES", 3)
    monkeypatch.setattr(sim.inventory, "page_size", 2)
    logged_in(ALICE["upn"])
    html = client.get("/servers/import/").content.decode()
    assert "More than 3 pages; the list was cut." in html

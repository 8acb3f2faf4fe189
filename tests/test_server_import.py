"""Import from Azure: list what the user's own token can see, register what they pick."""

import pytest

from dashboard.demo import CONTOSO, PROD, STAGING
from dashboard.models import Server
from tests.conftest import ALICE, CHARLIE, make_server


def test_it_lists_the_servers_of_the_users_subscriptions(client, logged_in):
    logged_in(ALICE["upn"])
    html = client.get("/servers/import/").content.decode()
    for name in ("pg-payments-01", "pg-orders", "pg-gateway-flaky", "pg-staging-02"):
        assert f"<strong>{name}</strong>" in html
    assert "Contoso Production" in html and "Contoso Staging" in html
    assert "MissingSubscriptionRegistration" in html, "a subscription that cannot be listed says why"
    assert "pg-fabrikam-01" not in html and "Fabrikam" not in html
    assert "<td data-label=\"State\">Stopped</td>" in html


def test_servers_already_registered_are_marked_not_offered(client, logged_in):
    logged_in(ALICE["upn"])
    make_server(name="PG-PAYMENTS-01")
    html = client.get("/servers/import/").content.decode()
    assert f'value="{PROD}|rg-payments-prod|pg-payments-01"' not in html
    assert f'value="{PROD}|rg-payments-prod|pg-orders"' in html
    assert "Registered" in html


def test_all_pages_of_a_long_list_are_read(client, logged_in, sim):
    sim.inventory.page_size = 2
    try:
        logged_in(ALICE["upn"])
        html = client.get("/servers/import/").content.decode()
    finally:
        sim.inventory.page_size = 50
    assert html.count('name="server"') == 12


def test_every_page_read_takes_a_token_from_the_read_bucket_of_its_subscription(client, signed_in, sim):
    from armclient import pacing
    from armclient.models import RateBucket
    from armclient.pacing import BucketKey

    sim.inventory.page_size = 2
    try:
        signed_in(ALICE["upn"])
        client.get("/servers/import/")
    finally:
        sim.inventory.page_size = 50
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
    assert "for the dashboard&#x27;s operators" in response.content.decode()
    assert 'name="password"' not in response.content.decode()

"""The simulator's read side: subscriptions a user can see, flexible servers in one, paged by nextLink."""

import json

import pytest
from sim_helpers import PROD, SCENARIO

from azuresim import Simulator

LIST = "/subscriptions/{sub}/providers/Microsoft.DBforPostgreSQL/flexibleServers?api-version=2024-08-01"


@pytest.fixture
def get(sim, session):
    def _get(path, upn="alice@contoso.example", **headers):
        token = sim.issue_access_token(upn)
        return session.get(sim.https_url + path, headers={"Authorization": f"Bearer {token}", **headers}, timeout=10)

    return _get


def test_subscriptions_are_those_of_the_users_tenant_and_role(get):
    names = [s["displayName"] for s in get("/subscriptions?api-version=2022-12-01").json()["value"]]
    assert names == ["Contoso Production", "Contoso Sandbox", "Contoso Staging"]
    fabrikam = [s["displayName"] for s in get("/subscriptions?api-version=2022-12-01", "charlie@fabrikam.example")
                .json()["value"]]
    assert fabrikam == ["Fabrikam Production"]


def test_servers_are_paged_with_next_links_on_the_arm_host(sim, get):
    sim.inventory.page_size = 3
    try:
        first = get(LIST.format(sub=PROD)).json()
        assert len(first["value"]) == 3 and first["nextLink"].startswith(sim.https_url + "/subscriptions/")
        names = [s["name"] for s in first["value"]]
        link = first["nextLink"]
        while link:
            page = get(link[len(sim.https_url):]).json()
            names += [s["name"] for s in page["value"]]
            link = page.get("nextLink")
    finally:
        sim.inventory.page_size = 50
    assert len(names) == 8 and "pg-orders" in names
    assert first["value"][0]["id"].startswith(f"/subscriptions/{PROD}/resourceGroups/rg-payments-prod/providers/")


def test_listing_checks_the_token_version_and_access(sim, session, get):
    assert session.get(sim.https_url + "/subscriptions?api-version=2022-12-01", timeout=10).status_code == 401
    assert get("/subscriptions?api-version=1999-01-01").status_code == 400
    # A token from another tenant: ARM names the subscription's tenant (as for ltrPreBackup).
    r = get(LIST.format(sub=PROD), "charlie@fabrikam.example")
    assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAuthenticationTokenTenant"
    assert get("/subscriptions?api-version=1999-01-01").json()["error"]["code"] == "InvalidApiVersionParameter"
    assert get(LIST.format(sub="0b5e0004-0000-4000-8000-000000000004")).json()["error"]["code"] == \
        "MissingSubscriptionRegistration"
    assert get(LIST.format(sub="not-a-guid")).status_code == 400


def test_subscriptions_come_in_arms_shape_paged_by_next_link(sim, get):
    sim.inventory.page_size = 2
    try:
        first = get("/subscriptions?api-version=2022-12-01").json()
        second = get(first["nextLink"][len(sim.https_url):]).json()
    finally:
        sim.inventory.page_size = 50
    assert first["nextLink"].startswith(sim.https_url + "/subscriptions?") and "nextLink" not in second
    items = first["value"] + second["value"]
    assert [s["displayName"] for s in items] == ["Contoso Production", "Contoso Sandbox", "Contoso Staging"]
    prod = items[0]
    assert prod["id"] == f"/subscriptions/{PROD}" and prod["subscriptionId"] == PROD
    assert prod["state"] == "Enabled" and prod["authorizationSource"] == "RoleBased"
    assert set(prod["subscriptionPolicies"]) == {"locationPlacementId", "quotaId", "spendingLimit"}


def test_a_subscriptions_state_comes_from_the_scenario(state_dir, session):
    with open(SCENARIO) as f:
        scenario = json.load(f)
    scenario["subscriptions"][0]["state"] = "Disabled"
    with Simulator(scenario, state_dir=state_dir) as sim:
        token = sim.issue_access_token("alice@contoso.example")
        session.verify = sim.ca_path
        items = session.get(sim.https_url + "/subscriptions?api-version=2022-12-01",
                            headers={"Authorization": f"Bearer {token}"}, timeout=10).json()["value"]
    assert {s["displayName"]: s["state"] for s in items}["Contoso Production"] == "Disabled"

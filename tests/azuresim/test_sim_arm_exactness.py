"""ARM as real ARM speaks it: the headers every answer carries (and the product name none carries), the
read bucket and its ratelimit headers, ARM's throttling code against the provider's, the server reads and
the provider's registration."""

import json

import pytest
from sim_helpers import ALICE, BOB, PROD, RG, SANDBOX, SCENARIO, arm_post

from azuresim import Simulator

NS = "Microsoft.DBforPostgreSQL"
SERVER = f"/subscriptions/{PROD}/resourceGroups/{RG}/providers/{NS}/flexibleServers/{{name}}?api-version=2024-08-01"
IN_GROUP = f"/subscriptions/{{sub}}/resourceGroups/{{rg}}/providers/{NS}/flexibleServers?api-version=2024-08-01"
PROVIDER = "/subscriptions/{sub}/providers/Microsoft.DBforPostgreSQL{action}?api-version=2021-04-01"


@pytest.fixture
def call(sim, session):
    def _call(path, upn=ALICE, method="GET"):
        token = sim.issue_access_token(upn)
        return session.request(method, sim.https_url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    return _call


def assert_arm_headers(r):
    assert "Server" not in r.headers  # real ARM names no product
    assert (r.headers["Cache-Control"], r.headers["Pragma"], r.headers["Expires"]) == ("no-cache", "no-cache", "-1")
    assert r.headers["x-ms-request-id"] and r.headers["x-ms-correlation-request-id"]


def test_every_arm_answer_has_arms_headers(sim, session, call):
    token = sim.issue_access_token(ALICE)
    for r in (
        arm_post(session, sim, "pg-payments-01", token),
        arm_post(session, sim, "pg-orders", token),
        arm_post(session, sim, "pg-payments-01", None),
        call(SERVER.format(name="pg-payments-01")),
        call("/subscriptions?api-version=2022-12-01"),
        call(f"/subscriptions/{PROD}/nothing-here"),
    ):
        assert_arm_headers(r)


def test_reads_count_down_the_read_bucket_not_the_write_bucket(sim, session, call):
    assert call(SERVER.format(name="pg-payments-01")).headers["x-ms-ratelimit-remaining-subscription-reads"] == "249"
    sim.set_throttle(read_refill_per_second=0.001)  # ARM refills 25/s; slowed so the count is exact
    remaining = [int(call(SERVER.format(name="pg-payments-01")).headers["x-ms-ratelimit-remaining-subscription-reads"])
                 for _ in range(3)]
    assert remaining == [249, 248, 247]
    r = call(IN_GROUP.format(sub=PROD, rg=RG))
    assert r.headers["x-ms-ratelimit-remaining-subscription-reads"] == "246"
    assert "x-ms-ratelimit-remaining-subscription-writes" not in r.headers
    assert call("/subscriptions?api-version=2022-12-01").headers["x-ms-ratelimit-remaining-tenant-reads"] == "249"
    r = arm_post(session, sim, "pg-payments-01", sim.issue_access_token(ALICE))
    assert r.headers["x-ms-ratelimit-remaining-subscription-writes"] == "199"  # reads took no write token


def test_an_empty_read_bucket_answers_arms_throttling_code(sim, call):
    sim.set_throttle(read_capacity=2, read_refill_per_second=0.5)
    assert [call(SERVER.format(name="pg-orders")).status_code for _ in range(2)] == [200, 200]
    r = call(SERVER.format(name="pg-orders"))
    err = r.json()["error"]
    assert r.status_code == 429 and err["code"] == "SubscriptionRequestsThrottled"
    assert err["message"].startswith(f"Number of 'read' requests for subscription '{PROD}' actor '")
    assert r.headers["Retry-After"] == "2" and r.headers["x-ms-ratelimit-remaining-subscription-reads"] == "0"
    assert sim.stats.throttled == 0  # the counter is for writes


def test_the_list_throttle_knob_answers_as_an_empty_read_bucket(sim, call):
    sim.inventory.throttle_retry_after = 7
    try:
        r = call("/subscriptions?api-version=2022-12-01")
    finally:
        sim.inventory.throttle_retry_after = None
    assert r.status_code == 429 and r.json()["error"]["code"] == "SubscriptionRequestsThrottled"
    assert r.headers["Retry-After"] == "7" and r.headers["x-ms-ratelimit-remaining-tenant-reads"] == "0"


def test_a_server_is_served_as_arm_shows_it(call):
    r = call(SERVER.format(name="PG-ORDERS"))
    body = r.json()
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json; charset=utf-8"
    assert body["id"] == f"/subscriptions/{PROD}/resourceGroups/{RG}/providers/{NS}/flexibleServers/pg-orders"
    assert (body["name"], body["type"], body["location"]) == ("pg-orders", f"{NS}/flexibleServers", "westeurope")
    assert body["properties"]["state"] == "Stopped" and body["properties"]["version"] == "16"
    assert body["sku"] == {"name": "Standard_D2ds_v5", "tier": "GeneralPurpose"}
    assert call(SERVER.format(name="pg-payments-01")).json()["properties"]["state"] == "Ready"


def test_missing_servers_and_groups_are_404s(call):
    r = call(SERVER.format(name="pg-nope"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "ResourceNotFound"
    r = call(IN_GROUP.format(sub=PROD, rg="rg-nope"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "ResourceGroupNotFound"
    r = call(SERVER.format(name="pg-orders").replace("2024-08-01", "2019-01-01"))
    assert r.status_code == 400 and r.json()["error"]["code"] == "NoRegisteredProviderFound"


def test_the_list_by_resource_group(call):
    body = call(IN_GROUP.format(sub=PROD, rg=RG)).json()
    names = [s["name"] for s in body["value"]]
    assert len(names) == 8 and names == sorted(names) and "pg-reporting" in names
    assert "nextLink" not in body


def test_provider_registration(call, session, sim):
    r = call(PROVIDER.format(sub=PROD, action=""))
    assert r.status_code == 200 and r.json()["registrationState"] == "Registered"
    assert r.json()["namespace"] == NS and "2024-08-01" in r.json()["resourceTypes"][0]["apiVersions"]
    assert call(PROVIDER.format(sub=SANDBOX, action="")).json()["registrationState"] == "NotRegistered"
    token = sim.issue_access_token(ALICE)
    assert arm_post(session, sim, "pg-x", token, sub=SANDBOX, rg="rg-any").status_code == 409
    r = call(PROVIDER.format(sub=SANDBOX, action="/register"), method="POST")
    assert r.status_code == 200 and r.json()["registrationState"] == "Registering"
    assert r.headers["x-ms-ratelimit-remaining-subscription-writes"] == "199"  # a POST is a write
    assert call(PROVIDER.format(sub=SANDBOX, action="")).json()["registrationState"] == "Registered"
    r = arm_post(session, sim, "pg-x", token, sub=SANDBOX, rg="rg-any")
    assert r.status_code == 404 and r.json()["error"]["code"] == "ResourceGroupNotFound"
    r = call(PROVIDER.format(sub=PROD, action="").replace("2021-04-01", "2021-13-01"))
    assert r.status_code == 400 and r.json()["error"]["code"] == "InvalidApiVersionParameter"
    sim.reset()  # the scenario again: the provider is unregistered
    assert call(PROVIDER.format(sub=SANDBOX, action="")).json()["registrationState"] == "NotRegistered"


def test_reads_check_rbac(state_dir, session):
    with open(SCENARIO, encoding="utf-8") as f:
        scenario = json.load(f)
    scenario["subscriptions"][0]["principals"] = [ALICE]
    with Simulator(scenario, state_dir=state_dir) as sim:
        token = sim.issue_access_token(BOB)
        for path in (SERVER.format(name="pg-orders"), IN_GROUP.format(sub=PROD, rg=RG)):
            r = session.get(sim.https_url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)
            err = r.json()["error"]
            assert r.status_code == 403 and err["code"] == "AuthorizationFailed"
            assert f"'{NS}/flexibleServers/read'" in err["message"]

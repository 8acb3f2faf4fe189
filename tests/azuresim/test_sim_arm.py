"""The simulated ARM ltrPreBackup endpoint: validation in ARM's order and shapes, every scripted
server behaviour, throttling and the headers every answer carries."""

import base64
import json
import socket
import ssl
import time

import pytest
import requests
from sim_helpers import (
    ALICE,
    BOB,
    CHARLIE,
    FABRIKAM_PROD,
    PROD,
    RG,
    SANDBOX,
    STAGING,
    arm_post,
    arm_url,
)


@pytest.fixture
def alice_token(sim):
    return sim.issue_access_token(ALICE)


def error_of(response):
    body = response.json()
    assert response.headers["x-ms-error-code"] == body["error"]["code"]
    return body["error"]


def test_success_with_arm_headers(sim, session, alice_token):
    r = session.post(
        arm_url(sim, "pg-payments-01"),
        json={"backupSettings": {"backupName": "b1"}},
        headers={"Authorization": f"Bearer {alice_token}", "x-ms-correlation-request-id": "c0ffee"},
    )
    assert r.status_code == 200 and r.json() == {"properties": {"numberOfContainers": 1}}
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    assert r.headers["x-ms-correlation-request-id"] == "c0ffee"
    assert r.headers["x-ms-request-id"] and r.headers["x-ms-routing-request-id"]
    assert r.headers["x-ms-ratelimit-remaining-subscription-writes"] == "199"
    assert r.headers["x-ms-ratelimit-remaining-subscription-global-writes"] == "199"
    assert sim.stats.arm_calls[(PROD, RG, "pg-payments-01")] == 1


def test_paths_are_case_insensitive_and_percent_decoded(sim, session, alice_token):
    url = (
        f"{sim.arm_url}/SUBSCRIPTIONS/{PROD}/resourcegroups/rg%2Dpayments%2Dprod/providers/"
        "microsoft.dbforpostgresql/FLEXIBLESERVERS/PG-PAYMENTS-01/LTRPREBACKUP?api-version=2025-08-01"
    )
    r = session.post(
        url, json={"backupSettings": {"backupName": "b"}}, headers={"Authorization": f"Bearer {alice_token}"}
    )
    assert r.status_code == 200


def test_other_servers_in_the_fleet(sim, session, alice_token):
    sim.set_behaviour(STAGING, "rg-staging", "pg-staging-02", containers=8, latency_ms=50)
    assert arm_post(session, sim, "pg-staging-02", alice_token, sub=STAGING, rg="rg-staging").json() == {
        "properties": {"numberOfContainers": 8}
    }
    charlie = sim.issue_access_token(CHARLIE)
    r = arm_post(session, sim, "pg-fabrikam-01", charlie, sub=FABRIKAM_PROD, rg="rg-fabrikam")
    assert r.json()["properties"]["numberOfContainers"] == 2


def test_bob_is_denied_on_pg_ledger_only(sim, session, alice_token):
    bob = sim.issue_access_token(BOB)
    assert arm_post(session, sim, "pg-ledger", alice_token).json()["properties"]["numberOfContainers"] == 2
    r = arm_post(session, sim, "pg-ledger", bob)
    err = error_of(r)
    assert r.status_code == 403 and err["code"] == "AuthorizationFailed"
    assert err["message"] == (
        "The client 'bob@contoso.example' with object id 'b0b00000-0000-4000-8000-000000000002' does not "
        "have "
        "authorization to perform action 'Microsoft.DBforPostgreSQL/flexibleServers/ltrPreBackup/action' "
        "over "
        "scope "
        f"'/subscriptions/{PROD}/resourceGroups/{RG}/providers/Microsoft.DBforPostgreSQL/flexibleServers/"
        "pg-ledger' or the scope is invalid. If access was recently granted, please refresh your credentials."
    )
    assert arm_post(session, sim, "pg-payments-01", bob).status_code == 200


def test_not_found_family(sim, session, alice_token):
    r = arm_post(session, sim, "pg-decommissioned", alice_token)
    assert r.status_code == 404 and error_of(r)["message"] == (
        "The Resource 'Microsoft.DBforPostgreSQL/flexibleServers/pg-decommissioned' under resource group "
        f"'{RG}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
    )
    r = arm_post(session, sim, "pg-legacy-01", alice_token, rg="rg-legacy")
    assert r.status_code == 404 and error_of(r) == {
        "code": "ResourceGroupNotFound",
        "message": "Resource group 'rg-legacy' could not be found.",
    }
    r = arm_post(session, sim, "pg-x", alice_token, sub="0b5e0009-0000-4000-8000-000000000009")
    assert r.status_code == 404 and error_of(r)["code"] == "SubscriptionNotFound"
    r = arm_post(session, sim, "pg-x", alice_token, sub="not-a-guid")
    assert r.status_code == 400 and error_of(r)["code"] == "InvalidSubscriptionId"
    r = arm_post(session, sim, "pg-x", alice_token, rg="bad$name")
    assert r.status_code == 400 and error_of(r)["code"] == "InvalidResourceGroup"
    r = arm_post(session, sim, "pg-x", alice_token, sub=SANDBOX, rg="rg-any")
    assert r.status_code == 409 and error_of(r)["code"] == "MissingSubscriptionRegistration"


def test_api_version_errors(sim, session, alice_token):
    r = arm_post(session, sim, "pg-payments-01", alice_token, api_version=None)
    assert r.status_code == 400 and error_of(r)["code"] == "MissingApiVersionParameter"
    r = arm_post(session, sim, "pg-payments-01", alice_token, api_version="2020-01-01")
    err = error_of(r)
    # A provider's type with a version it does not know: ARM finds no provider for it (InvalidApiVersionParameter
    # is for ARM's own types only, see test_sim_inventory).
    assert r.status_code == 400 and err["code"] == "NoRegisteredProviderFound"
    assert err["message"].startswith(
        "No registered resource provider found for location 'westeurope' and API version '2020-01-01' for type "
        "'flexibleServers'. The supported api-versions are '2026-10-01, 2025-08-01, "
    )
    assert "'2024-08-01" in err["message"] or " 2024-08-01," in err["message"]
    assert "The supported locations are '" in err["message"] and "westeurope" in err["message"]


@pytest.mark.parametrize(
    "body, code",
    [
        (b"not json", "InvalidRequestContent"),
        (b"[1]", "InvalidRequestContent"),
        ({}, "MissingRequiredProperty"),
        ({"backupSettings": {}}, "MissingRequiredProperty"),
        ({"backupSettings": {"backupName": 7}}, "InvalidParameterValue"),
    ],
)
def test_bad_bodies(sim, session, alice_token, body, code):
    r = arm_post(session, sim, "pg-payments-01", alice_token, body=body)
    assert r.status_code == 400 and error_of(r)["code"] == code


def test_authentication_failures(sim, session):
    missing = arm_post(session, sim, "pg-payments-01", None)
    assert missing.status_code == 401 and error_of(missing) == {
        "code": "AuthenticationFailed",
        "message": "Authentication failed. The 'Authorization' header is missing.",
    }
    assert missing.headers["WWW-Authenticate"].startswith('Bearer authorization_uri="')
    assert 'error="invalid_token"' in missing.headers["WWW-Authenticate"]

    unsigned = arm_post(session, sim, "pg-payments-01", sim.issue_access_token(ALICE, signed=False))
    assert unsigned.status_code == 401 and error_of(unsigned)["code"] == "InvalidAuthenticationToken"
    garbage = arm_post(session, sim, "pg-payments-01", "abc.def.ghi")
    assert garbage.status_code == 401 and error_of(garbage)["code"] == "InvalidAuthenticationToken"
    head, payload, sig = sim.issue_access_token(ALICE).split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged["upn"] = "mallory@contoso.example"
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    tampered = arm_post(session, sim, "pg-payments-01", f"{head}.{forged_payload}.{sig}")
    assert tampered.status_code == 401 and error_of(tampered)["code"] == "InvalidAuthenticationToken"

    expired = arm_post(session, sim, "pg-payments-01", sim.issue_access_token(ALICE, expires_in=-600))
    err = error_of(expired)
    assert expired.status_code == 401 and err["code"] == "ExpiredAuthenticationToken"
    assert (
        err["message"].startswith("The access token expiry UTC time '")
        and "is earlier than current" in err["message"]
    )

    graph = sim.issue_access_token(ALICE, audience="https://graph.microsoft.com")
    wrong = arm_post(session, sim, "pg-payments-01", graph)
    err = error_of(wrong)
    assert wrong.status_code == 401 and err["code"] == "InvalidAuthenticationToken"
    assert "wrong audience or resource 'https://graph.microsoft.com'" in err["message"]
    assert "'https://management.azure.com/'" in err["message"]

    other_tenant = arm_post(session, sim, "pg-payments-01", sim.issue_access_token(CHARLIE))
    assert (
        other_tenant.status_code == 401
        and error_of(other_tenant)["code"] == "InvalidAuthenticationTokenTenant"
    )


@pytest.mark.parametrize(
    "server, status, code",
    [
        ("pg-orders", 400, "PostgreSQLFlexOperationFailedUserError"),
        ("pg-analytics", 403, "AuthorizationFailed"),
        ("pg-reporting", 429, "TooManyRequests"),
        ("pg-billing", 500, "InternalServerError"),
    ],
)
def test_scenario_error_servers(sim, session, alice_token, server, status, code):
    r = arm_post(session, sim, server, alice_token)
    assert r.status_code == status and error_of(r)["code"] == code


def test_not_ready_details(sim, session, alice_token):
    err = error_of(arm_post(session, sim, "pg-orders", alice_token))
    [detail] = err["details"]
    assert detail["code"] == "ServerNotReadyForLongTermBackup" and "'Stopped'" in detail["message"]
    assert err["additionalInfo"][0]["type"] and err["additionalInfo"][0]["info"]["state"] == "Stopped"


def test_throttled_server_headers(sim, session, alice_token):
    r = arm_post(session, sim, "pg-reporting", alice_token)
    assert r.headers["Retry-After"] == "30"
    # The resource provider's code, distinguishable from ARM's own SubscriptionRequestsThrottled.
    assert error_of(r)["code"] == "TooManyRequests"
    # The provider throttles this server; ARM's subscription bucket still has writes left.
    assert int(r.headers["x-ms-ratelimit-remaining-subscription-writes"]) > 0
    assert sim.stats.throttled == 1
    sim.set_behaviour(PROD, RG, "pg-reporting", outcome="throttled", retry_after_ms=1500)
    r = arm_post(session, sim, "pg-reporting", alice_token)
    assert r.headers["retry-after-ms"] == "1500" and r.headers["x-ms-retry-after-ms"] == "1500"
    assert "Retry-After" not in r.headers


def test_flaky_gateway_fails_twice_then_succeeds(sim, session, alice_token):
    statuses = []
    for _ in range(3):
        r = arm_post(session, sim, "pg-gateway-flaky", alice_token)
        statuses.append(r.status_code)
        if r.status_code == 503:
            assert r.headers["Retry-After"] == "1" and error_of(r)["code"] == "ServiceUnavailable"
    assert statuses == [503, 503, 200] and r.json()["properties"]["numberOfContainers"] == 3
    sim.reset_calls()
    assert arm_post(session, sim, "pg-gateway-flaky", alice_token).status_code == 503


def test_on_calls(sim, session, alice_token):
    sim.set_behaviour(PROD, RG, "pg-new", outcome="internal_error", on_calls=[2])
    assert [arm_post(session, sim, "pg-new", alice_token).status_code for _ in range(3)] == [200, 500, 200]


def test_after_calls_passes_first_then_answers_not_ready_for_good(sim, session, alice_token):
    sim.set_behaviour(PROD, RG, "pg-new", outcome="not_ready", state="Updating", after_calls=1)
    answers = [arm_post(session, sim, "pg-new", alice_token) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 400, 400, 400]
    assert "state 'Updating'" in error_of(answers[1])["details"][0]["message"]


@pytest.mark.parametrize(
    "behaviour, check",
    [
        ({"outcome": "html"}, lambda r: r.status_code == 200 and r.text.startswith("<!DOCTYPE html>")),
        ({"outcome": "empty"}, lambda r: r.status_code == 200 and r.content == b""),
        ({"outcome": "invalid_json"}, lambda r: r.content == b'{"properties": '),
        ({"outcome": "bad_gateway"}, lambda r: r.status_code == 502 and "502 Bad Gateway" in r.text),
        (
            {"outcome": "payload", "body": {"properties": {"numberOfContainers": "3"}}},
            lambda r: r.json() == {"properties": {"numberOfContainers": "3"}},
        ),
        ({"outcome": "payload", "body": "-1"}, lambda r: r.json() == -1),
        ({"outcome": "payload", "body": 10**12}, lambda r: r.json() == 10**12),
        (
            {"outcome": "huge", "huge_bytes": 3 * 1024 * 1024},
            lambda r: len(r.content) == 3 * 1024 * 1024 and r.json()["properties"]["numberOfContainers"] == 1,
        ),
        (
            {"outcome": "trickle", "trickle_interval": 0.005},
            lambda r: r.json() == {"properties": {"numberOfContainers": 1}},
        ),
        ({"outcome": "stall_headers", "stall": 0.2}, lambda r: r.status_code == 200),
    ],
)
def test_payload_behaviours(sim, session, alice_token, behaviour, check):
    sim.set_behaviour(PROD, RG, "pg-odd", **behaviour)
    assert check(arm_post(session, sim, "pg-odd", alice_token))


def test_latency(sim, session, alice_token):
    sim.set_behaviour(PROD, RG, "pg-payments-02", containers=4, latency_ms=300)
    started = time.monotonic()
    assert arm_post(session, sim, "pg-payments-02", alice_token).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_stalls_trip_client_timeouts(sim, session, alice_token):
    sim.set_behaviour(PROD, RG, "pg-slow", outcome="stall_headers", stall=5)
    with pytest.raises(requests.exceptions.ReadTimeout):
        arm_post(session, sim, "pg-slow", alice_token, timeout=0.3)
    sim.set_behaviour(PROD, RG, "pg-slow", outcome="stall_body", stall=5)
    with pytest.raises(requests.exceptions.ConnectionError):  # the read timeout hits mid-body
        _ = arm_post(session, sim, "pg-slow", alice_token, timeout=0.3).content


def test_reset_closes_the_connection(sim, session, alice_token):
    sim.set_behaviour(PROD, RG, "pg-reset", outcome="reset")
    with pytest.raises(requests.exceptions.ConnectionError):
        arm_post(session, sim, "pg-reset", alice_token)
    # The raw view: the peer resets (or at least closes) without sending a byte.
    context = ssl.create_default_context(cafile=sim.ca_path)
    with socket.create_connection(("127.0.0.1", int(sim.https_url.rsplit(":", 1)[1])), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            path = arm_url(sim, "pg-reset").split(sim.https_url, 1)[1]
            body = b'{"backupSettings": {"backupName": "b"}}'
            tls.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {alice_token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            try:
                assert tls.recv(100) == b""
            except (ConnectionResetError, ssl.SSLError):
                pass


def test_write_bucket_empties_and_refills(sim, session, alice_token):
    sim.set_throttle(capacity=5, refill_per_second=2)
    remaining = []
    for _ in range(5):
        r = arm_post(session, sim, "pg-payments-01", alice_token)
        assert r.status_code == 200
        remaining.append(int(r.headers["x-ms-ratelimit-remaining-subscription-writes"]))
    assert remaining == [4, 3, 2, 1, 0]
    r = arm_post(session, sim, "pg-payments-01", alice_token)
    err = error_of(r)
    assert r.status_code == 429 and err["code"] == "SubscriptionRequestsThrottled"
    assert err["message"] == (
        f"Number of 'write' requests for subscription '{PROD}' actor 'a11ce000-0000-4000-8000-000000000001' "
        "exceeded. Please try again after '1' seconds after additional tokens are available. Refer to "
        "https://aka.ms/arm-throttling"
    )
    assert (
        r.headers["Retry-After"] == "1" and r.headers["x-ms-ratelimit-remaining-subscription-writes"] == "0"
    )
    assert sim.stats.throttled == 1
    # Buckets are per principal: Bob still has his.
    assert arm_post(session, sim, "pg-payments-01", sim.issue_access_token(BOB)).status_code == 200
    time.sleep(0.6)
    assert arm_post(session, sim, "pg-payments-01", alice_token).status_code == 200


def test_unknown_paths_and_methods(sim, session, alice_token):
    r = session.get(arm_url(sim, "pg-payments-01"), headers={"Authorization": f"Bearer {alice_token}"})
    assert r.status_code == 405
    r = session.get(
        f"{sim.arm_url}/subscriptions/{PROD}/resourceGroups",
        headers={"Authorization": f"Bearer {alice_token}"},
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "NotFound"


def test_behaviour_is_validated(sim):
    with pytest.raises(ValueError):
        sim.set_behaviour(PROD, RG, "pg-x", outcome="explode")
    with pytest.raises(ValueError):
        sim.set_behaviour(PROD, RG, "pg-x", containrs=3)

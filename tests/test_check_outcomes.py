"""Each outcome the simulator's demo scenario produces ends in the right state, recorded and shown."""

import pytest
from django.utils.html import escape

from checks.models import Check
from tests.conftest import ALICE, BOB

# server -> (status, category, http status, error code, containers, attempts)
EXPECTED = {
    "pg-payments-01": ("succeeded", "passed", 200, "", 1, 1),
    "pg-payments-02": ("succeeded", "passed", 200, "", 4, 1),
    "pg-ledger": ("succeeded", "passed", 200, "", 2, 1),
    "pg-staging-02": ("succeeded", "passed", 200, "", 8, 1),
    "pg-gateway-flaky": ("succeeded", "passed", 200, "", 3, 3),
    "pg-orders": ("failed", "server_not_ready", 400, "PostgreSQLFlexOperationFailedUserError", None, 1),
    "pg-analytics": ("failed", "permission_missing", 403, "AuthorizationFailed", None, 1),
    "pg-billing": ("failed", "azure_failure", 500, "InternalServerError", None, 4),
    "pg-decommissioned": ("failed", "not_found", 404, "ResourceNotFound", None, 1),
    "pg-legacy-01": ("failed", "not_found", 404, "ResourceGroupNotFound", None, 1),
    "pg-sandbox-01": ("failed", "provider_not_registered", 409, "MissingSubscriptionRegistration", None, 1),
}


def run_and_finish(client, server, worker) -> Check:
    response = client.post(f"/servers/{server.pk}/run/", {"backup_name": "ltr-test-1"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    worker()
    return Check.objects.get(server=server)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_outcome_is_recorded_and_shown(client, signed_in, fleet, worker, name):
    signed_in(ALICE["upn"])
    status, category, http_status, error_code, containers, attempts = EXPECTED[name]
    check = run_and_finish(client, fleet[name], worker)
    assert (check.status, check.category, check.http_status, check.error_code, check.number_of_containers) == (
        status, category, http_status, error_code, containers)
    assert check.attempts == attempts
    assert len(check.attempt_log) == attempts
    assert check.request_id, "every ARM answer carries x-ms-request-id"
    assert check.finished_at is not None

    row = client.get(f"/servers/{fleet[name].pk}/row/").content.decode()
    detail = client.get(f"/checks/{check.pk}/").content.decode()
    assert check.request_id in detail and check.client_request_id in detail
    if status == "succeeded":
        assert f"<strong>{containers}</strong> container" in row
    else:
        assert error_code in row and error_code in detail
        assert check.get_category_display() in row
        assert check.error_message and check.remedy
        assert escape(check.remedy) in detail


def test_a_server_not_ready_keeps_the_inner_error_and_its_details(client, signed_in, fleet, worker):
    signed_in(ALICE["upn"])
    check = run_and_finish(client, fleet["pg-orders"], worker)
    assert any(d.get("code") == "ServerNotReadyForLongTermBackup" for d in check.error_details)
    assert "Stopped" in check.summary
    detail = client.get(f"/checks/{check.pk}/").content.decode()
    assert "ServerNotReadyForLongTermBackup" in detail


def test_bob_is_refused_where_he_lacks_the_rbac_action(client, signed_in, fleet, worker):
    signed_in(BOB["upn"])
    check = run_and_finish(client, fleet["pg-ledger"], worker)
    assert (check.status, check.http_status, check.error_code) == ("failed", 403, "AuthorizationFailed")
    assert BOB["oid"] in check.error_message
    assert "Microsoft.DBforPostgreSQL/flexibleServers/ltrPreBackup/action" in check.remedy


def test_a_long_retry_after_ends_the_check_as_throttled_instead_of_waiting(client, signed_in, fleet, worker, settings):
    settings.ARM_CHECK_DEADLINE = 5
    signed_in(ALICE["upn"])
    check = run_and_finish(client, fleet["pg-reporting"], worker)
    assert (check.status, check.category, check.http_status) == ("failed", "throttled", 429)
    assert "30 s" in check.summary
    assert check.attempts == 1


def test_a_check_whose_token_cannot_be_refreshed_ends_as_sign_in_required(client, signed_in, fleet, worker, sim):
    alice = signed_in(ALICE["upn"])
    # Make the cached access token unusable so MSAL must use the (now revoked) refresh token.
    from dashboard import tokencache

    cache = tokencache.load(alice)
    cache._cache["AccessToken"] = {}
    cache.has_state_changed = True
    tokencache.save(alice, cache)
    sim.revoke_refresh_tokens(ALICE["upn"])
    check = run_and_finish(client, fleet["pg-payments-01"], worker)
    assert (check.status, check.category) == ("signin_required", "signin_required")
    assert check.http_status is None
    detail = client.get(f"/checks/{check.pk}/").content.decode()
    assert "Sign in again" in detail

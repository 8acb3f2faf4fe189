"""Each outcome the simulator's demo scenario produces ends in the right state, recorded and shown."""

import re

import pytest
from django.utils.html import escape

from checks.models import Check
from dashboard import tokencache
from tests.conftest import ALICE, BOB, complete_sign_in

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
    row = client.get(f"/servers/{fleet['pg-orders'].pk}/row/").content.decode()
    assert ">ServerNotReadyForLongTermBackup</code>" in row, "the row names the specific inner error"


def test_bob_is_refused_where_he_lacks_the_rbac_action(client, signed_in, fleet, worker):
    signed_in(BOB["upn"])
    check = run_and_finish(client, fleet["pg-ledger"], worker)
    assert (check.status, check.http_status, check.error_code) == ("failed", 403, "AuthorizationFailed")
    assert BOB["oid"] in check.error_message
    assert "Microsoft.DBforPostgreSQL/flexibleServers/ltrPreBackup/action" in check.remedy


def test_a_long_retry_after_ends_the_check_as_throttled_instead_of_waiting(client, signed_in, fleet, worker):
    signed_in(ALICE["upn"])
    check = run_and_finish(client, fleet["pg-reporting"], worker)
    assert (check.status, check.category, check.http_status) == ("failed", "throttled", 429)
    assert re.search(r"try again after \d\d:\d\d:\d\d UTC \(Azure asked to wait 30 s", check.summary)
    assert check.attempts == 1
    assert check.duration.total_seconds() < 5, "the worker did not sleep through the Retry-After"


def _expire_access_tokens(user):
    """Drop the cached access tokens so MSAL must go to Entra ID with the refresh token."""
    cache = tokencache.load(user)
    cache._cache["AccessToken"] = {}
    cache.has_state_changed = True
    tokencache.save(user, cache)


def test_a_background_check_whose_sign_in_expired_ends_as_sign_in_required(client, signed_in, fleet, worker, sim):
    alice = signed_in(ALICE["upn"])
    client.post(f"/servers/{fleet['pg-payments-01'].pk}/run/", {"backup_name": "b-1"}, headers={"HX-Request": "true"})
    _expire_access_tokens(alice)
    sim.revoke_refresh_tokens(ALICE["upn"])
    worker()
    check = Check.objects.get()
    assert (check.status, check.category, check.http_status) == ("signin_required", "signin_required", None)
    assert "AADSTS50173" in check.error_message
    row = client.get(f"/servers/{fleet['pg-payments-01'].pk}/row/").content.decode()
    assert "Sign-in required" in row and "Failed" not in row
    detail = client.get(f"/checks/{check.pk}/").content.decode()
    assert f'action="/checks/{check.pk}/reauth/"' in detail and "Sign in again and re-run" in detail


def test_sign_in_again_re_runs_the_check(client, signed_in, fleet, worker, sim):
    alice = signed_in(ALICE["upn"])
    server = fleet["pg-payments-01"]
    client.post(f"/servers/{server.pk}/run/", {"backup_name": "b-again"}, headers={"HX-Request": "true"})
    _expire_access_tokens(alice)
    sim.revoke_refresh_tokens(ALICE["upn"])
    worker()
    failed = Check.objects.get()
    response = client.post(f"/checks/{failed.pk}/reauth/")
    assert response.status_code == 302 and response["Location"].startswith(sim.http_url)
    assert "login_hint=alice%40contoso.example" in response["Location"]
    back = complete_sign_in(client, response["Location"])
    assert back["Location"] == f"/servers/{server.pk}/"
    rerun = Check.objects.exclude(pk=failed.pk).get()
    assert (rerun.status, rerun.backup_name) == ("queued", "b-again")
    worker()
    rerun.refresh_from_db()
    assert rerun.status == "succeeded"


def test_an_htmx_click_that_needs_sign_in_gets_a_client_redirect_and_then_runs(client, signed_in, fleet, worker, sim):
    alice = signed_in(ALICE["upn"])
    server = fleet["pg-staging-01"]
    _expire_access_tokens(alice)
    sim.revoke_refresh_tokens(ALICE["upn"])
    response = client.post(f"/servers/{server.pk}/run/", {"backup_name": "b-click"},
                           headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/?page=1"})
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith(sim.http_url)
    assert not Check.objects.exists(), "nothing is queued until Azure has the user back"
    back = complete_sign_in(client, response["HX-Redirect"])
    assert back["Location"] == "/?page=1"
    worker()
    assert Check.objects.get().status == "succeeded"


def test_a_continuous_access_evaluation_challenge_is_answered_silently(client, signed_in, fleet, worker, sim):
    signed_in(ALICE["upn"])
    sim.challenge_next(ALICE["upn"])
    check = run_and_finish(client, fleet["pg-payments-01"], worker)
    assert (check.status, check.number_of_containers) == ("succeeded", 1)
    assert [a["status"] for a in check.attempt_log] == [401, 200]


def test_a_revoked_session_asks_the_user_to_sign_in_with_the_claims(client, signed_in, fleet, worker, sim):
    signed_in(ALICE["upn"])
    server = fleet["pg-payments-01"]
    client.post(f"/servers/{server.pk}/run/", {"backup_name": "b-cae"}, headers={"HX-Request": "true"})
    sim.revoke_sessions(ALICE["upn"])
    sim.revoke_refresh_tokens(ALICE["upn"])
    worker()
    check = Check.objects.get()
    assert (check.status, check.http_status, check.error_code) == ("signin_required", 401, "InvalidAuthenticationToken")
    assert '"nbf"' in check.claims_challenge
    response = client.post(f"/checks/{check.pk}/reauth/")
    assert "claims=" in response["Location"]

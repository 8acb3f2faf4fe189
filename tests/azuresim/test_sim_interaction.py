"""Interaction-required answers and Continuous Access Evaluation, seen through the real msal
library: revoked or expired refresh tokens, MFA and consent demands, and ARM's claims challenge."""

import base64
import re

import pytest
from sim_helpers import ALICE, ARM_SCOPE, BOB, arm_post, arm_url, make_app, sign_in

# The simulator answers with response_mode=query only, so MSAL's advice about form_post is noise here.
pytestmark = pytest.mark.filterwarnings("ignore:response_mode=.form_post.:UserWarning")


def _signed_in(sim, session, upn=ALICE):
    app = make_app(sim, session)
    result = sign_in(app, upn)
    assert "access_token" in result, result
    [account] = app.get_accounts()
    return app, account, result


def _refresh(app, account, **kw):
    return app.acquire_token_silent_with_error([ARM_SCOPE], account, force_refresh=True, **kw)


def test_revoked_refresh_token(sim, session):
    app, account, _ = _signed_in(sim, session)
    sim.revoke_refresh_tokens(ALICE)
    result = _refresh(app, account)
    assert result["error"] == "invalid_grant" and result["error_codes"] == [50173]
    assert result["error_description"].startswith("AADSTS50173: ")
    # A new interactive sign-in gets refresh tokens that work again.
    sign_in(app, ALICE)
    assert "access_token" in _refresh(app, app.get_accounts()[0])


def test_expired_refresh_token(sim, session):
    sim.set_token_lifetimes(refresh=0)
    app, account, _ = _signed_in(sim, session)
    result = _refresh(app, account)
    assert result["error"] == "invalid_grant" and result["error_codes"] == [700082]


def test_mfa_required_until_interactive_sign_in(sim, session):
    app, account, _ = _signed_in(sim, session, BOB)
    sim.set_user_flags(BOB, mfa_required=True)
    result = _refresh(app, account)
    assert (result["error"], result["error_codes"], result["suberror"]) == (
        "invalid_grant",
        [50076],
        "basic_action",
    )
    assert result["claims"]  # the step-up claims to pass to a new interactive request
    sign_in(app, BOB)  # the interactive sign-in performs MFA
    assert "access_token" in _refresh(app, account)


def test_consent_required(sim, session):
    app, account, _ = _signed_in(sim, session)
    sim.set_user_flags(ALICE, consent_required=True)
    result = _refresh(app, account)
    assert (result["error"], result["error_codes"], result["suberror"]) == (
        "invalid_grant",
        [65001],
        "consent_required",
    )
    # MSAL's http_cache would replay the identical failed request for 60 s; an interactive sign-in
    # (which consents) gives a new refresh token and so a different request.
    sign_in(app, ALICE)
    assert "access_token" in _refresh(app, account)


def _claims_challenge(response):
    assert response.status_code == 401
    header = response.headers["WWW-Authenticate"]
    assert 'error="insufficient_claims"' in header
    return base64.b64decode(re.search(r'claims="([^"]+)"', header).group(1)).decode()


def test_cae_claims_challenge_round_trip(sim, session):
    app, account, first = _signed_in(sim, session)
    assert arm_post(session, sim, "pg-payments-01", first["access_token"]).status_code == 200
    sim.revoke_sessions(ALICE)
    challenged = arm_post(session, sim, "pg-payments-01", first["access_token"])
    assert challenged.json()["error"]["code"] == "InvalidAuthenticationToken"
    claims = _claims_challenge(challenged)
    assert '"nbf"' in claims and '"essential": true' in claims
    # MSAL's cache still holds the revoked token; the claims challenge makes it go to the token endpoint.
    assert app.acquire_token_silent([ARM_SCOPE], account)["access_token"] == first["access_token"]
    fresh = app.acquire_token_silent_with_error([ARM_SCOPE], account, claims_challenge=claims)
    assert fresh["access_token"] != first["access_token"]
    assert arm_post(session, sim, "pg-payments-01", fresh["access_token"]).status_code == 200


def test_cae_with_revoked_refresh_tokens_needs_interaction(sim, session):
    app, account, first = _signed_in(sim, session)
    sim.revoke_sessions(ALICE)
    sim.revoke_refresh_tokens(ALICE)
    claims = _claims_challenge(arm_post(session, sim, "pg-payments-01", first["access_token"]))
    result = app.acquire_token_silent_with_error([ARM_SCOPE], account, claims_challenge=claims)
    assert result["error"] == "invalid_grant" and result["error_codes"] == [50173]
    again = sign_in(app, ALICE, claims_challenge=claims)
    assert arm_post(session, sim, "pg-payments-01", again["access_token"]).status_code == 200


def test_challenge_next_is_one_shot(sim, session):
    token = sim.issue_access_token(BOB)
    sim.challenge_next(BOB)
    _claims_challenge(arm_post(session, sim, "pg-payments-01", token))
    assert arm_post(session, sim, "pg-payments-01", token).status_code == 200


def test_refresh_revoked_flag_holds_until_interactive_sign_in(sim, session):
    app, account, _ = _signed_in(sim, session)
    sim.set_user_flags(ALICE, refresh_revoked=True)
    assert _refresh(app, account)["error_codes"] == [50173]
    sign_in(app, ALICE)
    assert "access_token" in _refresh(app, account)


def test_chunked_request_bodies_are_read(sim, session):
    token = sim.issue_access_token(ALICE)

    def chunks():
        yield b'{"backupSettings": '
        yield b'{"backupName": "chunked"}}'

    r = session.post(
        arm_url(sim, "pg-payments-01"), data=chunks(), headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200
    assert arm_post(session, sim, "pg-payments-01", token).status_code == 200  # same connection still fine

"""Sign-in through the simulated Entra ID with the real msal library: discovery, the auth-code
flow with PKCE and nonce, the token cache, refresh, client capabilities, and the sign-in pages."""

import json
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests
from sim_helpers import (
    ALICE,
    ARM_SCOPE,
    BOB,
    CHARLIE,
    CLIENT_ID,
    CONTOSO,
    FABRIKAM,
    REDIRECT,
    SCENARIO,
    SECRET,
    make_app,
    pkce_pair,
    sign_in,
)

# The simulator answers with response_mode=query only, so MSAL's advice about form_post is noise here.
pytestmark = pytest.mark.filterwarnings("ignore:response_mode=.form_post.:UserWarning")


def claims_of(token):
    return jwt.decode(token, options={"verify_signature": False})


def test_discovery_document_points_at_the_simulator(sim, session):
    doc = session.get(f"{sim.authority(CONTOSO)}/v2.0/.well-known/openid-configuration").json()
    assert doc["issuer"] == f"{sim.https_url}/{CONTOSO}/v2.0"
    assert doc["authorization_endpoint"] == f"{sim.http_url}/{CONTOSO}/oauth2/v2.0/authorize"
    assert doc["token_endpoint"] == f"{sim.https_url}/{CONTOSO}/oauth2/v2.0/token"
    assert doc["end_session_endpoint"] == f"{sim.http_url}/{CONTOSO}/oauth2/v2.0/logout"
    multi = session.get(f"{sim.authority()}/v2.0/.well-known/openid-configuration").json()
    assert multi["issuer"] == f"{sim.https_url}/{{tenantid}}/v2.0"
    jwks = session.get(doc["jwks_uri"]).json()
    assert jwks["keys"][0]["kty"] == "RSA" and jwks["keys"][0]["kid"]
    unknown = session.get(
        f"{sim.https_url}/99999999-9999-4999-8999-999999999999/v2.0/.well-known/openid-configuration"
    )
    assert unknown.status_code == 400 and unknown.json()["error_codes"] == [90002]


def test_ca_is_written_and_reused(sim, state_dir):
    from azuresim import Simulator

    with open(sim.ca_path, "rb") as f:
        first = f.read()
    with Simulator(SCENARIO, state_dir=state_dir) as again:
        with open(again.ca_path, "rb") as f:
            assert f.read() == first
        assert requests.get(
            f"{again.authority()}/v2.0/.well-known/openid-configuration", verify=again.ca_path, timeout=5
        ).ok


def test_auth_code_flow_then_silent_from_cache(sim, session):
    app = make_app(sim, session)
    result = sign_in(app, ALICE)
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == ALICE
    at = claims_of(result["access_token"])
    assert at["aud"] == "https://management.azure.com"
    assert at["iss"] == f"https://sts.windows.net/{CONTOSO}/"
    assert (at["tid"], at["upn"], at["scp"], at["appid"]) == (CONTOSO, ALICE, "user_impersonation", CLIENT_ID)
    assert at["xms_cc"] == ["CP1"]  # MSAL asked for it because of client_capabilities=["CP1"]
    assert at["exp"] - at["iat"] == 3600
    [account] = app.get_accounts()
    assert account["home_account_id"] == f"{at['oid']}.{CONTOSO}"
    calls = sim.stats.token_calls()
    assert calls == 1
    again = app.acquire_token_silent([ARM_SCOPE], account)
    assert again["access_token"] == result["access_token"]
    assert sim.stats.token_calls() == calls  # served from MSAL's cache: no token-endpoint call


def test_refresh_after_expiry_rotates_and_keeps_old_refresh_token(sim, session):
    sim.set_token_lifetimes(access=120)  # under MSAL's 5-minute margin: always "expired" to MSAL
    app = make_app(sim, session)
    first = sign_in(app, BOB)
    old_rt = first["refresh_token"]
    [account] = app.get_accounts()
    second = app.acquire_token_silent([ARM_SCOPE], account)
    assert second["access_token"] != first["access_token"]
    assert sim.stats.token_calls(BOB, "refresh_token") == 1
    assert claims_of(second["access_token"])["xms_cc"] == ["CP1"]
    # Entra rotates refresh tokens but leaves the old ones valid until they expire.
    replay = session.post(
        f"{sim.authority()}/oauth2/v2.0/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": old_rt,
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "scope": f"{ARM_SCOPE} offline_access",
        },
    )
    assert replay.status_code == 200 and replay.json()["refresh_token"] != old_rt


def test_without_capabilities_no_xms_cc(sim, session):
    result = sign_in(make_app(sim, session, capabilities=()), ALICE)
    assert "xms_cc" not in claims_of(result["access_token"])


def test_tenant_specific_authority_and_cross_tenant_user(sim, session):
    result = sign_in(make_app(sim, session, tenant=FABRIKAM), CHARLIE)
    assert claims_of(result["access_token"])["tid"] == FABRIKAM
    # Alice is not in Fabrikam: her login_hint does not match there, so the picker shows instead.
    app = make_app(sim, session, tenant=FABRIKAM)
    flow = app.initiate_auth_code_flow([ARM_SCOPE], redirect_uri=REDIRECT, login_hint=ALICE)
    page = requests.get(flow["auth_uri"], allow_redirects=False, timeout=5)
    assert page.status_code == 200 and "Charlie Chen" in page.text and "Alice Admin" not in page.text


def _authorize_params(**overrides):
    _, challenge = pkce_pair()
    params = {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": ARM_SCOPE,
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "nonce": "n1",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def _authorize(sim, method="GET", **overrides):
    url = f"{sim.http_url}/organizations/oauth2/v2.0/authorize"
    params = _authorize_params(**overrides)
    if method == "GET":
        return requests.get(url, params=params, allow_redirects=False, timeout=5)
    return requests.post(url, data=params, allow_redirects=False, timeout=5)


def _redirect_query(response):
    assert response.status_code == 302, response.text
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


def test_picker_page_escapes_and_posts_back(sim):
    nasty = "<script>alert(1)</script>"
    page = _authorize(sim, state=f"x'\"{nasty}", login_hint=nasty)
    assert page.status_code == 200
    assert nasty not in page.text and "&lt;script&gt;" in page.text
    assert "Alice Admin" in page.text and "Charlie Chen" in page.text  # organizations: every tenant
    assert "script-src" not in page.headers["Content-Security-Policy"]
    # Choosing an account posts the original parameters back and completes the sign-in.
    answer = _redirect_query(_authorize(sim, "POST", state=f"x'\"{nasty}", azuresim_upn=BOB))
    assert answer["state"] == f"x'\"{nasty}" and answer["code"]


def test_prompt_select_account_ignores_login_hint(sim):
    assert _authorize(sim, login_hint=ALICE, prompt="select_account").status_code == 200
    assert _authorize(sim, login_hint=ALICE, prompt="login").status_code == 200


def test_authorize_errors(sim):
    bad_client = _authorize(sim, client_id="0e0e0e0e-0000-4000-8000-000000000000")
    assert bad_client.status_code == 400 and "AADSTS700016" in bad_client.text
    bad_redirect = _authorize(sim, redirect_uri="https://evil.example/cb")
    assert bad_redirect.status_code == 400 and "AADSTS50011" in bad_redirect.text
    no_pkce = _redirect_query(_authorize(sim, code_challenge=None, login_hint=ALICE))
    assert no_pkce["error"] == "invalid_request" and no_pkce["state"] == "s1"
    plain = _redirect_query(_authorize(sim, code_challenge_method="plain", login_hint=ALICE))
    assert plain["error"] == "invalid_request"
    token_flow = _redirect_query(_authorize(sim, response_type="token", login_hint=ALICE))
    assert token_flow["error"] == "unsupported_response_type"
    bad_scope = _redirect_query(_authorize(sim, scope="https://management.azure.com/write", login_hint=ALICE))
    assert bad_scope["error"] == "invalid_scope" and bad_scope["error_description"].startswith("AADSTS70011:")


def _redeem(session, sim, code, verifier, **overrides):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "code_verifier": verifier,
        "scope": f"{ARM_SCOPE} openid offline_access",
    }
    data.update(overrides)
    return session.post(
        f"{sim.authority()}/oauth2/v2.0/token", data={k: v for k, v in data.items() if v is not None}
    )


def test_code_is_single_use_and_pkce_checked(sim, session):
    verifier, _ = pkce_pair()
    code = _redirect_query(_authorize(sim, login_hint=ALICE))["code"]
    wrong = _redeem(session, sim, code, "w" * 50)
    body = wrong.json()
    assert wrong.status_code == 400 and body["error"] == "invalid_grant" and body["error_codes"] == [501481]
    assert "\r\nTrace ID: " in body["error_description"] and body["correlation_id"] and body["trace_id"]
    again = _redeem(session, sim, code, verifier).json()  # the failed attempt used the code up
    assert again["error_codes"] == [54005]
    fresh = _redirect_query(_authorize(sim, login_hint=ALICE))["code"]
    assert _redeem(session, sim, fresh, verifier).status_code == 200
    assert _redeem(session, sim, fresh, verifier).json()["error_codes"] == [54005]


def test_client_authentication(sim, session):
    verifier, _ = pkce_pair()
    code = _redirect_query(_authorize(sim, login_hint=ALICE))["code"]
    bad = _redeem(session, sim, code, verifier, client_secret="nope")
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    code = _redirect_query(_authorize(sim, login_hint=ALICE))["code"]
    basic = _redeem(session, sim, code, verifier, client_id=None, client_secret=None, auth=None)
    assert basic.status_code == 400  # no client at all
    code = _redirect_query(_authorize(sim, login_hint=ALICE))["code"]
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "scope": ARM_SCOPE,
    }
    ok = session.post(f"{sim.authority()}/oauth2/v2.0/token", data=data, auth=(CLIENT_ID, SECRET))
    assert ok.status_code == 200 and "refresh_token" not in ok.json()  # no offline_access, no refresh token
    unsupported = session.post(
        f"{sim.authority()}/oauth2/v2.0/token",
        data={"grant_type": "password", "client_id": CLIENT_ID, "client_secret": SECRET},
    )
    assert unsupported.json()["error"] == "unsupported_grant_type"


def test_logout_redirects_to_loopback_only(sim):
    base = f"{sim.http_url}/organizations/oauth2/v2.0/logout"
    back = requests.get(
        base + "?" + urlencode({"post_logout_redirect_uri": "http://localhost:8000/"}),
        allow_redirects=False,
        timeout=5,
    )
    assert back.status_code == 302 and back.headers["Location"] == "http://localhost:8000/"
    page = requests.get(
        base + "?" + urlencode({"post_logout_redirect_uri": "https://evil.example/"}),
        allow_redirects=False,
        timeout=5,
    )
    assert page.status_code == 200 and "signed out" in page.text


def test_prompt_none_uses_the_browser_session(sim):
    browser = requests.Session()
    browser.trust_env = False
    url = f"{sim.http_url}/organizations/oauth2/v2.0/authorize"
    silent = browser.get(url, params=_authorize_params(prompt="none"), allow_redirects=False, timeout=5)
    assert _redirect_query(silent)["error"] == "login_required"
    browser.get(url, params=_authorize_params(login_hint=CHARLIE), allow_redirects=False, timeout=5)
    silent = browser.get(url, params=_authorize_params(prompt="none"), allow_redirects=False, timeout=5)
    assert _redirect_query(silent)["code"]
    browser.get(f"{sim.http_url}/organizations/oauth2/v2.0/logout", allow_redirects=False, timeout=5)
    silent = browser.get(url, params=_authorize_params(prompt="none"), allow_redirects=False, timeout=5)
    assert _redirect_query(silent)["error"] == "login_required"


def test_id_token_carries_nonce_and_is_signed(sim, session):
    verifier, _ = pkce_pair()
    code = _redirect_query(_authorize(sim, login_hint=ALICE, nonce="abc"))["code"]
    body = _redeem(session, sim, code, verifier).json()
    jwks = jwt.PyJWKSet.from_dict(session.get(f"{sim.authority(CONTOSO)}/discovery/v2.0/keys").json())
    key = jwks.keys[0].key
    id_claims = jwt.decode(body["id_token"], key, algorithms=["RS256"], audience=CLIENT_ID)
    assert id_claims["nonce"] == "abc" and id_claims["tid"] == CONTOSO
    jwt.decode(body["access_token"], key, algorithms=["RS256"], audience="https://management.azure.com")
    info = json.loads(jwt.utils.base64url_decode(body["client_info"]))
    assert info == {"uid": id_claims["oid"], "utid": CONTOSO}

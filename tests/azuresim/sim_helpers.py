"""Shared constants and helpers for the simulator's tests: they drive it with the real msal
library and requests over real loopback sockets. (Not named conftest so test modules can import it.)"""

import base64
import hashlib
import os
from urllib.parse import parse_qs, urlsplit

import msal
import requests

SCENARIO = os.path.join(os.path.dirname(__file__), "..", "..", "azuresim", "scenarios", "demo.json")
CLIENT_ID = "d3d3d3d3-0000-4000-8000-000000000001"
SECRET = "demo-client-secret"
ARM_SCOPE = "https://management.azure.com/user_impersonation"
REDIRECT = "http://127.0.0.1:8765/auth/callback"
ALICE, BOB, CHARLIE = "alice@contoso.example", "bob@contoso.example", "charlie@fabrikam.example"
CONTOSO, FABRIKAM = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
PROD = "0b5e0001-0000-4000-8000-000000000001"
STAGING = "0b5e0002-0000-4000-8000-000000000002"
FABRIKAM_PROD = "0b5e0003-0000-4000-8000-000000000003"
SANDBOX = "0b5e0004-0000-4000-8000-000000000004"
RG = "rg-payments-prod"


def make_app(sim, session, tenant="organizations", capabilities=("CP1",)):
    # A fresh http_cache per app: MSAL replays identical failed token requests for 60 s otherwise.
    return msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=SECRET,
        authority=sim.authority(tenant),
        instance_discovery=False,
        http_client=session,
        client_capabilities=list(capabilities) or None,
        token_cache=msal.TokenCache(),
        http_cache={},
    )


def sign_in(app, upn, scopes=(ARM_SCOPE,), claims_challenge=None):
    """The auth-code flow (PKCE + nonce) without a browser: login_hint makes the sim answer at once."""
    flow = app.initiate_auth_code_flow(
        list(scopes), redirect_uri=REDIRECT, login_hint=upn, claims_challenge=claims_challenge
    )
    answer = requests.get(flow["auth_uri"], allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    auth_response = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    return app.acquire_token_by_auth_code_flow(flow, auth_response)


def arm_url(sim, server, sub=PROD, rg=RG, api_version="2024-08-01"):
    url = (
        f"{sim.arm_url}/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.DBforPostgreSQL"
        f"/flexibleServers/{server}/ltrPreBackup"
    )
    return url + (f"?api-version={api_version}" if api_version else "")


def arm_post(session, sim, server, token, body=None, timeout=10, **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = body if isinstance(body, (bytes, str)) else None
    return session.post(
        arm_url(sim, server, **kw),
        json=None
        if data is not None
        else (body if body is not None else {"backupSettings": {"backupName": "ltr-check"}}),
        data=data,
        headers=headers,
        timeout=timeout,
    )


def pkce_pair(verifier="v" * 50):
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge

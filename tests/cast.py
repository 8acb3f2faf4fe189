"""The cast, in one place: who they are, their accounts, and two ways to sign them in.

alice and bob work in tenant A (Contoso); bob lacks Azure RBAC on pg-ledger, so ARM answers him 403 there;
charlie works in tenant B (Fabrikam) and must never see tenant A's data.

`signed_in` goes through the real sign-in (MSAL, the simulator's authorize page, our callback): for the
sign-in tests and whatever depends on how a session starts. `logged_in` is the fast way for view tests:
Django's force_login plus a token cache seeded from one real sign-in per person per test session, so the
views' calls to Azure carry a real token from the simulator.
"""

from urllib.parse import parse_qs, urlparse

import pytest
import requests
from django.conf import settings

from dashboard import entra, tokencache
from dashboard.demo import CONTOSO, FABRIKAM
from dashboard.models import User

ALICE = {"upn": "alice@contoso.example", "oid": "a11ce000-0000-4000-8000-000000000001", "tid": CONTOSO,
         "name": "Alice Admin"}
BOB = {"upn": "bob@contoso.example", "oid": "b0b00000-0000-4000-8000-000000000002", "tid": CONTOSO,
       "name": "Bob Builder"}
CHARLIE = {"upn": "charlie@fabrikam.example", "oid": "c4a11e00-0000-4000-8000-000000000003", "tid": FABRIKAM,
           "name": "Charlie Chen"}
CAST = {person["upn"]: person for person in (ALICE, BOB, CHARLIE)}


def account(identity: dict) -> User:
    user, _ = User.objects.get_or_create(
        tenant_id=identity["tid"],
        object_id=identity["oid"],
        defaults={"username": f"{identity['tid']}.{identity['oid']}", "display_name": identity["name"],
                  "upn": identity["upn"]},
    )
    return user


@pytest.fixture
def alice(db):
    return account(ALICE)


@pytest.fixture
def bob(db):
    return account(BOB)


@pytest.fixture
def charlie(db):
    return account(CHARLIE)


def complete_sign_in(client, authorize_url: str):
    """Let the simulator sign the user in (login_hint in the URL) and deliver its answer to the callback."""
    authorize = requests.get(authorize_url, allow_redirects=False, timeout=10)
    assert authorize.status_code == 302, authorize.text
    callback = urlparse(authorize.headers["Location"])
    assert callback.path == "/auth/callback/", authorize.headers["Location"]
    return client.get(callback.path, {k: v[0] for k, v in parse_qs(callback.query).items()})


def sign_in(client, upn: str, next_url: str = "/"):
    """The whole sign-in dance with the real MSAL and the simulator's authorize page (login_hint)."""
    start = client.get("/auth/signin/", {"next": next_url, "login_hint": upn})
    assert start.status_code == 302, start.content
    return complete_sign_in(client, start["Location"])


@pytest.fixture
def signed_in(client, sim, db):
    """A function that signs the test client in as one of the cast, through the real flow."""

    def _sign_in(upn: str = ALICE["upn"]):
        response = sign_in(client, upn)
        assert response.status_code == 302, response.content
        return User.objects.get(upn=upn)

    return _sign_in


@pytest.fixture(scope="session")
def token_caches(azure_sim) -> dict[str, tuple[str, str]]:
    """Each person's MSAL token cache (serialized) and account key, from one real sign-in at the simulator."""
    caches = {}
    for upn in CAST:
        flow = entra.start_sign_in(settings.AZURE_REDIRECT_URI, login_hint=upn)
        authorize = requests.get(flow["auth_uri"], allow_redirects=False, timeout=10)
        answer = {k: v[0] for k, v in parse_qs(urlparse(authorize.headers["Location"]).query).items()}
        result = entra.finish_sign_in(flow, answer)
        caches[upn] = (result.cache.serialize(), result.home_account_id)
    return caches


@pytest.fixture
def logged_in(client, sim, db, token_caches):
    """A function that logs the test client in as one of the cast at once, with their token cache in place."""

    def _log_in(upn: str = ALICE["upn"]) -> User:
        user = account(CAST[upn])
        serialized, user.home_account_id = token_caches[upn]
        user.save(update_fields=["home_account_id"])
        cache = tokencache.UserTokenCache()
        cache.deserialize(serialized)
        tokencache.save(user, cache, force=True)
        client.force_login(user)
        return user

    return _log_in

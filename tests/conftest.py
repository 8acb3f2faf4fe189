"""Fixtures shared by the suite: the simulator on loopback, the cast of users, servers, the worker.

The cast is fixed: alice and bob work in tenant A (Contoso); bob lacks Azure RBAC on pg-ledger, so ARM
answers him 403 there; charlie works in tenant B (Fabrikam) and must never see tenant A's data.
"""

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from django.core.management import call_command
from django.test import override_settings

from azuresim import Simulator
from dashboard import entra
from dashboard.demo import CONTOSO, FABRIKAM, FABRIKAM_PROD, PROD, STAGING
from dashboard.models import Server, User

ROOT = Path(__file__).resolve().parent.parent
DEMO_SCENARIO = ROOT / "azuresim" / "scenarios" / "demo.json"

ALICE = {"upn": "alice@contoso.example", "oid": "a11ce000-0000-4000-8000-000000000001", "tid": CONTOSO}
BOB = {"upn": "bob@contoso.example", "oid": "b0b00000-0000-4000-8000-000000000002", "tid": CONTOSO}
CHARLIE = {"upn": "charlie@fabrikam.example", "oid": "c4a11e00-0000-4000-8000-000000000003", "tid": FABRIKAM}


@pytest.fixture(scope="session")
def azure_sim(tmp_path_factory):
    """One simulator for the session, on ephemeral loopback ports, trusted through AZURE_CA_BUNDLE only."""
    sim = Simulator(scenario=str(DEMO_SCENARIO), state_dir=str(tmp_path_factory.mktemp("azuresim")))
    sim.start()
    with override_settings(
        AZURE_AUTHORITY_HOST=sim.https_url,
        AZURE_ARM_ENDPOINT=sim.https_url,
        AZURE_CA_BUNDLE=str(sim.ca_path),
    ):
        yield sim
    sim.stop()


@pytest.fixture
def sim(azure_sim):
    """The simulator with its scenario as the file says, fresh call counts and buckets."""
    _reset(azure_sim)
    yield azure_sim
    _reset(azure_sim)


def _reset(sim) -> None:
    if hasattr(sim, "reset"):
        sim.reset()
    else:
        sim.reset_calls()


@pytest.fixture(autouse=True)
def _fresh_msal_state():
    # MSAL replays a failed token request for 60 s from its http_cache; tests must not see each other's.
    entra.reset()
    yield
    entra.reset()


def _user(identity: dict, name: str) -> User:
    user, _ = User.objects.get_or_create(
        tenant_id=identity["tid"],
        object_id=identity["oid"],
        defaults={"username": f"{identity['tid']}.{identity['oid']}", "display_name": name, "upn": identity["upn"]},
    )
    return user


@pytest.fixture
def alice(db):
    return _user(ALICE, "Alice Admin")


@pytest.fixture
def bob(db):
    return _user(BOB, "Bob Builder")


@pytest.fixture
def charlie(db):
    return _user(CHARLIE, "Charlie Chen")


def make_server(tenant_id=CONTOSO, subscription_id=PROD, resource_group="rg-payments-prod", name="pg-payments-01",
                **extra) -> Server:
    return Server.objects.create(
        tenant_id=tenant_id, subscription_id=subscription_id, resource_group=resource_group, name=name, **extra
    )


@pytest.fixture
def server(db):
    return make_server()


@pytest.fixture
def fleet(db):
    """Every demo server, by name."""
    call_command("seed_demo", verbosity=0)
    return {s.name: s for s in Server.objects.all()}


@pytest.fixture
def staging_server(db):
    return make_server(subscription_id=STAGING, resource_group="rg-staging", name="pg-staging-01")


@pytest.fixture
def fabrikam_server(db):
    return make_server(tenant_id=FABRIKAM, subscription_id=FABRIKAM_PROD, resource_group="rg-fabrikam",
                       name="pg-fabrikam-01")


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


@pytest.fixture
def worker(db, monkeypatch):
    """Run django-tasks-db's real worker until the queue is empty (as `manage.py db_worker --batch`)."""
    # The worker closes "old" connections between tasks, as Django does between requests; inside a test's
    # transaction that would close the test's own connection, so it is skipped here as Django's test
    # client skips it.
    monkeypatch.setattr("django_tasks_db.management.commands.db_worker.close_old_connections", lambda: None)

    def _run():
        call_command("db_worker", "--batch", "--no-startup-delay", "--interval", "0", verbosity=0)

    return _run

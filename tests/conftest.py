"""Fixtures shared by the suite: the simulator on loopback, servers, the worker; the cast (alice, bob,
charlie) and signing them in come from tests.cast."""

from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from armclient import pacing
from azuresim import Simulator
from dashboard import entra
from dashboard.demo import CONTOSO, FABRIKAM, FABRIKAM_PROD, PROD, STAGING
from dashboard.models import Server
from tests.cast import (  # noqa: F401 (fixtures, and names the test modules import from here)
    ALICE,
    BOB,
    CHARLIE,
    alice,
    bob,
    charlie,
    complete_sign_in,
    logged_in,
    sign_in,
    signed_in,
    token_caches,
)

ROOT = Path(__file__).resolve().parent.parent
DEMO_SCENARIO = ROOT / "azuresim" / "scenarios" / "demo.json"


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
    # MSAL replays a failed token request for 60 s from its http_cache; tests must not see each other's. Nor
    # a process's leased bucket tokens or its cached token caches, nor /metrics' settled sums: each test has a
    # fresh database.
    from checks.metrics import TOTALS

    entra.reset()
    pacing.forget_local()
    TOTALS.forget()
    yield
    entra.reset()
    pacing.forget_local()
    TOTALS.forget()


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

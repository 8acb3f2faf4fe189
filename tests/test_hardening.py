"""Findings of the security review (issue 14), each with the test that would have caught it."""

import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.test import Client, override_settings

from dashboard import tokencache
from dashboard.models import TokenCache
from tests.conftest import ALICE, ROOT
from tests.test_deploy import PRODUCTION, production_env, production_python


def _setup(**env) -> subprocess.CompletedProcess:
    full = {**PRODUCTION, "TOKEN_CACHE_KEYS": Fernet.generate_key().decode(),
            "DJANGO_SETTINGS_MODULE": "config.settings", **env}
    return subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=full,
                          capture_output=True, text=True)


def test_the_demo_secret_key_is_refused_in_production():
    result = _setup(SECRET_KEY="demo-mode-only-secret-key-never-use-in-production-0123456789")
    assert result.returncode != 0 and "SECRET_KEY must be a random value" in result.stderr


@pytest.mark.parametrize("keys", ["not-a-fernet-key", f"{Fernet.generate_key().decode()},short"])
def test_a_malformed_token_cache_key_stops_start_up(keys):
    result = _setup(TOKEN_CACHE_KEYS=keys)
    assert result.returncode != 0 and "TOKEN_CACHE_KEYS must be comma-separated Fernet keys" in result.stderr


def test_the_production_settings_start_with_good_values():
    assert _setup().returncode == 0


def _bare_setup(**env) -> subprocess.CompletedProcess:
    """Start-up with only `env` (no DEMO_MODE unless given): what someone who forgot it would run."""
    full = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings", **env}
    return subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=full,
                          capture_output=True, text=True)


@pytest.mark.parametrize("env", [
    {"ALLOWED_HOSTS": "ltr.example.com"},
    {"AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com"},
    {"ALLOWED_HOSTS": "127.0.0.1", "AZURE_ARM_ENDPOINT": "https://management.azure.com"},
    {"DEMO_MODE": "", "ALLOWED_HOSTS": "ltr.example.com"},  # a template's ${DEMO_MODE} left empty: the default
])
def test_demo_mode_by_default_refuses_to_start_pointed_beyond_this_machine(env):
    result = _bare_setup(**env)
    assert result.returncode != 0 and "DEMO_MODE is on by default" in result.stderr
    assert next(iter(env.keys() - {"ALLOWED_HOSTS", "DEMO_MODE"} or {"ALLOWED_HOSTS"})) in result.stderr.splitlines()[-1]


def test_demo_mode_starts_by_default_on_this_machine_or_when_asked_for_by_name():
    assert _bare_setup().returncode == 0
    assert _bare_setup(ALLOWED_HOSTS="127.0.0.1,LOCALHOST").returncode == 0
    assert _bare_setup(DEMO_MODE="1", ALLOWED_HOSTS="demo.example.com").returncode == 0


@pytest.mark.django_db
@override_settings(SECURE_SSL_REDIRECT=True)
def test_healthz_answers_plain_http_and_head_for_load_balancers():
    client = Client()
    assert client.get("/healthz").status_code == 200
    assert client.head("/healthz").status_code == 200
    assert client.get("/").status_code == 301, "everything else is still redirected to https"


def test_healthz_answers_503_when_the_database_cannot_be_reached(tmp_path):
    """A production process whose PostgreSQL is down (a closed port on loopback): the load balancer hears 503."""
    script = ("import django, json; django.setup(); from django.test import Client; "
              "r = Client().get('/healthz', headers={'Host': 'ltr.example.com'}); "
              "print(r.status_code, json.loads(r.content)['status'])")
    result = production_python(script, production_env(tmp_path, DATABASE_URL="postgres://nobody@127.0.0.1:9/none"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-2] == "503 database unavailable"


@pytest.mark.django_db
def test_an_unknown_page_is_the_projects_404_not_djangos_url_list(client, alice):
    client.force_login(alice)
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "URLconf" not in html and "Using the URLconf" not in html


def test_signing_in_again_moves_the_token_cache_version_on_not_back_to_one(client, signed_in):
    user = signed_in(ALICE["upn"])
    stale = tokencache.load(user)  # what a worker read before the user signed in again
    stale_version = stale.version
    client.logout()
    signed_in(ALICE["upn"])
    assert TokenCache.objects.get(user=user).version > stale_version
    stale.has_state_changed = True
    assert tokencache.save(user, stale) is False, "the worker's older copy loses the compare-and-swap"


def test_the_admins_logout_forgets_the_refresh_token(client, signed_in):
    user = signed_in(ALICE["upn"])
    assert TokenCache.objects.filter(user=user).exists() and tokencache.holds_tokens(user)
    response = client.post("/admin/logout/")
    assert response.status_code == 302
    assert not tokencache.holds_tokens(user), "emptied (its row kept, its version moved on)"


@pytest.mark.django_db
def test_the_worker_clears_expired_sessions_and_their_pending_sign_ins(settings, sim):
    from datetime import timedelta

    from django.contrib.sessions.models import Session
    from django.utils import timezone
    from django.utils.module_loading import import_string

    for _ in range(3):
        Client().get("/auth/signin/")  # anonymous: each writes a session holding a pending flow
    assert Session.objects.count() == 3
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    Client().get("/auth/signin/")  # a fresh one stays
    job = dict((seconds, path) for path, seconds in settings.WORKER_PERIODIC_JOBS)[3600.0]
    assert import_string(job)() == 3
    assert Session.objects.count() == 1

"""Each user's token cache: silent reuse, refresh, encryption with rotating keys, concurrent writers."""

import logging
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from checks.models import Check
from dashboard import entra, tokencache
from dashboard.models import TokenCache
from tests.conftest import ALICE, ROOT, complete_sign_in


def _run(client, server, worker, n=1):
    for i in range(n):
        client.post(f"/servers/{server.pk}/run/", {"backup_name": f"b-{i}"}, headers={"HX-Request": "true"})
        worker()


def test_the_token_endpoint_is_called_once_per_token_lifetime_not_per_check(client, signed_in, fleet, worker, sim):
    signed_in(ALICE["upn"])
    after_sign_in = sim.stats.token_calls(ALICE["upn"])
    _run(client, fleet["pg-payments-01"], worker, n=50)
    assert Check.objects.filter(status="succeeded").count() == 50
    assert sim.stats.token_calls(ALICE["upn"]) == after_sign_in == 1


def test_an_expired_access_token_is_refreshed_once_with_the_refresh_token(client, signed_in, fleet, worker, sim):
    # MSAL treats a token with under 5 minutes left as expired: 200 s tokens are refreshed on every use.
    sim.set_token_lifetimes(access=200)
    signed_in(ALICE["upn"])
    _run(client, fleet["pg-payments-01"], worker, n=3)
    assert Check.objects.filter(status="succeeded").count() == 3
    assert sim.stats.token_calls(ALICE["upn"], "refresh_token") >= 3
    sim.set_token_lifetimes(access=3600)
    before = sim.stats.token_calls(ALICE["upn"])
    _run(client, fleet["pg-payments-01"], worker, n=5)
    assert sim.stats.token_calls(ALICE["upn"]) == before + 1, "one refresh, then the new token is reused"


@pytest.mark.parametrize(("flag", "code"), [("mfa_required", "AADSTS50076"), ("consent_required", "AADSTS65001")])
def test_mfa_or_consent_required_sends_the_user_to_sign_in(client, signed_in, fleet, worker, sim, flag, code):
    alice = signed_in(ALICE["upn"])
    server = fleet["pg-payments-01"]
    client.post(f"/servers/{server.pk}/run/", {"backup_name": "b-1"}, headers={"HX-Request": "true"})
    cache = tokencache.load(alice)
    cache._cache["AccessToken"] = {}
    cache.has_state_changed = True
    tokencache.save(alice, cache)
    sim.set_user_flags(ALICE["upn"], **{flag: True})
    worker()
    check = Check.objects.get()
    assert check.status == "signin_required"
    assert code in check.error_message
    # The page path: the next click goes to sign in, and comes back to run the check.
    response = client.post(f"/servers/{server.pk}/run/", {"backup_name": "b-2"}, headers={"HX-Request": "true"})
    assert response["HX-Redirect"].startswith(sim.http_url)
    complete_sign_in(client, response["HX-Redirect"])
    worker()
    assert Check.objects.latest("created_at").status == "succeeded"


def test_keys_rotate_old_caches_still_decrypt_and_new_writes_use_the_new_key(client, signed_in, settings):
    old_key = settings.TOKEN_CACHE_KEYS[0]
    alice = signed_in(ALICE["upn"])
    new_key = Fernet.generate_key().decode()
    settings.TOKEN_CACHE_KEYS = [new_key, old_key]
    assert "RefreshToken" in tokencache.load(alice).serialize()
    call_command("rotate_token_cache_keys", verbosity=0)
    settings.TOKEN_CACHE_KEYS = [new_key]
    assert "RefreshToken" in tokencache.load(alice).serialize()
    Fernet(new_key).decrypt(bytes(TokenCache.objects.get().encrypted))


def test_a_cache_encrypted_with_a_removed_key_means_signing_in_again(client, signed_in, settings, caplog):
    alice = signed_in(ALICE["upn"])
    settings.TOKEN_CACHE_KEYS = [Fernet.generate_key().decode()]
    assert entra.arm_token(alice).interaction_required
    assert "cannot be decrypted" in caplog.text


def test_two_processes_refreshing_at_once_keep_a_working_cache(signed_in, sim):
    alice = signed_in(ALICE["upn"])
    first, second = tokencache.load(alice), tokencache.load(alice)
    for cache in (first, second):
        cache._cache["AccessToken"] = {}
        cache.has_state_changed = True
    assert tokencache.save(alice, first) is True
    assert tokencache.save(alice, second) is False, "the second writer read an older version and loses"
    assert TokenCache.objects.get().version == first.version + 1
    assert entra.arm_token(alice).access_token


def test_clouds_select_authority_arm_endpoint_and_scope_together():
    script = (
        "from django.conf import settings as s;"
        "print(s.AZURE_AUTHORITY_HOST, s.AZURE_ARM_ENDPOINT, s.AZURE_ARM_SCOPE)"
    )
    base = {"DEMO_MODE": "0", "SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "ltr.example.com", "AZURE_CLIENT_ID": "id",
            "AZURE_CLIENT_SECRET": "secret", "TOKEN_CACHE_KEYS": Fernet.generate_key().decode(),
            "DJANGO_SETTINGS_MODULE": "config.settings", "PATH": "/usr/bin:/bin"}
    expected = {
        "public": "https://login.microsoftonline.com https://management.azure.com "
                  "https://management.azure.com/user_impersonation",
        "usgov": "https://login.microsoftonline.us https://management.usgovcloudapi.net "
                 "https://management.core.usgovcloudapi.net/user_impersonation",
        "china": "https://login.chinacloudapi.cn https://management.chinacloudapi.cn "
                 "https://management.chinacloudapi.cn/user_impersonation",
    }
    for cloud, line in expected.items():
        out = subprocess.run([sys.executable, "-c", f"import django; django.setup(); {script}"], cwd=ROOT,
                             env={**base, "AZURE_CLOUD": cloud}, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == line
    bad = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT,
                         env={**base, "AZURE_CLOUD": "mars"}, capture_output=True, text=True)
    assert bad.returncode != 0 and "AZURE_CLOUD must be one of" in bad.stderr


def test_production_refuses_to_start_without_its_secrets():
    out = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT,
                         env={"DEMO_MODE": "0", "DJANGO_SETTINGS_MODULE": "config.settings", "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True)
    assert out.returncode != 0 and "Set the environment variable SECRET_KEY" in out.stderr


def test_no_token_reaches_the_logs_the_pages_or_the_task_queue(client, sim, fleet, worker, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    from django_tasks_db.models import DBTaskResult

    start = client.get("/auth/signin/", {"login_hint": ALICE["upn"]})
    response = complete_sign_in(client, start["Location"])
    pages = [client.get("/").content.decode()]
    for name in ("pg-payments-01", "pg-analytics", "pg-billing", "pg-orders"):
        client.post(f"/servers/{fleet[name].pk}/run/", {"backup_name": "b-1"}, headers={"HX-Request": "true"})
        worker()
    for check in Check.objects.all():
        pages.append(client.get(f"/checks/{check.pk}/").content.decode())
    pages.append(client.get("/checks/").content.decode())
    pages.append(b"".join(client.get("/checks/export.csv").streaming_content).decode())
    assert response.status_code == 302
    cache = tokencache.load(Check.objects.first().requested_by)
    secrets = [item["secret"] for kind in ("AccessToken", "RefreshToken", "IdToken")
               for item in cache._cache.get(kind, {}).values()]
    assert len(secrets) >= 3
    out, err = capfd.readouterr()
    logged = caplog.text + out + err
    tasks = str(list(DBTaskResult.objects.values()))
    for secret in secrets:
        for where, text in [("logs", logged), ("task queue", tasks), *(("page", page) for page in pages)]:
            assert secret not in text, f"a token leaked into the {where}"
            assert secret[:40] not in text

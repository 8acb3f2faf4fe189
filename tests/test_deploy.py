"""Production readiness, mostly from production processes started with the README's variables: the deploy
checklist passes, static files build, a missing, empty or malformed value stops start-up, responses carry HSTS,
frame denial and safe session cookies, requests and log lines are structured (JSON on request) with tokens
blanked, the production defaults keep /metrics and private webhooks closed, the EMAIL_* variables are the SMTP
server mail goes through, and the admin never edits history."""

import json
import logging
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from checks.models import Check
from tests.conftest import ROOT
from tests.factories import make_check
from tests.test_alerts import smtp  # noqa: F401 (a fixture)

PRODUCTION = {
    "DEMO_MODE": "0",
    "SECRET_KEY": "k" * 20 + "-production-secret-of-sufficient-length-and-variety-0123456789",
    "ALLOWED_HOSTS": "ltr.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://ltr.example.com",
    "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
    "AZURE_CLIENT_SECRET": "secret",
    "BEHIND_PROXY": "1",
    "PATH": "/usr/bin:/bin",
}


def production_env(tmp_path, **changes) -> dict:
    env = {**PRODUCTION, "TOKEN_CACHE_KEYS": Fernet.generate_key().decode(),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}", "STATIC_ROOT": str(tmp_path / "static"),
           "DJANGO_SETTINGS_MODULE": "config.settings"}
    return {**env, **changes}


def production_python(script: str, env: dict) -> subprocess.CompletedProcess:
    """`script` run by a production process of this checkout (Django set up by the script itself)."""
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def _manage(tmp_path, *args, **changes):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=production_env(tmp_path, **changes),
                          capture_output=True, text=True)


@pytest.mark.parametrize(("name", "nothing"), [("ALLOWED_HOSTS", " "), ("ALLOWED_HOSTS", ","), ("AZURE_CLIENT_ID", " "),
                                             ("AZURE_CLIENT_SECRET", ""), ("TOKEN_CACHE_KEYS", " , ")])
def test_a_required_production_value_set_to_nothing_stops_start_up(tmp_path, name, nothing):
    result = _manage(tmp_path, "check", **{name: nothing})
    assert result.returncode != 0
    assert f"{name} is set but empty" in result.stderr


def test_a_required_production_value_left_unset_stops_start_up_saying_to_set_it(tmp_path):
    env = production_env(tmp_path)
    del env["ALLOWED_HOSTS"]
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "Set the environment variable ALLOWED_HOSTS" in result.stderr


def test_a_short_secret_key_stops_start_up(tmp_path):
    result = _manage(tmp_path, "check", SECRET_KEY="x" * 31)
    assert result.returncode != 0 and "32 characters or more" in result.stderr


def test_an_unknown_log_format_stops_start_up_and_a_blank_one_is_plain(tmp_path):
    result = _manage(tmp_path, "check", LOG_FORMAT="yaml")
    assert result.returncode != 0 and "LOG_FORMAT must be one of plain, json, not 'yaml'" in result.stderr
    assert _manage(tmp_path, "check", LOG_FORMAT=" ").returncode == 0


def test_log_format_json_writes_json_lines_with_tokens_blanked(tmp_path):
    """The environment switch itself (in any case), as a production process writes to its stream."""
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlc2lnbmF0dXJl"
    script = ("import django, logging; django.setup(); "
              f"logging.getLogger('checks.worker').warning('call failed: Bearer {jwt}')")
    result = production_python(script, production_env(tmp_path, LOG_FORMAT="JSON"))
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert (line["logger"], line["level"]) == ("checks.worker", "WARNING")
    assert line["message"] == "call failed: Bearer [redacted]" and jwt not in result.stderr


def test_the_deploy_checklist_passes_with_the_documented_production_variables(tmp_path):
    result = _manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr


def test_static_files_are_collected_and_hashed_for_whitenoise(tmp_path):
    result = _manage(tmp_path, "collectstatic", "--noinput")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "static" / "staticfiles.json").read_text())
    assert "css/app.css" in manifest["paths"] and "django_htmx/htmx-2.min.js" in manifest["paths"]


def test_pages_carry_a_nonce_csp_without_unsafe_inline_or_eval(client, alice):
    client.force_login(alice)
    response = client.get("/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert "<script>" not in response.content.decode(), "no inline script without a nonce"


@pytest.mark.django_db
def test_each_request_is_logged_with_its_id_and_no_query_string(client, caplog):
    caplog.set_level(logging.INFO, logger="dashboard.requests")
    response = client.get("/auth/callback/", {"code": "secret-code-value", "state": "x"},
                          headers={"X-Request-ID": "req-12345678"})
    assert response["X-Request-ID"] == "req-12345678"
    record = next(r for r in caplog.records if r.name == "dashboard.requests")
    assert (record.request_id, record.path, record.status) == ("req-12345678", "/auth/callback/", 400)
    assert "secret-code-value" not in caplog.text


def test_json_log_lines_carry_the_fields():
    from dashboard.log_format import JsonFormatter

    record = logging.makeLogRecord({"name": "dashboard.requests", "msg": "GET / 200", "levelname": "INFO",
                                    "request_id": "abc", "status": 200})
    line = json.loads(JsonFormatter().format(record))
    assert (line["message"], line["request_id"], line["status"]) == ("GET / 200", "abc", 200)


def test_the_token_filter_blanks_tokens_that_reach_a_log():
    from dashboard.log_redaction import redact

    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlc2lnbmF0dXJl"
    text = redact(f"Authorization: Bearer {jwt} and refresh_token=0.AAAA-long-refresh-token-value&x=1")
    assert jwt not in text and "long-refresh-token-value" not in text
    assert "[redacted]" in text


def test_the_admin_shows_checks_but_never_edits_or_deletes_them(client, alice, server, django_user_model):
    admin = django_user_model.objects.create_superuser(username="ops", password="pw", tenant_id="t", object_id="o")
    check = make_check(server, alice)
    client.force_login(admin)
    assert client.get("/admin/checks/check/").status_code == 200
    page = client.get(f"/admin/checks/check/{check.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.post(f"/admin/checks/check/{check.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Check.objects.filter(pk=check.pk).exists()


def test_production_defaults_keep_metrics_closed_and_webhooks_public_and_https(tmp_path):
    """With none of these variables set, a production process refuses the demo's metrics token (and any other:
    METRICS_TOKEN empty), a plain-http webhook, and webhooks to loopback and private addresses."""
    script = """
import django; django.setup()
from django.test import Client
from alerts.targets import TargetRefused, check_url
for token in ("demo-metrics-token", ""):
    r = Client().get("/metrics", headers={"Host": "ltr.example.com", "Authorization": f"Bearer {token}",
                                          "X-Forwarded-Proto": "https"})
    print("metrics", r.status_code)
for url in ("http://hooks.example.com/x", "https://127.0.0.1:8443/x", "https://10.1.2.3/x"):
    try:
        check_url(url)
        print("webhook allowed", url)
    except TargetRefused as refused:
        print("webhook refused", url, refused)
"""
    result = production_python(script, production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["metrics 401", "metrics 401"]
    assert lines[2] == "webhook refused http://hooks.example.com/x Webhook URLs must use https://."
    assert all(line.startswith("webhook refused") and "public addresses only" in line for line in lines[3:5])


def test_a_production_response_carries_hsts_frame_denial_and_a_secure_httponly_lax_session_cookie(tmp_path, sim):
    """Through a production process behind its TLS proxy: the sign-in's start (which keeps the pending flow in the
    session) against the simulator's Entra ID, as the browser receives it."""
    env = production_env(tmp_path, AZURE_AUTHORITY_HOST=sim.https_url, AZURE_ARM_ENDPOINT=sim.https_url,
                         AZURE_CA_BUNDLE=str(sim.ca_path), AZURE_INSTANCE_DISCOVERY="0",
                         AZURE_CLIENT_ID="d3d3d3d3-0000-4000-8000-000000000001",
                         AZURE_CLIENT_SECRET="demo-client-secret")  # noqa: S106 (the simulator's app)
    assert subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env).returncode == 0
    script = """
import django, json; django.setup()
from django.test import Client
r = Client().get("/auth/signin/", headers={"Host": "ltr.example.com", "X-Forwarded-Proto": "https"})
c = r.cookies["sessionid"]
print(json.dumps({"status": r.status_code, "hsts": r["Strict-Transport-Security"], "frame": r["X-Frame-Options"],
                  "secure": c["secure"], "httponly": c["httponly"], "samesite": c["samesite"], "age": c["max-age"]}))
"""
    result = production_python(script, env)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.splitlines()[-1])
    assert seen == {"status": 302, "hsts": "max-age=31536000; includeSubDomains; preload", "frame": "DENY",
                    "secure": True, "httponly": True, "samesite": "Lax", "age": 12 * 3600}


@pytest.mark.parametrize("changes", [{"CHECK_STALE_AFTER": "300"}, {"ARM_CHECK_DEADLINE": "600"}])
def test_a_stale_cut_off_a_live_check_could_reach_stops_start_up(tmp_path, changes):
    """The longest a check may take with these timeouts is 320 s: a cut-off below it would interrupt live checks."""
    result = _manage(tmp_path, "check", **changes)
    assert result.returncode != 0 and "must be longer than the longest a check can take" in result.stderr


def test_the_email_variables_are_the_smtp_server_alerts_are_mailed_through(tmp_path, smtp, settings):  # noqa: F811
    """From a production process's environment (EMAIL_HOST, EMAIL_PORT, DEFAULT_FROM_EMAIL) to the SMTP server on
    loopback; STARTTLS and SSL together stop start-up."""
    port = settings.MAILERS["default"]["OPTIONS"]["port"]  # the test's SMTP server's
    script = ("import django; django.setup(); from django.core.mail import send_mail; "
              "send_mail('LTR test', 'body', None, ['dba@contoso.example'])")
    env = production_env(tmp_path, EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(port),
                         DEFAULT_FROM_EMAIL="Fleet watch <watch@contoso.example>")
    result = production_python(script, env)
    assert result.returncode == 0, result.stderr
    [message] = smtp.messages
    assert (message.mail_from, message.rcpt_tos) == ("watch@contoso.example", ["dba@contoso.example"])
    refused = _manage(tmp_path, "check", EMAIL_USE_TLS="1", EMAIL_USE_SSL="1")
    assert refused.returncode != 0 and "not both" in refused.stderr


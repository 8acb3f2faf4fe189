"""Alerts against real peers on loopback: a webhook receiver (alerts.catcher) and an SMTP server (aiosmtpd).

Each test goes the whole way: the channel is added through the page (SSRF check, secret shown once), the
alert is queued as a Delivery and a task, django-tasks-db's worker sends it, and the receiver records what
reached its socket.
"""

import json
import logging
import re
import socket
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from alerts import Alert, AlertKind, raise_alert
from alerts.catcher import Catcher
from alerts.delivery import deliver
from alerts.models import Channel, Delivery
from alerts.signing import verify
from dashboard.demo import CONTOSO, FABRIKAM
from tests.conftest import ROOT

SLACK_PATH = "/services/T0AAAAAAA/B0BBBBBBB/XyZsecretTokenPart1234"


@pytest.fixture
def receiver():
    """Start a catcher: receiver(statuses=[500, 200], delay=0)."""
    started = []

    def _start(statuses=(200,), delay=0.0):
        catcher = Catcher(statuses=statuses, delay=delay).start()
        started.append(catcher)
        return catcher

    yield _start
    for catcher in started:
        catcher.stop()


@pytest.fixture
def allow_loopback(settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    settings.ALERT_WEBHOOK_ALLOW_HTTP = True
    settings.ALERT_RETRY_DELAYS = [0, 0, 0]
    return settings


@pytest.fixture
def smtp(settings):
    class Inbox:
        messages: list = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            self.messages.append(envelope)
            return "250 OK"

    inbox = Inbox()
    inbox.messages = []
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.MAILERS = smtp_mailer(port)
    settings.DEFAULT_FROM_EMAIL = "LTR checks <ltr@contoso.example>"
    yield inbox
    controller.stop()


def smtp_mailer(port: int) -> dict:
    """The production MAILERS entry aimed at loopback (pytest-django swaps in locmem by default)."""
    return {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                        "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 5}}}


def add_channel(client, kind, target, name="Ops", enabled=True):
    data = {"name": name, "kind": kind, "target": target}
    if enabled:
        data["enabled"] = "on"
    return client.post("/alerts/channels/add/", data)


def an_alert(tenant_id=CONTOSO, **fields) -> Alert:
    defaults = {"kind": AlertKind.READINESS_CHANGED, "title": "pg-ledger is not ready",
                "text": "Ready → not ready: the server is busy <with> another operation & more.",
                "url": "https://ltr.example.com/servers/12/", "facts": {"Server": "pg-ledger", "Since": "02:10"}}
    return Alert(tenant_id=tenant_id, **{**defaults, **fields})


# ---- SSRF -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook",
    "http://[::1]:8080/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://10.20.30.40/hook",
    "https://192.168.1.10/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://localhost:8000/hook",
    "http://2130706433/hook",
    "http://0.0.0.0/hook",
    "https://[2002:7f00:1::1]/hook",  # 6to4 carrying 127.0.0.1
    "https://[2002:a9fe:a9fe::1]/hook",  # 6to4 carrying 169.254.169.254
    "https://[fec0::1]/hook",  # IPv6 site-local
    "http://168.63.129.16/machine",  # Azure's wire server: public, but the platform's metadata
    "https://192.0.0.192/hook",  # IETF protocol assignments
])
def test_private_and_loopback_targets_are_refused_and_nothing_is_saved(client, alice, settings, url):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False
    client.force_login(alice)
    response = add_channel(client, "webhook", url)
    page = response.content.decode()
    assert response.status_code == 400
    assert "does not resolve to public addresses only" in page or "which webhooks may never reach" in page
    # The refusal does not map a host name to its address (internal DNS names through the form).
    assert "127.0.0.1" not in page.replace(url, "") and "(1" not in page and "(::" not in page
    assert not Channel.objects.exists()


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/x",
                                 "http://168.63.129.16/machine", "https://[2002:a9fe:a9fe::1]/hook",
                                 "http://[64:ff9b::a9fe:a9fe]/x", "http://[::169.254.169.254]/x"])  # NAT64, compat
def test_allowing_private_targets_never_allows_the_metadata_services(client, alice, allow_loopback, url):
    client.force_login(alice)
    refused = add_channel(client, "webhook", url)
    assert refused.status_code == 400 and "which webhooks may never reach." in refused.content.decode()
    assert "ALERT_WEBHOOK_ALLOW_PRIVATE" not in refused.content.decode(), "no setting would allow it"
    assert not Channel.objects.exists()
    assert add_channel(client, "webhook", "http://10.20.30.40/hook").status_code == 200, "a private relay is allowed"
    assert Channel.objects.count() == 1


def test_https_is_required_unless_http_is_allowed(client, alice, settings):
    settings.ALERT_WEBHOOK_ALLOW_HTTP = False
    client.force_login(alice)
    response = add_channel(client, "slack", "http://1.1.1.1/services/x")
    assert response.status_code == 400 and "must use https://" in response.content.decode()
    assert add_channel(client, "webhook", "https://user:pw@1.1.1.1/hook").status_code == 400
    assert add_channel(client, "slack", "https://1.1.1.1" + SLACK_PATH).status_code == 302
    assert Channel.objects.get().target == "https://1.1.1.1" + SLACK_PATH


def test_a_loopback_receiver_gets_the_post_when_private_targets_are_allowed(client, alice, allow_loopback, receiver,
                                                                           worker):
    catcher = receiver()
    client.force_login(alice)
    assert add_channel(client, "slack", f"http://localhost:{catcher.port}/hook").status_code == 302
    client.post(f"/alerts/channels/{Channel.objects.get().pk}/test/")
    worker()
    assert len(catcher.received) == 1 and catcher.received[0].path == "/hook"
    assert Delivery.objects.get().status == "sent"


def test_the_target_is_checked_again_at_send_time(client, alice, allow_loopback, receiver, worker):
    catcher = receiver()
    client.force_login(alice)
    add_channel(client, "webhook", f"{catcher.url}/hook")
    allow_loopback.ALERT_WEBHOOK_ALLOW_PRIVATE = False  # as if the name now resolved somewhere private
    raise_alert(an_alert())
    worker()
    delivery = Delivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == 1
    assert "Not sent" in delivery.last_error and "does not resolve to public addresses only" in delivery.last_error
    assert catcher.received == []


# ---- shapes and signatures ------------------------------------------------------------------------------

def test_the_generic_webhook_is_signed_with_the_secret_shown_once(client, alice, allow_loopback, receiver, worker):
    catcher = receiver()
    client.force_login(alice)
    created = add_channel(client, "webhook", f"{catcher.url}/ltr")
    assert created.status_code == 200 and created["Cache-Control"] == "no-store"
    secret = re.search(r'id="webhook-secret"[^>]*value="([^"]+)"', created.content.decode()).group(1)
    assert len(secret) >= 40
    index = client.get("/alerts/").content.decode()
    assert secret not in index and f"…{secret[-4:]}" in index

    raise_alert(an_alert())
    worker()
    caught = catcher.received[0]
    assert verify(secret, caught.body, caught.headers)
    assert not verify(secret, caught.body + b" ", caught.headers), "a changed body fails"
    assert not verify("another-secret", caught.body, caught.headers)
    assert caught.headers["X-LTR-Signature"].startswith("sha256=")
    assert abs(int(caught.headers["X-LTR-Timestamp"]) - time.time()) < 30
    body = caught.json()
    assert body["kind"] == "readiness_changed" and body["title"] == "pg-ledger is not ready"
    assert body["url"] == "https://ltr.example.com/servers/12/" and body["facts"] == {"Server": "pg-ledger",
                                                                                        "Since": "02:10"}
    assert body["delivery_id"] == Delivery.objects.get().pk == int(caught.headers["X-LTR-Delivery"])


def test_slack_gets_text_and_blocks(client, alice, allow_loopback, receiver, worker):
    catcher = receiver()
    client.force_login(alice)
    add_channel(client, "slack", f"{catcher.url}{SLACK_PATH}")
    raise_alert(an_alert())
    worker()
    caught = catcher.received[0]
    assert caught.headers["Content-Type"] == "application/json" and "X-LTR-Signature" not in caught.headers
    body = caught.json()
    assert set(body) == {"text", "blocks"}
    assert "&lt;with&gt;" in body["text"] and "&amp;" in body["text"], "Slack's mrkdwn escapes &, < and >"
    assert "<https://ltr.example.com/servers/12/|Open>" in body["text"]
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "actions"]
    assert body["blocks"][0]["text"] == {"type": "plain_text", "text": "pg-ledger is not ready"}
    assert body["blocks"][2]["fields"][0] == {"type": "mrkdwn", "text": "*Server*\npg-ledger"}
    assert body["blocks"][3]["elements"][0]["url"] == "https://ltr.example.com/servers/12/"


def test_teams_gets_a_message_with_an_adaptive_card(client, alice, allow_loopback, receiver, worker):
    catcher = receiver()
    client.force_login(alice)
    add_channel(client, "teams", f"{catcher.url}/workflows/abc/triggers/manual/paths/invoke?sig=SIGpart9876")
    raise_alert(an_alert())
    worker()
    assert catcher.received[0].path.endswith("?sig=SIGpart9876")
    body = catcher.received[0].json()
    assert body["type"] == "message" and len(body["attachments"]) == 1
    attachment = body["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["body"][0] == {"type": "RichTextBlock", "inlines": [
        {"type": "TextRun", "text": "pg-ledger is not ready", "weight": "Bolder", "size": "Medium"}]}
    assert card["body"][2:] == [
        {"type": "RichTextBlock", "spacing": "Medium", "inlines": [
            {"type": "TextRun", "text": "Server: ", "weight": "Bolder"}, {"type": "TextRun", "text": "pg-ledger"}]},
        {"type": "RichTextBlock", "spacing": "None", "inlines": [
            {"type": "TextRun", "text": "Since: ", "weight": "Bolder"}, {"type": "TextRun", "text": "02:10"}]}]
    assert not [block for block in card["body"] if block["type"] != "RichTextBlock"], "no Markdown anywhere"
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open in the dashboard",
                                "url": "https://ltr.example.com/servers/12/"}]


def test_email_reaches_a_real_smtp_server(client, alice, smtp, worker):
    client.force_login(alice)
    add_channel(client, "email", "dba@contoso.example; oncall@contoso.example")
    raise_alert(an_alert())
    worker()
    assert Delivery.objects.get().status == "sent"
    [envelope] = smtp.messages
    assert sorted(envelope.rcpt_tos) == ["dba@contoso.example", "oncall@contoso.example"]
    assert envelope.mail_from == "ltr@contoso.example"
    text = envelope.content.decode()
    assert "Subject: [LTR] pg-ledger is not ready" in text
    assert "https://ltr.example.com/servers/12/" in text and "Server: pg-ledger" in text


def test_an_unreachable_smtp_server_is_retried_then_failed(client, alice, allow_loopback, worker):
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        allow_loopback.MAILERS = smtp_mailer(probe.getsockname()[1])
    client.force_login(alice)
    add_channel(client, "email", "dba@contoso.example")
    raise_alert(an_alert())
    worker()
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 4)
    assert "E-mail not sent: ConnectionRefusedError" in delivery.last_error


# ---- retries, timeouts, the log -------------------------------------------------------------------------

def test_a_500_then_200_is_retried_and_ends_sent_after_two_attempts(client, alice, allow_loopback, receiver, worker):
    catcher = receiver(statuses=[500, 200])
    client.force_login(alice)
    add_channel(client, "webhook", f"{catcher.url}/hook")
    raise_alert(an_alert())
    worker()
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 2, "")
    assert len(catcher.received) == 2
    assert catcher.received[0].headers["X-LTR-Delivery"] == catcher.received[1].headers["X-LTR-Delivery"]


def test_retries_wait_for_the_configured_backoff(client, alice, allow_loopback, receiver, worker):
    allow_loopback.ALERT_RETRY_DELAYS = [30, 120, 600]
    catcher = receiver(statuses=[500, 500, 200])
    client.force_login(alice)
    add_channel(client, "webhook", f"{catcher.url}/hook")
    raise_alert(an_alert())
    for attempt, delay in ((1, 30), (2, 120)):
        before = timezone.now()
        worker()
        assert len(catcher.received) == attempt, "the retry waits for its run_after"
        retry = DBTaskResult.objects.filter(status="READY").get()
        assert timedelta(seconds=delay - 2) < retry.run_after - before < timedelta(seconds=delay + 5)
        delivery = Delivery.objects.get()
        assert delivery.status == "queued" and delivery.attempts == attempt and "HTTP 500" in delivery.last_error
        page = client.get("/alerts/").content.decode()
        assert "Retrying at" in page
        DBTaskResult.objects.filter(pk=retry.pk).update(run_after=timezone.now())  # time passes
    worker()
    assert Delivery.objects.get().status == "sent" and len(catcher.received) == 3


def test_a_receiver_that_always_fails_ends_failed_and_is_shown(client, alice, allow_loopback, receiver, worker):
    catcher = receiver(statuses=[500])
    client.force_login(alice)
    add_channel(client, "webhook", f"{catcher.url}/hook", name="Always broken")
    raise_alert(an_alert())
    worker()
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 4)
    assert delivery.last_error == "HTTP 500: catcher answered 500"
    assert len(catcher.received) == 4
    page = client.get("/alerts/").content.decode()
    row = page[page.index(f'id="delivery-{delivery.pk}"'):]
    row = row[:row.index("</tr>")]
    assert "Always broken" in row and "Failed" in row and "HTTP 500: catcher answered 500" in row and ">4<" in row


def test_a_receiver_that_never_answers_is_cut_by_the_timeout(client, alice, allow_loopback, receiver, worker):
    allow_loopback.ALERT_WEBHOOK_TIMEOUT = 0.5
    allow_loopback.ALERT_RETRY_DELAYS = []
    catcher = receiver(delay=5)
    client.force_login(alice)
    add_channel(client, "teams", f"{catcher.url}/hook")
    raise_alert(an_alert())
    started = time.monotonic()
    worker()
    assert time.monotonic() - started < 3
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.last_error) == ("failed", "No answer within 0.5 s.")


def test_a_redirect_is_not_followed(client, alice, allow_loopback, receiver, worker):
    catcher = receiver(statuses=[302])
    client.force_login(alice)
    add_channel(client, "webhook", f"{catcher.url}/hook")
    raise_alert(an_alert())
    worker()
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1) and "redirects are not followed" in delivery.last_error
    assert len(catcher.received) == 1


def test_a_task_delivered_twice_sends_once(client, alice, allow_loopback, receiver, worker):
    catcher = receiver()
    client.force_login(alice)
    add_channel(client, "webhook", f"{catcher.url}/hook")
    [delivery] = raise_alert(an_alert())
    deliver.enqueue(delivery.pk, 1)
    worker()
    assert len(catcher.received) == 1 and Delivery.objects.get().attempts == 1


def test_a_deleted_channel_fails_its_queued_delivery_visibly(client, alice, allow_loopback, receiver, worker):
    catcher = receiver()
    client.force_login(alice)
    add_channel(client, "webhook", f"{catcher.url}/hook", name="Gone soon")
    raise_alert(an_alert())
    client.post(f"/alerts/channels/{Channel.objects.get().pk}/delete/")
    worker()
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.channel_name) == ("failed", "Gone soon") and "deleted" in delivery.last_error
    assert catcher.received == []


def test_raise_alert_goes_to_the_tenants_enabled_channels_only(alice, charlie, allow_loopback):
    def channel(tenant, name, enabled=True):
        c = Channel(tenant_id=tenant, name=name, kind="webhook", enabled=enabled)
        c.set_target("https://1.1.1.1/x", "https://1.1.1.1/…/x")
        c.set_secret("s" * 40)
        c.save()
        return c

    channel(CONTOSO, "on"), channel(CONTOSO, "off", enabled=False), channel(FABRIKAM, "theirs")
    deliveries = raise_alert(an_alert())
    assert [d.channel_name for d in deliveries] == ["on"]
    assert raise_alert(an_alert(tenant_id="no-such-tenant")) == []
    with pytest.raises(ValueError, match="Unknown alert kind"):
        an_alert(kind="server_exploded")
    with pytest.raises(AttributeError):
        an_alert().title = "changed"  # frozen


# ---- the test button, the page, secrets -----------------------------------------------------------------

def test_the_test_button_queues_through_htmx_and_the_row_shows_the_outcome(client, alice, allow_loopback, receiver,
                                                                          worker):
    catcher = receiver()
    client.force_login(alice)
    add_channel(client, "slack", f"{catcher.url}{SLACK_PATH}", name="#db-alerts", enabled=False)
    channel = Channel.objects.get()
    row = client.post(f"/alerts/channels/{channel.pk}/test/", headers={"HX-Request": "true"})
    assert row.status_code == 200
    delivery = Delivery.objects.get()
    assert f'id="delivery-{delivery.pk}"' in row.content.decode() and 'hx-trigger="every 2s"' in row.content.decode()
    worker()
    polled = client.get(f"/alerts/deliveries/{delivery.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert "Sent" in polled and "hx-trigger" not in polled
    assert catcher.received[0].json()["text"].startswith("Test message for #db-alerts")


def test_editing_keeps_the_url_unless_a_new_one_is_given_and_never_shows_it(client, alice, allow_loopback, receiver):
    catcher = receiver()
    client.force_login(alice)
    url = f"{catcher.url}{SLACK_PATH}"
    add_channel(client, "slack", url)
    channel = Channel.objects.get()
    edit = client.get(f"/alerts/channels/{channel.pk}/").content.decode()
    assert SLACK_PATH not in edit and f"{catcher.url}/…1234" in edit
    client.post(f"/alerts/channels/{channel.pk}/", {"name": "Renamed", "target": ""})
    channel.refresh_from_db()
    assert (channel.name, channel.enabled, channel.target) == ("Renamed", False, url)
    refused = client.post(f"/alerts/channels/{channel.pk}/", {"name": "Renamed", "target": "ftp://x", "enabled": "on"})
    assert refused.status_code == 400 and "starting with https://" in refused.content.decode()
    assert bytes(Channel.objects.get().target_encrypted).find(SLACK_PATH.encode()) == -1, "encrypted at rest"


def test_email_targets_are_validated(client, alice):
    client.force_login(alice)
    response = add_channel(client, "email", "dba@contoso.example, not-an-address")
    assert response.status_code == 400 and "“not-an-address” is not an e-mail address." in response.content.decode()
    assert not Channel.objects.exists()


def test_no_secret_or_full_url_reaches_the_logs(client, alice, allow_loopback, receiver, worker, caplog):
    caplog.set_level(logging.DEBUG)
    failing = receiver(statuses=[500])
    working = receiver()
    client.force_login(alice)
    created = add_channel(client, "webhook", f"{working.url}{SLACK_PATH}")
    secret = re.search(r'value="([^"]{40,})"', created.content.decode()).group(1)
    add_channel(client, "slack", f"{failing.url}{SLACK_PATH}", name="Failing")
    for channel in Channel.objects.all():
        client.post(f"/alerts/channels/{channel.pk}/test/")
    worker()
    assert sorted(Delivery.objects.values_list("status", flat=True)) == ["failed", "sent"]
    assert caplog.records, "the worker logged its outcomes"
    logged = caplog.text + json.dumps([r.__dict__ for r in caplog.records], default=str)
    for needle in (secret, SLACK_PATH, "XyZsecretTokenPart1234"):
        assert needle not in logged
    for page in ("/alerts/", f"/alerts/channels/{Channel.objects.first().pk}/"):
        html = client.get(page).content.decode()
        assert secret not in html and SLACK_PATH not in html


# ---- access ---------------------------------------------------------------------------------------------

PAGES = ["/alerts/", "/alerts/channels/add/", "/alerts/channels/{pk}/", "/alerts/deliveries/{delivery}/"]
POSTS = ["/alerts/channels/add/", "/alerts/channels/{pk}/", "/alerts/channels/{pk}/delete/",
         "/alerts/channels/{pk}/test/"]


@pytest.fixture
def contoso_channel(alice):
    channel = Channel(tenant_id=CONTOSO, name="Contoso ops", kind="email", created_by=alice)
    channel.set_target("ops@contoso.example", "ops@contoso.example")
    channel.save()
    delivery = Delivery.objects.create(tenant_id=CONTOSO, channel=channel, channel_name=channel.name, kind="test",
                                       title="Contoso test", payload=an_alert().as_payload())
    return channel, delivery


@pytest.mark.parametrize("path", PAGES + POSTS)
def test_every_alerts_page_needs_sign_in(client, contoso_channel, path):
    channel, delivery = contoso_channel
    response = client.get(path.format(pk=channel.pk, delivery=delivery.pk))
    assert response.status_code == 302 and response["Location"].startswith("/auth/signin/?next=")


@pytest.mark.parametrize("path", POSTS)
def test_every_alerts_post_needs_a_csrf_token(alice, contoso_channel, path):
    channel, _ = contoso_channel
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(path.format(pk=channel.pk), {"name": "x", "kind": "email", "target": "a@b.example"})
    assert response.status_code == 403
    assert Channel.objects.count() == 1 and Channel.objects.get().name == "Contoso ops"
    assert Delivery.objects.count() == 1


@pytest.mark.parametrize("path", ["/alerts/channels/{pk}/", "/alerts/deliveries/{delivery}/"])
def test_another_tenants_channel_or_delivery_is_not_found(client, charlie, contoso_channel, path):
    channel, delivery = contoso_channel
    client.force_login(charlie)
    assert client.get(path.format(pk=channel.pk, delivery=delivery.pk)).status_code == 404


def test_another_tenant_cannot_change_test_or_delete_a_channel_nor_see_it(client, charlie, contoso_channel):
    channel, _ = contoso_channel
    client.force_login(charlie)
    for path in ("/alerts/channels/{pk}/", "/alerts/channels/{pk}/delete/", "/alerts/channels/{pk}/test/"):
        assert client.post(path.format(pk=channel.pk), {"name": "mine", "target": ""}).status_code == 404
    assert Channel.objects.get().name == "Contoso ops" and Delivery.objects.count() == 1
    page = client.get("/alerts/").content.decode()
    assert "Contoso ops" not in page and "Contoso test" not in page
    assert client.get(f"/alerts/channels/{'9' * 25}/").status_code == 404


# ---- settings -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "value"), [("ALERT_RETRY_DELAYS", "30,soon"), ("ALERT_RETRY_DELAYS", "-1"),
                                             ("ALERT_WEBHOOK_ALLOW_PRIVATE", "maybe"), ("EMAIL_PORT", "smtp"), ("EMAIL_USE_TLS", "sure"),
                                             ("ALERT_WEBHOOK_TIMEOUT", "0"),
                                             ("ALERT_BURST_LIMIT", "-1"), ("ALERT_BURST_LIMIT", "many"),
                                             ("ALERT_BURST_WINDOW", "0"), ("ALERT_LOG_RETENTION_DAYS", "-1"),
                                             ("ALERT_LOG_RETENTION_DAYS", "ninety"), ("ALERT_TESTS_PER_HOUR", "0")])
def test_a_malformed_alert_setting_stops_start_up(name, value):
    env = {"PATH": "/usr/bin:/bin", "DEMO_MODE": "1", "DJANGO_SETTINGS_MODULE": "config.settings", name: value}
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    assert result.returncode != 0 and "ImproperlyConfigured" in result.stderr and name in result.stderr


def test_the_send_connects_to_the_checked_address_not_a_fresh_lookup(allow_loopback, receiver):
    """DNS rebinding: the name is not looked up again when connecting (here it could not be resolved at all)."""
    from alerts.targets import CheckedTarget
    from alerts.transports import _post

    catcher = receiver()
    target = CheckedTarget(url=f"http://alerts.invalid:{catcher.port}/hook", host="alerts.invalid",
                           port=catcher.port, address="127.0.0.1")
    _post(target, b"{}", {"Content-Type": "application/json"})
    assert catcher.received[0].headers["Host"] == f"alerts.invalid:{catcher.port}"


def test_the_catcher_logs_what_it_caught_and_checks_signatures(caplog):
    from alerts.signing import sign

    caplog.set_level(logging.INFO, logger="alerts.catcher")
    catcher = Catcher(secret="s3cret").start()
    try:
        import requests

        body = b'{"kind": "test", "title": "Hello"}'
        requests.post(f"{catcher.url}/x", data=body, headers=sign("s3cret", body), timeout=5)
        requests.post(f"{catcher.url}/x", data=body, headers=sign("wrong", body), timeout=5)
    finally:
        catcher.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "alerts.catcher"]
    assert "title='Hello' -> 200 signature=valid" in lines[0] and "signature=INVALID" in lines[1]


def test_a_delivery_whose_worker_died_mid_send_is_retried(client, alice, allow_loopback, receiver, worker):
    from alerts.delivery import reap_stuck

    catcher = receiver()
    client.force_login(alice)
    add_channel(client, "webhook", f"{catcher.url}/hook")
    [delivery] = raise_alert(an_alert())
    DBTaskResult.objects.all().delete()  # the task was claimed by a worker that was then killed
    Delivery.objects.filter(pk=delivery.pk).update(attempts=1, sending_since=timezone.now() - timedelta(minutes=10))
    fresh = raise_alert(an_alert(title="still sending"))[0]
    Delivery.objects.filter(pk=fresh.pk).update(attempts=1, sending_since=timezone.now())
    assert reap_stuck() == 1
    DBTaskResult.objects.filter(args_kwargs__args__0=fresh.pk).delete()
    worker()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2) and len(catcher.received) == 1


def test_facts_keep_their_order_through_the_database(db):
    facts = {"Server": "pg-ledger", "Resource group": "rg", "Since": "02:10", "A": "first-sorted-key"}
    channel = Channel(tenant_id=CONTOSO, name="x", kind="email")
    channel.set_target("a@contoso.example", "a@contoso.example")
    channel.save()
    [delivery] = raise_alert(an_alert(facts=facts))
    delivery.refresh_from_db()
    assert list(Alert.from_payload(delivery.payload).facts.items()) == list(facts.items())


def test_a_pinned_https_send_still_checks_the_certificate_against_the_urls_host(sim, allow_loopback):
    """The simulator's certificate names localhost: pinned to 127.0.0.1, https://localhost verifies (the
    simulator answers), a name the certificate does not carry fails, and an untrusted CA fails."""
    from urllib.parse import urlsplit

    from alerts.targets import CheckedTarget
    from alerts.transports import SendFailed, _post

    port = urlsplit(sim.https_url).port

    def post(host):
        _post(CheckedTarget(url=f"https://{host}:{port}/alerts-probe", host=host, port=port, address="127.0.0.1"),
              b"{}", {"Content-Type": "application/json"})

    allow_loopback.ALERT_WEBHOOK_CA_BUNDLE = str(sim.ca_path)
    with pytest.raises(SendFailed, match=r"^HTTP \d{3}"):
        post("localhost")
    assert sim.received("/alerts-probe", "POST")
    for host, settings_ca in (("alerts.invalid", str(sim.ca_path)), ("localhost", "")):
        allow_loopback.ALERT_WEBHOOK_CA_BUNDLE = settings_ca
        with pytest.raises(SendFailed, match="TLS failed"):
            post(host)


# ---- bursts: a channel sends ALERT_BURST_LIMIT alone a window, then holds the rest for one summary -------

def webhook_bodies(catcher) -> list[dict]:
    return [json.loads(request.body) for request in catcher.received]


def summary_task():
    return DBTaskResult.objects.filter(status="READY").get()


@pytest.fixture
def burst(allow_loopback):
    allow_loopback.ALERT_BURST_LIMIT, allow_loopback.ALERT_BURST_WINDOW = 3, 300
    return allow_loopback


def burst_to_a_webhook(client, user, receiver, alerts: int, **channel):
    """A webhook channel to a fresh catcher, then `alerts` alerts raised ("alert 0", "alert 1", ...); the catcher."""
    catcher = receiver()
    client.force_login(user)
    add_channel(client, "webhook", f"{catcher.url}/hook", **channel)
    for n in range(alerts):
        raise_alert(an_alert(title=f"alert {n}"))
    return catcher


def test_a_burst_sends_the_limit_alone_then_one_summary_of_the_rest(client, alice, burst, receiver, worker):
    catcher = receiver()
    client.force_login(alice)
    add_channel(client, "webhook", f"{catcher.url}/hook")
    before = timezone.now()
    for n in range(26):
        raise_alert(an_alert(title=f"pg-{n:02} is not ready for long-term backups"))
    after = timezone.now()
    worker()
    bodies = webhook_bodies(catcher)
    assert [b["title"] for b in bodies] == [f"pg-{n:02} is not ready for long-term backups" for n in range(3)]
    due = summary_task().run_after  # the summary waits a window from the first alert it holds
    assert before + timedelta(seconds=298) < due < after + timedelta(seconds=302)
    assert Delivery.objects.filter(status="held").count() == 23
    page = client.get("/alerts/").content.decode()
    assert "it goes out in the channel&#x27;s next summary" in page and "with the alerts held until then" in page
    assert "A channel sends at most 3" in page
    summary_row = page[page.index(f'id="delivery-{Delivery.objects.get(kind="summary").pk}"'):]
    assert 'hx-trigger="every 30s"' in summary_row[:summary_row.index(">")], "a waiting summary polls rarely"

    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())  # the window passes
    worker()
    [summary] = webhook_bodies(catcher)[3:]
    assert summary["kind"] == "summary" and summary["title"] == "Summary of 23 alerts: 23 readiness changes"
    listed = [f"• pg-{n:02} is not ready for long-term backups" for n in range(3, 23)]
    assert summary["text"].splitlines()[1:] == [*listed, "… and 3 more: the delivery log lists every one."]
    assert summary["facts"]["Alerts"] == "23" and summary["facts"]["Readiness changes"] == "23"
    sent = Delivery.objects.get(kind="summary")
    assert sent.status == "sent" and sent.held_alerts.count() == 23
    assert not Delivery.objects.filter(status="held").exists()
    page = client.get("/alerts/").content.decode()
    assert page.count("Sent in a summary at") == 23 and "Summary of 23 alerts" in page


def test_at_the_defaults_a_channel_sends_10_alone_then_holds_the_rest_for_5_minutes(client, alice, allow_loopback,
                                                                                    receiver, worker):
    """The README's 10 and 5 minutes: the settings as the project ships them (the other tests set smaller ones)."""
    assert (allow_loopback.ALERT_BURST_LIMIT, allow_loopback.ALERT_BURST_WINDOW) == (10, 300), "not overridden"
    catcher = burst_to_a_webhook(client, alice, receiver, 12)
    worker()
    assert [b["title"] for b in webhook_bodies(catcher)] == [f"alert {n}" for n in range(10)]
    assert Delivery.objects.filter(status="held").count() == 2
    assert timedelta(seconds=290) < summary_task().run_after - timezone.now() <= timedelta(seconds=300)


def test_a_burst_ends_when_the_window_has_room_again(client, alice, burst, receiver, worker):
    catcher = receiver()
    client.force_login(alice)
    add_channel(client, "webhook", f"{catcher.url}/hook")
    for n in range(4):
        raise_alert(an_alert(title=f"first {n}"))
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())
    worker()
    assert [b["title"] for b in webhook_bodies(catcher)] == ["first 0", "first 1", "first 2", "Summary of 1 alert: "
                                                            "1 readiness change"]
    Delivery.objects.update(created_at=timezone.now() - timedelta(seconds=301))  # a window later
    [delivery] = raise_alert(an_alert(title="alone again"))
    assert delivery.status == "queued"
    worker()
    assert webhook_bodies(catcher)[-1]["title"] == "alone again"


def test_alerts_held_after_a_summary_was_claimed_wait_for_the_next(client, alice, burst, receiver, worker):
    from alerts.delivery import _claim

    catcher = burst_to_a_webhook(client, alice, receiver, 5)
    first = Delivery.objects.get(kind="summary")
    assert _claim(first.pk, 1)  # a worker takes the summary and is sending it right now
    [late] = raise_alert(an_alert(title="late"))
    second = Delivery.objects.exclude(pk=first.pk).get(kind="summary")
    assert late.status == "held" and (second.status, second.attempts) == ("queued", 0)
    assert sorted(first.held_alerts.values_list("title", flat=True)) == ["alert 3", "alert 4"]
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())
    worker()
    [summary] = [b for b in webhook_bodies(catcher) if b["kind"] == "summary"]
    assert summary["facts"]["Alerts"] == "1" and "• late" in summary["text"]


def test_a_test_message_is_never_held(client, alice, burst, receiver, worker):
    burst.ALERT_BURST_LIMIT = 1
    catcher = receiver()
    client.force_login(alice)
    add_channel(client, "webhook", f"{catcher.url}/hook")
    raise_alert(an_alert(title="alone"))
    raise_alert(an_alert(title="held"))
    client.post(f"/alerts/channels/{Channel.objects.get().pk}/test/")
    worker()
    assert [b["title"] for b in webhook_bodies(catcher)] == ["alone", "Test message for Ops"]


def test_a_limit_of_zero_holds_nothing(client, alice, burst, receiver, worker):
    burst.ALERT_BURST_LIMIT = 0
    catcher = burst_to_a_webhook(client, alice, receiver, 12)
    worker()
    assert len(catcher.received) == 12 and not Delivery.objects.filter(kind="summary").exists()


def test_a_summary_in_teams_has_a_line_a_held_alert(client, alice, burst, receiver, worker):
    burst.ALERT_BURST_LIMIT = 1
    catcher = receiver()
    client.force_login(alice)
    add_channel(client, "teams", f"{catcher.url}/workflows/abc/triggers/manual/paths/invoke?sig=SIGpart9876")
    for name in ("pg-a", "pg-b", "pg-c"):
        raise_alert(an_alert(title=f"{name} is not ready for long-term backups"))
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())
    worker()
    card = catcher.received[-1].json()["attachments"][0]["content"]
    texts = ["".join(run["text"] for run in block["inlines"]) for block in card["body"]]
    assert texts[0] == "Summary of 2 alerts: 2 readiness changes" and texts[1].startswith("More than 1 alert reached")
    assert texts[2:4] == ["• pg-b is not ready for long-term backups", "• pg-c is not ready for long-term backups"]
    assert texts[4] == "Alerts: 2"


def test_a_summary_by_e_mail_lists_the_held_alerts(client, alice, burst, smtp, worker):
    burst.ALERT_BURST_LIMIT = 1
    client.force_login(alice)
    add_channel(client, "email", "dba@contoso.example")
    raise_alert(an_alert(title="pg-a is not ready for long-term backups"))
    raise_alert(an_alert(title="pg-b is not ready for long-term backups"))
    raise_alert(an_alert(kind=AlertKind.LTR_BACKUP_FAILED, title="The LTR backup of pg-c failed"))
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())
    worker()
    assert len(smtp.messages) == 2
    mail = smtp.messages[1].content.decode()
    assert "Subject: [LTR] Summary of 2 alerts: 1 failed LTR backup, 1 readiness change" in mail
    assert "=E2=80=A2 pg-b is not ready" in mail or "• pg-b is not ready" in mail


def test_deleting_a_channel_fails_its_held_alerts_and_summary_visibly(client, alice, burst, receiver, worker):
    burst.ALERT_BURST_LIMIT = 1
    catcher = burst_to_a_webhook(client, alice, receiver, 3, name="Gone soon")
    worker()
    client.post(f"/alerts/channels/{Channel.objects.get().pk}/delete/")
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())
    worker()
    rows = dict(Delivery.objects.values_list("title", "status"))
    assert rows.pop("alert 0") == "sent" and set(rows.values()) == {"failed"} and len(rows) == 3
    assert Delivery.objects.filter(last_error="The channel was deleted before its summary was sent.").count() == 2
    assert Delivery.objects.get(kind="summary").last_error == "The channel was deleted before this summary was sent."
    assert len(catcher.received) == 1


def test_gathering_a_summary_reads_the_same_queries_for_5_or_200_held(client, alice, burst, receiver):
    from alerts import bursts

    client.force_login(alice)
    add_channel(client, "webhook", f"{receiver().url}/hook")
    channel = Channel.objects.get()
    counts = []
    for held in (5, 200):
        Delivery.objects.all().delete()
        raise_alert(an_alert())
        summary = bursts.new_summary(channel)
        Delivery.objects.bulk_create([Delivery(tenant_id=CONTOSO, channel=channel, channel_name="Ops", kind="test",
                                               title=f"t{n}", payload={}, status="held") for n in range(held)])
        with CaptureQueriesContext(connection) as queries:
            assert bursts.gather(summary) == held
        counts.append(len(queries))
    assert counts[0] == counts[1]


@pytest.mark.django_db(transaction=True)
def test_two_workers_raising_at_once_cannot_both_send_past_the_limit(alice, burst, monkeypatch):
    """Each raise pauses after counting the window until the other has counted too (or 1 s): side by side, both
    would count none and both send alone past a limit of one. The channel's lock makes the second wait."""
    import threading

    from alerts import bursts

    burst.ALERT_BURST_LIMIT = 1
    contoso_webhook_channel()
    both_counted, counted = threading.Barrier(2, timeout=1), bursts.sent_alone

    def count_then_wait(*args):
        n = counted(*args)
        try:
            both_counted.wait()
        except threading.BrokenBarrierError:
            pass
        return n

    monkeypatch.setattr(bursts, "sent_alone", count_then_wait)

    def raise_one(title):
        try:
            raise_alert(an_alert(title=title))
        finally:
            connection.close()

    threads = [threading.Thread(target=raise_one, args=(title,)) for title in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(Delivery.objects.values_list("status", flat=True)) == ["held", "queued", "queued"]
    assert Delivery.objects.filter(kind="summary", status="queued").count() == 1


def test_a_summary_whose_task_was_lost_is_queued_again_and_sent(client, alice, burst, receiver, worker):
    from alerts.delivery import mend_bursts

    catcher = burst_to_a_webhook(client, alice, receiver, 5)
    worker()
    DBTaskResult.objects.all().delete()  # its worker died claiming it: the claim rolled back, the task is gone
    Delivery.objects.filter(kind="summary").update(next_attempt_at=timezone.now() - timedelta(minutes=3))
    assert mend_bursts() == 1 and mend_bursts() == 0, "queued again once, not at every pass"
    worker()
    assert webhook_bodies(catcher)[-1]["title"] == "Summary of 2 alerts: 2 readiness changes"
    assert not Delivery.objects.filter(status="held").exists()


def test_alerts_held_with_no_summary_waiting_get_one(client, alice, burst, receiver, worker):
    from alerts.delivery import mend_bursts

    catcher = burst_to_a_webhook(client, alice, receiver, 5)
    worker()
    # As if its task could not be queued: the summary failed, its two alerts stayed held.
    Delivery.objects.filter(kind="summary").update(status="failed", last_error="Could not be handed to the task "
                                                   "queue.")
    DBTaskResult.objects.all().delete()
    assert mend_bursts() == 1
    worker()  # due now: no window to wait for, they waited already
    assert webhook_bodies(catcher)[-1]["title"] == "Summary of 2 alerts: 2 readiness changes"
    assert Delivery.objects.filter(status="summarized").count() == 2


def test_alerts_held_for_a_channel_deleted_meanwhile_are_failed(client, alice, burst, receiver):
    from alerts.delivery import mend_bursts

    burst_to_a_webhook(client, alice, receiver, 5)
    Delivery.objects.filter(status="held").update(channel=None)  # what a hold racing the delete can leave
    assert mend_bursts() == 2
    assert set(Delivery.objects.filter(title__in=["alert 3", "alert 4"]).values_list("status", flat=True)) == {
        "failed"}


def contoso_webhook_channel() -> Channel:
    channel = Channel(tenant_id=CONTOSO, name="Ops", kind="webhook")
    channel.set_target("https://ops.example/hook", "https://ops.example/…hook")
    channel.save()
    return channel


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite lets one writer in at a time")
def test_a_summary_claimed_while_an_alert_is_being_held_waits_for_it(alice, burst, monkeypatch):
    """A worker holds an alert for the waiting summary and has not committed yet when another claims that summary:
    the claim waits (the holder's shared lock on the summary's row), so the alert goes out in it."""
    import threading

    from alerts import bursts
    from alerts.delivery import _claim

    burst.ALERT_BURST_LIMIT = 1
    contoso_webhook_channel()
    raise_alert(an_alert(title="alone"))
    raise_alert(an_alert(title="first held"))
    summary = Delivery.objects.get(kind="summary")
    inserted, claimed, held = threading.Event(), threading.Event(), bursts.held

    def held_then_wait(*args):
        row = held(*args)
        inserted.set()
        claimed.wait(timeout=1)  # until the claim is done, or 1 s if the claim waits for this transaction
        return row

    monkeypatch.setattr(bursts, "held", held_then_wait)

    errors = {}
    holder = _in_a_thread(lambda: raise_alert(an_alert(title="held while claiming")), errors, "hold")
    assert inserted.wait(timeout=5)
    claimer = _in_a_thread(lambda: (_claim(summary.pk, 1), claimed.set()), errors, "claim")
    claimer.join()
    holder.join()
    assert sorted(summary.held_alerts.values_list("title", flat=True)) == ["first held", "held while claiming"]
    assert not Delivery.objects.filter(status="held").exists()


# ---- the delivery log at fleet scale: keyset pages ------------------------------------------------------

def many_deliveries(n: int, tenant_id=CONTOSO):
    start = timezone.now() - timedelta(hours=1)
    Delivery.objects.bulk_create([
        Delivery(tenant_id=tenant_id, channel_name="Ops", kind="readiness_changed", title=f"alert {i:04}", payload={},
                 status="sent", created_at=start + timedelta(seconds=i)) for i in range(n)])


def test_the_delivery_log_pages_by_cursor_through_every_delivery(client, alice):
    many_deliveries(60)
    many_deliveries(5, tenant_id=FABRIKAM)
    client.force_login(alice)
    seen, url = [], "/alerts/"
    while url:
        page = client.get(url).content.decode()
        assert "60 deliveries" in page
        seen += re.findall(r">(alert \d{4})<", page)
        older = re.search(r'href="\?cursor=([^"]+)" rel="next"', page)
        url = f"/alerts/?cursor={older.group(1)}" if older else ""
    assert seen == [f"alert {i:04}" for i in reversed(range(60))]
    page = client.get("/alerts/?cursor=edited").content.decode()
    assert "That page link was cut or edited" in page and "showing the newest deliveries" in page


def test_the_delivery_log_reads_the_same_queries_for_10_or_1000_deliveries(client, alice, django_assert_max_num_queries):
    client.force_login(alice)
    counts = []
    for n in (10, 990):
        many_deliveries(n)
        client.get("/alerts/")
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/alerts/").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


# ---- the delivery log's retention -----------------------------------------------------------------------

def a_delivery(days_ago: float, status="sent", **fields) -> Delivery:
    return Delivery.objects.create(**{"tenant_id": CONTOSO, "channel_name": "Ops", "kind": "readiness_changed",
                                      "title": f"{status}, {days_ago} days ago", "payload": {}, "status": status,
                                      "created_at": timezone.now() - timedelta(days=days_ago), **fields})


def test_the_worker_deletes_ended_deliveries_past_the_retention_and_keeps_the_rest(client, alice, settings):
    from django.utils.module_loading import import_string

    settings.ALERT_LOG_RETENTION_DAYS = 90
    gone = [a_delivery(91), a_delivery(120, "failed"), a_delivery(400, "summarized")]
    # Still to end, however old: kept.
    kept = [a_delivery(91, "queued"), a_delivery(89), a_delivery(89, "failed")]
    # A summary older than the retention whose last alert is not: kept with it, so that row still says where it went.
    summary = a_delivery(90.5, kind="summary", sent_at=timezone.now() - timedelta(days=89))
    a_delivery(90.4, "summarized", summary=summary)
    late = a_delivery(89.9, "summarized", summary=summary)
    kept += [summary, late]
    for path, _every in settings.WORKER_PERIODIC_JOBS:  # each of the worker's periodic jobs once, as it runs them
        import_string(path)()
    left = set(Delivery.objects.values_list("pk", flat=True))
    assert left == {d.pk for d in kept} and not left & {d.pk for d in gone}
    client.force_login(alice)
    page = client.get("/alerts/").content.decode()
    assert page.count('class="delivery-row') == 5 and "Sent in a summary at" in page
    assert "Deliveries are kept 90 days after the alert, then deleted" in " ".join(page.split())

    late.created_at = timezone.now() - timedelta(days=91)  # its last alert leaves the retention: both go
    late.save()
    from alerts.delivery import prune_old_deliveries

    assert prune_old_deliveries() == 2 and not Delivery.objects.filter(pk__in=[summary.pk, late.pk]).exists()


def test_the_retention_deletes_in_chunks_oldest_first_and_a_run_stops_after_its_share(db, monkeypatch):
    from alerts import delivery

    monkeypatch.setattr(delivery, "PRUNE_CHUNK", 3)
    monkeypatch.setattr(delivery, "PRUNE_CHUNKS_A_RUN", 2)
    old = [a_delivery(100 + n) for n in range(10)]  # the oldest is old[9]
    held = a_delivery(200, "held")  # still to be sent in a summary: kept
    with CaptureQueriesContext(connection) as queries:
        assert delivery.prune_old_deliveries(90) == 6
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 2, "a DELETE a chunk"
    assert set(Delivery.objects.values_list("pk", flat=True)) == {held.pk, *(d.pk for d in old[:4])}, "oldest first"
    assert delivery.prune_old_deliveries(90) == 4 and list(Delivery.objects.all()) == [held]
    assert delivery.prune_old_deliveries(90) == 0


def test_a_retention_of_zero_keeps_every_delivery(client, alice, settings):
    from alerts.delivery import prune_old_deliveries

    settings.ALERT_LOG_RETENTION_DAYS = 0
    a_delivery(3650)
    assert prune_old_deliveries() == 0 and Delivery.objects.count() == 1
    client.force_login(alice)
    assert "Every delivery is kept." in client.get("/alerts/").content.decode()


# ---- the test button's limit ----------------------------------------------------------------------------

def test_test_messages_are_limited_per_tenant_an_hour_and_a_refusal_says_so(client, alice, charlie, allow_loopback,
                                                                           receiver):
    allow_loopback.ALERT_TESTS_PER_HOUR = 2
    catcher = receiver()
    client.force_login(alice)
    add_channel(client, "slack", f"{catcher.url}/a", name="A")
    add_channel(client, "slack", f"{catcher.url}/b", name="B")
    a, b = Channel.objects.order_by("pk")
    assert client.post(f"/alerts/channels/{a.pk}/test/", headers={"HX-Request": "true"}).status_code == 200
    assert client.post(f"/alerts/channels/{b.pk}/test/").status_code == 302
    refused = client.post(f"/alerts/channels/{b.pk}/test/", headers={"HX-Request": "true"})
    assert refused.status_code == 429 and refused["Content-Type"].startswith("text/plain")
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert refused.content.decode().startswith("This tenant has sent 2 test messages this hour; the next can go in")
    page = client.post(f"/alerts/channels/{a.pk}/test/", follow=True).content.decode()  # without htmx: a message
    assert "This tenant has sent 2 test messages this hour" in page
    assert Delivery.objects.filter(kind="test").count() == 2, "a refused test queues nothing"
    client.force_login(charlie)  # another tenant's limit is its own
    add_channel(client, "slack", f"{catcher.url}/c", name="C")
    assert client.post(f"/alerts/channels/{Channel.objects.get(name='C').pk}/test/").status_code == 302
    assert Delivery.objects.filter(kind="test").count() == 3


def test_a_second_channel_of_the_same_name_is_refused_so_a_reloaded_add_makes_none(client, alice, charlie,
                                                                                  allow_loopback):
    client.force_login(alice)
    assert add_channel(client, "webhook", "http://10.0.0.9/hook", name="Ops").status_code == 200
    again = add_channel(client, "webhook", "http://10.0.0.9/hook", name=" ops ")  # the reload posts it again
    assert again.status_code == 400 and "A channel named “ops” exists already" in again.content.decode()
    assert Channel.objects.count() == 1
    ops = Channel.objects.get()
    assert client.post(f"/alerts/channels/{ops.pk}/", {"name": "Ops", "kind": "webhook"}).status_code == 302
    client.force_login(charlie)  # another tenant's names are its own
    assert add_channel(client, "email", "dba@fabrikam.example", name="Ops").status_code == 302


def test_a_channel_deleted_while_an_alert_is_raised_loses_the_alert_for_no_other_channel(alice, allow_loopback,
                                                                                         monkeypatch):
    from alerts import delivery

    first = Channel(tenant_id=CONTOSO, name="First", kind="webhook", enabled=True)
    second = Channel(tenant_id=CONTOSO, name="Second", kind="webhook", enabled=True)
    for channel in (first, second):
        channel.set_target("http://127.0.0.1:9/hook", "http://127.0.0.1:9/…hook")
        channel.save()
    still_there = delivery._still_there

    def deleted_in_between(channels):  # the first is deleted after the alert read its channels
        Channel.objects.filter(pk=first.pk).delete()
        return still_there(channels)

    monkeypatch.setattr(delivery, "_still_there", deleted_in_between)
    queued = raise_alert(an_alert())
    assert [d.channel_name for d in queued] == ["Second"]
    assert list(Delivery.objects.values_list("channel_name", flat=True)) == ["Second"]


def _in_a_thread(work, errors: dict, name: str):
    import threading

    def run():
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - what the other thread raised is the finding
            errors[name] = repr(exc)
        finally:
            connection.close()
    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite lets one writer in at a time")
def test_deleting_a_channel_in_a_burst_while_an_alert_is_raised_neither_deadlocks_nor_loses_it(alice, burst,
                                                                                              monkeypatch):
    """The delete holds the channel and its waiting summary when an alert to it is raised: the alert waits and
    then finds the channel gone (it took the summary's lock before the channel's: a deadlock)."""
    import threading

    from alerts import bursts, delivery

    burst.ALERT_BURST_LIMIT = 1
    channel = contoso_webhook_channel()
    raise_alert(an_alert(title="alone"))
    raise_alert(an_alert(title="first held"))
    locked, go_on, drop = threading.Event(), threading.Event(), bursts.drop_held

    def drop_then_wait(held_by):
        dropped = drop(held_by)
        locked.set()
        go_on.wait(timeout=5)
        return dropped

    monkeypatch.setattr(bursts, "drop_held", drop_then_wait)
    errors = {}
    deleter = _in_a_thread(lambda: delivery.delete_channel(Channel.objects.get(pk=channel.pk)), errors, "delete")
    assert locked.wait(5)
    raiser = _in_a_thread(lambda: raise_alert(an_alert(title="raised during the delete")), errors, "raise")
    time.sleep(0.5)
    go_on.set()
    deleter.join()
    raiser.join()
    assert not errors and not Channel.objects.exists()
    assert not Delivery.objects.filter(title="raised during the delete").exists(), "its channel was gone"


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite lets one writer in at a time")
def test_deleting_a_channel_while_an_alert_to_it_commits_waits_and_keeps_the_delivery(alice, allow_loopback,
                                                                                     monkeypatch):
    """An alert inserted its delivery but has not committed when the channel is deleted: the delete waits for
    it and sets it loose, instead of failing at COMMIT on the delivery it did not see."""
    import threading

    from alerts import delivery

    allow_loopback.ALERT_BURST_LIMIT = 0
    channel = contoso_webhook_channel()
    inserted, go_on, enqueue = threading.Event(), threading.Event(), delivery._enqueue

    def enqueue_then_wait(queued, when):
        enqueue(queued, when)
        inserted.set()
        go_on.wait(timeout=5)

    monkeypatch.setattr(delivery, "_enqueue", enqueue_then_wait)
    errors = {}
    raiser = _in_a_thread(lambda: raise_alert(an_alert(title="raised")), errors, "raise")
    assert inserted.wait(5)
    deleter = _in_a_thread(lambda: delivery.delete_channel(Channel.objects.get(pk=channel.pk)), errors, "delete")
    time.sleep(0.5)
    go_on.set()
    raiser.join()
    deleter.join()
    assert not errors and not Channel.objects.exists()
    assert list(Delivery.objects.values_list("title", "channel_id", "channel_name")) == [("raised", None, "Ops")]


def test_a_summary_and_every_alert_it_gathered_are_deleted_together_whatever_the_chunk(db, monkeypatch):
    from alerts import delivery

    monkeypatch.setattr(delivery, "PRUNE_CHUNK", 2)
    monkeypatch.setattr(delivery, "PRUNE_CHUNKS_A_RUN", 1)
    summary = a_delivery(120, kind="summary")
    gathered = [a_delivery(119.9 - n / 100, "summarized", summary=summary) for n in range(5)]
    newer = a_delivery(100)
    assert delivery.prune_old_deliveries(90) == 6, "the chunk of 2 took the summary, so all it gathered went too"
    assert list(Delivery.objects.all()) == [newer] and not {d.pk for d in gathered} & set(
        Delivery.objects.values_list("pk", flat=True))



def test_a_channel_cannot_have_two_waiting_summaries(alice):
    """The partial unique index delivery_one_pending_summary survives the migrations (Django's AlterField of the
    channel's foreign key dropped it on PostgreSQL: alerts 0004 is written by hand)."""
    from django.db import IntegrityError, transaction

    channel = contoso_webhook_channel()
    waiting = {"tenant_id": CONTOSO, "channel": channel, "channel_name": "Ops", "kind": "summary", "title": "s",
               "payload": {}, "status": "queued", "attempts": 0}
    Delivery.objects.create(**waiting)
    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.create(**waiting)
    Delivery.objects.create(**{**waiting, "attempts": 1})  # one being sent may stand next to the next waiting

"""Each server's last LTR backup on the server list (a column that filters and sorts), and the LTR backup alerts:
a failed backup once per operation, no successful backup in the tenant's N days once per gap with a recovery
message, sent through real loopback receivers (a webhook catcher, an SMTP server)."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Channel, Delivery
from backups import watch
from backups.models import LtrAlertSetting, LtrBackup, LtrRefresh
from dashboard.demo import PROD
from tests.conftest import ALICE, make_server
from tests.test_alerts import add_channel, allow_loopback, receiver, smtp  # noqa: F401 (fixtures)

RG = "rg-payments-prod"
DAY = 86400


def refresh(client, server):
    return client.post(f"/servers/{server.pk}/backups/refresh/", headers={"HX-Request": "true"})


def kept(server, name, status, days_ago):
    start = timezone.now() - timedelta(days=days_ago)
    LtrBackup.objects.create(server=server, tenant_id=server.tenant_id, backup_name=name, status=status,
                             start_time=start, end_time=start + timedelta(minutes=5), first_seen_at=start,
                             last_seen_at=start)


def summarised(server, last_status, succeeded_days_ago=None):
    succeeded = timezone.now() - timedelta(days=succeeded_days_ago) if succeeded_days_ago is not None else None
    LtrRefresh.objects.create(server=server, tenant_id=server.tenant_id, refreshed_at=timezone.now(),
                              last_status=last_status, last_started_at=timezone.now() - timedelta(hours=2),
                              last_succeeded_at=succeeded)


@pytest.fixture
def four(db):
    """A server backed up 3 days ago, one whose last backup failed, one with none in 7 days, one never read."""
    servers = {name: make_server(name=name) for name in ("pg-a-ok", "pg-b-failed", "pg-c-gap", "pg-d-unread")}
    summarised(servers["pg-a-ok"], "Succeeded", 3)
    summarised(servers["pg-b-failed"], "Failed", 2)
    summarised(servers["pg-c-gap"], "Succeeded", 20)
    return servers


def cells(html: str, servers: dict) -> dict:
    out = {}
    for name, server in servers.items():
        row = html[html.index(f'id="server-{server.pk}"'):]
        row = row[:row.index("</tr>")]
        cell = row.split("<td")[8]  # the 8th cell: the last LTR backup (the list's cells have no class)
        out[name] = " ".join(cell[cell.index(">") + 1:cell.index("</td>")].split())  # (no-break spaces too)
    return out


def test_the_list_says_each_servers_last_ltr_backup(client, alice, four):
    client.force_login(alice)
    found = cells(client.get("/").content.decode(), four)
    assert "Succeeded</span>" in found["pg-a-ok"] and "3 days ago" in found["pg-a-ok"]
    assert "Failed</span>" in found["pg-b-failed"] and "last success" not in found["pg-b-failed"]
    assert "None in 7 days</span>" in found["pg-c-gap"] and "last success 2 weeks, 6 days ago" in found["pg-c-gap"]
    assert "Not read yet</span>" in found["pg-d-unread"]


@pytest.mark.parametrize(("value", "names"), [
    ("recent", ["pg-a-ok", "pg-b-failed"]), ("failed", ["pg-b-failed"]), ("gap", ["pg-c-gap"]),
    ("unread", ["pg-d-unread"]),
])
def test_the_list_filters_by_the_last_ltr_backup(client, alice, four, value, names):
    client.force_login(alice)
    html = client.get("/", {"backup": value}).content.decode()
    assert [n for n in four if f">{n}</strong>" in html] == names


def test_the_list_sorts_by_the_last_success_both_ways(client, alice, four):
    client.force_login(alice)
    html = client.get("/", {"sort": "last_backup"}).content.decode()
    order = sorted(four, key=lambda n: html.index(f">{n}</strong>"))
    assert order == ["pg-d-unread", "pg-c-gap", "pg-a-ok", "pg-b-failed"], "none first, then the oldest success"
    assert 'aria-sort="ascending"' in html and "sort=-last_backup" in html
    html = client.get("/", {"sort": "-last_backup"}).content.decode()
    assert sorted(four, key=lambda n: html.index(f">{n}</strong>"))[:2] == ["pg-b-failed", "pg-a-ok"]


def test_the_days_follow_the_tenants_setting(client, alice, four):
    client.force_login(alice)
    response = client.post("/backups/alerts/", {"days_without_success": "30"})
    assert response.status_code == 302 and LtrAlertSetting.days_for(alice.tenant_id) == 30
    found = cells(client.get("/").content.decode(), four)
    assert "Succeeded</span>" in found["pg-c-gap"], "a success 20 days ago is recent within 30 days"
    for days in ("0", "-1", "367", "seven"):  # one message, a 400, nothing changed
        refused = client.post("/backups/alerts/", {"days_without_success": days})
        assert refused.status_code == 400, days
        assert "Enter a whole number of days from 1 to 366." in refused.content.decode(), days
    assert LtrAlertSetting.days_for(alice.tenant_id) == 30


def test_the_list_row_polled_alone_keeps_the_cell(client, alice, four):
    client.force_login(alice)
    html = client.get(f"/servers/{four['pg-a-ok'].pk}/row/").content.decode()
    assert "Succeeded</span>" in cells(html, {"pg-a-ok": four["pg-a-ok"]})["pg-a-ok"]


def test_the_server_page_names_the_ltr_backup_beside_the_check_and_the_list_stays_short(client, alice, four):
    """On the server page the backup's badge sits by the check's "Passed now": its words say it is the LTR
    backup's, and a running or failed one's time is when it started; the list's one-line cell keeps its word."""
    client.force_login(alice)
    running = make_server(name="pg-e-running")
    summarised(running, "Running", 3)

    def page_cell(name):
        html = (four | {"pg-e-running": running})[name]
        html = client.get(f"/servers/{html.pk}/").content.decode()
        cell = html[html.index('class="last-backup"'):]
        return " ".join(cell[cell.index(">") + 1:cell.index("</td>")].split())

    text = page_cell("pg-e-running")
    assert '"badge badge-running">LTR backup running</span>' in text and "started <time" in text
    assert "2 hours ago</time>" in text
    assert '"badge badge-failed">LTR backup failed</span>' in page_cell("pg-b-failed")
    assert '"badge badge-ready">LTR backup succeeded</span>' in page_cell("pg-a-ok")
    assert "started" not in page_cell("pg-a-ok")
    assert '"badge badge-not_ready">No LTR backup in 7 days</span>' in page_cell("pg-c-gap")
    assert '"badge badge-never">LTR backups not read yet</span>' in page_cell("pg-d-unread")
    listed = cells(client.get("/").content.decode(), {"pg-e-running": running})["pg-e-running"]
    assert '"badge badge-running">Running</span>' in listed and "LTR" not in listed


def test_the_list_takes_the_same_queries_for_5_or_50_servers_with_backups(client, alice,
                                                                          django_assert_max_num_queries):
    client.force_login(alice)
    for count in (5, 50):
        for i in range(count):
            summarised(make_server(name=f"pg-{count}-{i}"), "Succeeded", i % 10)
        with django_assert_max_num_queries(11):
            assert client.get("/", {"backup": "gap", "sort": "last_backup"}).status_code == 200


# ---- alerts -------------------------------------------------------------------------------------------

def test_a_failed_backup_is_alerted_once_when_a_refresh_first_sees_it(client, logged_in, server, sim,
                                                                      allow_loopback, receiver, worker):  # noqa: F811
    catcher = receiver()
    alice = logged_in(ALICE["upn"])
    add_channel(client, "webhook", f"{catcher.url}/ltr")
    sim.set_ltr_backups(PROD, RG, "pg-payments-01", [
        {"name": "ok", "status": "Succeeded", "started_ago": DAY},
        {"name": "nightly", "status": "Failed", "started_ago": 3600, "error_code": "UserErrorSasUriExpired",
         "error_message": "The SAS URI expired"},
        {"name": "last-year", "status": "Failed", "started_ago": 300 * DAY},
    ])
    refresh(client, server)
    refresh(client, server)
    worker()
    bodies = [json.loads(c.body) for c in catcher.received]
    assert [b["kind"] for b in bodies] == ["ltr_backup_failed"], "once, and not for a failure of last year"
    assert bodies[0]["title"] == "An LTR backup of pg-payments-01 failed"
    assert "The SAS URI expired (UserErrorSasUriExpired)" in bodies[0]["text"]
    assert Delivery.objects.get().status == "sent" and alice.tenant_id == Delivery.objects.get().tenant_id


def test_no_success_in_n_days_is_alerted_once_per_gap_and_recovery_is_said(
    client, logged_in, server, sim, smtp, worker  # noqa: F811
):
    logged_in(ALICE["upn"])
    add_channel(client, "email", "dba@contoso.example")
    sim.set_ltr_backups(PROD, RG, "pg-payments-01", [{"name": "old", "status": "Succeeded", "started_ago": 9 * DAY}])
    refresh(client, server)
    assert watch.alert_gaps() == 0, "the refresh alerted the gap already; the job does not repeat it"
    assert watch.alert_gaps(timezone.now() + timedelta(days=1)) == 0
    sim.set_ltr_backups(PROD, RG, "pg-payments-01", [{"name": "old", "status": "Succeeded", "started_ago": 9 * DAY},
                                                     {"name": "new", "status": "Succeeded", "started_ago": 600}])
    refresh(client, server)
    worker()
    subjects = [m.content.decode().split("Subject: ")[1].split("\n")[0].strip() for m in smtp.messages]
    assert subjects == ["[LTR] No successful LTR backup of pg-payments-01 in 7 days",
                        "[LTR] pg-payments-01 has a successful LTR backup again"]
    assert LtrRefresh.objects.get(server=server).gap_alerted_at is None


def test_the_workers_job_opens_a_gap_when_the_days_pass_and_only_for_servers_read(
    db, allow_loopback, receiver, worker  # noqa: F811
):
    catcher = receiver()
    read, _never_read = make_server(name="pg-read"), make_server(name="pg-never-read")
    archived = make_server(name="pg-archived", archived_at=timezone.now())
    summarised(read, "Succeeded", 5)
    summarised(archived, "Succeeded", 50)
    channel = Channel(tenant_id=read.tenant_id, name="hook", kind="webhook")
    channel.set_target(f"{catcher.url}/x", "hint")
    channel.save()
    assert watch.alert_gaps() == 0
    later = timezone.now() + timedelta(days=3)
    assert watch.alert_gaps(later) == 1 and watch.alert_gaps(later) == 0
    worker()
    assert [json.loads(c.body)["title"] for c in catcher.received] == ["No successful LTR backup of pg-read in 7 days"]


def test_the_setting_page_is_per_tenant(client, alice, charlie):
    client.force_login(alice)
    client.post("/backups/alerts/", {"days_without_success": "14"})
    client.force_login(charlie)
    assert 'value="7"' in client.get("/backups/alerts/").content.decode()
    assert LtrAlertSetting.days_for(charlie.tenant_id) == 7 and LtrAlertSetting.days_for(alice.tenant_id) == 14


def test_a_server_with_no_success_kept_is_given_n_days_from_its_first_read(client, logged_in, server, sim,
                                                                           django_capture_on_commit_callbacks):
    logged_in(ALICE["upn"])
    Channel.objects.create(tenant_id=server.tenant_id, name="hook", kind="webhook", target_hint="x")
    sim.set_ltr_backups(PROD, RG, "pg-payments-01", [])
    refresh(client, server)
    assert not Delivery.objects.exists(), "a fleet's first read alerts nothing for servers without backups yet"
    assert watch.alert_gaps(timezone.now() + timedelta(days=6)) == 0
    assert watch.alert_gaps(timezone.now() + timedelta(days=8)) == 1
    assert Delivery.objects.get().title == "No successful LTR backup of pg-payments-01 in 7 days"


def test_only_an_admin_changes_the_setting_and_it_is_audited(client, alice):
    from dashboard.audit import AuditEvent

    alice.entra_roles, alice.tenant_uses_app_roles = ["Dashboard.Operator"], True
    alice.save(update_fields=["entra_roles", "tenant_uses_app_roles"])
    client.force_login(alice)
    page = client.get("/backups/alerts/").content.decode()
    assert "An admin can change it." in page and "<form method=\"post\" class=\"stacked-form\"" not in page
    assert client.post("/backups/alerts/", {"days_without_success": "3"}).status_code == 403
    assert LtrAlertSetting.days_for(alice.tenant_id) == 7 and not AuditEvent.objects.exists()
    alice.entra_roles = ["Dashboard.Admin"]
    alice.save(update_fields=["entra_roles"])
    assert client.post("/backups/alerts/", {"days_without_success": "3"}).status_code == 302
    event = AuditEvent.objects.get()
    assert (event.action, event.target_name, event.details) == ("settings_change", "LTR backup alerts",
                                                                {"days_without_success": 3})
    audit_page = " ".join(client.get("/audit/").content.decode().split())
    assert '<td data-label="On"> setting LTR backup alerts </td>' in audit_page, "not the model's name"


def _another_worker_in_between(monkeypatch, run_again):
    """The first alert raised runs `run_again` (another worker or refresh that read the same rows) before this one
    goes on to its next row: what it claims, this one must then find claimed."""
    raised, real = [], watch.raise_alert

    def raise_alert(alert):
        raised.append(alert.title)
        real(alert)
        if len(raised) == 1:
            run_again()

    monkeypatch.setattr(watch, "raise_alert", raise_alert)
    return raised


def test_two_refreshes_at_once_alert_each_failed_backup_once(db, monkeypatch):
    server = make_server()
    for name in ("nightly-1", "nightly-2"):
        LtrBackup.objects.create(server=server, tenant_id=server.tenant_id, backup_name=name, status="Failed",
                                 start_time=timezone.now() - timedelta(hours=1), first_seen_at=timezone.now(),
                                 last_seen_at=timezone.now())
    raised = _another_worker_in_between(monkeypatch, lambda: watch.alert_new_failures(server))
    assert watch.alert_new_failures(server) == 1, "the other claimed the second between this one's read and claim"
    assert raised == ["An LTR backup of pg-payments-01 failed"] * 2


def test_two_workers_at_once_alert_each_gap_once(db, monkeypatch):
    for name in ("pg-gap-1", "pg-gap-2"):
        summarised(make_server(name=name), "Succeeded", 9)
    raised = _another_worker_in_between(monkeypatch, watch.alert_gaps)
    assert watch.alert_gaps() == 1
    assert sorted(raised) == [f"No successful LTR backup of pg-gap-{n} in 7 days" for n in (1, 2)]

"""The watch end to end: a check changes a server's readiness, the change becomes an alert, and the alert
reaches a real webhook receiver on loopback; a schedule whose owner must sign in again alerts the same way."""

import pytest

from alerts.catcher import Catcher
from alerts.models import Channel, Delivery
from checks.models import Check
from dashboard.demo import PROD
from tests.conftest import ALICE

RG = "rg-payments-prod"


@pytest.fixture
def catcher(settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = settings.ALERT_WEBHOOK_ALLOW_HTTP = True
    settings.ALERT_RETRY_DELAYS = [0, 0, 0]
    settings.DASHBOARD_URL = "https://ltr.example.com"
    receiver = Catcher().start()
    yield receiver
    receiver.stop()


def slack_channel(client, catcher):
    response = client.post("/alerts/channels/add/", {"name": "Ops", "kind": "slack", "enabled": "on",
                                                     "target": f"http://localhost:{catcher.port}/hook"})
    assert response.status_code == 302


@pytest.fixture
def run(client, worker, django_capture_on_commit_callbacks):
    """Run one check through the pipeline; what waits for its commit (the change's signal) runs as in production."""

    def _run(server):
        with django_capture_on_commit_callbacks(execute=True):
            client.post(f"/servers/{server.pk}/run/", {"backup_name": "b-1"}, headers={"HX-Request": "true"})
            worker()
        return Check.objects.filter(server=server).latest("created_at")

    return _run


def test_a_server_that_stops_being_ready_and_comes_back_alerts_twice(client, signed_in, sim, worker, fleet, catcher,
                                                                    run):
    signed_in(ALICE["upn"])
    slack_channel(client, catcher)
    server = fleet["pg-payments-01"]
    run(server)  # first found ready: no alert
    sim.set_behaviour(PROD, RG, "pg-payments-01", outcome="not_ready", state="Stopped")
    run(server)
    run(server)  # still not ready: no second alert
    sim.set_behaviour(PROD, RG, "pg-payments-01", outcome="success")
    run(server)
    worker()  # the deliveries' own tasks
    texts = [c.json()["text"] for c in catcher.received]
    assert len(texts) == 2, texts
    assert "pg-payments-01 is not ready for long-term backups" in texts[0] and "Stopped" in texts[0]
    assert f"https://ltr.example.com/servers/{server.pk}/" in str(catcher.received[0].json())
    assert "pg-payments-01 is ready again" in texts[1]
    assert list(Delivery.objects.values_list("status", flat=True)) == ["sent", "sent"]


def test_without_a_dashboard_url_an_alert_carries_no_link(client, signed_in, sim, worker, fleet, catcher, run,
                                                         settings):
    settings.DASHBOARD_URL = ""
    signed_in(ALICE["upn"])
    slack_channel(client, catcher)
    run(fleet["pg-orders"])  # stopped: not ready on its first check
    worker()
    [message] = catcher.received
    assert "pg-orders is not ready" in message.json()["text"] and "/servers/" not in str(message.json())


def test_a_permission_problem_alerts_nobody(client, signed_in, sim, worker, fleet, catcher, run):
    signed_in(ALICE["upn"])
    slack_channel(client, catcher)
    run(fleet["pg-analytics"])  # 403 for everyone: says nothing about the server
    worker()
    assert catcher.received == [] and not Delivery.objects.exists()


def test_a_schedule_whose_owner_must_sign_in_again_alerts(client, signed_in, sim, worker, fleet, catcher):
    from schedules.firing import fire_due_schedules
    from schedules.models import Schedule

    alice = signed_in(ALICE["upn"])
    slack_channel(client, catcher)
    response = client.post("/schedules/new/", {"name": "Nightly", "scope": "all", "cadence": "every",
                                               "every_hours": "6", "daily_at": "02:30", "time_zone": "UTC"})
    assert response.status_code == 302, response.content.decode()[-2000:]
    schedule = Schedule.objects.get()
    sim.set_user_flags(ALICE["upn"], mfa_required=True)
    from dashboard import tokencache

    tokencache.forget(alice)  # no token of hers left: the schedule must ask Entra ID, which wants her back
    fire_due_schedules()
    worker()
    schedule.refresh_from_db()
    assert schedule.state == "owner_must_sign_in"
    titles = [c.json()["text"] for c in catcher.received]
    assert len(titles) == 1 and "Nightly" in titles[0] and "must sign in again" in titles[0]
    assert Channel.objects.count() == 1


def test_a_server_found_not_ready_on_its_first_check_alerts(client, signed_in, sim, worker, fleet, catcher, run):
    signed_in(ALICE["upn"])
    slack_channel(client, catcher)
    run(fleet["pg-orders"])  # stopped: 400 ServerNotReadyForLongTermBackup
    worker()
    assert len(catcher.received) == 1
    assert "pg-orders is not ready for long-term backups" in catcher.received[0].json()["text"]


def test_a_storm_of_servers_going_not_ready_sends_the_limit_then_one_summary(client, signed_in, sim, worker, catcher,
                                                                           run, settings):
    """Six servers of one resource group stop at once (a subscription's worth, scaled down): the channel gets
    ALERT_BURST_LIMIT messages, then one summary that names the rest, not one message a server."""
    from datetime import timedelta

    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    from tests.conftest import make_server

    settings.ALERT_BURST_LIMIT = 2
    signed_in(ALICE["upn"])
    slack_channel(client, catcher)
    servers = [make_server(resource_group="rg-storm", name=f"pg-storm-{n}") for n in range(6)]
    for server in servers:
        sim.set_behaviour(PROD, "rg-storm", server.name, outcome="not_ready", state="Stopped")
        run(server)  # found not ready on its first check: an alert each
    worker()
    texts = [c.json()["text"] for c in catcher.received]
    assert len(texts) == 2 and "pg-storm-0 is not ready" in texts[0] and "pg-storm-1 is not ready" in texts[1]
    [due] = DBTaskResult.objects.filter(status="READY").values_list("run_after", flat=True)
    assert due > timezone.now() + timedelta(seconds=settings.ALERT_BURST_WINDOW - 60)
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())  # the window passes
    worker()
    [summary] = [c.json() for c in catcher.received[2:]]
    assert summary["text"].startswith("Summary of 4 alerts: 4 readiness changes")
    for n in range(2, 6):
        assert f"pg-storm-{n} is not ready for long-term backups" in summary["blocks"][1]["text"]["text"]
    assert sorted(Delivery.objects.values_list("status", flat=True)) == ["sent"] * 3 + ["summarized"] * 4

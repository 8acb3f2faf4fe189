"""The demo's watch (schedules.demo, `manage.py seed_demo_watch`), against the real simulator and a real
catcher on loopback: Alice's schedule waits for her sign-in, then runs; pg-flip-01 passes its first check and
is not ready on the next, and that change reaches the demo's channel and its delivery log as sent."""

from django.core.management import call_command

from alerts.models import Channel, Delivery
from checks.models import Check
from checks.readiness import ReadinessChange
from dashboard.demo import STAGING
from schedules.demo import DEMO_CHANNEL_NAME, seed_demo_watch
from schedules.firing import fire_due_schedules
from schedules.models import Schedule
from tests.conftest import ALICE, make_server
from tests.test_alerts import allow_loopback, receiver  # noqa: F401 (fixtures)


def test_seeding_twice_keeps_one_channel_and_one_schedule_and_follows_a_new_catcher_port(
    db, sim, receiver  # noqa: F811
):
    first, second = receiver(), receiver()
    call_command("seed_demo_watch", catcher_url=f"{first.url}/demo", verbosity=0)
    call_command("seed_demo_watch", catcher_url=f"{second.url}/demo", verbosity=0)
    channel = Channel.objects.get()
    assert (channel.name, channel.kind, channel.target) == (DEMO_CHANNEL_NAME, "webhook", f"{second.url}/demo")
    assert channel.secret and channel.secret not in channel.secret_hint
    assert Schedule.objects.get().state == Schedule.State.OWNER_MUST_SIGN_IN


def test_the_demo_watch_runs_after_alice_signs_in_and_alerts_the_catcher_when_pg_flip_01_flips(
    client, signed_in, worker, receiver, allow_loopback, sim, django_capture_on_commit_callbacks  # noqa: F811
):
    flip = make_server(subscription_id=STAGING, resource_group="rg-staging", name="pg-flip-01")
    catcher = receiver()
    channel, schedule = seed_demo_watch(f"{catcher.url}/demo")
    assert schedule.state == Schedule.State.OWNER_MUST_SIGN_IN and schedule.last_batch is None
    worker()
    assert [c.json()["kind"] for c in catcher.received] == ["owner_must_sign_in"]

    signed_in(ALICE["upn"])
    assert fire_due_schedules() == 1  # what the worker's poll does after her sign-in
    with django_capture_on_commit_callbacks(execute=True) as announced:
        worker()
    worker()
    assert len(announced) == 1, "its change never checked -> ready was announced"
    schedule.refresh_from_db()
    assert schedule.state == Schedule.State.ACTIVE
    assert schedule.last_batch.checks.get().status == Check.Status.SUCCEEDED
    assert len(catcher.received) == 1, "found ready on its first check: nothing to tell"

    assert client.post(f"/schedules/{schedule.pk}/run/").status_code == 302  # "Run now"
    with django_capture_on_commit_callbacks(execute=True):  # the change is announced once its check commits
        worker()
    worker()  # the delivery it queued
    schedule.refresh_from_db()
    assert schedule.last_batch.checks.get().category == "server_not_ready"
    change = ReadinessChange.objects.filter(server=flip).latest("at")
    assert (change.from_state, change.to_state) == ("ready", "not_ready")
    assert catcher.received[-1].json()["title"] == "pg-flip-01 is not ready for long-term backups"
    assert set(Delivery.objects.filter(channel=channel).values_list("status", flat=True)) == {"sent"}
    flip_calls = [r for r in sim.received("/ltrPreBackup", "POST") if "/pg-flip-01/" in r.path]
    assert len(flip_calls) == 2, "one call per run reached the simulator"

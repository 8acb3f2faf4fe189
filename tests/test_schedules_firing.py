"""Firing schedules with a controlled clock, against the real simulator: cadence and DST as a worker polling
every few minutes sees them, one run after downtime, and the "owner must sign in again" path."""

import base64
import json
from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.utils import timezone

from checks.models import Batch, Check
from dashboard.demo import CONTOSO, PROD, STAGING
from schedules.firing import claim, fire_due_schedules
from schedules.models import Schedule
from schedules.signals import schedule_needs_owner
from tests.conftest import ALICE, BOB, make_server

POLL = timedelta(minutes=5)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def make_schedule(owner, **fields) -> Schedule:
    defaults = {"tenant_id": owner.tenant_id, "owner": owner, "name": "Nightly", "scope": "all",
                "cadence": "daily", "daily_at": time(2, 30), "time_zone": "Europe/Berlin"}
    schedule = Schedule(**{**defaults, **fields})
    schedule.full_clean()
    schedule.next_run_at = fields.get("next_run_at") or schedule.first_run(timezone.now())
    schedule.save()
    return schedule


def checks_end() -> None:
    """What the worker (not under test here) does between two runs: it runs the queued checks. A run while the
    owner's previous batch over the same servers is still in progress is refused, not queued as a second one."""
    Check.objects.filter(status__in=Check.ACTIVE_STATUSES).update(status="succeeded", finished_at=timezone.now())


def poll_until(traveller, end: datetime) -> list[datetime]:
    """A worker polling every POLL until `end`: the times at which it fired something."""
    fired = []
    while (now := timezone.now()) < end:
        if fire_due_schedules():
            fired.append(now)
        checks_end()
        traveller.shift(POLL)
    return fired


@pytest.fixture
def needs_owner():
    received = []

    def listener(sender, schedule, reason, **kwargs):
        received.append((schedule.pk, reason))

    schedule_needs_owner.connect(listener)
    yield received
    schedule_needs_owner.disconnect(listener)


@pytest.mark.parametrize(("start", "end", "expected"), [
    # Spring forward (2027-03-28): 02:30 does not exist; one run at 03:30 CEST (01:30 UTC), then 02:30 CEST.
    (utc(2027, 3, 27, 20), utc(2027, 3, 29, 6), [utc(2027, 3, 28, 1, 30), utc(2027, 3, 29, 0, 30)]),
    # Fall back (2027-10-31): 02:30 happens twice; one run at the first (00:30 UTC), then 02:30 CET.
    (utc(2027, 10, 30, 20), utc(2027, 11, 1, 6), [utc(2027, 10, 31, 0, 30), utc(2027, 11, 1, 1, 30)]),
])
def test_a_daily_schedule_runs_once_a_day_across_dst(signed_in, sim, server, start, end, expected):
    sim.set_token_lifetimes(refresh=7 * 86400)  # the scenario's refresh token lives 1 day; these runs are 25 h apart
    with time_machine.travel(start, tick=False) as traveller:
        alice = signed_in(ALICE["upn"])
        schedule = make_schedule(alice)
        assert poll_until(traveller, end) == expected
    assert Batch.objects.count() == 2
    schedule.refresh_from_db()
    assert schedule.last_batch == Batch.objects.latest("pk") and schedule.last_run_at == expected[-1]


def test_after_downtime_a_schedule_runs_once_then_keeps_its_grid(signed_in, server):
    with time_machine.travel(utc(2027, 1, 4, 0), tick=False) as traveller:
        alice = signed_in(ALICE["upn"])
        schedule = make_schedule(alice, cadence="every", every_hours=2, daily_at=None)
        assert fire_due_schedules() == 1  # an "every N hours" schedule runs when created
        checks_end()
        # The workers are down for 19 h 10 min: nine slots missed.
        traveller.shift(timedelta(hours=19, minutes=10))
        assert fire_due_schedules() == 1
        assert fire_due_schedules() == 0
        schedule.refresh_from_db()
        assert schedule.next_run_at == utc(2027, 1, 4, 20), "the next slot of its 2-hour grid after now"
        assert poll_until(traveller, utc(2027, 1, 4, 22, 1)) == [utc(2027, 1, 4, 20, 0), utc(2027, 1, 4, 22, 0)]
    assert Batch.objects.count() == 4


def test_a_due_run_is_claimed_once(alice, server):
    schedule = make_schedule(alice, next_run_at=timezone.now() - timedelta(minutes=1))
    seen = schedule.next_run_at
    assert claim(schedule.pk, seen, timezone.now()) is not None
    assert claim(schedule.pk, seen, timezone.now()) is None, "a second worker that read the same row gets nothing"


def test_a_run_checks_the_current_servers_as_the_owner_and_leaves_archived_ones_out(signed_in, server, staging_server):
    make_server(name="pg-gone", archived_at=timezone.now())
    alice = signed_in(ALICE["upn"])
    make_schedule(alice, next_run_at=timezone.now())
    assert fire_due_schedules() == 1
    checks = Check.objects.select_related("server")
    assert sorted(c.server.name for c in checks) == ["pg-payments-01", "pg-staging-01"]
    assert {c.requested_by for c in checks} == {alice}


@pytest.mark.parametrize("why", ["revoked", "mfa", "consent", "expired"])
def test_when_the_owners_token_needs_them_the_schedule_stops_until_they_sign_in(
        client, signed_in, sim, server, needs_owner, why, worker):
    sim.set_token_lifetimes(access=60)  # every run renews the access token at the simulator
    alice = signed_in(ALICE["upn"])
    schedule = make_schedule(alice, cadence="every", every_hours=1, daily_at=None)
    assert fire_due_schedules() == 1 and Batch.objects.count() == 1, "renewal works before"
    worker()

    later = timezone.now() + timedelta(hours=1, minutes=1)
    if why == "revoked":
        sim.revoke_refresh_tokens(ALICE["upn"])
    elif why == "mfa":
        sim.set_user_flags(ALICE["upn"], mfa_required=True)
    elif why == "consent":
        sim.set_user_flags(ALICE["upn"], consent_required=True)
    else:
        later += timedelta(days=1)  # the refresh token (1 day in the scenario) expired while nothing ran
    before = len(sim.received("/oauth2/v2.0/token", "POST"))
    with time_machine.travel(later, tick=False):
        assert fire_due_schedules() == 1
        assert len(sim.received("/oauth2/v2.0/token", "POST")) == before + 1, "the renewal reached Entra ID"
        schedule.refresh_from_db()
        assert schedule.state == "owner_must_sign_in" and "sign in again" in schedule.last_problem
        assert Batch.objects.count() == 1 and Check.objects.count() == 1, "nothing was queued"
        assert needs_owner == [(schedule.pk, "invalid_grant")]
        assert fire_due_schedules() == 0 and len(needs_owner) == 1, "stopped: not fired, not alerted again"

    sim.set_user_flags(ALICE["upn"], mfa_required=False, consent_required=False)
    signed_in(ALICE["upn"])
    schedule.refresh_from_db()
    assert schedule.state == "active" and schedule.next_run_at <= timezone.now() + timedelta(seconds=1)
    assert fire_due_schedules() == 1
    worker()
    assert Batch.objects.count() == 2
    assert Check.objects.filter(batch=Schedule.objects.get().last_batch, status="succeeded").count() == 1


def test_a_schedule_never_borrows_another_users_token(signed_in, bob, server, needs_owner):
    signed_in(ALICE["upn"])  # Alice has a token in her cache; Bob has none
    schedule = make_schedule(bob, next_run_at=timezone.now())
    assert fire_due_schedules() == 1
    schedule.refresh_from_db()
    assert schedule.state == "owner_must_sign_in"
    assert not Batch.objects.exists() and not Check.objects.exists()
    assert needs_owner == [(schedule.pk, "no_account")]
    assert BOB["tid"] == CONTOSO


def test_a_schedule_matching_no_server_says_so(signed_in, server):
    alice = signed_in(ALICE["upn"])
    schedule = make_schedule(alice, scope="search", search="payments", next_run_at=timezone.now())
    server.archived_at = timezone.now()
    server.save()
    assert fire_due_schedules() == 1
    schedule.refresh_from_db()
    assert not Batch.objects.exists() and "No registered server" in schedule.last_problem
    assert schedule.next_run_at > timezone.now()


def test_the_demo_schedule_waits_for_alice_then_runs_over_the_demo_fleet(fleet, signed_in, needs_owner):
    from schedules.demo import create_demo_schedule

    schedule = create_demo_schedule()
    assert schedule.state == "owner_must_sign_in" and schedule.owner.upn == ALICE["upn"], "no token of hers yet"
    assert create_demo_schedule().pk == schedule.pk and Schedule.objects.count() == 1
    signed_in(ALICE["upn"])
    assert fire_due_schedules() == 1
    schedule.refresh_from_db()
    contoso = [s for s in fleet.values() if s.tenant_id == CONTOSO]
    assert schedule.state == "active" and schedule.last_batch.checks.count() == len(contoso) == 14
    assert schedule.next_run_at.astimezone(schedule.tz).strftime("%H:%M") == "02:30"


def test_a_scheduled_run_names_the_servers_it_left_out_on_its_batch_page(client, signed_in, server, staging_server):
    alice = signed_in(ALICE["upn"])
    busy = Check.objects.queue(staging_server, alice, "by-hand")  # a check of it is in flight when the run fires
    make_schedule(alice, next_run_at=timezone.now())
    assert fire_due_schedules() == 1
    batch = Batch.objects.get()
    assert (batch.skipped_count, batch.skipped_ids) == (1, [busy.server_id])
    page = client.get(f"/batches/{batch.pk}/").content.decode()
    assert "Left out (a check of theirs was already in progress):\n  pg-staging-01" in page


@pytest.mark.parametrize(("scope", "fields", "expected"), [
    ("subscription", {"subscription_id": STAGING}, ["pg-staging-01"]),
    ("resource_group", {"subscription_id": PROD, "resource_group": "RG-Payments-Prod"}, ["pg-payments-01"]),
])
def test_a_schedule_over_a_subscription_or_a_resource_group_checks_only_its_servers(
        signed_in, server, staging_server, scope, fields, expected):
    make_server(name="pg-elsewhere", resource_group="rg-other")  # the first's subscription, another group
    make_server(name="pg-archived", subscription_id=STAGING, resource_group="rg-staging", archived_at=timezone.now())
    make_schedule(signed_in(ALICE["upn"]), scope=scope, next_run_at=timezone.now(), **fields)
    assert fire_due_schedules() == 1
    assert sorted(Check.objects.values_list("server__name", flat=True)) == expected


def test_a_schedules_checks_reach_azure_with_its_owners_own_token(fleet, signed_in, worker, sim):
    """pg-ledger passes for Alice, and Bob lacks the RBAC action: Bob's schedule is answered as Bob, even when
    Alice (who could) is signed in too."""
    signed_in(ALICE["upn"])
    make_schedule(signed_in(BOB["upn"]), scope="search", search="pg-ledger", next_run_at=timezone.now())
    assert fire_due_schedules() == 1
    worker()
    check = Check.objects.get()
    assert (check.status, check.category, check.http_status) == ("failed", "permission_missing", 403)
    bearer = sim.received("/ltrPreBackup", "POST")[-1].headers["Authorization"].removeprefix("Bearer ")
    claims = json.loads(base64.urlsafe_b64decode(bearer.split(".")[1] + "=="))
    assert claims["oid"] == BOB["oid"]


def test_when_entra_id_cannot_be_reached_the_run_is_tried_again_later_not_stopped(signed_in, sim, server, settings,
                                                                                 needs_owner):
    """Not the owner's doing: the schedule stays active, says why, and is tried again SCHEDULES_RETRY_SECONDS on
    (before its next slot), where the run goes ahead once Entra ID answers again."""
    sim.set_token_lifetimes(access=60)  # the run must renew the owner's access token at Entra ID
    settings.ENTRA_READ_TIMEOUT = 2
    alice = signed_in(ALICE["upn"])
    schedule = make_schedule(alice, cadence="every", every_hours=6, daily_at=None, next_run_at=timezone.now())
    later = timezone.now() + timedelta(minutes=5)
    sim.entra.token_endpoint_resets = True
    try:
        with time_machine.travel(later, tick=False):
            assert fire_due_schedules() == 1
            schedule.refresh_from_db()
            retry_at = later + timedelta(seconds=settings.SCHEDULES_RETRY_SECONDS)
            assert (schedule.state, schedule.next_run_at) == ("active", retry_at)
            said = f"Entra ID could not be reached to renew the owner's token; retrying at {retry_at:%H:%M} UTC."
            assert schedule.last_problem == said
            assert not Batch.objects.exists() and needs_owner == []
    finally:
        sim.entra.token_endpoint_resets = False
    with time_machine.travel(retry_at, tick=False):
        assert fire_due_schedules() == 1
    assert Batch.objects.count() == 1 and Check.objects.filter(server=server).count() == 1

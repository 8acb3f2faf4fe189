"""When a schedule runs next: every N hours on a grid, daily at a wall-clock time, across DST changes;
and what a schedule refuses to be (bad time zone, N out of range, no name, unknown subscription...)."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from dashboard.demo import CONTOSO, PROD, STAGING
from dashboard.models import Server
from schedules import cadence
from schedules.models import Schedule
from tests.conftest import make_server

BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_daily_runs_at_the_wall_clock_time_of_its_zone():
    assert cadence.next_daily(utc(2027, 1, 10, 12), time(9, 0), ZoneInfo("America/New_York")) == utc(2027, 1, 10, 14)
    # Already past today: tomorrow.
    assert cadence.next_daily(utc(2027, 1, 10, 15), time(9, 0), ZoneInfo("America/New_York")) == utc(2027, 1, 11, 14)
    # Exactly at the slot: the next one (strictly after now), so a run that just fired is not fired again.
    assert cadence.next_daily(utc(2027, 1, 11, 14), time(9, 0), ZoneInfo("America/New_York")) == utc(2027, 1, 12, 14)


def test_spring_forward_a_time_that_does_not_exist_runs_once_shifted_by_the_gap():
    # 2027-03-28 in Berlin: 02:00 CET -> 03:00 CEST, so 02:30 does not exist; it runs at 03:30 CEST (01:30 UTC).
    slot = cadence.next_daily(utc(2027, 3, 27, 12), time(2, 30), BERLIN)
    assert slot == utc(2027, 3, 28, 1, 30)
    assert slot.astimezone(BERLIN).strftime("%H:%M %Z") == "03:30 CEST"
    # The day after is back to 02:30 CEST (00:30 UTC).
    assert cadence.next_daily(slot, time(2, 30), BERLIN) == utc(2027, 3, 29, 0, 30)


def test_fall_back_a_time_that_happens_twice_runs_once_at_the_first():
    # 2027-10-31 in Berlin: 03:00 CEST -> 02:00 CET, so 02:30 happens at 00:30 UTC and again at 01:30 UTC.
    first = cadence.next_daily(utc(2027, 10, 30, 12), time(2, 30), BERLIN)
    assert first == utc(2027, 10, 31, 0, 30)
    assert first.astimezone(BERLIN).strftime("%H:%M %Z") == "02:30 CEST"
    # Once fired, the repeated 02:30 (CET) is not a slot: the next run is the next day.
    assert cadence.next_daily(first, time(2, 30), BERLIN) == utc(2027, 11, 1, 1, 30)
    assert cadence.next_daily(utc(2027, 10, 31, 1, 0), time(2, 30), BERLIN) == utc(2027, 11, 1, 1, 30)


def test_every_n_hours_counts_real_hours_across_dst():
    before = utc(2027, 3, 27, 12)
    assert cadence.next_every(before, 24, anchor=before) == before + timedelta(hours=24)


def test_every_n_hours_stays_on_its_grid_and_skips_missed_slots():
    anchor = utc(2027, 1, 1, 0)
    # Fired 20 s late: the next slot is still anchor + 6 h, not now + 6 h (no drift).
    assert cadence.next_every(anchor + timedelta(seconds=20), 6, anchor) == utc(2027, 1, 1, 6)
    # Down for 3 days and 1 hour: one run now, then the next slot of the grid after now.
    assert cadence.next_every(utc(2027, 1, 4, 1), 6, anchor) == utc(2027, 1, 4, 6)
    # No anchor (a first run): N hours from now.
    assert cadence.next_every(anchor, 6, None) == utc(2027, 1, 1, 6)


def test_the_time_zone_list_offers_real_zones_only():
    names = cadence.time_zone_names()
    assert "Europe/Berlin" in names and "America/New_York" in names and "Australia/Lord_Howe" in names
    assert "EST5EDT" not in names and not any(n.startswith("Etc/") for n in names)


def _schedule(**fields) -> Schedule:
    if not Server.objects.exists():
        make_server()  # Contoso PROD / rg-payments-prod
    defaults = {"tenant_id": CONTOSO, "name": "Nightly", "scope": "all", "cadence": "daily",
                "daily_at": time(2, 30), "time_zone": "Europe/Berlin"}
    return Schedule(**{**defaults, **fields})


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"time_zone": "Mars/Olympus_Mons"}, "time_zone", "is not a time zone we know"),
    ({"time_zone": ""}, "time_zone", "is not a time zone we know"),
    ({"cadence": "every", "every_hours": 0}, "every_hours", "every 1 to 168 hours"),
    ({"cadence": "every", "every_hours": 169}, "every_hours", "every 1 to 168 hours"),
    ({"cadence": "every", "every_hours": None}, "every_hours", "every 1 to 168 hours"),
    ({"daily_at": None}, "daily_at", "time of day"),
    ({"name": "   "}, "name", "Give the schedule a name"),
    ({"scope": "subscription", "subscription_id": STAGING}, "subscription_id", "No server of this tenant"),
    ({"scope": "resource_group", "subscription_id": PROD, "resource_group": "rg-nope"}, "resource_group",
     "No server is registered in that resource group"),
    ({"scope": "search", "search": " "}, "search", "part of a server's name"),
])
def test_a_schedule_says_clearly_what_is_wrong(alice, fields, field, message):
    schedule = _schedule(owner=alice, **fields)
    with pytest.raises(ValidationError) as caught:
        schedule.full_clean()
    assert message in " ".join(caught.value.message_dict[field])


def test_a_valid_schedule_passes_and_its_owner_must_be_of_its_tenant(alice, charlie):
    _schedule(owner=alice, scope="resource_group", subscription_id=PROD, resource_group="RG-Payments-Prod").full_clean()
    with pytest.raises(ValidationError) as caught:
        _schedule(owner=charlie).full_clean()
    assert "owner" in caught.value.message_dict

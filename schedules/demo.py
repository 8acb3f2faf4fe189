"""The demo's schedule: Alice's nightly check of Contoso's demo fleet (called from seed_demo)."""

from datetime import time

from django.utils import timezone

from dashboard.demo import CONTOSO
from dashboard.models import User
from schedules.firing import claim, run_as_owner
from schedules.models import Schedule

DEMO_SCHEDULE_NAME = "Contoso nightly"
ALICE = {"object_id": "a11ce000-0000-4000-8000-000000000001", "upn": "alice@contoso.example",
         "display_name": "Alice Admin"}


def create_demo_schedule(*, fire: bool = True) -> Schedule:
    """Alice's daily 02:30 (Europe/Berlin) schedule over all of Contoso's servers; safe to call again.

    With `fire`, it runs once now (as a due run does). Before Alice has signed in there is no token of hers,
    so that first run stops it in "owner must sign in again", and it runs as soon as she signs in.
    """
    alice, _ = User.objects.get_or_create(
        tenant_id=CONTOSO, object_id=ALICE["object_id"],
        defaults={"username": f"{CONTOSO}.{ALICE['object_id']}", "upn": ALICE["upn"],
                  "display_name": ALICE["display_name"]},
    )
    schedule = Schedule.objects.filter(tenant_id=CONTOSO, owner=alice, name=DEMO_SCHEDULE_NAME).first()
    if schedule is not None:
        return schedule
    now = timezone.now()
    schedule = Schedule(tenant_id=CONTOSO, owner=alice, name=DEMO_SCHEDULE_NAME, scope=Schedule.Scope.ALL,
                        cadence=Schedule.Cadence.DAILY, daily_at=time(2, 30),
                        time_zone="Europe/Berlin")
    schedule.full_clean()
    schedule.next_run_at = now if fire else schedule.next_run_after(now)
    schedule.save()
    if fire and (claimed := claim(schedule.pk, now, now)) is not None:
        run_as_owner(claimed, now)
        schedule.refresh_from_db()
    return schedule

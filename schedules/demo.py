"""The demo's watch (called from `manage.py seed_demo_watch`, which `make run` runs): Alice's nightly check of
Contoso's demo fleet, and an alert channel that posts to the local catcher `rundemo` starts.

Before Alice has signed in there is no token of hers, so the schedule's first run stops it in "owner must sign
in again" (and that alert goes to the catcher); her sign-in makes it due, and the worker runs it.
"""

import secrets
from datetime import time

from django.db import transaction
from django.utils import timezone

from alerts.models import Channel
from alerts.targets import mask_url
from dashboard.demo import CONTOSO
from dashboard.models import User
from schedules.firing import claim, run_as_owner
from schedules.models import Schedule

DEMO_SCHEDULE_NAME = "Contoso nightly"
DEMO_CHANNEL_NAME = "Demo catcher"
ALICE = {"object_id": "a11ce000-0000-4000-8000-000000000001", "upn": "alice@contoso.example",
         "display_name": "Alice Admin"}


def demo_alice() -> User:
    alice, _ = User.objects.get_or_create(
        tenant_id=CONTOSO, object_id=ALICE["object_id"],
        defaults={"username": f"{CONTOSO}.{ALICE['object_id']}", "upn": ALICE["upn"],
                  "display_name": ALICE["display_name"]},
    )
    return alice


def seed_demo_watch(catcher_url: str) -> tuple[Channel, Schedule]:
    """The channel first, so the schedule's "owner must sign in again" alert has somewhere to go."""
    channel = create_demo_channel(catcher_url)
    return channel, create_demo_schedule()


def create_demo_channel(url: str) -> Channel:
    """Contoso's signed-webhook channel to the demo's catcher at `url`; safe to call again (a new port is kept).

    Saved without the form's address check: the catcher is on loopback, which only the demo's processes
    (ALERT_WEBHOOK_ALLOW_PRIVATE=1 from rundemo) may reach; every send checks the target again.
    """
    channel = Channel.objects.for_tenant(CONTOSO).filter(name=DEMO_CHANNEL_NAME).first()
    if channel is not None:
        if channel.target != url:
            channel.set_target(url, mask_url(url))
            channel.save(update_fields=["target_encrypted", "target_hint"])
        return channel
    channel = Channel(tenant_id=CONTOSO, name=DEMO_CHANNEL_NAME, kind=Channel.Kind.WEBHOOK, created_by=demo_alice())
    channel.set_target(url, mask_url(url))
    channel.set_secret(secrets.token_urlsafe(32))
    channel.save()
    return channel


def create_demo_schedule(*, fire: bool = True) -> Schedule:
    """Alice's daily 02:30 (Europe/Berlin) schedule over all of Contoso's servers; safe to call again.

    With `fire`, it runs once now (as a due run does). Before Alice has signed in there is no token of hers,
    so that first run stops it in "owner must sign in again", and it runs as soon as she signs in.
    """
    alice = demo_alice()
    schedule = Schedule.objects.filter(tenant_id=CONTOSO, owner=alice, name=DEMO_SCHEDULE_NAME).first()
    if schedule is not None:
        return schedule
    now = timezone.now()
    schedule = Schedule(tenant_id=CONTOSO, owner=alice, name=DEMO_SCHEDULE_NAME, scope=Schedule.Scope.ALL,
                        cadence=Schedule.Cadence.DAILY, daily_at=time(2, 30),
                        time_zone="Europe/Berlin")
    schedule.full_clean()
    schedule.next_run_at = now if fire else schedule.next_run_after(now)
    # All or nothing: a first run that crashes (Entra ID not up yet) must not leave a schedule that has
    # moved on to tomorrow's slot without having run or stopped for Alice.
    with transaction.atomic():
        schedule.save()
        if fire and (claimed := claim(schedule.pk, now, now)) is not None:
            run_as_owner(claimed, now)
    schedule.refresh_from_db()
    return schedule

"""Firing due schedules: each due run is claimed once across processes, then run as its owner or stopped.

`fire_due_schedules()` is what the checks worker calls every SCHEDULES_POLL_SECONDS (WORKER_PERIODIC_JOBS).
A run is claimed by a conditional UPDATE that moves `next_run_at` on only if it still holds the value this
process read (and the schedule is still active): of two workers that saw the same due run, one updates a row
and the other updates none. The new `next_run_at` is computed from now, so after downtime a schedule runs
once, not once per missed slot. The batch is queued with the owner's delegated token, never anyone else's;
when that token needs the owner (revoked or expired refresh token, MFA, consent), the schedule stops in
owner_must_sign_in and `schedule_needs_owner` is sent, once. A run that queued its batch also has a worker read
its servers' LTR backups as the owner (schedules.ltr_backups).
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from armclient.onewriter import one_writer
from checks.models import Batch, QueueRefused
from dashboard import entra
from dashboard.models import User
from dashboard.roles import OPERATOR, has_role, tenant_refusal
from schedules import ltr_backups
from schedules.models import Schedule
from schedules.signals import schedule_needs_owner

log = logging.getLogger(__name__)


def queue_checks_as(owner: User, servers: list) -> Batch:
    """The one call into checks that queues a batch as `owner` (servers with a check in flight are left out).

    QueueRefused (nothing queued) when every server is busy, the owner's previous batch over the same servers
    is still in progress, or the tenant is at its cap of active checks."""
    batch, skipped = Batch.objects.queue(servers, owner, api_version=settings.AZURE_LTR_API_VERSION)
    if skipped:
        log.info("Batch %s: %s server(s) already had a check in flight and were left out", batch.pk, len(skipped))
    return batch


def fire_due_schedules(now: datetime | None = None) -> int:
    """Fire every active schedule whose next run has come; how many runs this process claimed."""
    now = now or timezone.now()
    due = Schedule.objects.due(now).order_by("next_run_at", "pk").values_list("pk", "next_run_at")
    fired = 0
    for pk, seen in list(due[: settings.SCHEDULES_FIRE_LIMIT]):
        schedule = claim(pk, seen, now)
        if schedule is None:
            continue  # another worker claimed it first, or it was paused or edited meanwhile
        fired += 1
        try:
            run_as_owner(schedule, now)
        except Exception:
            log.exception("Schedule %s could not queue its run", pk)
            _note_problem(schedule, "The run could not be queued (an internal error, logged); it runs again at "
                                    "its next time.")
    return fired


def claim(pk: int, seen: datetime, now: datetime) -> Schedule | None:
    """Take the due run of schedule `pk` whose next_run_at was `seen`; None if another process took it."""
    schedule = Schedule.objects.select_related("owner").filter(pk=pk).first()
    if schedule is None:
        return None
    next_run = schedule.next_run_after(now, anchor=seen)
    with one_writer():
        taken = Schedule.objects.filter(pk=pk, state=Schedule.State.ACTIVE, next_run_at=seen).update(
            next_run_at=next_run
        )
    if not taken:
        return None
    schedule.next_run_at = next_run
    return schedule


@sensitive_variables("token")
def run_as_owner(schedule: Schedule, now: datetime) -> Batch | None:
    """Queue a batch of the schedule's servers with its owner's token; None if nothing could be queued."""
    if tenant_refusal(schedule.tenant_id):  # the organization was taken off ALLOWED_TENANT_IDS
        _note_problem(schedule, "This organization is no longer served by this dashboard (ALLOWED_TENANT_IDS); "
                                "nothing was checked.")
        return None
    token = entra.arm_token(schedule.owner)
    if token.access_token is None:
        if token.interaction_required:
            stop_for_owner(schedule, token.error)
        else:
            retry_at = now + timedelta(seconds=settings.SCHEDULES_RETRY_SECONDS)
            if retry_at < schedule.next_run_at:
                with one_writer():
                    Schedule.objects.filter(pk=schedule.pk, state=Schedule.State.ACTIVE,
                                            next_run_at=schedule.next_run_at).update(next_run_at=retry_at)
            _note_problem(schedule, f"Entra ID could not be reached to renew the owner's token; retrying at "
                                    f"{retry_at:%H:%M} UTC.")
        return None
    # After the token: an owner who must sign in again is told that first (their roles refresh then too).
    if not has_role(schedule.owner, OPERATOR):  # the owner's roles as of their last sign-in (dashboard.roles)
        _note_problem(schedule, f"{schedule.owner} no longer has the Operator role; nothing was checked.")
        return None
    servers = list(schedule.servers())
    if not servers:
        _note_problem(schedule, "No registered server matches this schedule; nothing was checked.")
        return None
    try:
        batch = queue_checks_as(schedule.owner, servers)
    except QueueRefused as refused:
        _note_problem(schedule, f"This run was not queued: {refused.message}")
        return None
    record_run(schedule, batch, now)
    ltr_backups.queue_refresh(schedule, servers)
    log.info("Schedule %s ran as user %s: batch %s of %s server(s)", schedule.pk, schedule.owner_id, batch.pk,
             len(servers))
    return batch


def record_run(schedule: Schedule, batch: Batch, now: datetime) -> None:
    with one_writer():
        Schedule.objects.filter(pk=schedule.pk).update(last_batch=batch, last_run_at=now, last_problem="")
    schedule.last_batch, schedule.last_run_at, schedule.last_problem = batch, now, ""


def stop_for_owner(schedule: Schedule, reason: str) -> bool:
    """Stop the schedule until its owner signs in again, and say so once (the signal)."""
    with one_writer():
        stopped = Schedule.objects.filter(pk=schedule.pk, state=Schedule.State.ACTIVE).update(
            state=Schedule.State.OWNER_MUST_SIGN_IN,
            last_problem=f"Azure needs {schedule.owner} to sign in again ({reason or 'interaction required'}).",
        )
    if stopped:
        schedule.refresh_from_db()
        log.warning("Schedule %s stopped: its owner (user %s) must sign in again (%s)", schedule.pk,
                    schedule.owner_id, reason)
        schedule_needs_owner.send(sender=Schedule, schedule=schedule, reason=reason)
    return bool(stopped)


def _note_problem(schedule: Schedule, problem: str) -> None:
    with one_writer():
        Schedule.objects.filter(pk=schedule.pk).update(last_problem=problem[:300])
    schedule.last_problem = problem[:300]


def reactivate_after_sign_in(sender, request, user, **kwargs) -> None:
    """The owner is back (user_logged_in): their stopped schedules run again, the first run soon."""
    now = timezone.now()
    count = Schedule.objects.filter(owner=user, state=Schedule.State.OWNER_MUST_SIGN_IN).update(
        state=Schedule.State.ACTIVE, next_run_at=now, last_problem=""
    )
    if count:
        log.info("User %s signed in again: %s schedule(s) active again", user.pk, count)

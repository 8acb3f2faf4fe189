"""The background task that runs one check, and the function that queues it.

The view records the Check row (queued) first and enqueues only its primary key: no token, no user data
in task arguments. The task claims the row with a conditional update, so a check runs once even if the
task is delivered twice, hands the call to armclient, and records its result on the row.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.tasks import TaskResultStatus, task
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from armclient.operations import PreBackupResult, ltr_pre_backup
from armclient.outcomes import Category
from checks.models import Batch, Check
from dashboard import entra
from dashboard.models import Server, User

log = logging.getLogger(__name__)


class AlreadyActive(Exception):
    def __init__(self, check: Check):
        super().__init__(f"check {check.pk} is already {check.status}")
        self.check = check


def queue_check(server: Server, user: User, backup_name: str, api_version: str, batch: Batch | None = None) -> Check:
    """Record a queued check for `server` and hand it to a worker; AlreadyActive if one is in flight."""
    try:
        with transaction.atomic():
            check = Check.objects.create(
                server=server,
                batch=batch,
                backup_name=backup_name,
                requested_by=user,
                requested_by_oid=user.object_id,
                requested_by_name=str(user),
                requested_by_tenant=user.tenant_id,
                api_version=api_version,
            )
            Server.objects.filter(pk=server.pk).update(last_check=check)
    except IntegrityError:
        active = Check.objects.filter(server=server).active().first()
        if active is None:  # finished between the failed insert and this read: the caller may retry
            raise
        raise AlreadyActive(active) from None
    server.last_check = check
    try:
        run_check.enqueue(check.pk)
    except Exception:
        # The row must not stay queued forever with nothing behind it.
        log.exception("Could not enqueue check %s", check.pk)
        check.finish(status=Check.Status.FAILED, category=Category.AZURE_FAILURE,
                     summary="The check could not be handed to a worker; run it again.")
        raise
    return check


def queue_batch(servers, user: User, api_version: str, rerun_of: Batch | None = None) -> tuple[Batch, list[Server]]:
    """One check per server, grouped in a new batch; servers with a check in flight are skipped."""
    from checks.forms import proposed_backup_name

    batch = Batch.objects.create(tenant_id=user.tenant_id, started_by=user, started_by_name=str(user),
                                 rerun_of=rerun_of)
    skipped = []
    for server in servers:
        try:
            queue_check(server, user, proposed_backup_name(server.name), api_version, batch=batch)
        except AlreadyActive:
            skipped.append(server)
    return batch, skipped


def cancel_batch(batch: Batch) -> int:
    """Cancel the batch's queued checks (running ones finish); how many were cancelled."""
    now = timezone.now()
    Batch.objects.filter(pk=batch.pk, cancelled_at__isnull=True).update(cancelled_at=now)
    return Check.objects.filter(batch=batch, status=Check.Status.QUEUED).update(
        status=Check.Status.CANCELLED, finished_at=now, summary="Cancelled before it started."
    )


def mark_interrupted(stale_after: float | None = None) -> int:
    """Checks whose worker or task was lost: say so, and free their server for a new check.

    Running too long: the worker died mid-check. Queued too long *and* its task is no longer waiting:
    the task was lost (claimed by a worker that died before it claimed the check, or failed before it
    started). A queued check whose task still waits its turn (a long batch, paced) is left alone.
    """
    seconds = settings.CHECK_STALE_AFTER if stale_after is None else stale_after
    cutoff = timezone.now() - timedelta(seconds=seconds)
    reason = {
        "status": Check.Status.INTERRUPTED,
        "category": Category.NETWORK,
        "finished_at": timezone.now(),
        "summary": f"The worker running this check stopped (killed or crashed) and it did not finish within "
                   f"{seconds:.0f} s; run it again.",
    }
    count = Check.objects.filter(status=Check.Status.RUNNING, started_at__lt=cutoff).update(**reason)
    for pk in Check.objects.filter(status=Check.Status.QUEUED, created_at__lt=cutoff).values_list("pk", flat=True):
        waiting = DBTaskResult.objects.filter(args_kwargs__args__0=pk).filter(
            Q(status=TaskResultStatus.READY) | Q(status=TaskResultStatus.RUNNING, started_at__gte=cutoff)
        )
        if not waiting.exists():
            count += Check.objects.filter(pk=pk, status=Check.Status.QUEUED).update(
                **{**reason, "summary": "The task behind this check was lost before it started; run it again."}
            )
    if count:
        log.warning("Marked %s check(s) interrupted: their worker or task was lost", count)
    return count


@task()
def run_check(check_id: int) -> str:
    """Claim the check, ask Azure (armclient does the whole conversation), write down what it said."""
    check = Check.objects.claim(check_id)
    if check is None:
        return "not queued"
    try:
        result = ask_azure(check)
    except Exception:
        log.exception("Check %s crashed", check_id)
        check.finish(status=Check.Status.FAILED, category=Category.UNEXPECTED_RESPONSE,
                     summary="The check stopped on an internal error; it was logged. Run it again.")
        raise
    check.record(result)
    log.info("Check %s finished: %s (%s) request_id=%s attempts=%s", check.pk, check.status, result.category,
             result.request_id, result.attempts)
    return check.status


def ask_azure(check: Check) -> PreBackupResult:
    """ltrPreBackup for the check's server, as the person who asked for it, with their own token."""
    user = check.requested_by
    if user is None:
        return PreBackupResult(Category.SIGNIN_REQUIRED,
                               summary="The account that asked for this check no longer exists.")
    server = check.server
    return ltr_pre_backup(
        tokens=lambda claims: entra.arm_token(user, claims_challenge=claims),
        principal_oid=user.object_id,
        subscription_id=server.subscription_id,
        resource_group=server.resource_group,
        server_name=server.name,
        backup_name=check.backup_name,
        api_version=check.api_version,
        on_wait=lambda seconds, note: check.note(note),
    )

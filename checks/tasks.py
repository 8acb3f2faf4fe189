"""The background task that runs one check, and the function that queues it.

The view records the Check row (queued) first and enqueues only its primary key: no token, no user data
in task arguments. The task claims the row with a conditional update, so a check runs once even if the
task is delivered twice, then writes each state before moving on.
"""

import logging
import random
import time
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.tasks import TaskResultStatus, task
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from django_tasks_db.models import DBTaskResult

from checks import arm, pacing
from checks.models import Batch, Check
from checks.outcomes import Category
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
        _finish(check, status=Check.Status.FAILED, category=Category.AZURE_FAILURE,
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
    claimed = Check.objects.filter(pk=check_id, status=Check.Status.QUEUED).update(
        status=Check.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return "not queued"
    check = Check.objects.select_related("server", "requested_by").get(pk=check_id)
    try:
        _run(check)
    except Exception:
        log.exception("Check %s crashed", check_id)
        _finish(check, status=Check.Status.FAILED, category=Category.UNEXPECTED_RESPONSE,
                summary="The check stopped on an internal error; it was logged. Run it again.")
        raise
    return check.status


@sensitive_variables("token", "renewed")
def _run(check: Check) -> None:
    user = check.requested_by
    if user is None:
        _finish(check, status=Check.Status.SIGNIN_REQUIRED, category=Category.SIGNIN_REQUIRED,
                summary="The account that asked for this check no longer exists.")
        return
    token = entra.arm_token(user)
    if token.access_token is None:
        if token.interaction_required:
            _finish(check, status=Check.Status.SIGNIN_REQUIRED, category=Category.SIGNIN_REQUIRED,
                    summary=f"Azure needs you to sign in again ({token.error}).",
                    error_code=token.error, error_message=token.error_description[:2000])
        else:
            _finish(check, status=Check.Status.FAILED, category=Category.NETWORK,
                    summary=token.error_description or "Entra ID could not be reached.")
        return

    server = check.server
    deadline = time.monotonic() + settings.ARM_CHECK_DEADLINE

    def on_wait(seconds: float, status: int | None) -> None:
        why = "throttled by Azure" if status == 429 else f"Azure answered {status}" if status else "connection failed"
        Check.objects.filter(pk=check.pk, status=Check.Status.RUNNING).update(
            summary=f"{why}, retrying in {max(1, round(seconds))} s"
        )

    def on_pace(seconds: float) -> None:
        Check.objects.filter(pk=check.pk, status=Check.Status.RUNNING).update(
            summary=f"waiting for Azure's write limit on this subscription, about {max(1, round(seconds))} s"
        )

    def call(access_token: str) -> arm.PreBackupResult:
        return arm.ltr_pre_backup(
            access_token=access_token,
            subscription_id=server.subscription_id,
            resource_group=server.resource_group,
            server_name=server.name,
            backup_name=check.backup_name,
            api_version=check.api_version,
            on_wait=on_wait,
            deadline_seconds=max(1.0, deadline - time.monotonic()),
        )

    def paced_call(access_token: str) -> arm.PreBackupResult | None:
        """The call, each attempt taking a write token from the pacer; 429s are retried here (not by
        urllib3) so that retries cannot overrun ARM's bucket. None if no token came before the deadline."""
        earlier: list[dict] = []
        for attempt in range(settings.ARM_MAX_RETRIES + 1):
            if not pacing.acquire(server.subscription_id, user.object_id, deadline=deadline, on_wait=on_pace):
                return None
            result = call(access_token)
            result.attempt_log = earlier + result.attempt_log
            result.attempts = len(result.attempt_log)
            # A 429 stops the whole subscription's bucket only when ARM says that bucket is empty; a
            # resource provider throttling one server says nothing about the subscription's other servers.
            bucket_empty = result.http_status == 429 and result.ratelimit_remaining == 0
            pacing.observe(server.subscription_id, user.object_id, remaining=result.ratelimit_remaining,
                           retry_after=result.retry_after if bucket_empty else None)
            if result.http_status != 429 or attempt == settings.ARM_MAX_RETRIES:
                return result
            wait = result.retry_after
            if wait is None:
                factor = settings.ARM_BACKOFF_FACTOR
                wait = min(30.0, factor * 2**attempt + random.uniform(0, factor / 2))
            if wait > settings.ARM_MAX_RETRY_WAIT or time.monotonic() + wait > deadline:
                result.retry_after, result.summary = wait, arm.throttled_summary(wait)
                return result
            on_wait(wait, 429)
            if not bucket_empty:  # the pacer knows nothing of this server's own throttle: wait here
                time.sleep(wait)
            earlier = result.attempt_log
        return result

    exhausted = ("Azure's write limit for this subscription stayed exhausted for longer than a check may wait; "
                 "run it again later.")
    result = paced_call(token.access_token)
    if result is None:
        _finish(check, status=Check.Status.FAILED, category=Category.THROTTLED, summary=exhausted)
        return
    if result.claims_challenge:
        # Continuous Access Evaluation: answer the challenge silently once; only then involve the user.
        first = result
        renewed = entra.arm_token(user, claims_challenge=first.claims_challenge)
        if renewed.access_token is not None:
            result = paced_call(renewed.access_token)
            if result is None:
                _finish(check, status=Check.Status.FAILED, category=Category.THROTTLED, summary=exhausted)
                return
            result.attempts += first.attempts
            result.attempt_log = first.attempt_log + result.attempt_log
        if renewed.access_token is None or result.claims_challenge:
            _finish(check, status=Check.Status.SIGNIN_REQUIRED, category=Category.SIGNIN_REQUIRED,
                    summary="Azure asks you to sign in again (Continuous Access Evaluation): your session was "
                            "revoked or your access changed.",
                    claims_challenge=result.claims_challenge or first.claims_challenge,
                    **_answer_fields(result))
            return
    if result.succeeded:
        status = Check.Status.SUCCEEDED
    elif result.category == Category.SIGNIN_REQUIRED:
        status = Check.Status.SIGNIN_REQUIRED
    else:
        status = Check.Status.FAILED
    _finish(check, status=status, category=result.category, summary=result.summary, **_answer_fields(result))
    log.info("Check %s finished: %s (%s) request_id=%s attempts=%s", check.pk, status, result.category,
             result.request_id, result.attempts)


def _answer_fields(result: arm.PreBackupResult) -> dict:
    return {
        "http_status": result.http_status,
        "number_of_containers": result.number_of_containers,
        "error_code": result.error_code,
        "error_message": result.error_message,
        "error_target": result.error_target,
        "error_details": result.error_details,
        "error_additional_info": result.error_additional_info,
        "response_excerpt": result.response_excerpt,
        "request_id": result.request_id,
        "correlation_request_id": result.correlation_request_id,
        "client_request_id": result.client_request_id,
        "attempts": result.attempts,
        "attempt_log": result.attempt_log,
    }


def _finish(check: Check, **fields) -> bool:
    """Write the end of a check, only if it is still where this worker left it (queued or running).

    A check the reaper already marked interrupted, or a batch cancelled, is history: it is not rewritten.
    """
    fields.setdefault("finished_at", timezone.now())
    written = Check.objects.filter(pk=check.pk, status__in=Check.ACTIVE_STATUSES).update(**fields)
    if written:
        for name, value in fields.items():
            setattr(check, name, value)
    else:
        log.warning("Check %s had already ended (%s); its late result was not recorded", check.pk, check.status)
    return bool(written)

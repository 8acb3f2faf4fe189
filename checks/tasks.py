"""The background task that runs one check.

Check.objects.queue records the Check row (queued) first and enqueues only its primary key: no token, no
user data in task arguments. The task claims the row with a conditional update, so a check runs once even if the
task is delivered twice, then writes each state before moving on.
"""

import logging
import random
import time

from django.conf import settings
from django.tasks import task
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from checks import arm, pacing
from checks.models import Batch, Check
from checks.outcomes import Category
from dashboard import entra
from dashboard.models import Server, User

log = logging.getLogger(__name__)


def queue_batch(servers, user: User, api_version: str, rerun_of: Batch | None = None) -> tuple[Batch, list[Server]]:
    """bench/sweep.py's way in; the app calls Batch.objects.queue itself."""
    return Batch.objects.queue(servers, user, api_version=api_version, rerun_of=rerun_of)


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

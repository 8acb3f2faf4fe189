"""The background tasks: the one that runs one check, and the one that queues a batch's checks (fan_out).

Check.objects.queue records the Check row (queued) first and enqueues only its primary key: no token, no
user data in task arguments. The task claims the row with a conditional update, so a check runs once even if
the task is delivered twice, hands the call to armclient, and records its result on the row.
"""

import logging

from django.tasks import task

from armclient.operations import PreBackupResult, ltr_pre_backup
from armclient.outcomes import Category
from checks.models import Check
from dashboard import entra

log = logging.getLogger(__name__)


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
        tokens=entra.token_source(user, stored_version=getattr(check, "token_version", entra.UNREAD)),
        principal_oid=user.object_id,
        subscription_id=server.subscription_id,
        resource_group=server.resource_group,
        server_name=server.name,
        backup_name=check.backup_name,
        api_version=check.api_version,
        on_wait=lambda seconds, note: check.note(note),
    )


@task()
def fan_out(batch_id: int) -> str:
    """Queue a batch's checks in chunks (checks.fanout); a failure is written on the batch, then raised."""
    from checks import fanout

    try:
        return fanout.fan_out(batch_id)
    except Exception as exc:
        log.exception("Queuing batch %s failed", batch_id)
        fanout.fail(batch_id, f"an internal error: {type(exc).__name__}")
        raise

"""A schedule's run also reads the LTR backups of its servers from Azure, as its owner, in a task.

The checks go to the worker as a batch; the LTR backups of the same servers are read by one task per run, one
server after another, each read paced to ARM's read bucket of (subscription, owner) by armclient like every
list (250, 25 a second: a schedule over 1,000 servers takes the bucket's first 250 at once, then 25 a second),
with a worker's deadline (ARM_CHECK_DEADLINE) rather than a web request's. A server whose list cannot be read
keeps what was seen before; the run's outcome is kept on the schedule (when, how many, which failed and why)
and shown on the schedules page, so a failure is never lost in a log.
"""

import logging

from django.conf import settings
from django.tasks import task
from django.utils import timezone

from armclient.onewriter import one_writer
from backups.refresh import RefreshFailed, refresh
from dashboard.models import Server
from schedules.models import Schedule

log = logging.getLogger(__name__)
PROBLEM_CHARS = 300


def queue_refresh(schedule: Schedule, servers: list[Server]) -> None:
    """Hand the run's LTR backup reads to a worker; a queue that refuses is noted on the schedule."""
    try:
        with one_writer():
            refresh_ltr_backups.enqueue(schedule.pk, [server.pk for server in servers])
    except Exception:
        log.exception("Schedule %s: the LTR backup refresh could not be queued", schedule.pk)
        _record(schedule.pk, "The LTR backups could not be read: the task could not be queued (logged).")


@task()
def refresh_ltr_backups(schedule_id: int, server_ids: list[int]) -> str:
    """Read each server's LTR backups as the schedule's owner; record the outcome on the schedule."""
    schedule = Schedule.objects.select_related("owner").filter(pk=schedule_id).first()
    if schedule is None:
        return "schedule deleted"
    servers = Server.objects.for_tenant(schedule.tenant_id).active().filter(pk__in=server_ids).order_by("name")
    failed, read = [], 0
    for server in servers:
        try:
            refresh(server, schedule.owner, deadline_seconds=settings.ARM_CHECK_DEADLINE)
            read += 1
        except RefreshFailed as failure:
            failed.append(f"{server.name}: {failure.message}")
        except Exception as error:  # one server's bug must not lose the others' outcome
            log.exception("Schedule %s: reading the LTR backups of server %s failed", schedule_id, server.pk)
            failed.append(f"{server.name}: internal error ({type(error).__name__}), logged")
    problem = ""
    if failed:
        problem = (f"The LTR backups of {len(failed)} of {read + len(failed)} server(s) could not be read: "
                   + "; ".join(failed))
    _record(schedule_id, problem, read=read)
    log.info("Schedule %s read the LTR backups of %s server(s), %s failed", schedule_id, read, len(failed))
    return "read" if not failed else "failed"


def _record(schedule_id: int, problem: str, read: int = 0) -> None:
    if len(problem) > PROBLEM_CHARS:
        problem = problem[:PROBLEM_CHARS - 1] + "…"
    with one_writer():
        Schedule.objects.filter(pk=schedule_id).update(backups_read_at=timezone.now(), backups_read=read,
                                                       backups_problem=problem)

"""For tests of batches: run the worker's fan-out (the queuing of a batch's checks) without running the checks.

"Run on all" writes the batch and one `fan_out` task; a worker queues the checks (checks.fanout). Tests that
look at the queued checks run that first step here, through the task's own code, as a worker would.
"""

from django.tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from checks import fanout


def fan_out_queued() -> int:
    """Run every waiting fan-out task (marking its row successful, as a worker does); how many ran."""
    ran = 0
    for row in DBTaskResult.objects.filter(task_path=fanout.FAN_OUT_TASK, status=TaskResultStatus.READY):
        row.set_successful(fanout.fan_out(**row.args_kwargs["kwargs"]))
        ran += 1
    return ran

"""A batch's checks queued by a worker, and what the batch page says about cancelling and re-running it.

"Run on all" over 10,000 servers used to write 30,000 rows inside the web request (2.7 s). The request now
writes the batch (the servers' ids, as the click found them) and one `fan_out` task; the worker queues the
checks QUEUE_CHUNK servers at a time (checks.handoff: a few statements a chunk), each chunk in its own
transaction that holds the batch's row lock and moves the batch's `fanned_out` on, so the page can say
"Queuing 1,500 of 10,000…" and a cancel stops the fan-out between two chunks. A fan-out that fails, or whose
worker dies, is written on the batch ("failed", with why), never left "queuing".
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from armclient.outcomes import Category
from checks import handoff
from checks.models import Batch, Check, one_writer
from dashboard.models import Server

log = logging.getLogger("checks.tasks")

FAN_OUT_TASK = "checks.tasks.fan_out"
# A throttled check whose answer named no time to wait is left out of "might pass now" for this long.
THROTTLED_WITHOUT_A_TIME = timedelta(seconds=60)
# A Retry-After longer than this is taken as this long (Azure asks for seconds or minutes).
LONGEST_RETRY_AFTER = timedelta(days=1)


def fan_out(batch_id: int) -> str:
    """Queue the batch's checks chunk by chunk until every server is done, or a cancel stopped it."""
    batch = Batch.objects.select_related("started_by").get(pk=batch_id)
    if batch.started_by is None:
        fail(batch_id, "the account that started this batch no longer exists")
        return Batch.FanOut.FAILED
    state = Batch.FanOut.QUEUING
    while state == Batch.FanOut.QUEUING:
        state = queue_next_chunk(batch)
    return state


def queue_next_chunk(batch: Batch) -> str:
    """One chunk's checks and tasks, and the batch's progress, in one transaction; the batch's state after."""
    with one_writer(), transaction.atomic():
        row = Batch.objects.select_for_update().filter(pk=batch.pk).values("fan_out", "fanned_out", "skipped_ids").get()
        if row["fan_out"] != Batch.FanOut.QUEUING:
            return row["fan_out"]  # a cancel stopped it (or another delivery of the task finished it)
        part = batch.server_ids[row["fanned_out"]:row["fanned_out"] + handoff.QUEUE_CHUNK]
        # Servers archived since the click are not checked; the others keep their place in the batch's order.
        found = {server.pk: server for server in Server.objects.for_tenant(batch.tenant_id).active()
                 .filter(pk__in=part).only("pk", "name", "tenant_id")}
        servers = [found[pk] for pk in part if pk in found]
        lost = (handoff.queue_chunk(batch, servers, batch.started_by, "", first_position=row["fanned_out"])
                if servers else [])
        done = row["fanned_out"] + len(part)
        state = Batch.FanOut.DONE if done >= batch.server_count else Batch.FanOut.QUEUING
        Batch.objects.filter(pk=batch.pk).update(
            fanned_out=done, fan_out=state, skipped_ids=row["skipped_ids"] + [server.pk for server in lost],
            skipped_count=F("skipped_count") + len(lost))
    return state


def fail(batch_id: int, why: str) -> bool:
    """Write on a batch still queuing that its fan-out stopped, and why; False if it was no longer queuing."""
    batch = Batch.objects.only("fanned_out", "server_count").get(pk=batch_id)
    text = (f"Queuing stopped after {batch.fanned_out:,} of {batch.server_count:,} servers ({why}); "
            "the rest were not queued.")
    with one_writer():
        changed = Batch.objects.filter(pk=batch_id, fan_out=Batch.FanOut.QUEUING).update(
            fan_out=Batch.FanOut.FAILED, fan_out_error=text[:500])
    if changed:
        log.error("Batch %s: %s", batch_id, text)
    return bool(changed)


def mark_lost(stale_after: float | None = None) -> int:
    """Batches still "queuing" whose fan-out task is no longer waiting or running, and that queued no check for
    CHECK_STALE_AFTER (its worker was killed):
    written as failed, so their page stops saying "Queuing…" forever. Run by the worker's reaper."""
    seconds = settings.CHECK_STALE_AFTER if stale_after is None else stale_after
    cutoff = timezone.now() - timedelta(seconds=seconds)
    lost = 0
    for pk in Batch.objects.filter(fan_out=Batch.FanOut.QUEUING, created_at__lt=cutoff).values_list("pk", flat=True):
        waiting = DBTaskResult.objects.filter(task_path=FAN_OUT_TASK, args_kwargs__kwargs__batch_id=pk).filter(
            Q(status=TaskResultStatus.READY) | Q(status=TaskResultStatus.RUNNING, started_at__gte=cutoff))
        # A fan-out that queued a chunk lately is alive, however long ago its task was claimed.
        progressing = Check.objects.filter(batch_id=pk, created_at__gte=cutoff)
        if not waiting.exists() and not progressing.exists() and fail(
                pk, "the worker queuing it stopped: killed or crashed"):
            lost += 1
    return lost


# ---- Cancelling: the words of the confirm dialog, the message and the header ---------------------------------

def _checks(n: int) -> str:
    return f"{n:,} check{'s' if n != 1 else ''}"


@dataclass
class Cancellation:
    """What a cancel did: checks cancelled while queued, servers no longer to be queued, checks left running."""

    queued: int
    unqueued: int
    running: int

    @property
    def cancelled_anything(self) -> bool:
        return bool(self.queued or self.unqueued)

    @property
    def what(self) -> str:
        """ "3 queued checks and 9,000 not queued yet" """
        parts = []
        if self.queued:
            parts.append(f"{self.queued:,} queued check{'s' if self.queued != 1 else ''}")
        if self.unqueued:
            what = f"{self.unqueued:,}" if self.queued else _checks(self.unqueued)
            parts.append(f"{what} not queued yet")
        return " and ".join(parts)

    @property
    def running_note(self) -> str:
        if not self.running:
            return ""
        return f"{self.running:,} {'was' if self.running == 1 else 'were'} already running"

    @property
    def message(self) -> str:
        """What the person who pressed Cancel is told: exactly what happened."""
        if not self.cancelled_anything:
            if self.running:
                return (f"Nothing to cancel: no check was still queued; {self.running:,} "
                        f"{'is' if self.running == 1 else 'are'} running and will finish.")
            return "Nothing to cancel: every check of this batch had already finished."
        running = f"; {self.running_note} and will finish." if self.running else "."
        return f"Cancelled {self.what}{running}"

    @property
    def header(self) -> str:
        """What the batch's header says afterwards, after "Cancelled <when>: "."""
        if not self.running:
            return self.what
        return f"{self.what}; {self.running_note} and {'was' if self.running == 1 else 'were'} left to finish"


def cancel_question(progress: dict) -> str:
    """The confirm dialog's question, with the numbers the page shows: "Cancel 3 queued checks? 11 running
    checks will finish." """
    what = Cancellation(queued=progress["queued"], unqueued=progress["unqueued"], running=progress["running"])
    running = progress["running"]
    after = f" {running:,} running check{'s' if running != 1 else ''} will finish." if running else ""
    return f"Cancel {what.what}?{after}"


# ---- Re-running what did not pass: what might pass now, what is left out and why ----------------------------

@dataclass
class LeftOut:
    category: str
    count: int
    why: str

    @property
    def label(self) -> str:
        return Category(self.category).label


@dataclass
class RerunPlan:
    """The batch's checks that did not pass, split into those that might pass if run now and those left out."""

    everything: int
    left_out: list[LeftOut] = field(default_factory=list)
    throttled_ids: list[int] = field(default_factory=list)  # still inside the wait Azure asked for

    @property
    def might_pass(self) -> int:
        return self.everything - sum(group.count for group in self.left_out)


def _unchanged_permission(user) -> Q:
    """Refused to this same user, who has not signed in since (a new role reaches us only with a sign-in)."""
    mine = Q(category=Category.PERMISSION_MISSING, requested_by=user)
    return mine & Q(finished_at__gte=user.last_login) if user.last_login else mine


def retry_time(finished_at: datetime | None, attempt_log: list) -> datetime:
    """When Azure said a throttled check may be asked again: its end plus the last Retry-After it gave."""
    asked = [a["retry_after"] for a in attempt_log or [] if a.get("status") == 429 and a.get("retry_after")]
    if not asked:
        wait = THROTTLED_WITHOUT_A_TIME
    elif 0 < asked[-1] <= LONGEST_RETRY_AFTER.total_seconds():
        wait = timedelta(seconds=asked[-1])
    else:  # Retry-After is upstream text: 10^14 s (past year 9999), inf or nan would fail the batch page
        wait = LONGEST_RETRY_AFTER
    return (finished_at or timezone.now()) + wait


def rerun_plan(batch: Batch, user, now: datetime | None = None) -> RerunPlan:
    """Two queries (three with throttled checks), whatever the size of the batch."""
    now = now or timezone.now()
    failed = batch.checks.filter(status__in=Check.RERUNNABLE_STATUSES)
    groups = {row["category"]: row for row in failed.values("category").annotate(
        n=Count("id"), unchanged=Count("id", filter=_unchanged_permission(user))).order_by()}
    plan = RerunPlan(everything=sum(row["n"] for row in groups.values()))
    if Category.NOT_FOUND in groups:
        plan.left_out.append(LeftOut(Category.NOT_FOUND, groups[Category.NOT_FOUND]["n"], (
            "Azure answered 404: no such server, resource group or subscription. It will answer the same until "
            "the registration is corrected (or the server archived).")))
    if (unchanged := groups.get(Category.PERMISSION_MISSING, {}).get("unchanged")):
        plan.left_out.append(LeftOut(Category.PERMISSION_MISSING, unchanged, (
            "Azure refused you the permission, and you have not signed in since: it will refuse again until "
            "your role changes and you sign in again.")))
    if Category.THROTTLED in groups:
        waits = {pk: retry_time(end, log_) for pk, end, log_ in failed.filter(category=Category.THROTTLED)
                 .values_list("pk", "finished_at", "attempt_log")}
        plan.throttled_ids = [pk for pk, at in waits.items() if at > now]
        if plan.throttled_ids:
            until = max(waits[pk] for pk in plan.throttled_ids)
            plan.left_out.append(LeftOut(Category.THROTTLED, len(plan.throttled_ids), (
                f"Azure asked to wait: the last of them may be asked again after {until:%H:%M:%S} UTC.")))
    return plan


def servers_to_rerun(batch: Batch, user, *, only_might_pass: bool) -> list[int]:
    """The ids of the tenant's active servers whose check in this batch did not pass (only those that might
    pass now, unless everything is asked for)."""
    failed = batch.checks.filter(status__in=Check.RERUNNABLE_STATUSES)
    if only_might_pass:
        plan = rerun_plan(batch, user)
        failed = failed.exclude(category=Category.NOT_FOUND).exclude(_unchanged_permission(user)).exclude(
            pk__in=plan.throttled_ids)
    return list(Server.objects.for_tenant(batch.tenant_id).active().filter(pk__in=failed.values("server_id"))
                .order_by("name").values_list("pk", flat=True))

"""Recording deliveries and sending them from the task queue, with retries and backoff.

A Delivery is written first (queued), then a task carrying only its id and the attempt number. The task
claims the attempt with a conditional update (a task delivered twice sends once), sends, and then either
marks the delivery sent, queues the next attempt with `run_after` (ALERT_RETRY_DELAYS), or marks it failed
with a short error. Nothing is dropped: every delivery ends sent or failed in the log, or in a summary that
did (a channel in a burst holds alerts for one summary instead of queuing each: alerts/bursts.py).
"""

import logging
from datetime import timedelta

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.tasks import task
from django.utils import timezone

from alerts import Alert, AlertKind, bursts
from alerts.models import Channel, Delivery
from alerts.transports import SendFailed, send
from armclient.onewriter import one_writer

log = logging.getLogger(__name__)


def raise_alert(alert: Alert) -> list[Delivery]:
    # By id, the order every worker locks them in (a name can change between two workers' reads).
    channels = list(Channel.objects.for_tenant(alert.tenant_id).filter(enabled=True).order_by("pk"))
    if not channels:
        return []
    with one_writer(), transaction.atomic():  # one writer's turn for every channel: a storm raises thousands
        return [_queue(channel, alert) for channel in _still_there(channels)]


def _still_there(channels: list[Channel]) -> list[Channel]:
    """The channels not deleted since they were read, each kept from deletion until the transaction ends: one
    deleted in between failed the whole alert at COMMIT (its deliveries' foreign key), for every channel.
    On PostgreSQL FOR KEY SHARE, which alerts raised at once share (a deletion waits); on SQLite one writer
    at a time keeps what this transaction reads."""
    ids = [channel.pk for channel in channels]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {Channel._meta.db_table} WHERE id = ANY(%s) FOR KEY SHARE",  # noqa: S608
                           [ids])
            present = {pk for (pk,) in cursor.fetchall()}
    else:
        present = set(Channel.objects.filter(pk__in=ids).values_list("pk", flat=True))
    if gone := [channel.pk for channel in channels if channel.pk not in present]:
        log.info("An alert was not queued to channel(s) %s: deleted meanwhile", gone)
    return [channel for channel in channels if channel.pk in present]


def queue_delivery(channel: Channel, alert: Alert) -> Delivery:
    """One delivery of `alert` to `channel` (enabled or not: the test button uses this too): queued with its
    task, or held for the channel's summary when the channel is in a burst (alerts/bursts.py)."""
    with one_writer(), transaction.atomic():
        return _queue(channel, alert)


def _queue(channel: Channel, alert: Alert) -> Delivery:
    # Inside a transaction: the row and its task commit together (a worker raises alerts: a writer like the
    # checks' own); so do the window's count and the row it lets through, under the channel's lock.
    burst = bursts.Burst.NONE if alert.kind == AlertKind.TEST else bursts.burst_of(channel)
    if burst == bursts.Burst.STARTS:
        summary = bursts.new_summary(channel)
        _enqueue(summary, when=summary.next_attempt_at)
    if burst != bursts.Burst.NONE:
        return bursts.held(channel, alert)
    delivery = Delivery.objects.create(
        tenant_id=channel.tenant_id, channel=channel, channel_name=channel.name[:130], kind=str(alert.kind),
        title=alert.title[:300], payload=alert.as_payload(), next_attempt_at=timezone.now(),
    )
    _enqueue(delivery, when=None)
    return delivery


def _enqueue(delivery: Delivery, when) -> None:
    try:
        with transaction.atomic():  # a refused task row must not take the delivery's row with it
            (deliver.using(run_after=when) if when else deliver).enqueue(delivery.pk, 1)
    except Exception:
        log.exception("Could not queue alert delivery %s", delivery.pk)
        _fail(delivery.pk, "Could not be handed to the task queue.")


@task()
def deliver(delivery_id: int, attempt: int) -> str:
    if not _claim(delivery_id, attempt):
        return "not queued"
    delivery = Delivery.objects.select_related("channel").get(pk=delivery_id)
    if delivery.channel is None:
        _fail(delivery_id, "The channel was deleted before the message was sent.")
        return Delivery.Status.FAILED
    try:
        send(delivery.channel, Alert.from_payload(delivery.payload), delivery_id)
    except SendFailed as failure:
        return _after_failure(delivery, attempt, str(failure), failure.retry)
    except InvalidToken:
        return _after_failure(delivery, attempt, "The channel's target cannot be decrypted (keys changed); "
                              "edit the channel and enter it again.", False)
    except Exception as error:  # a bug must not leave the delivery queued forever
        log.error("Alert delivery %s crashed: %s", delivery_id, type(error).__name__)
        return _after_failure(delivery, attempt, f"Internal error ({type(error).__name__}); it was logged.", True)
    with one_writer():
        Delivery.objects.filter(pk=delivery_id).update(status=Delivery.Status.SENT, sent_at=timezone.now(),
                                                       last_error="", sending_since=None)
    log.info("Alert delivery %s sent to channel %s (%s) on attempt %s", delivery_id, delivery.channel_id,
             delivery.channel.kind, attempt)
    return Delivery.Status.SENT


def _claim(delivery_id: int, attempt: int) -> bool:
    """Take `attempt` of the delivery (a task delivered twice sends once). A summary's first attempt also
    gathers the alerts held for it: its UPDATE waits for the workers holding alerts for it (their shared lock
    on its row), and alerts held after it start the next summary."""
    with one_writer(), transaction.atomic():
        claimed = Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.QUEUED, attempts=attempt - 1).update(
            attempts=attempt, next_attempt_at=None, sending_since=timezone.now())
        if claimed and attempt == 1:
            summary = Delivery.objects.filter(pk=delivery_id, kind=AlertKind.SUMMARY, channel__isnull=False).first()
            if summary and not bursts.gather(summary):
                _fail(delivery_id, "No alert was held for this summary.")
                return False
    return bool(claimed)


def _after_failure(delivery: Delivery, attempt: int, error: str, retry: bool) -> str:
    delays = settings.ALERT_RETRY_DELAYS
    if not retry or attempt > len(delays):
        _fail(delivery.pk, error)
        log.warning("Alert delivery %s to channel %s failed after %s attempt(s): %s", delivery.pk,
                    delivery.channel_id, attempt, error)
        return Delivery.Status.FAILED
    when = timezone.now() + timedelta(seconds=delays[attempt - 1])
    with one_writer():
        Delivery.objects.filter(pk=delivery.pk).update(last_error=error[:300], next_attempt_at=when,
                                                       sending_since=None)
        deliver.using(run_after=when).enqueue(delivery.pk, attempt + 1)
    log.info("Alert delivery %s attempt %s failed (%s); retrying at %s", delivery.pk, attempt, error, when.isoformat())
    return "retrying"


def _fail(delivery_id: int, error: str) -> None:
    with one_writer():
        Delivery.objects.filter(pk=delivery_id).update(status=Delivery.Status.FAILED, last_error=error[:300],
                                                       next_attempt_at=None, sending_since=None)


def delete_channel(channel: Channel) -> None:
    """Delete `channel`; its deliveries stay in the log, and the alerts it held for a summary, and the summary,
    say they were not sent (its queued deliveries fail when their tasks find it gone). Locks in the order every
    path takes them: the channel (an alert being raised holds it FOR KEY SHARE, so this waits until the alert's
    deliveries are committed and then sets them loose, or the alert finds the channel gone), then its waiting
    summary (before bursts.drop_held, as the summary's claim locks it before its held alerts); mend_bursts
    fails what a race leaves held."""
    with one_writer(), transaction.atomic():
        list(Channel.objects.select_for_update().filter(pk=channel.pk).values_list("pk"))
        pending = Delivery.objects.select_for_update().filter(
            channel=channel, kind=AlertKind.SUMMARY, status=Delivery.Status.QUEUED, attempts=0)
        list(pending.values_list("pk"))
        pending.update(status=Delivery.Status.FAILED, next_attempt_at=None,
                       last_error="The channel was deleted before this summary was sent.")
        bursts.drop_held(channel)
        channel.delete()


def mend_bursts(grace: float = 120.0) -> int:
    """What a crash, a lost task or a race can leave of a burst, mended (the worker's periodic jobs): a
    summary still unclaimed `grace` seconds after it was due gets its task again (a claim is taken once, so a
    second task is harmless); alerts held for a channel with no summary waiting get one, due now; alerts held
    for a deleted channel are failed. How many deliveries it touched."""
    now = timezone.now()
    overdue = list(Delivery.objects.filter(kind=AlertKind.SUMMARY, status=Delivery.Status.QUEUED, attempts=0,
                                           next_attempt_at__lt=now - timedelta(seconds=grace)).values_list("pk"))
    for (pk,) in overdue:
        with one_writer(), transaction.atomic():
            Delivery.objects.filter(pk=pk, attempts=0).update(next_attempt_at=now)  # not again before `grace`
            _enqueue(Delivery(pk=pk), when=None)
        log.warning("Alert summary %s was not claimed %s s after it was due; queued again", pk, grace)
    touched = len(overdue)
    with one_writer():
        touched += Delivery.objects.filter(status=Delivery.Status.HELD, channel__isnull=True).update(
            status=Delivery.Status.FAILED, last_error="The channel was deleted before its summary was sent.")
    waiting = Delivery.objects.filter(kind=AlertKind.SUMMARY, status=Delivery.Status.QUEUED, attempts=0,
                                      channel__isnull=False)  # (a NULL would make NOT IN match nothing)
    stranded = (Delivery.objects.filter(status=Delivery.Status.HELD).exclude(channel__in=waiting.values("channel"))
                .values_list("channel", flat=True).distinct())
    for channel in Channel.objects.filter(pk__in=list(stranded)).order_by("pk"):
        with one_writer(), transaction.atomic():
            if bursts.burst_of(channel) != bursts.Burst.GOES_ON:  # locks it; none was started meanwhile
                summary = bursts.new_summary(channel, due=now)
                _enqueue(summary, when=None)
                log.warning("Alerts held for channel %s had no summary waiting; one is queued", channel.pk)
                touched += 1
    return touched


# The log's rows that have ended; queued and held ones are kept whatever their age (they still have to end).
ENDED = (Delivery.Status.SENT, Delivery.Status.FAILED, Delivery.Status.SUMMARIZED)
PRUNE_CHUNK = 2000
PRUNE_CHUNKS_A_RUN = 25  # 50,000 rows a run every 10 minutes: a backlog goes without holding the worker's loop


def prune_old_deliveries(days: int | None = None) -> int:
    """Delete the deliveries raised more than ALERT_LOG_RETENTION_DAYS ago that have ended, oldest first, a
    chunk a transaction (the worker's periodic jobs). A summary stays while an alert it gathered is newer than
    the retention, and goes with all it gathered (`_delete`): a row kept never says "in a summary" of nothing.
    How many were deleted."""
    days = settings.ALERT_LOG_RETENTION_DAYS if days is None else days
    if not days:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    gathered_later = Delivery.objects.filter(summary=OuterRef("pk"), created_at__gte=cutoff)
    old = (Delivery.objects.filter(created_at__lt=cutoff, status__in=ENDED).filter(~Exists(gathered_later))
           .order_by("created_at").values_list("pk", "kind"))
    deleted = 0
    for _ in range(PRUNE_CHUNKS_A_RUN):
        with one_writer(), transaction.atomic():
            chunk = list(old[:PRUNE_CHUNK])
            if chunk:
                deleted += _delete(chunk)
        if len(chunk) < PRUNE_CHUNK:
            break
    if deleted:
        log.info("Deleted %s alert deliveries raised more than %s days ago", deleted, days)
    return deleted


def _delete(chunk: list[tuple[int, str]]) -> int:
    """Delete these (id, kind) deliveries, and the alerts each summary among them gathered (as old, and ended:
    a summary is deleted with the last of them), by one statement: no row is left saying "in a summary" of
    nothing, and the summary's foreign key to its own table holds at COMMIT. QuerySet.delete() read every row
    whole first, payloads and all, because of that key (4.6 s for 50,000 rows)."""
    pks = {pk for pk, _ in chunk}
    if summaries := [pk for pk, kind in chunk if kind == AlertKind.SUMMARY]:
        pks.update(Delivery.objects.filter(summary__in=summaries).values_list("pk", flat=True))
    marks = ", ".join(["%s"] * len(pks))
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Delivery._meta.db_table} WHERE id IN ({marks})", sorted(pks))  # noqa: S608
        return cursor.rowcount


def reap_stuck(stale_after: float | None = None) -> int:
    """Deliveries whose worker died mid-send (killed, crashed): count the attempt as failed and retry or fail
    them, so none stays queued forever. Called from the worker's periodic reaper; how many were reaped."""
    seconds = stale_after if stale_after is not None else settings.ALERT_WEBHOOK_TIMEOUT + 120
    cutoff = timezone.now() - timedelta(seconds=seconds)
    stuck = Delivery.objects.filter(status=Delivery.Status.QUEUED, sending_since__lt=cutoff).select_related("channel")
    count = 0
    for delivery in stuck:
        with one_writer():
            taken = Delivery.objects.filter(pk=delivery.pk, sending_since=delivery.sending_since).update(
                sending_since=None)
        if taken:
            _after_failure(delivery, delivery.attempts, "The worker stopped while sending this message.", True)
            count += 1
    return count

"""Alert storms: a channel sends at most ALERT_BURST_LIMIT alerts one by one in any ALERT_BURST_WINDOW seconds;
past that, alerts are held and go out together as one summary, a window after the first of them was held.

Why: one maintenance window or regional incident makes thousands of servers not ready within one scheduled
sweep. A message a server would bury the one that matters, fill inboxes, and run into the receiver's own limits
(Slack takes about one message a second a webhook; mail relays throttle). Alertmanager groups for the same
reason (group_wait, group_interval); here the group is the channel, and the rule fits in a sentence. While a
burst lasts a channel sends at most ALERT_BURST_LIMIT + 1 messages a window: the ones sent alone, one summary.

Every alert still gets its own Delivery row, so the log at /alerts/ lists each one: a held row waits for the
summary; once the summary is claimed for sending, the rows it gathered point at it. A test message is never held.

The count of the window, the one summary still to be sent and the rows it gathers must agree across workers:
`burst_of` takes the channel's row lock to count, or in a burst a shared lock on the waiting summary, which
its claim must wait for (until the callers' transactions end; SQLite has no such locks and needs none, as
one_writer already lets one writer at a time in).
"""

from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.db import connection
from django.db.models import Count, Max, Min
from django.urls import reverse
from django.utils import timezone
from django.utils.text import Truncator

from alerts import Alert, AlertKind
from alerts.models import Channel, Delivery

LISTED = 20  # held alerts a summary names one by one; the rest it counts
TITLE_CHARS = 120  # each cut to this: 20 of them and the count fit a Slack section's 3,000 characters
SENT_ALONE = (Delivery.Status.QUEUED, Delivery.Status.SENT, Delivery.Status.FAILED)
KIND_WORDS = {  # "Summary of 42 alerts: 40 readiness changes, 1 failed LTR backup, 1 LTR backup gap"
    AlertKind.READINESS_CHANGED: ("readiness change", "readiness changes"),
    AlertKind.OWNER_MUST_SIGN_IN: ("schedule waiting for its owner", "schedules waiting for their owner"),
    AlertKind.LTR_BACKUP_FAILED: ("failed LTR backup", "failed LTR backups"),
    AlertKind.LTR_BACKUP_GAP: ("LTR backup gap", "LTR backup gaps"),
}


class Burst(StrEnum):
    NONE = "none"  # send the alert alone
    STARTS = "starts"  # hold it, in a summary queued now
    GOES_ON = "goes on"  # hold it, in the summary already waiting


def burst_of(channel: Channel) -> Burst:
    """Whether an alert to `channel` now is sent alone or held: held while a summary is waiting, or once the
    channel sent ALERT_BURST_LIMIT alerts alone in the last window. Call inside a transaction.

    In a burst (a summary waiting) this takes only a shared lock on that summary's row: the many workers
    holding alerts at once do not wait for each other, and the summary's claim (an UPDATE of that row) waits
    for every one of them, so what they hold is in it. Otherwise it locks the channel's row, so that the
    window's count and the row it lets through agree across workers.

    Accepted: PostgreSQL may let new shared lockers past a waiting UPDATE, so in a long storm the claim can
    wait past its due time until a moment nobody holds (holds last milliseconds; mend_bursts queues it again
    if its task was lost)."""
    limit = settings.ALERT_BURST_LIMIT
    if not limit:
        return Burst.NONE
    if _share_pending_summary(channel):
        return Burst.GOES_ON
    # NO KEY: the rows other workers insert for this channel take a key-share lock on it (their foreign key).
    list(Channel.objects.select_for_update(no_key=True).filter(pk=channel.pk).values_list("pk"))
    if _share_pending_summary(channel):  # started by another worker while this one waited for the lock
        return Burst.GOES_ON
    return Burst.STARTS if sent_alone(channel, limit) >= limit else Burst.NONE


def _share_pending_summary(channel: Channel) -> bool:
    """Whether the channel has a summary waiting, which then cannot be claimed until this transaction ends
    (SELECT ... FOR SHARE, which Django's ORM does not write; on SQLite one writer at a time does the same)."""
    if connection.vendor != "postgresql":
        return pending_summary(channel) is not None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {Delivery._meta.db_table} WHERE channel_id = %s AND kind = %s "  # noqa: S608 - our table's name
                       "AND status = %s AND attempts = 0 FOR SHARE",
                       [channel.pk, AlertKind.SUMMARY.value, Delivery.Status.QUEUED.value])
        return cursor.fetchone() is not None


def sent_alone(channel: Channel, limit: int) -> int:
    """How many alerts the channel sent (or is sending) one by one in the last window, counted up to `limit`."""
    since = timezone.now() - timedelta(seconds=settings.ALERT_BURST_WINDOW)
    alone = (Delivery.objects.filter(channel=channel, created_at__gte=since, status__in=SENT_ALONE)
             .exclude(kind__in=(AlertKind.TEST, AlertKind.SUMMARY)))
    return alone.values("pk")[:limit].count()


def pending_summary(channel: Channel) -> Delivery | None:
    """The channel's summary that held alerts still join (not yet claimed for sending), if any."""
    return Delivery.objects.only("pk").filter(channel=channel, kind=AlertKind.SUMMARY, status=Delivery.Status.QUEUED,
                                   attempts=0).first()


def new_summary(channel: Channel, due: datetime | None = None) -> Delivery:
    """The summary the next held alerts join, due a window from now; its payload is written by `gather`."""
    due = due or timezone.now() + timedelta(seconds=settings.ALERT_BURST_WINDOW)
    return Delivery.objects.create(
        tenant_id=channel.tenant_id, channel=channel, channel_name=channel.name[:130], kind=AlertKind.SUMMARY,
        title="Summary of the alerts held until it is sent", payload={}, next_attempt_at=due)


def held(channel: Channel, alert: Alert) -> Delivery:
    """The row of an alert held for the channel's summary (no task: the summary's task sends it)."""
    return Delivery.objects.create(
        tenant_id=channel.tenant_id, channel=channel, channel_name=channel.name[:130], kind=str(alert.kind),
        title=alert.title[:300], payload=alert.as_payload(), status=Delivery.Status.HELD)


def gather(summary: Delivery) -> int:
    """Move the channel's held alerts into `summary` (just claimed for its first attempt, in this transaction)
    and write its message; how many it holds. The claim waited for every worker that was holding an alert for
    it (burst_of's shared lock); one that comes after finds it claimed and starts the next summary."""
    channel_id = summary.channel_id
    rows = Delivery.objects.filter(channel_id=channel_id, status=Delivery.Status.HELD)
    totals = rows.aggregate(n=Count("pk"), first=Min("created_at"), last=Max("created_at"))
    if not totals["n"]:
        return 0
    by_kind = {row["kind"]: row["n"] for row in rows.order_by().values("kind").annotate(n=Count("pk"))}
    listed = list(rows.order_by("created_at", "pk").values_list("title", flat=True)[:LISTED])
    rows.update(status=Delivery.Status.SUMMARIZED, summary=summary)
    alert = summary_alert(summary.tenant_id, totals["n"], by_kind, listed, totals["first"], totals["last"])
    Delivery.objects.filter(pk=summary.pk).update(title=alert.title[:300], payload=alert.as_payload())
    return totals["n"]


def summary_alert(tenant_id: str, count: int, by_kind: dict, listed: list[str], first: datetime,
                  last: datetime) -> Alert:
    kinds = sorted(by_kind.items(), key=_most)
    more = count - len(listed)
    lines = [f"More than {_counted(settings.ALERT_BURST_LIMIT, 'alert', 'alerts')} reached this channel within "
             f"{window_words()}, so these were held and are sent together"
             f"{f'; the first {len(listed)}' if more else ''}:"]
    lines += [f"• {Truncator(title).chars(TITLE_CHARS)}" for title in listed]
    if more:
        lines.append(f"… and {more} more: the delivery log lists every one.")
    facts = {"Alerts": str(count), **{_words(kind, 2).capitalize(): str(n) for kind, n in kinds},
             "First held": f"{first:%Y-%m-%d %H:%M:%S} UTC", "Last held": f"{last:%Y-%m-%d %H:%M:%S} UTC"}
    url = settings.DASHBOARD_URL + reverse("alerts:index") if settings.DASHBOARD_URL else ""
    title = f"Summary of {_counted(count, 'alert', 'alerts')}: " + ", ".join(
        f"{n} {_words(kind, n)}" for kind, n in kinds)
    return Alert(tenant_id=tenant_id, kind=AlertKind.SUMMARY, title=title, text="\n".join(lines), url=url,
                 facts=facts)


def _words(kind: str, n: int) -> str:
    one, many = KIND_WORDS.get(kind, (kind, kind))
    return one if n == 1 else many


def _counted(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def drop_held(channel: Channel) -> int:
    """Before a channel is deleted: its held alerts will never be sent; say so in the log."""
    return Delivery.objects.filter(channel=channel, status=Delivery.Status.HELD).update(
        status=Delivery.Status.FAILED, last_error="The channel was deleted before its summary was sent.")


def window_words() -> str:
    seconds = settings.ALERT_BURST_WINDOW
    if seconds >= 60 and seconds % 60 == 0:
        return _counted(int(seconds // 60), "minute", "minutes")
    return f"{seconds:g} seconds"


def _most(item):
    kind, n = item
    return -n, kind

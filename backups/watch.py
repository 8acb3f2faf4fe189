"""Alerts about LTR backups: a failed backup (once per operation, when a refresh first sees it failed) and a
server with no successful LTR backup in its tenant's N days (once per gap, with a message when one succeeds).

Only servers whose backups were read at least once are judged: without a read there is nothing to say; one
with no success kept is given N days from its first read (a new server, or LTR not set up yet, would otherwise
alert on the first read of a whole fleet). A failure is alerted only if it began within the same N days, so
the first read of a server with a year of history does not send a message per old failure. Each alert is
claimed by a conditional update of the row that remembers it (failure_alerted_at, gap_alerted_at): two
refreshes, or two workers, send it once.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from alerts import Alert, AlertKind, raise_alert
from armclient.onewriter import one_writer
from backups.models import LtrAlertSetting, LtrBackup, LtrRefresh
from dashboard.models import Server

log = logging.getLogger(__name__)


def _link(server: Server) -> str:
    return settings.DASHBOARD_URL + reverse("server_detail", args=[server.pk]) if settings.DASHBOARD_URL else ""


def _facts(server: Server) -> dict:
    return {"Server": server.name, "Resource group": server.resource_group, "Subscription": server.subscription_id}


def alert_new_failures(server: Server, now: datetime | None = None) -> int:
    """Alert each failed backup of `server` not alerted yet that began within the tenant's N days."""
    now = now or timezone.now()
    since = now - timedelta(days=LtrAlertSetting.days_for(server.tenant_id))
    failed = (LtrBackup.objects.filter(server=server, status="Failed", failure_alerted_at=None)
              .annotate(began=Coalesce("start_time", "first_seen_at")).filter(began__gte=since))
    sent = 0
    for backup in failed:
        if not LtrBackup.objects.filter(pk=backup.pk, failure_alerted_at=None).update(failure_alerted_at=now):
            continue  # another refresh claimed it
        error = f"{backup.error_message} ({backup.error_code})" if backup.error_code else backup.error_message
        raise_alert(Alert(
            tenant_id=server.tenant_id, kind=AlertKind.LTR_BACKUP_FAILED,
            title=f"An LTR backup of {server.name} failed",
            text=f"Azure reports the LTR backup “{backup.backup_name}” failed: {error or 'no error given'}.",
            url=_link(server),
            facts={**_facts(server), "Backup": backup.backup_name,
                   "Started": f"{backup.start_time:%Y-%m-%d %H:%M} UTC" if backup.start_time else "-",
                   "Error code": backup.error_code or "-"},
        ))
        sent += 1
    return sent


def alert_gaps(now: datetime | None = None) -> int:
    """The worker's periodic job: open and close gaps in every tenant; how many alerts were raised."""
    now = now or timezone.now()
    tenants = LtrRefresh.objects.filter(server__archived_at=None).values_list("tenant_id", flat=True).distinct()
    days = dict(LtrAlertSetting.objects.values_list("tenant_id", "days_without_success"))
    raised = 0
    for tenant_id in sorted(set(tenants)):
        rows = LtrRefresh.objects.filter(tenant_id=tenant_id, server__archived_at=None)
        raised += check_gaps(rows, days.get(tenant_id, settings.LTR_GAP_DAYS), now)
    return raised


def check_gaps(rows, days: int, now: datetime) -> int:
    """Among `rows` (LtrRefresh of one tenant), alert the gaps not alerted yet and the gaps a success closed."""
    since = now - timedelta(days=days)
    in_gap = Q(last_succeeded_at__lt=since) | Q(last_succeeded_at__isnull=True, first_read_at__lt=since)
    raised = 0
    # Each claim with its deliveries, one writer's turn (inside refresh.record's own when called from there).
    for row in rows.filter(in_gap, gap_alerted_at=None).select_related("server"):
        with one_writer():
            if LtrRefresh.objects.filter(pk=row.pk, gap_alerted_at=None).update(gap_alerted_at=now):
                raise_alert(_gap_alert(row, days, opened=True))
                raised += 1
    for row in rows.exclude(in_gap).exclude(gap_alerted_at=None).select_related("server"):
        with one_writer():
            if LtrRefresh.objects.filter(pk=row.pk, gap_alerted_at=row.gap_alerted_at).update(gap_alerted_at=None):
                raise_alert(_gap_alert(row, days, opened=False))
                raised += 1
    if raised:
        log.info("LTR backup gaps: %s alert(s) raised", raised)
    return raised


def _gap_alert(row: LtrRefresh, days: int, *, opened: bool) -> Alert:
    server, last = row.server, row.last_succeeded_at
    last_words = f"{last:%Y-%m-%d %H:%M} UTC" if last else "none kept"
    if opened:
        title = f"No successful LTR backup of {server.name} in {days} day{'s' if days != 1 else ''}"
        text = (f"Azure lists no LTR backup of {server.name} that succeeded in the last {days} days "
                f"(last success: {last_words}).")
    else:
        title = f"{server.name} has a successful LTR backup again"
        text = f"An LTR backup of {server.name} succeeded at {last_words}; the gap is closed."
    return Alert(tenant_id=server.tenant_id, kind=AlertKind.LTR_BACKUP_GAP, title=title, text=text,
                 url=_link(server), facts={**_facts(server), "Last success": last_words,
                                           "Last read from Azure": f"{row.refreshed_at:%Y-%m-%d %H:%M} UTC"})

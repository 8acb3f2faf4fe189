"""Each server's last LTR backup, for the server list: queryset helpers that filter and sort by the summary every
refresh keeps (LtrRefresh; checks.fleet_read reads it with each row), and the words of the list's cell
(backups/_last_backup_cell.html).

"Recent" means within the tenant's "no successful LTR backup in N days" (LtrAlertSetting), so the list and the
alerts agree on what a gap is. Reads one row per server (a join), never the backups themselves.
"""

from datetime import timedelta

from django.db.models import F, Q, QuerySet
from django.utils import timezone

from backups.models import STATUS_WORDS, LtrAlertSetting

# The list's filter: value -> label (the first is "any").
FILTER_CHOICES = [
    ("", "Any LTR backup"),
    ("recent", "Succeeded recently"),
    ("failed", "Last one failed"),
    ("gap", "None succeeded recently"),
    ("unread", "Not read from Azure yet"),
]
SORT_KEY = "last_backup"  # ?sort=last_backup (oldest success first), ?sort=-last_backup (newest first)


def last_backup_q(value: str, days: int) -> Q:
    """The servers one of FILTER_CHOICES' values selects."""
    since = timezone.now() - timedelta(days=days)
    return {
        "recent": Q(ltr_refresh__last_succeeded_at__gte=since),
        "failed": Q(ltr_refresh__last_status="Failed"),
        "gap": Q(ltr_refresh__isnull=False)
        & (Q(ltr_refresh__last_succeeded_at__isnull=True) | Q(ltr_refresh__last_succeeded_at__lt=since)),
        "unread": Q(ltr_refresh__isnull=True),
    }[value]


def filter_last_backup(servers: QuerySet, value: str, tenant_id: str) -> QuerySet:
    if not value:
        return servers
    return servers.filter(last_backup_q(value, LtrAlertSetting.days_for(tenant_id)))


def order_by_last_backup(servers: QuerySet, sort: str) -> QuerySet:
    """By the last success: oldest (and none) first for "last_backup", newest first for "-last_backup"."""
    success = F("ltr_refresh__last_succeeded_at")
    if sort == "-" + SORT_KEY:
        return servers.order_by(success.desc(nulls_last=True), "name", "pk")
    return servers.order_by(success.asc(nulls_first=True), "name", "pk")


def sort_link(query) -> dict:
    """The list's column header: the query that sorts by the last backup (or reverses it), and aria-sort."""
    query = query.copy()
    current = query.pop("sort", [""])[-1]
    query["sort"] = "-" + SORT_KEY if current == SORT_KEY else SORT_KEY
    aria = {SORT_KEY: "ascending", "-" + SORT_KEY: "descending"}.get(current, "")
    return {"query": query.urlencode(), "aria": aria}


def cell(server) -> dict:
    """What the list's cell says of `server` (read with its last_backup_* values and gap_days by
    checks.fleet_read): a badge and words; and `page`, the server page's badge, which names the LTR backup
    (there it sits by the check's own "Passed now", where a bare "Running 11 minutes ago" reads as the check
    running), `started` when `when` is the backup's start."""
    b = _cell(server)
    b["page"] = PAGE_WORDS.get(b["badge"], "") or f"No LTR backup in {_days(b['days'])}"
    b["started"] = b["badge"] in ("running", "failed")
    return b


PAGE_WORDS = {"never": "LTR backups not read yet", "running": "LTR backup running", "failed": "LTR backup failed",
              "ready": "LTR backup succeeded"}


def _days(days: int) -> str:
    return f"{days} day{'s' if days != 1 else ''}"


def _cell(server) -> dict:
    read_at = getattr(server, "last_backup_read_at", None)
    if read_at is None:
        return {"badge": "never", "words": "Not read yet", "when": None}
    status = STATUS_WORDS.get(server.last_backup_status, server.last_backup_status)
    succeeded, days = server.last_backup_succeeded_at, server.gap_days
    recent = succeeded is not None and succeeded >= timezone.now() - timedelta(days=days)
    if status in ("Failed", "Running") and server.last_backup_started_at:
        badge = "failed" if status == "Failed" else "running"
        return {"badge": badge, "words": status, "when": server.last_backup_started_at, "succeeded": succeeded,
                "recent": recent, "days": days}
    if recent:
        return {"badge": "ready", "words": "Succeeded", "when": succeeded, "recent": True, "days": days}
    return {"badge": "not_ready", "words": f"None in {_days(days)}", "when": None, "succeeded": succeeded,
            "days": days}

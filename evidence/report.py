"""The evidence report's rows: per server over a period, its readiness (at the start, each change, at the end),
its pre-checks (passed, not passed, the last one), its LTR backups (succeeded, failed, the last success) and its
gaps (no successful LTR backup in the period; not ready at the end).

Built in four queries whatever the number of servers (the servers with their readiness at both ends and their
last check, the changes, the checks counted, the backups counted), each naming the tenant, so the page, the
CSV and the JSON read the same rows.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db.models import Count, F, Max, OuterRef, Q, QuerySet, Subquery, Window
from django.db.models.functions import Coalesce, Lower, RowNumber
from django.urls import reverse

from backups.models import LtrBackup
from checks.models import Check
from checks.readiness import ReadinessChange, State
from dashboard import subscriptions

STATE_WORDS = dict(State.choices)
PAGE_CHANGES = 5  # readiness changes per server on the page (a flapping server has hundreds a year)
COUNTED = Q(finished_at__isnull=False) & ~Q(status=Check.Status.CANCELLED)  # a check that ran to an end


def stamp(moment: datetime | None) -> str:
    """ "2026-11-27 02:30 UTC" (the database hands back UTC); isoformat, as strftime costs a second a million."""
    return moment.astimezone(UTC).isoformat(" ", "minutes")[:16] + " UTC" if moment else ""


@dataclass
class Row:
    """One server's evidence; `columns()` is what the CSV and the JSON carry, in this order."""

    pk: int
    name: str
    label: str
    subscription_id: str
    resource_group: str
    readiness_at_start: str
    readiness_at_end: str
    not_ready_reason: str
    changes: list[dict] = field(default_factory=list)
    change_count: int = 0  # in the period (`changes` may hold only the last few)
    checks_passed: int = 0
    checks_not_passed: int = 0
    last_check_at: datetime | None = None
    last_check_status: str = ""
    last_check_pk: int | None = None
    backups_succeeded: int = 0
    backups_failed: int = 0
    last_success_at: datetime | None = None
    url: str = ""
    last_check_url: str = ""
    subscription_name: str = ""  # as the dashboard names it (the GUID stays the subscription's key)

    def __getitem__(self, name: str):
        # Django's templates try row[name] before row.name: answering it saves an exception per lookup, which
        # is a tenth of the page's time at 1,000 rows.
        return getattr(self, name)

    @property
    def no_backup_in_period(self) -> bool:
        return self.backups_succeeded == 0

    @property
    def not_ready_at_end(self) -> bool:
        return self.readiness_at_end != State.READY

    @property
    def end_gap_words(self) -> str:
        """The gap in the words of what is known: no check may have said anything by the period's end."""
        if self.readiness_at_end == State.NOT_READY:
            return "Not ready at the end"
        return "Not known to be ready at the end"

    @property
    def has_gap(self) -> bool:
        return self.no_backup_in_period or self.not_ready_at_end

    def words(self, state: str) -> str:
        return STATE_WORDS.get(state, state)

    @property
    def start_words(self) -> str:
        return self.words(self.readiness_at_start)

    @property
    def end_words(self) -> str:
        return self.words(self.readiness_at_end)

    @property
    def last_check_words(self) -> str:
        return stamp(self.last_check_at)

    @property
    def last_success_words(self) -> str:
        return stamp(self.last_success_at)

    def _change_words(self, changes: list[dict]) -> list[str]:
        return [f"{stamp(c['at'])}: {self.words(c['from'])} → {self.words(c['to'])}"
                f"{' (' + c['reason'] + ')' if c['reason'] else ''}" for c in changes]

    @property
    def change_words(self) -> list[str]:
        return self._change_words(self.changes)

    @property
    def earlier_changes(self) -> int:
        """Changes in the period before those in `changes` (the page reads only the last PAGE_CHANGES)."""
        return self.change_count - len(self.changes)

    def columns(self) -> dict:
        return {
            "server": self.name, "label": self.label, "subscription_id": self.subscription_id,
            "subscription_name": self.subscription_name, "resource_group": self.resource_group,
            "readiness_at_start": self.words(self.readiness_at_start),
            "readiness_changes": self.change_count, "readiness_change_list": "; ".join(self.change_words),
            "readiness_at_end": self.words(self.readiness_at_end), "not_ready_reason": self.not_ready_reason,
            "prechecks_passed": self.checks_passed, "prechecks_not_passed": self.checks_not_passed,
            "last_precheck_at": self.last_check_words, "last_precheck_status": self.last_check_status,
            "ltr_backups_succeeded": self.backups_succeeded, "ltr_backups_failed": self.backups_failed,
            "last_ltr_success_at": self.last_success_words,
            "gap_no_ltr_success_in_period": self.no_backup_in_period, "gap_not_ready_at_end": self.not_ready_at_end,
        }


COLUMNS = list(Row(0, "", "", "", "", "", "", "").columns())


def _state_before(moment: datetime, field_name: str = "to_state") -> Subquery:
    changes = ReadinessChange.objects.filter(server=OuterRef("pk"), at__lt=moment).order_by("-at", "-id")
    return Subquery(changes.values(field_name)[:1])


def _last_check(start: datetime, end: datetime, field_name: str) -> Subquery:
    checks = Check.objects.filter(COUNTED, server=OuterRef("pk"), created_at__gte=start, created_at__lt=end)
    return Subquery(checks.order_by("-created_at", "-id").values(field_name)[:1])


def build(servers: QuerySet, tenant_id: str, start: datetime, end: datetime, *,
          last_changes: int | None = None) -> list[Row]:
    """The evidence of `servers` (already scoped to `tenant_id`) over [start, end); with `last_changes`, only
    each server's last few readiness changes are read (the page), the count of them all still exact."""
    ids = servers.values("pk")
    annotated = servers.annotate(
        at_start=_state_before(start), at_end=_state_before(end), reason_at_end=_state_before(end, "reason"),
        last_check_at=_last_check(start, end, "created_at"), last_check_status=_last_check(start, end, "status"),
        last_check_pk=_last_check(start, end, "pk"),
    ).order_by(Lower("name"), "resource_group", "subscription_id", "pk")
    rows = {}
    server_url, check_url = _url_pattern("server_detail"), _url_pattern("check_detail")
    labels = dict(Check.Status.choices)
    reasons = dict(ReadinessChange._meta.get_field("reason").choices)
    names = subscriptions.names_for_tenant(tenant_id)
    for s in annotated.values("pk", "name", "label", "subscription_id", "resource_group", "at_start", "at_end",
                              "reason_at_end", "last_check_at", "last_check_status", "last_check_pk"):
        end_state = s["at_end"] or State.UNKNOWN
        rows[s["pk"]] = Row(
            s["pk"], s["name"], s["label"], s["subscription_id"], s["resource_group"],
            s["at_start"] or State.UNKNOWN, end_state,
            reasons.get(s["reason_at_end"], "") if end_state == State.NOT_READY else "",
            last_check_at=s["last_check_at"], last_check_status=labels.get(s["last_check_status"], ""),
            last_check_pk=s["last_check_pk"], url=server_url.format(s["pk"]),
            last_check_url=check_url.format(s["last_check_pk"]) if s["last_check_pk"] else "",
            subscription_name=subscriptions.name_of(names, s["subscription_id"]))
    _add_changes(rows, ids, tenant_id, start, end, reasons, last_changes)
    _add_checks(rows, ids, tenant_id, start, end)
    _add_backups(rows, ids, tenant_id, start, end)
    return list(rows.values())


def _url_pattern(name: str) -> str:
    """ "/servers/{}/": reversed once, formatted per row (reverse() per row is a fifth of the page's time)."""
    return reverse(name, args=[SENTINEL]).replace(str(SENTINEL), "{}")


SENTINEL = 2_147_483_647


def _add_changes(rows: dict, ids, tenant_id: str, start: datetime, end: datetime, reasons: dict,
                 last: int | None) -> None:
    """Every change in the period, or (`last`) each server's last few and how many there were in all."""
    changes = ReadinessChange.objects.filter(tenant_id=tenant_id, server__in=ids, at__gte=start, at__lt=end)
    if last is not None:
        by_server = {"partition_by": [F("server_id")]}
        changes = changes.annotate(
            rank=Window(RowNumber(), order_by=[F("at").desc(), F("id").desc()], **by_server),
            total=Window(Count("id"), **by_server)).filter(rank__lte=last)
    for change in changes.order_by("at", "id").values("server_id", "at", "from_state", "to_state", "reason",
                                                      *(["total"] if last is not None else [])):
        row = rows[change["server_id"]]
        row.changes.append({"at": change["at"], "from": change["from_state"], "to": change["to_state"],
                            "reason": reasons.get(change["reason"], "")})
        row.change_count = change.get("total", len(row.changes))


def _add_checks(rows: dict, ids, tenant_id: str, start: datetime, end: datetime) -> None:
    counted = (Check.objects.filter(COUNTED, tenant_id=tenant_id, server__in=ids, created_at__gte=start,
                                    created_at__lt=end)
               .values("server_id").order_by()
               .annotate(passed=Count("pk", filter=Q(status=Check.Status.SUCCEEDED)),
                         not_passed=Count("pk", filter=~Q(status=Check.Status.SUCCEEDED))))
    for c in counted:
        rows[c["server_id"]].checks_passed, rows[c["server_id"]].checks_not_passed = c["passed"], c["not_passed"]


def _add_backups(rows: dict, ids, tenant_id: str, start: datetime, end: datetime) -> None:
    """Backups that began in the period, counted by outcome; the last success that began before its end."""
    began = Coalesce("start_time", "first_seen_at")
    succeeded = Q(status="Succeeded")
    counted = (LtrBackup.objects.filter(tenant_id=tenant_id, server__in=ids).annotate(began=began)
               .filter(began__lt=end).values("server_id").order_by()
               .annotate(ok=Count("pk", filter=succeeded & Q(began__gte=start)),
                         failed=Count("pk", filter=Q(status="Failed", began__gte=start)),
                         last=Max(Coalesce("end_time", "start_time", "first_seen_at"), filter=succeeded)))
    for b in counted:
        row = rows[b["server_id"]]
        row.backups_succeeded, row.backups_failed, row.last_success_at = b["ok"], b["failed"], b["last"]


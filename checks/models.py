"""One row per ltrPreBackup check ever run: who asked, what ARM answered, and how we got there.

A check moves queued -> running -> succeeded | failed | signin_required, and each step is written before
the next one starts, so a crashed worker leaves a row that says where it stopped. Rows are never edited
after they finish and never deleted: they are the fleet's history.
"""

import contextvars
import hashlib
import json
import logging
from datetime import datetime, timedelta
from functools import cache

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, models, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce, Lower
from django.tasks import TaskResultStatus
from django.utils import timezone
from django.utils.functional import cached_property
from django_tasks_db.models import DBTaskResult

from armclient.onewriter import one_writer  # checks' writers import it from here
from armclient.outcomes import Category
from dashboard.durations import duration_words
from dashboard.models import Server

log = logging.getLogger("checks.tasks")


def proposed_backup_name(server_name: str, at: datetime | None = None) -> str:
    """The backup name the run form offers: the server's name and the minute, lower case (ARM's rule)."""
    stamp = (at or timezone.now()).strftime("%Y%m%d-%H%M")
    return f"{server_name[:100]}-ltr-{stamp}".lower()


# The check the running task's worker already claimed and read for running (checks_worker claims a round's
# checks together with their tasks, and reads them, in one transaction); None when the task must claim it
# itself (any other worker, a test).
preclaimed: contextvars.ContextVar["Check | None"] = contextvars.ContextVar("preclaimed", default=None)

# The queue's row of the task running the check in this thread, when checks_worker runs it: the check's end
# marks that row successful in the same transaction (a worker killed a moment later leaves no task "running"
# whose check has long finished), and sets "final" so the worker does not write it again.
running_task: contextvars.ContextVar[dict | None] = contextvars.ContextVar("running_task", default=None)

def admitting(tenant_id: str) -> None:
    """Inside a transaction: wait until no other transaction is admitting a batch for this tenant, so that two
    "Run on all" clicked at once cannot both pass the tenant's cap (each counted the checks in flight before the
    other's batch existed). PostgreSQL: a transaction-level advisory lock on the tenant. SQLite: the transaction
    is IMMEDIATE (settings), which already holds the one write lock from its start."""
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        return
    key = int.from_bytes(hashlib.sha256(f"ltr-admit:{tenant_id}".encode()).digest()[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


# For how long after its click a single check's row is polled every 200 ms rather than every second.
YOUNG_CHECK_SECONDS = 5

# How often a single check is re-tried when its insert lost a race with a check that finished meanwhile.
QUEUE_ATTEMPTS = 3


class AlreadyActive(Exception):
    """The server has a check queued or running; `check` is that one."""

    def __init__(self, check: "Check"):
        super().__init__(f"check {check.pk} is already {check.status}")
        self.check = check


class QueueRefused(Exception):
    """Nothing was queued, for a reason the person who asked is told in `message`."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class TooManyActive(QueueRefused):
    """The tenant already has (or would have) more than MAX_ACTIVE_CHECKS_PER_TENANT checks queued or running."""

    @classmethod
    def refuse_beyond(cls, tenant_id: str, adding: int, active: int | None = None) -> None:
        cap = settings.MAX_ACTIVE_CHECKS_PER_TENANT
        if active is None:  # the checks in flight, and those batches still being queued will add
            active = Check.objects.for_tenant(tenant_id).active().count() + Batch.objects.still_to_queue(tenant_id)
        if active + adding > cap:
            raise cls(f"Your organisation already has {active} check{'s' if active != 1 else ''} queued or running; "
                      f"{adding} more would pass the limit of {cap}. Nothing was started: wait for some to finish "
                      f"(or cancel a batch) and try again.")


class NothingToQueue(QueueRefused):
    """Every server asked for already had a check in flight: no batch is made."""

    def __init__(self, skipped: list):
        n = len(skipped)
        super().__init__(f"{'The server' if n == 1 else f'All {n} servers'} already had a check in progress; "
                         "no new batch was started.")
        self.skipped = skipped


class BatchInProgress(QueueRefused):
    """The same person's batch over the same servers is still queued or running; `batch` is that one."""

    def __init__(self, batch: "Batch"):
        super().__init__(f"Your batch {batch.pk} over the same servers is still running; it was not started twice.")
        self.batch = batch


class CheckQuerySet(models.QuerySet):
    def for_tenant(self, tenant_id: str) -> "CheckQuerySet":
        return self.filter(tenant_id=tenant_id)

    def active(self) -> "CheckQuerySet":
        return self.filter(status__in=Check.ACTIVE_STATUSES)

    def newest_first(self) -> "CheckQuerySet":
        return self.order_by("-created_at", "-id")

    # What a history row shows (read and written by checks.history_row), and nothing else; the batch decides an
    # active row's poll.
    HISTORY_ROW_FIELDS = ("server__name", "server__subscription_id", "backup_name", "status", "category", "summary",
                          "created_at", "started_at", "finished_at", "number_of_containers", "error_code",
                          "error_details", "requested_by_name", "batch")

    def bulk_create(self, objs, *args, **kwargs):
        # Rows made in bulk (batches, schedules) skip save(): give them their server's tenant here too.
        objs = list(objs)
        missing = {c.server_id for c in objs if not c.tenant_id}
        if missing:
            tenants = dict(Server.objects.filter(pk__in=missing).values_list("pk", "tenant_id"))
            for check in objs:
                check.tenant_id = check.tenant_id or tenants.get(check.server_id, "")
        return super().bulk_create(objs, *args, **kwargs)

    def claim(self, pk: int) -> "Check | None":
        """Move a queued check to running; None if it was not queued (claimed by another worker, cancelled)."""
        if (check := preclaimed.get()) is not None and check.pk == pk:
            return check
        with one_writer():
            claimed = self.filter(pk=pk, status=Check.Status.QUEUED).update(
                status=Check.Status.RUNNING, started_at=timezone.now())
        if not claimed:
            return None
        return self.for_run([pk])[pk]

    # What running a check reads of it, its server and its requester (the rest of three wide rows was decoded
    # for nothing on every check): checks.tasks, Check.record, Readiness.observe.
    RUN_FIELDS = ("status", "tenant_id", "batch_id", "backup_name", "api_version", "created_at", "started_at",
                  "server__tenant_id", "server__subscription_id", "server__resource_group", "server__name",
                  "requested_by__tenant_id", "requested_by__object_id", "requested_by__home_account_id")

    def for_run(self, pks: list[int]) -> dict[int, "Check"]:
        """These checks with RUN_FIELDS of them, their servers and their requesters, and the version of the
        requester's stored token cache as `token_version` (dashboard.entra reuses its copy while that is
        unchanged), in one statement written once: Django built the select_related read anew every check, and the
        version was a statement of its own. checks_worker reads a claim's checks together."""
        if not pks:
            return {}
        connection = connections[self.db]
        with prepared.cursor(connection) as cursor:
            cursor.execute(_run_read_sql(len(pks)), list(pks))
            rows = cursor.fetchall()
        checks = {}
        for row in rows:
            values = iter(row)
            objects = []
            for model, fields in _run_read_fields():
                taken = [_from_db(field, next(values), connection) for field in fields]
                objects.append(None if taken[0] is None else model.from_db(self.db, [f.attname for f in fields], taken))
            check, server, user = objects
            check._state.fields_cache["server"], check._state.fields_cache["requested_by"] = server, user
            check.token_version = next(values)
            checks[check.pk] = check
        missing = set(pks) - set(checks)
        if missing:
            raise Check.DoesNotExist(f"Check {min(missing)} does not exist")
        return checks

    def queue(self, server, user, backup_name: str, *, api_version: str = "", batch=None) -> "Check":
        """Record a queued check of `server` and hand it to a worker; AlreadyActive if one is in flight,
        TooManyActive if the tenant is at its cap."""
        TooManyActive.refuse_beyond(user.tenant_id, adding=1)
        for attempt in range(QUEUE_ATTEMPTS):
            try:
                with transaction.atomic():
                    check = Check.new_queued(server, user, backup_name, api_version=api_version, batch=batch)
                    check.save(force_insert=True)
                    Server.objects.filter(pk=server.pk).update(last_check=check)
                break
            except IntegrityError:
                active = self.filter(server=server).active().first()
                if active is not None:
                    raise AlreadyActive(active) from None
                # The check in flight finished between the failed insert and this read (checks take 20-100 ms):
                # the server is free now, so try again rather than answer 500.
                if attempt == QUEUE_ATTEMPTS - 1:
                    raise
        server.last_check = check
        check.hand_to_worker()
        return check

    def mark_interrupted(self, stale_after: float | None = None) -> int:
        """Checks whose worker or task was lost: say so, and free their server for a new check.

        Running too long: the worker died mid-check. Queued too long *and* its task is no longer waiting:
        the task was lost (claimed by a worker that died before it claimed the check, or failed before it
        started). A queued check whose task still waits its turn (a long batch, paced) is left alone.
        """
        seconds = settings.CHECK_STALE_AFTER if stale_after is None else stale_after
        cutoff = timezone.now() - timedelta(seconds=seconds)
        reason = {
            "status": Check.Status.INTERRUPTED,
            "category": Category.NETWORK,
            "finished_at": timezone.now(),
            "summary": f"The worker running this check stopped (killed or crashed) and it did not finish within "
                       f"{seconds:.0f} s; run it again.",
        }
        with one_writer(), transaction.atomic():
            count = self.filter(status=Check.Status.RUNNING, started_at__lt=cutoff).update(**reason)
            if count:  # this call's rows: none other ended interrupted at this very microsecond
                strip.record(self.filter(status=Check.Status.INTERRUPTED, finished_at=reason["finished_at"]))
        lost = {**reason, "summary": "The task behind this check was lost before it started; run it again."}
        for pk in self.filter(status=Check.Status.QUEUED, created_at__lt=cutoff).values_list("pk", flat=True):
            # Only a run_check row stands for it (another task may take the same number: a user's id).
            waiting = DBTaskResult.objects.filter(task_path="checks.tasks.run_check", args_kwargs__args__0=pk).filter(
                Q(status=TaskResultStatus.READY) | Q(status=TaskResultStatus.RUNNING, started_at__gte=cutoff)
            )
            if not waiting.exists():
                with one_writer(), transaction.atomic():
                    if self.filter(pk=pk, status=Check.Status.QUEUED).update(**lost):
                        count += 1
                        strip.record(self.filter(pk=pk))
        if count:
            log.warning("Marked %s check(s) interrupted: their worker or task was lost", count)
        return count


def _run_read_fields() -> list:
    """[(model, its fields read, in the model's order, primary key first)] for Check.objects.for_run."""
    from dashboard.models import User

    wanted = {Check: {"id", "status", "tenant_id", "batch_id", "backup_name", "api_version", "created_at",
                      "started_at", "server_id", "requested_by_id"},
              Server: {"id", "tenant_id", "subscription_id", "resource_group", "name"},
              User: {"id", "tenant_id", "object_id", "home_account_id"}}
    return [(model, [f for f in model._meta.concrete_fields if f.attname in names]) for model, names in wanted.items()]


@cache
def _run_read_sql(n: int) -> str:
    (check, check_fields), (server, server_fields), (user, user_fields) = _run_read_fields()
    columns = ", ".join([f"c.{f.column}" for f in check_fields] + [f"s.{f.column}" for f in server_fields]
                        + [f"u.{f.column}" for f in user_fields] + ["t.version"])
    return (f"SELECT {columns} FROM {check._meta.db_table} c "  # noqa: S608 (names from the models)
            f"JOIN {server._meta.db_table} s ON s.id = c.server_id LEFT JOIN {user._meta.db_table} u "
            "ON u.id = c.requested_by_id LEFT JOIN dashboard_tokencache t ON t.user_id = c.requested_by_id "
            f"WHERE c.id IN ({', '.join(['%s'] * n)})")


def _from_db(field, value, connection):
    """A column as the ORM would give it: SQLite returns a naive datetime (UTC) where Django makes it aware."""
    if value is not None and isinstance(field, models.DateTimeField) and timezone.is_naive(value):
        return timezone.make_aware(value, connection.timezone)
    return value


class Check(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        # A status words the check, a category the server: the check "Passed", so the server is "Ready for
        # long-term backup" (Category.PASSED), and the list counts it "ready".
        SUCCEEDED = "succeeded", "Passed"
        FAILED = "failed", "Failed"
        SIGNIN_REQUIRED = "signin_required", "Sign-in required"
        CANCELLED = "cancelled", "Cancelled"
        # The worker running it stopped (killed, crashed, machine lost) before it finished.
        INTERRUPTED = "interrupted", "Interrupted"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)
    # What a check keeps of ARM's answer, named as armclient's result names them.
    RESULT_FIELDS = ("category", "summary", "http_status", "number_of_containers", "error_code", "error_message",
                     "error_target", "error_details", "error_additional_info", "response_excerpt", "request_id",
                     "correlation_request_id", "client_request_id", "attempts", "attempt_log", "claims_challenge")
    # What "re-run the failed checks" of a batch picks up (not the cancelled: nobody asked for those).
    RERUNNABLE_STATUSES = (Status.FAILED, Status.SIGNIN_REQUIRED, Status.INTERRUPTED)

    server = models.ForeignKey("dashboard.Server", on_delete=models.PROTECT, related_name="checks")
    # The server's tenant, copied so the history's indexes can start with the tenant (servers never move).
    tenant_id = models.CharField(max_length=36)
    batch = models.ForeignKey("checks.Batch", on_delete=models.PROTECT, null=True, blank=True, related_name="checks",
                              db_index=False)  # check_batch_position_idx leads with it
    # The check's place in its batch, in its server's name order (set when a batch is queued; none for a single
    # check): the batch page's rows, and each poll's, are read off check_batch_position_idx in that order rather
    # than by joining and sorting every check of the batch by its server's name (17 ms a poll at 9,000).
    batch_position = models.PositiveIntegerField(null=True, blank=True)
    backup_name = models.CharField(max_length=128)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    category = models.CharField(max_length=32, choices=Category.choices, blank=True)
    # Why the check ended as it did, in our words (the ARM error itself is in the error_* fields).
    summary = models.CharField(max_length=500, blank=True)

    # Who ran it: the account, plus a snapshot of their Entra identity as it was at the time.
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="checks"
    )
    requested_by_oid = models.CharField("Entra object id", max_length=36)
    requested_by_name = models.CharField(max_length=200)
    requested_by_tenant = models.CharField(max_length=36)

    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # The call and ARM's answer.
    api_version = models.CharField(max_length=32)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    number_of_containers = models.IntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=200, blank=True)
    error_message = models.TextField(blank=True)
    error_target = models.CharField(max_length=500, blank=True)
    error_details = models.JSONField(default=list, blank=True)
    error_additional_info = models.JSONField(default=list, blank=True)
    # What came back when it was not ARM's JSON (cut to a limit), for a support ticket.
    response_excerpt = models.TextField(blank=True)
    request_id = models.CharField("x-ms-request-id", max_length=100, blank=True)
    correlation_request_id = models.CharField("x-ms-correlation-request-id", max_length=100, blank=True)
    client_request_id = models.CharField("x-ms-client-request-id", max_length=100, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # One entry per HTTP attempt: {"status": 503, "retry_after": 1.0} or {"error": "ConnectTimeout"}.
    attempt_log = models.JSONField(default=list, blank=True)
    # How many of the attempts Azure answered 429 (kept apart so /metrics need not read every attempt log).
    throttled_attempts = models.PositiveSmallIntegerField(default=0)
    # A Continuous Access Evaluation challenge that silent renewal could not answer: the sign-in that
    # re-runs this check asks Entra ID for these claims. Not a secret (a claims request, not a token).
    claims_challenge = models.TextField(blank=True)

    objects = CheckQuerySet.as_manager()

    class Meta:
        constraints = [
            # A second click while a check is queued or running must not start a duplicate, even when two
            # requests race: the database refuses the second active row for the same server.
            models.UniqueConstraint(
                fields=["server"],
                condition=models.Q(status__in=["queued", "running"]),
                name="check_one_active_per_server",
            ),
            # A row without its tenant would be missing from every history page: refuse it.
            models.CheckConstraint(condition=~models.Q(tenant_id=""), name="check_has_tenant"),
        ]
        indexes = [
            # The history pages, newest first, keyset-paginated on (created_at, id): a tenant's history, and
            # the same filtered by server, outcome, category or who ran it. Each ends in -id so the page's
            # ORDER BY is read straight off the index.
            models.Index(fields=["tenant_id", "-created_at", "-id"], name="check_tenant_created_idx"),
            models.Index(fields=["server", "-created_at", "-id"], name="check_server_created_idx"),
            models.Index(fields=["tenant_id", "status", "-created_at", "-id"], name="check_tenant_status_idx"),
            models.Index(fields=["tenant_id", "category", "-created_at", "-id"], name="check_tenant_category_idx"),
            models.Index(fields=["tenant_id", "requested_by_oid", "-created_at", "-id"], name="check_tenant_by_idx"),
            # "Mine" with a category (and a status, which the category all but decides): without it the
            # planner read every check of the category to keep the user's (175 ms at a million checks).
            models.Index(fields=["tenant_id", "requested_by_oid", "category", "-created_at", "-id"],
                         name="check_tenant_by_category_idx"),
            # A batch's checks in its page order (batch_position), and any lookup by batch.
            models.Index(fields=["batch", "batch_position", "id"], name="check_batch_position_idx"),
            # The reaper: queued checks created too long ago.
            models.Index(fields=["status", "-created_at"], name="check_status_created_idx"),
            # The worker's reaper: running checks that started too long ago.
            models.Index(fields=["status", "started_at"], name="check_status_started_idx"),
        ]

    def __str__(self) -> str:
        return f"Check {self.pk} of {self.server} ({self.status})"

    def save(self, *args, **kwargs):
        if not self.tenant_id:
            self.tenant_id = self.server.tenant_id
        super().save(*args, **kwargs)

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def took(self) -> str:
        """How long the call took, "2.0 s" or "38 ms" under a second (as every page says a duration); empty until
        it has finished."""
        if not self.duration:
            return ""
        return duration_words(self.duration.total_seconds())

    @cached_property
    def created_local(self) -> datetime:
        """When the check was asked for, in the dashboard's time zone (what `|date` would show), computed once:
        a history page shows it twice a row, and the date filter costs a page of 50 rows several ms."""
        return timezone.localtime(self.created_at)

    @property
    def created_label(self) -> str:
        """ "2026-11-27 18:46:07 UTC", as `|date:"Y-m-d H:i:s T"`."""
        return f"{self.created_local:%Y-%m-%d %H:%M:%S} {self.created_local.tzname()}"

    @property
    def remedy(self) -> str:
        return Category(self.category).remedy if self.category else ""

    @property
    def specific_error_code(self) -> str:
        """The most specific code ARM gave: a wrapper's first inner code (ServerNotReadyForLongTermBackup
        inside PostgreSQLFlexOperationFailedUserError), else the error's own."""
        for detail in self.error_details or []:
            if isinstance(detail, dict) and isinstance(detail.get("code"), str) and detail["code"]:
                return detail["code"]
        return self.error_code

    @property
    def has_error(self) -> bool:
        return bool(self.error_code or self.error_message)

    # ---- Wording, computed once here rather than re-derived from status strings in templates.

    @property
    def passed(self) -> bool:
        return self.status == self.Status.SUCCEEDED

    @property
    def needs_sign_in(self) -> bool:
        return self.status == self.Status.SIGNIN_REQUIRED

    @property
    def poll_interval(self) -> str:
        """How often an active check's row asks again (htmx `every`): a single check takes ~50 ms, so for its
        first seconds every 200 ms (once a second showed its result ~1.2 s after the click), then once a second.
        A batch's checks stay at once a second: a page of young rows at 200 ms would be hundreds of requests."""
        young = (timezone.now() - self.created_at).total_seconds() < YOUNG_CHECK_SECONDS
        return "200ms" if young and self.batch_id is None else "1s"

    @property
    def waiting_note(self) -> str:
        """What an active check is doing, in a few words."""
        return "Waiting for a worker…" if self.status == self.Status.QUEUED else "Asking Azure…"

    @property
    def summary_names_category(self) -> bool:
        """Whether the summary begins with the category's own words ("Throttled by Azure: ..."): the check's page
        then does not say them twice."""
        return self.summary.lower().startswith(self.get_category_display().lower())

    @property
    def result_label(self) -> str:
        """The result of a finished check that did not pass: its category, else its status."""
        return self.get_category_display() or self.get_status_display()

    @property
    def announcement(self) -> str:
        """The sentence a screen reader hears when the check ends: "Passed, 1 container"."""
        if self.passed:
            n = self.number_of_containers
            return f"{self.get_status_display()}, {n} container{'' if n == 1 else 's'}"
        if self.category:
            return f"{self.get_status_display()}, {self.get_category_display()}"
        return self.get_status_display()

    @property
    def attempts_note(self) -> str:
        """Each HTTP attempt in a few words: "HTTP 503, Retry-After 1.0 s; ConnectTimeout"."""
        notes = []
        for attempt in self.attempt_log or []:
            if not attempt.get("status"):
                notes.append(str(attempt.get("error", "")))
            elif attempt.get("retry_after") is not None:
                notes.append(f"HTTP {attempt['status']}, Retry-After {duration_words(attempt['retry_after'])}")
            else:
                notes.append(f"HTTP {attempt['status']}")
        return "; ".join(notes)

    @staticmethod
    def changed_at():
        """When the check last changed state: queued (created), started or finished, whichever is latest."""
        return Coalesce("finished_at", "started_at", "created_at")

    @classmethod
    def new_queued(cls, server, user, backup_name: str, *, api_version: str = "", batch=None) -> "Check":
        """The unsaved row of a queued check: the one place a new check's fields are set (single and bulk)."""
        return cls(
            server=server, tenant_id=server.tenant_id, batch=batch, backup_name=backup_name, requested_by=user,
            requested_by_oid=user.object_id, requested_by_name=str(user),
            requested_by_tenant=user.tenant_id, api_version=api_version or settings.AZURE_LTR_API_VERSION,
        )

    def hand_to_worker(self) -> None:
        """Enqueue the task that runs this (queued) check; only its primary key travels."""
        from checks.tasks import run_check  # checks.tasks imports this module

        try:
            run_check.enqueue(self.pk)
        except Exception:
            # The row must not stay queued forever with nothing behind it.
            log.exception("Could not enqueue check %s", self.pk)
            self.finish(status=Check.Status.FAILED, category=Category.AZURE_FAILURE,
                        summary="The check could not be handed to a worker; run it again.")
            raise

    @property
    def tick(self) -> str:
        """The strip's mark: what the check said about the server (ready, not-ready), that it said nothing
        about it (caller: permission, sign-in, throttling, network...), or that it is still going (active)."""
        if self.is_active:
            return "active"
        if self.category == Category.PASSED:
            return "ready"
        if self.category and Category(self.category).is_about_the_server:
            return "not-ready"
        return "caller"

    @property
    def tick_title(self) -> str:
        what = self.get_category_display() or self.get_status_display()
        aside = " (says nothing about the server)" if self.tick == "caller" else ""
        return f"{self.created_at:%Y-%m-%d %H:%M}: {what}{aside}"

    @property
    def error_details_json(self) -> str:
        return json.dumps(self.error_details, indent=2, ensure_ascii=False)

    @property
    def error_additional_info_json(self) -> str:
        return json.dumps(self.error_additional_info, indent=2, ensure_ascii=False)

    def note(self, text: str) -> None:
        """A live note while the check runs ("throttled by Azure, retrying in 2 s"), shown by the row's poll."""
        with one_writer():
            Check.objects.filter(pk=self.pk, status=Check.Status.RUNNING).update(summary=text[:500])

    def finish(self, **fields) -> bool:
        """Write the end of the check, only if it is still where its worker left it (queued or running).

        A check the reaper already marked interrupted, or a cancelled batch's, is history: it is not rewritten.
        """
        return self._end(fields, readiness=False)

    def _end(self, fields: dict, *, readiness: bool) -> bool:
        """The check's end, its tick on the server's strip, its task row and (`readiness`) the server's
        readiness, in one transaction: statements written once (checks.ending), one on PostgreSQL."""
        fields.setdefault("finished_at", timezone.now())
        task = running_task.get()
        before = {name: self.__dict__[name] for name in fields if name in self.__dict__}
        for name, value in fields.items():  # the tick and the task's return value are read from the check
            setattr(self, name, value)
        state = state_of(self.category) if readiness else None
        kept = None if state is None else (state, "" if state == State.READY else self.category)
        with one_writer(), transaction.atomic(savepoint=False):
            ended = ending.write(self, fields, task_id=task["id"] if task else None, readiness=kept)
            if not ended.ended:
                log.warning("Check %s had already ended; its late result was not recorded", self.pk)
                for name in fields:  # the object says what the row says: not this end
                    self.__dict__.pop(name, None)
                self.__dict__.update(before)
                return False
            if task is not None:
                task["final"] = ended.task_final
            if kept is not None and not ended.readiness_kept:  # a change: the locked path
                Readiness.observe(self, unchanged_tried=True)
            if ended.first_change is not None:
                Readiness.announce(ReadinessChange(
                    pk=ended.first_change, server_id=self.server_id, tenant_id=self.server.tenant_id,
                    at=fields["finished_at"], from_state=State.UNKNOWN, to_state=kept[0], reason=kept[1],
                    caused_by=self))
        return True

    def record(self, result) -> bool:
        """Finish with what armclient found out (an armclient.operations.PreBackupResult)."""
        if result.category == Category.PASSED:
            status = Check.Status.SUCCEEDED
        elif result.category == Category.SIGNIN_REQUIRED:
            status = Check.Status.SIGNIN_REQUIRED
        else:
            status = Check.Status.FAILED
        fields = {"status": status, **{name: getattr(result, name) for name in self.RESULT_FIELDS}}
        fields["summary"] = fields["summary"][:500]
        fields["throttled_attempts"] = sum(1 for a in result.attempt_log if a.get("status") == 429)
        return self._end(fields, readiness=True)


def in_name_order(tenant_id: str, server_ids: list[int]) -> list[int]:
    """`server_ids` in the batch page's order (the servers' names): the order a batch queues them in, which each
    check keeps as its batch_position. One read of the tenant's server ids, whatever the number asked for."""
    wanted = set(server_ids)
    servers = Server.objects.for_tenant(tenant_id)
    if len(wanted) <= 1000:  # a selection: those alone (a longer IN list costs more than the tenant's ids)
        servers = servers.filter(pk__in=wanted)
    ordered = servers.order_by(Lower("name"), "pk").values_list("pk", flat=True)
    return [pk for pk in ordered.iterator(chunk_size=5000) if pk in wanted]


class BatchQuerySet(models.QuerySet):
    def for_tenant(self, tenant_id: str) -> "BatchQuerySet":
        return self.filter(tenant_id=tenant_id)

    def in_progress(self) -> "BatchQuerySet":
        """Batches not cancelled that are still being queued, or have a check still queued or running."""
        active = Check.objects.filter(batch=models.OuterRef("pk"), status__in=Check.ACTIVE_STATUSES)
        return self.filter(cancelled_at__isnull=True).filter(Q(fan_out=Batch.FanOut.QUEUING) | models.Exists(active))

    def admit(self, server_ids: list[int], user) -> tuple[list[int], list[int], str]:
        """The servers to queue, those left out (a check of theirs in flight) and the set's fingerprint; or
        QueueRefused when the same user's batch over the same servers is still in progress, when every server
        is left out, or when the tenant would pass MAX_ACTIVE_CHECKS_PER_TENANT (counting the checks that
        batches still being queued will add). Four queries, whatever the number of servers."""
        server_set = Batch.fingerprint(server_ids)
        previous = self.for_tenant(user.tenant_id).filter(started_by=user, server_set=server_set).in_progress()
        if (previous := previous.order_by("-created_at").first()) is not None:
            raise BatchInProgress(previous)
        # What batches still have to queue, read before what is in flight: a worker's chunk committed between the
        # two reads is then counted twice (erring on the side of refusing), never in neither (found in review).
        coming = self.still_to_queue(user.tenant_id)
        busy = set(Check.objects.for_tenant(user.tenant_id).active().values_list("server_id", flat=True))
        todo = in_name_order(user.tenant_id, [pk for pk in server_ids if pk not in busy])
        skipped = [pk for pk in server_ids if pk in busy]
        if not todo:
            raise NothingToQueue(skipped)
        TooManyActive.refuse_beyond(user.tenant_id, adding=len(todo), active=len(busy) + coming)
        return todo, skipped, server_set

    def still_to_queue(self, tenant_id: str) -> int:
        """The servers of the tenant's batches that a worker has still to queue a check of."""
        return Batch.objects.for_tenant(tenant_id).filter(fan_out=Batch.FanOut.QUEUING).aggregate(
            n=Coalesce(models.Sum(models.F("server_count") - models.F("fanned_out")), 0))["n"]

    def start(self, server_ids: list[int], user, *, rerun_of=None) -> "Batch":
        """A new batch over these servers whose checks a worker queues (checks.fanout): the request that asks
        for 10,000 checks writes one batch row and one task. Refused as admit() says."""
        from checks.tasks import fan_out

        with one_writer(), transaction.atomic():  # the batch and the task that queues its checks, or nothing
            admitting(user.tenant_id)  # the admission and the batch in one transaction, one tenant's at a time
            todo, skipped, server_set = self.admit(list(dict.fromkeys(server_ids)), user)
            batch = self.create(tenant_id=user.tenant_id, started_by=user, started_by_name=str(user),
                                rerun_of=rerun_of, server_set=server_set, fan_out=Batch.FanOut.QUEUING,
                                server_ids=todo, server_count=len(todo), skipped_ids=skipped,
                                skipped_count=len(skipped))
            fan_out.enqueue(batch_id=batch.pk)
        return batch

    def queue(self, servers, user, *, api_version: str = "", rerun_of=None) -> tuple["Batch", list]:
        """One check per server, grouped in a new batch, queued here and now (the schedules' worker job, the
        sweep benchmark); servers with a check in flight are skipped. Refused as admit() says.
        A few queries per QUEUE_CHUNK servers, whatever their number (checks.handoff does the work).
        """
        from checks import handoff

        servers = list(servers)
        with one_writer(), transaction.atomic():  # the batch appears whole or not at all (one commit, not per chunk)
            admitting(user.tenant_id)
            todo_ids, _, server_set = self.admit([server.pk for server in servers], user)
            by_pk = {server.pk: server for server in servers}
            todo = [by_pk[pk] for pk in todo_ids]  # in name order: their batch_position
            skipped = [server for server in servers if server.pk not in set(todo_ids)]
            batch = self.create(tenant_id=user.tenant_id, started_by=user, started_by_name=str(user),
                                rerun_of=rerun_of, server_set=server_set, server_count=len(todo),
                                fanned_out=len(todo), skipped_count=len(skipped))
            for start in range(0, len(todo), handoff.QUEUE_CHUNK):
                skipped += handoff.queue_chunk(batch, todo[start:start + handoff.QUEUE_CHUNK], user, api_version,
                                               first_position=start)
            if len(skipped) == len(servers):  # every server lost a race with a single "Run" meanwhile
                transaction.set_rollback(True)
            elif skipped:  # named on the batch page, as a clicked batch's are (checks.views.batches)
                Batch.objects.filter(pk=batch.pk).update(skipped_ids=[server.pk for server in skipped],
                                                         skipped_count=len(skipped))
                batch.skipped_ids, batch.skipped_count = [server.pk for server in skipped], len(skipped)
        if len(skipped) == len(servers):
            raise NothingToQueue(skipped)
        return batch, skipped


class Batch(models.Model):
    """One click that checked many servers: who, when, which servers (their ids, and through its checks)."""

    class FanOut(models.TextChoices):
        """Where queuing the batch's checks stands (a worker task does it: checks.fanout)."""
        QUEUING = "queuing", "Queuing"
        DONE = "done", "Queued"
        STOPPED = "stopped", "Stopped by a cancel"
        FAILED = "failed", "Failed"

    tenant_id = models.CharField(max_length=36)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    started_by_name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # The batch this one re-ran the failed checks of.
    rerun_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="reruns")
    # Which servers were asked for (a digest of their ids), so a second click over the same ones is refused
    # while this batch is in progress.
    server_set = models.CharField(max_length=64, blank=True)

    # The servers to queue, as the click found them (ids, in order), and how far the worker has got.
    fan_out = models.CharField(max_length=10, choices=FanOut.choices, default=FanOut.DONE)
    server_ids = models.JSONField(default=list, blank=True)
    server_count = models.PositiveIntegerField(default=0)
    fanned_out = models.PositiveIntegerField(default=0)
    fan_out_error = models.CharField(max_length=500, blank=True)
    # Servers left out because a check of theirs was in flight (at the click, or queued by someone meanwhile).
    skipped_ids = models.JSONField(default=list, blank=True)
    skipped_count = models.PositiveIntegerField(default=0)
    # What a cancel did, as its message said: checks cancelled, servers not queued any more, checks left running.
    cancelled_queued = models.PositiveIntegerField(default=0)
    cancelled_unqueued = models.PositiveIntegerField(default=0)
    running_at_cancel = models.PositiveIntegerField(default=0)

    objects = BatchQuerySet.as_manager()

    # Fields a page of the batch never reads (up to 10,000 ids each): left out of every page's and poll's load.
    LONG_FIELDS = ("server_ids", "skipped_ids")

    class Meta:
        indexes = [
            # The batch list of a tenant, newest first.
            models.Index(fields=["tenant_id", "-created_at"], name="batch_tenant_created_idx"),
        ]

    def __str__(self) -> str:
        return f"Batch {self.pk}"

    @staticmethod
    def fingerprint(servers) -> str:
        """A digest of the set of servers (Server objects or their ids)."""
        ids = ",".join(str(pk) for pk in sorted({getattr(s, "pk", s) for s in servers}))
        return hashlib.sha256(ids.encode()).hexdigest()

    @property
    def is_queuing(self) -> bool:
        return self.fan_out == self.FanOut.QUEUING

    def cancel(self) -> "fanout.Cancellation":
        """Cancel the batch's queued checks, and stop queuing it if a worker still is (running checks
        finish); what was done. A batch where nothing was left to cancel is not marked cancelled."""
        now = timezone.now()
        ended = {"status": Check.Status.CANCELLED, "finished_at": now, "summary": "Cancelled before it started."}
        with one_writer(), transaction.atomic():
            # The batch's row lock orders this after (or before) a chunk the worker is queuing: no check of a
            # chunk committed meanwhile stays queued in a cancelled batch.
            row = Batch.objects.select_for_update().filter(pk=self.pk).values(
                "fan_out", "server_count", "fanned_out", "cancelled_at").get()
            unqueued = row["server_count"] - row["fanned_out"] if row["fan_out"] == self.FanOut.QUEUING else 0
            count = self.checks.filter(status=Check.Status.QUEUED).update(**ended)
            running = self.checks.filter(status=Check.Status.RUNNING).count()
            if count or unqueued:
                changes = {"cancelled_at": row["cancelled_at"] or now, "running_at_cancel": running,
                           "cancelled_queued": models.F("cancelled_queued") + count,
                           "cancelled_unqueued": models.F("cancelled_unqueued") + unqueued}
                if unqueued:
                    changes["fan_out"] = self.FanOut.STOPPED
                Batch.objects.filter(pk=self.pk).update(**changes)
            if count:  # this call's rows: none other of the batch was cancelled at this very microsecond
                strip.record(self.checks.filter(status=Check.Status.CANCELLED, finished_at=now).only(
                    "pk", "server_id", "created_at", "status", "category"))
        self.refresh_from_db(fields=["cancelled_at", "fan_out", "cancelled_queued", "cancelled_unqueued",
                                     "running_at_cancel"])
        return fanout.Cancellation(queued=count, unqueued=unqueued, running=running)

    @property
    def cancellation(self) -> "fanout.Cancellation | None":
        """What the cancel of this batch did (the header says it as the message did); None if none did."""
        done = fanout.Cancellation(queued=self.cancelled_queued, unqueued=self.cancelled_unqueued,
                                   running=self.running_at_cancel)
        return done if self.cancelled_at and done.cancelled_anything else None

    def failed_servers(self):
        """The servers whose check in this batch failed (not the cancelled: nobody asked for those)."""
        return self.checks.filter(status__in=Check.RERUNNABLE_STATUSES).values("server_id")

    def progress(self) -> dict:
        return self.progress_and_cursor()[0]

    def progress_and_cursor(self) -> tuple[dict, "datetime | None"]:
        """The counts by state, and the newest state change of any check (the poll's cursor), in one query.
        While a worker is still queuing the batch, the servers it has not reached count as "not queued yet"."""
        # The batch's own fan-out state is read in the same statement (one snapshot): read apart, a chunk the
        # worker commits in between would be counted twice, as checks and as servers not queued yet.
        # The batch's row as a subquery (evaluated once), not joined to each of its checks (twice the time).
        mine = Batch.objects.filter(pk=self.pk)
        rows = self.checks.values_list("status").annotate(
            n=models.Count("id"), newest=models.Max(Check.changed_at()),
            fan_out_now=models.Max(models.Subquery(mine.values("fan_out")[:1])),
            fanned_out_now=models.Max(models.Subquery(mine.values("fanned_out")[:1])))
        counts = {row[0]: row[1] for row in rows}
        newest = max((row[2] for row in rows if row[2] is not None), default=None)
        if rows:
            self.fan_out, self.fanned_out = rows[0][3], rows[0][4]
        unqueued = max(0, self.server_count - self.fanned_out) if self.is_queuing else 0
        total = sum(counts.values()) + unqueued
        active = counts.get(Check.Status.QUEUED, 0) + counts.get(Check.Status.RUNNING, 0) + unqueued
        done = total - active
        cancelled = counts.get(Check.Status.CANCELLED, 0)
        return {
            "total": total,
            "done": done,
            "unqueued": unqueued,
            "queued": counts.get(Check.Status.QUEUED, 0),
            "running": counts.get(Check.Status.RUNNING, 0),
            "passed": counts.get(Check.Status.SUCCEEDED, 0),
            "failed": done - counts.get(Check.Status.SUCCEEDED, 0) - cancelled,
            "cancelled": cancelled,
            "percent": round(100 * done / total) if total else 100,
            "finished": active == 0,
        }, newest


# The server's readiness, kept up to date by Check.record(), and its strip of recent outcomes, kept by
# Check.finish(): their own modules, as each is its own idea.
from checks import ending, fanout, prepared, strip  # noqa: E402
from checks.readiness import Readiness, ReadinessChange, State, state_of  # noqa: E402,F401
from checks.strip import RecentOutcomes  # noqa: E402,F401

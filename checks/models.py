"""One row per ltrPreBackup check ever run: who asked, what ARM answered, and how we got there.

A check moves queued -> running -> succeeded | failed | signin_required, and each step is written before
the next one starts, so a crashed worker leaves a row that says where it stopped. Rows are never edited
after they finish and never deleted: they are the fleet's history.
"""

import json
import logging

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from armclient.outcomes import Category

log = logging.getLogger(__name__)


class CheckQuerySet(models.QuerySet):
    def for_tenant(self, tenant_id: str) -> "CheckQuerySet":
        return self.filter(server__tenant_id=tenant_id)

    def active(self) -> "CheckQuerySet":
        return self.filter(status__in=Check.ACTIVE_STATUSES)

    def newest_first(self) -> "CheckQuerySet":
        return self.order_by("-created_at", "-id")

    def for_history(self) -> "CheckQuerySet":
        return self.select_related("server").newest_first()

    def claim(self, pk: int) -> "Check | None":
        """Move a queued check to running; None if it was not queued (claimed by another worker, cancelled)."""
        if not self.filter(pk=pk, status=Check.Status.QUEUED).update(status=Check.Status.RUNNING,
                                                                      started_at=timezone.now()):
            return None
        return self.select_related("server", "requested_by").get(pk=pk)


class Check(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
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
    batch = models.ForeignKey("checks.Batch", on_delete=models.PROTECT, null=True, blank=True, related_name="checks")
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
        ]
        indexes = [
            # A server's history, newest first (server page, and the history filtered by server).
            models.Index(fields=["server", "-created_at"], name="check_server_created_idx"),
            # The history page, newest first, optionally filtered by outcome.
            models.Index(fields=["-created_at"], name="check_created_idx"),
            models.Index(fields=["status", "-created_at"], name="check_status_created_idx"),
            # The worker's reaper: running checks that started too long ago.
            models.Index(fields=["status", "started_at"], name="check_status_started_idx"),
        ]

    def __str__(self) -> str:
        return f"Check {self.pk} of {self.server} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

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

    @property
    def error_details_json(self) -> str:
        return json.dumps(self.error_details, indent=2, ensure_ascii=False)

    @property
    def error_additional_info_json(self) -> str:
        return json.dumps(self.error_additional_info, indent=2, ensure_ascii=False)

    def note(self, text: str) -> None:
        """A live note while the check runs ("throttled by Azure, retrying in 2 s"), shown by the row's poll."""
        Check.objects.filter(pk=self.pk, status=Check.Status.RUNNING).update(summary=text[:500])

    def finish(self, **fields) -> bool:
        """Write the end of the check, only if it is still where its worker left it (queued or running).

        A check the reaper already marked interrupted, or a cancelled batch's, is history: it is not rewritten.
        """
        fields.setdefault("finished_at", timezone.now())
        if not Check.objects.filter(pk=self.pk, status__in=Check.ACTIVE_STATUSES).update(**fields):
            log.warning("Check %s had already ended; its late result was not recorded", self.pk)
            return False
        for name, value in fields.items():
            setattr(self, name, value)
        return True

    def record(self, result) -> bool:
        """Finish with what armclient found out (an armclient.operations.PreBackupResult)."""
        if result.category == Category.PASSED:
            status = Check.Status.SUCCEEDED
        elif result.category == Category.SIGNIN_REQUIRED:
            status = Check.Status.SIGNIN_REQUIRED
        else:
            status = Check.Status.FAILED
        fields = {name: getattr(result, name) for name in self.RESULT_FIELDS}
        fields["summary"] = fields["summary"][:500]
        fields["throttled_attempts"] = sum(1 for a in result.attempt_log if a.get("status") == 429)
        with transaction.atomic():
            if not self.finish(status=status, **fields):
                return False
            Readiness.observe(self)
        return True


class BatchQuerySet(models.QuerySet):
    def for_tenant(self, tenant_id: str) -> "BatchQuerySet":
        return self.filter(tenant_id=tenant_id)


class Batch(models.Model):
    """One click that checked many servers: who, when, which servers (through its checks)."""

    tenant_id = models.CharField(max_length=36)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    started_by_name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # The batch this one re-ran the failed checks of.
    rerun_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="reruns")

    objects = BatchQuerySet.as_manager()

    class Meta:
        indexes = [
            # The batch list of a tenant, newest first.
            models.Index(fields=["tenant_id", "-created_at"], name="batch_tenant_created_idx"),
        ]

    def __str__(self) -> str:
        return f"Batch {self.pk}"

    def progress(self) -> dict:
        counts = dict(self.checks.values_list("status").annotate(n=models.Count("id")))
        total = sum(counts.values())
        active = counts.get(Check.Status.QUEUED, 0) + counts.get(Check.Status.RUNNING, 0)
        done = total - active
        cancelled = counts.get(Check.Status.CANCELLED, 0)
        return {
            "total": total,
            "done": done,
            "queued": counts.get(Check.Status.QUEUED, 0),
            "running": counts.get(Check.Status.RUNNING, 0),
            "passed": counts.get(Check.Status.SUCCEEDED, 0),
            "failed": done - counts.get(Check.Status.SUCCEEDED, 0) - cancelled,
            "cancelled": cancelled,
            "percent": round(100 * done / total) if total else 100,
            "finished": active == 0,
        }


# The server's readiness, kept up to date by Check.record(); its own module, as it is its own idea.
from checks.readiness import Readiness, ReadinessChange  # noqa: E402,F401

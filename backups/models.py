"""What was seen of each server's LTR backup operations in Azure, and when a server's list was last read."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from dashboard.models import Server

# The statuses the 2024-08-01 spec lists (an extensible enum: anything else is kept and shown as Azure said it).
STATUS_WORDS = {
    "Running": "Running",
    "Succeeded": "Succeeded",
    "Failed": "Failed",
    "Cancelled": "Cancelled",
    "InProgress": "Running",  # what live Azure said while polling, though the spec does not list it
}
STATUS_BADGES = {"Running": "running", "Succeeded": "passed", "Failed": "failed", "Cancelled": "unknown"}


class LtrBackup(models.Model):
    """One LTR backup operation of a server, as Azure last listed it."""

    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="ltr_backups")
    tenant_id = models.CharField(max_length=36, db_index=True)
    backup_name = models.CharField(max_length=200)
    status = models.CharField(max_length=40, help_text="As Azure said it (an extensible enum).")
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    percent_complete = models.FloatField(null=True, blank=True)
    datasource_size_bytes = models.BigIntegerField(null=True, blank=True)
    data_transferred_bytes = models.BigIntegerField(null=True, blank=True)
    backup_metadata = models.TextField(blank=True)
    error_code = models.CharField(max_length=200, blank=True)
    error_message = models.TextField(blank=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    gone_from_azure_at = models.DateTimeField(null=True, blank=True,
                                              help_text="When a refresh first found Azure no longer lists it.")
    # When its failure was alerted: a conditional update on it sends the alert once, whoever refreshes.
    failure_alerted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-start_time", "-first_seen_at", "backup_name"]
        constraints = [models.UniqueConstraint(fields=["server", "backup_name"], name="ltrbackup_unique_per_server")]
        # The evidence report: a tenant's backups of a period.
        indexes = [models.Index(fields=["tenant_id", "start_time"], name="ltrbackup_tenant_start_idx")]

    def __str__(self) -> str:
        return f"{self.backup_name} ({self.status})"

    @property
    def status_words(self) -> str:
        return STATUS_WORDS.get(self.status) or (f"Azure says “{self.status}”" if self.status else "No status")

    @property
    def badge(self) -> str:
        return STATUS_BADGES.get(STATUS_WORDS.get(self.status, ""), "unknown")

    @property
    def is_running(self) -> bool:
        return STATUS_WORDS.get(self.status) == "Running" and self.gone_from_azure_at is None

    @property
    def took(self):
        """How long it ran (a timedelta), once it has an end."""
        if self.start_time and self.end_time and self.end_time >= self.start_time:
            return self.end_time - self.start_time
        return None


class LtrRefresh(models.Model):
    """The last time a server's LTR backups were read from Azure whole, by whom, and a summary of what is kept
    (written by every refresh), so the server list and the alerts need no query over the backups themselves."""

    server = models.OneToOneField(Server, on_delete=models.CASCADE, related_name="ltr_refresh")
    tenant_id = models.CharField(max_length=36, db_index=True)
    refreshed_at = models.DateTimeField()
    refreshed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    listed = models.PositiveIntegerField(default=0)
    # The newest backup kept (by start), whether Azure still lists it or not, and the newest that succeeded.
    last_status = models.CharField(max_length=40, blank=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_succeeded_at = models.DateTimeField(null=True, blank=True)
    # The first read: a server with no success kept is given N days from it before a gap is alerted.
    first_read_at = models.DateTimeField(null=True, blank=True)
    # Set when "no successful LTR backup in N days" was alerted; cleared (with a recovery message) by a success.
    gap_alerted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant_id", "last_succeeded_at"], name="ltrrefresh_tenant_success_idx")]

    def __str__(self) -> str:
        return f"{self.server} read {self.refreshed_at:%Y-%m-%d %H:%M}"


class LtrAlertSetting(models.Model):
    """A tenant's rule for "no successful LTR backup in N days" (without a row: settings.LTR_GAP_DAYS)."""

    tenant_id = models.CharField(max_length=36, unique=True)
    days_without_success = models.PositiveSmallIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(366)],
        help_text="Alert when a server has had no successful LTR backup for this many days (1 to 366).")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.tenant_id}: {self.days_without_success} days"

    @staticmethod
    def days_for(tenant_id: str) -> int:
        row = LtrAlertSetting.objects.filter(tenant_id=tenant_id).values_list("days_without_success", flat=True)
        return row.first() or settings.LTR_GAP_DAYS

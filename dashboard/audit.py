"""The audit trail: one row for every change a person makes, and every sign-in, sign-out and failed sign-in.

Rows are append-only: the model refuses to save an existing row or delete one, its queryset refuses update()
and delete(), and the admin shows them read-only. Each row copies what it names (who, the target's name), so
it reads the same after the user or the server is gone; nothing points at another table. Every app may write
here (dashboard is the bottom of the dependency order): `audit.record(request, Action.X, target, **details)`.
"""

from django.db import models
from django.http import HttpRequest
from django.utils import timezone

from dashboard.ratelimit import client_address


class Action(models.TextChoices):
    SIGN_IN = "sign_in", "Signed in"
    SIGN_IN_FAILED = "sign_in_failed", "Sign-in failed"
    SIGN_OUT = "sign_out", "Signed out"
    SERVER_REGISTER = "server_register", "Registered a server"
    SERVER_IMPORT = "server_import", "Imported servers"
    SERVER_ARCHIVE = "server_archive", "Archived a server"
    SERVER_RESTORE = "server_restore", "Restored a server"
    CHECK_RUN = "check_run", "Ran a check"
    BATCH_RUN = "batch_run", "Ran a batch"
    BATCH_RERUN = "batch_rerun", "Re-ran a batch's failures"
    BATCH_CANCEL = "batch_cancel", "Cancelled a batch"
    SCHEDULE_CREATE = "schedule_create", "Created a schedule"
    SCHEDULE_EDIT = "schedule_edit", "Edited a schedule"
    SCHEDULE_PAUSE = "schedule_pause", "Paused a schedule"
    SCHEDULE_RESUME = "schedule_resume", "Resumed a schedule"
    SCHEDULE_RUN = "schedule_run", "Ran a schedule now"
    SCHEDULE_DELETE = "schedule_delete", "Deleted a schedule"
    CHANNEL_CREATE = "channel_create", "Added an alert channel"
    CHANNEL_EDIT = "channel_edit", "Edited an alert channel"
    CHANNEL_DELETE = "channel_delete", "Deleted an alert channel"
    CHANNEL_TEST = "channel_test", "Sent a test alert"
    SETTINGS_CHANGE = "settings_change", "Changed settings"


class AppendOnly(Exception):
    """The audit trail is never edited or deleted by the app."""


class AuditQuerySet(models.QuerySet):
    def for_tenant(self, tenant_id: str) -> "AuditQuerySet":
        return self.filter(tenant_id=tenant_id)

    def update(self, **kwargs):
        raise AppendOnly("audit events are never updated")

    def delete(self):
        raise AppendOnly("audit events are never deleted")


class AuditEvent(models.Model):
    tenant_id = models.CharField(max_length=36, blank=True)  # blank: a failed sign-in of nobody known
    created_at = models.DateTimeField(default=timezone.now)
    actor_id = models.PositiveBigIntegerField(null=True, blank=True, help_text="the user's id, copied")
    actor_oid = models.CharField(max_length=36, blank=True)
    actor_name = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=40, choices=Action.choices)
    target_type = models.CharField(max_length=40, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_name = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)
    client_ip = models.CharField(max_length=64, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The audit page: one tenant's events, newest first, by keyset (created_at, id).
            models.Index(fields=["tenant_id", "-created_at", "-id"], name="audit_tenant_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name or 'someone'}: {self.get_action_display()}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnly("audit events are never edited")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnly("audit events are never deleted")

    # What a person calls each kind of target (the column keeps the model's name, as the export does).
    TARGET_WORDS = {"ltralertsetting": "setting", "channel": "alert channel", "batch": "batch", "check": "check",
                    "schedule": "schedule", "server": "server", "user": "user"}

    @property
    def target_words(self) -> str:
        return self.TARGET_WORDS.get(self.target_type, self.target_type)

    @property
    def details_text(self) -> str:
        """The details as a person reads them: "servers: pg-a, pg-b; imported: 2"."""
        def words(value) -> str:
            return ", ".join(map(str, value)) if isinstance(value, list) else str(value)

        return "; ".join(f"{key}: {words(value)}" for key, value in self.details.items())


def record(request: HttpRequest, action: Action, target=None, *, user=None, target_name: str = "",
           **details) -> AuditEvent:
    """Write one event: who (`user`, else the request's user, if signed in), from where, what, on what."""
    user = user if user is not None else getattr(request, "user", None)
    known = user is not None and user.is_authenticated
    event = AuditEvent(
        tenant_id=user.tenant_id if known else "",
        actor_id=user.pk if known else None,
        actor_oid=user.object_id if known else "",
        actor_name=str(user)[:200] if known else "",
        action=action,
        details=details,
        client_ip=client_address(request)[:64],
    )
    if target is not None:
        event.target_type = target._meta.model_name
        event.target_id = str(target.pk)
        event.target_name = (target_name or getattr(target, "name", "") or str(target))[:200]
    event.save()
    return event

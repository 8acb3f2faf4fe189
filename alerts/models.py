"""Where a tenant's alerts go (channels) and what happened to each message (deliveries).

A channel's target (a webhook URL is a secret for Slack and Teams: whoever has it can post) and its signing
secret are encrypted at rest with the token-cache keys; pages show only the masked hint kept beside them.
Deliveries are history: they keep the channel's name when the channel is deleted.
"""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models
from django.utils import timezone

from dashboard.models import User


class TenantQuerySet(models.QuerySet):
    def for_tenant(self, tenant_id: str):
        return self.filter(tenant_id=tenant_id)


class Channel(models.Model):
    class Kind(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook (signed JSON)"
        TEAMS = "teams", "Microsoft Teams"
        SLACK = "slack", "Slack"

    tenant_id = models.CharField(max_length=36, db_index=True)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    target_encrypted = models.BinaryField()
    target_hint = models.CharField(max_length=300)  # what pages show: addresses, or scheme://host/…last4
    secret_encrypted = models.BinaryField(blank=True, default=b"")
    secret_hint = models.CharField(max_length=20, blank=True)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def is_webhook(self) -> bool:
        return self.kind != self.Kind.EMAIL

    @property
    def target(self) -> str:
        """The plain target; raises InvalidToken if the keys that encrypted it are gone."""
        return _decrypt(self.target_encrypted)

    @property
    def secret(self) -> str:
        return _decrypt(self.secret_encrypted) if self.secret_encrypted else ""

    def set_target(self, target: str, hint: str) -> None:
        self.target_encrypted, self.target_hint = _encrypt(target), hint

    def set_secret(self, secret: str) -> None:
        self.secret_encrypted, self.secret_hint = _encrypt(secret), f"…{secret[-4:]}"


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in settings.TOKEN_CACHE_KEYS])


def _encrypt(text: str) -> bytes:
    return _fernet().encrypt(text.encode())


def _decrypt(blob) -> str:
    return _fernet().decrypt(bytes(blob)).decode()


class Delivery(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        HELD = "held", "Held"  # past the channel's burst limit: waits for the next summary (alerts/bursts.py)
        SUMMARIZED = "summarized", "In a summary"  # sent as a line of `summary`

    # No index of their own: delivery_tenant_keyset and delivery_channel_time start with them (a storm writes a
    # row an alert a channel, and each index is one more write a row).
    tenant_id = models.CharField(max_length=36)
    channel = models.ForeignKey(Channel, on_delete=models.SET_NULL, null=True, related_name="deliveries",
                                db_index=False)
    channel_name = models.CharField(max_length=130)
    kind = models.CharField(max_length=40)  # the alert's kind: readiness_changed, owner_must_sign_in, test
    title = models.CharField(max_length=300)
    payload = models.JSONField()  # the Alert as given (title, text, url, facts): no target, no secret
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sending_since = models.DateTimeField(null=True, blank=True)  # set while a worker sends it
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    last_error = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    summary = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="held_alerts")

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The delivery log's keyset pages (created_at, id), newest first.
            models.Index(fields=["tenant_id", "-created_at", "-id"], name="delivery_tenant_keyset"),
            # A channel's messages of the last window (bursts.burst_of) and its held alerts (bursts.gather).
            models.Index(fields=["channel", "created_at"], name="delivery_channel_time"),
            models.Index(fields=["channel"], condition=models.Q(status="held"), name="delivery_held"),
            # The oldest first, for the log's retention (delivery.prune_old_deliveries).
            models.Index(fields=["created_at"], name="delivery_created"),
        ]
        constraints = [
            # The summary still to be sent that held alerts join: one a channel (bursts.burst_of keeps it so too).
            models.UniqueConstraint(fields=["channel"], name="delivery_one_pending_summary",
                                    condition=models.Q(kind="summary", status="queued", attempts=0)),
        ]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.kind} to {self.channel_name}: {self.status}"

    # ---- Wording, computed once here rather than re-derived from status strings in templates.

    @property
    def is_queued(self) -> bool:
        """Still to be sent (or being sent): its row on the page polls until it ends."""
        return self.status == self.Status.QUEUED

    @property
    def is_held(self) -> bool:
        return self.status == self.Status.HELD

    @property
    def is_summarized(self) -> bool:
        return self.status == self.Status.SUMMARIZED

    @property
    def is_sent(self) -> bool:
        return self.status == self.Status.SENT

    @property
    def badge(self) -> str:
        """The badge's colour, shared with checks: a sent message looks like a passed check, a held one like a
        queued one, one sent in a summary is grey (its summary's row says how that went)."""
        return {"sent": "succeeded", "held": "queued", "summarized": "never"}.get(self.status, self.status)

    @property
    def sending_note(self) -> str:
        """While a worker holds it: "Sending (attempt 2)…"."""
        return f"Sending (attempt {self.attempts})…" if self.is_queued and self.sending_since else ""

    @property
    def poll_every(self) -> str:
        """How often its row on the log asks again while queued: a summary waiting for its window, rarely."""
        waiting = self.kind == "summary" and not self.attempts and self.next_attempt_at
        return "30s" if waiting and self.next_attempt_at > timezone.now() else "2s"

    @property
    def burst_note(self) -> str:
        """Where a held alert or a summary stands (alerts/bursts.py); the summary must be select_related."""
        if self.is_held:
            return "This channel is in a burst of alerts: it goes out in the channel's next summary."
        summary = self.summary if self.is_summarized else None
        if summary is not None:
            if summary.is_sent:
                return f"Sent in a summary at {timezone.localtime(summary.sent_at):%H:%M:%S}."
            if summary.status == self.Status.FAILED:
                return f"Its summary was not sent: {summary.last_error}"
            if summary.attempts and summary.next_attempt_at:
                return f"Its summary is sent again at {timezone.localtime(summary.next_attempt_at):%H:%M:%S}."
            return "Its summary is being sent."
        if self.kind == "summary" and self.is_queued and not self.attempts and self.next_attempt_at:
            return f"Goes out at {timezone.localtime(self.next_attempt_at):%H:%M:%S} with the alerts held until then."
        return ""

    @property
    def error_note(self) -> str:
        """The last error, and for a queued message what happens next: "Retrying at 10:04:05 after: HTTP 503"."""
        if not self.last_error:
            return ""
        if not self.is_queued:
            return self.last_error
        if self.next_attempt_at:
            return f"Retrying at {timezone.localtime(self.next_attempt_at):%H:%M:%S} after: {self.last_error}"
        return f"Previous attempt: {self.last_error}"


__all__ = ["Channel", "Delivery", "InvalidToken"]

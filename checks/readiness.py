"""Readiness of a server, apart from whoever asked: what the last conclusive check said, since when, and
every change of it as history.

A check's outcome either says something about the server (passed; not ready; not found; provider not
registered; busy with another operation: `Category.is_about_the_server`) or about the caller and the path to
Azure (permission missing, sign-in required, throttled, network, ...). Only the first kind moves a server's
readiness: Bob lacking the RBAC action on pg-ledger says nothing about pg-ledger. Each change is written once,
in the same transaction as the check that caused it, and announced with the `readiness_changed` signal once
that transaction commits (alerts listen to it).
"""

import django.dispatch
from django.db import models, transaction
from django.utils import timezone

from armclient.outcomes import Category
from dashboard.models import Server

# Sent after commit, once per change: sender=ReadinessChange, change=<ReadinessChange>.
readiness_changed = django.dispatch.Signal()


def unknown_words(checked: bool) -> tuple[str, str]:
    """What a server without a readiness says (its words, and a title): never checked, or checked only by checks
    that said nothing about it (about the caller or the path to Azure), which "Never checked" misstated."""
    if checked:
        return "Not known yet", "No check has said yet whether this server is ready: see its last check."
    return "Never checked", ""


class State(models.TextChoices):
    UNKNOWN = "unknown", "Not known"  # never checked, or no check has said anything about the server
    READY = "ready", "Ready"
    NOT_READY = "not_ready", "Not ready"


def state_of(category: str) -> str | None:
    """The readiness a check's category means for its server, or None if it says nothing about the server."""
    if not category or not Category(category).is_about_the_server:
        return None
    return State.READY if category == Category.PASSED else State.NOT_READY


class Readiness(models.Model):
    """One row per server that has had a conclusive check: its readiness now."""

    server = models.OneToOneField("dashboard.Server", on_delete=models.CASCADE, primary_key=True,
                                  related_name="readiness")
    tenant_id = models.CharField(max_length=36)
    state = models.CharField(max_length=12, choices=State.choices, default=State.UNKNOWN)
    # Why it is not ready (the category of the check that said so), empty when ready.
    reason = models.CharField(max_length=32, choices=Category.choices, blank=True)
    since = models.DateTimeField()
    # The conclusive check that set the state, and the newest conclusive check (the state may be older).
    changed_by = models.ForeignKey("checks.Check", on_delete=models.PROTECT, related_name="+")
    last_conclusive = models.ForeignKey("checks.Check", on_delete=models.PROTECT, related_name="+")
    last_conclusive_at = models.DateTimeField()

    class Meta:
        # The server list's "ready" and "stale" counts (checks.fleet_state.overview): the tenant's ready servers
        # checked since a moment, counted from the index alone (a scan of the table was a third of that query).
        indexes = [models.Index(fields=["tenant_id", "state", "last_conclusive_at", "server"],
                                name="readiness_tenant_fresh_idx")]

    def __str__(self) -> str:
        return f"{self.server_id}: {self.state} since {self.since:%Y-%m-%d %H:%M}"

    @property
    def words(self) -> str:
        """ "Ready", or "Not ready: Server not ready"."""
        if self.state == State.NOT_READY and self.reason:
            return f"{self.get_state_display()}: {self.get_reason_display()}"
        return self.get_state_display()

    @classmethod
    def observe(cls, check, *, unchanged_tried: bool = False) -> "ReadinessChange | None":
        """Take in a finished check; the change it caused, if any. Call inside the check's transaction.
        `unchanged_tried`: the conditional update below was already made, and matched nothing (checks.ending)."""
        state = state_of(check.category)
        if state is None:
            return None
        at = check.finished_at or timezone.now()
        reason = "" if state == State.READY else check.category
        # Most checks say what the last one said: one conditional update, no locked read (a server has one
        # active check at a time, so nothing races it; a change or a first check takes the locked path below).
        if not unchanged_tried and cls.objects.filter(server_id=check.server_id, state=state, reason=reason).update(
                last_conclusive=check, last_conclusive_at=at):
            return None
        current = cls.objects.select_for_update().filter(server_id=check.server_id).first()
        new = current is None
        if new:
            current = cls(server_id=check.server_id, tenant_id=check.server.tenant_id, state=State.UNKNOWN)
        previous, previous_reason = current.state, current.reason
        current.last_conclusive, current.last_conclusive_at = check, at
        if (previous, previous_reason) == (state, reason):
            current.save(update_fields=["last_conclusive", "last_conclusive_at"])
            return None
        current.state, current.reason, current.since, current.changed_by = state, reason, at, check
        current.save(force_insert=new)  # a new row: no UPDATE tried first (its primary key is the server's)
        # The list sorts by readiness with an index of the servers' table: keep its copy there (changes are rare).
        Server.objects.filter(pk=check.server_id).update(readiness_state=state, readiness_since=at)
        change = ReadinessChange.objects.create(
            server_id=check.server_id, tenant_id=current.tenant_id, at=at, from_state=previous, to_state=state,
            reason=reason, caused_by=check,
        )
        cls.announce(change)
        return change

    @staticmethod
    def announce(change: "ReadinessChange") -> None:
        """`readiness_changed` for this change once its transaction commits (checks.ending writes a first one)."""
        transaction.on_commit(lambda: readiness_changed.send(sender=ReadinessChange, change=change))


class ReadinessChange(models.Model):
    """One change of a server's readiness, written once and never edited: the server's timeline."""

    server = models.ForeignKey("dashboard.Server", on_delete=models.CASCADE, related_name="readiness_changes")
    tenant_id = models.CharField(max_length=36)
    at = models.DateTimeField()
    from_state = models.CharField(max_length=12, choices=State.choices)
    to_state = models.CharField(max_length=12, choices=State.choices)
    reason = models.CharField(max_length=32, choices=Category.choices, blank=True)
    caused_by = models.ForeignKey("checks.Check", on_delete=models.PROTECT, related_name="readiness_changes")

    class Meta:
        indexes = [
            models.Index(fields=["server", "-at"], name="readinesschange_server_idx"),
            models.Index(fields=["tenant_id", "-at"], name="readinesschange_tenant_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.server_id}: {self.from_state} -> {self.to_state} at {self.at:%Y-%m-%d %H:%M}"

    @property
    def lasted(self):
        """How long the state this change began lasted: until the next change, or until now."""
        return getattr(self, "_until", None) or timezone.now()

    @staticmethod
    def timeline(server, limit: int = 20) -> list["ReadinessChange"]:
        """The server's newest changes, each knowing when the next one ended it."""
        changes = list(server.readiness_changes.select_related("caused_by").order_by("-at", "-id")[:limit])
        for newer, older in zip(changes, changes[1:], strict=False):
            older._until = newer.at
        return changes

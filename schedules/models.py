"""A schedule: which servers, how often, whose token, and where it stands (next run, last run, state).

A schedule belongs to a tenant and is run by its owner, with the owner's delegated token only. Its server set
is resolved at each run (servers registered or archived since are taken into account).
"""

from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from dashboard.models import Server
from schedules import cadence


class ScheduleQuerySet(models.QuerySet):
    def for_tenant(self, tenant_id: str) -> "ScheduleQuerySet":
        return self.filter(tenant_id=tenant_id)

    def due(self, now: datetime) -> "ScheduleQuerySet":
        return self.filter(state=Schedule.State.ACTIVE, next_run_at__lte=now)


class Schedule(models.Model):
    class Scope(models.TextChoices):
        ALL = "all", "All servers"
        SUBSCRIPTION = "subscription", "A subscription"
        RESOURCE_GROUP = "resource_group", "A resource group"
        SEARCH = "search", "Servers matching a search"

    class Cadence(models.TextChoices):
        EVERY = "every", "Every N hours"
        DAILY = "daily", "Daily at a time"

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        OWNER_MUST_SIGN_IN = "owner_must_sign_in", "Owner must sign in again"

    tenant_id = models.CharField(max_length=36)
    # Whose delegated token runs it; never anyone else's.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="schedules")
    name = models.CharField(max_length=100)

    scope = models.CharField(max_length=20, choices=Scope.choices, default=Scope.ALL)
    subscription_id = models.CharField(max_length=36, blank=True)
    resource_group = models.CharField(max_length=90, blank=True)
    search = models.CharField(max_length=100, blank=True, help_text="Part of a server's name or label.")

    cadence = models.CharField(max_length=10, choices=Cadence.choices, default=Cadence.DAILY)
    every_hours = models.PositiveSmallIntegerField(null=True, blank=True)
    daily_at = models.TimeField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")

    state = models.CharField(max_length=20, choices=State.choices, default=State.ACTIVE)
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_batch = models.ForeignKey("checks.Batch", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # Why the last due run queued nothing (Entra ID unreachable, no server matched), in our words.
    last_problem = models.CharField(max_length=300, blank=True)
    # The LTR backups its last run read (schedules.ltr_backups): when, how many, and which could not be read.
    backups_read_at = models.DateTimeField(null=True, blank=True)
    backups_read = models.PositiveIntegerField(default=0)
    backups_problem = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScheduleQuerySet.as_manager()

    class Meta:
        indexes = [
            # The worker's poll: active schedules whose next run has come.
            models.Index(fields=["state", "next_run_at"], name="schedule_due_idx"),
            models.Index(fields=["tenant_id", "name"], name="schedule_tenant_name_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    # ---- validation ------------------------------------------------------------------------------------

    def clean(self) -> None:
        errors: dict[str, str] = {}
        self.name = (self.name or "").strip()
        if not self.name:
            errors["name"] = "Give the schedule a name."
        errors.update(self._scope_errors())
        errors.update(self._cadence_errors())
        if self.owner_id and self.owner.tenant_id != self.tenant_id:
            errors["owner"] = "The owner must belong to the schedule's tenant."
        if errors:
            raise ValidationError(errors)

    def _scope_errors(self) -> dict[str, str]:
        registered = Server.objects.for_tenant(self.tenant_id).active()
        if self.scope in (self.Scope.SUBSCRIPTION, self.Scope.RESOURCE_GROUP):
            if not (self.subscription_id or "").strip():
                in_group = self.scope == self.Scope.RESOURCE_GROUP
                what = "a resource group is in a subscription" if in_group else "pick one"
                return {"subscription_id": f"Choose the subscription ({what})."}
            if not registered.filter(subscription_id__iexact=self.subscription_id).exists():
                return {"subscription_id": "No server of this tenant is registered in that subscription."}
        if self.scope == self.Scope.RESOURCE_GROUP and not registered.filter(
            subscription_id__iexact=self.subscription_id, resource_group__iexact=self.resource_group
        ).exists():
            return {"resource_group": "No server is registered in that resource group of that subscription."}
        if self.scope == self.Scope.SEARCH and not self.search.strip():
            return {"search": "Type part of a server's name or label to search for."}
        return {}

    def _cadence_errors(self) -> dict[str, str]:
        if cadence.zone(self.time_zone) is None:
            return {"time_zone": f"“{self.time_zone}” is not a time zone we know; pick one from the list."}
        if self.cadence == self.Cadence.EVERY:
            if self.every_hours is None or not cadence.MIN_HOURS <= self.every_hours <= cadence.MAX_HOURS:
                return {"every_hours": f"Choose every {cadence.MIN_HOURS} to {cadence.MAX_HOURS} hours (a week)."}
        elif self.daily_at is None:
            return {"daily_at": "Give the time of day (HH:MM) the schedule runs at."}
        return {}

    # ---- what it covers and when ----------------------------------------------------------------------

    def servers(self):
        """The servers this schedule checks now: the tenant's active servers its scope selects."""
        servers = Server.objects.for_tenant(self.tenant_id).active()
        if self.scope == self.Scope.SUBSCRIPTION:
            return servers.filter(subscription_id__iexact=self.subscription_id)
        if self.scope == self.Scope.RESOURCE_GROUP:
            return servers.filter(subscription_id__iexact=self.subscription_id,
                                  resource_group__iexact=self.resource_group)
        if self.scope == self.Scope.SEARCH:
            return servers.filter(Q(name__icontains=self.search) | Q(label__icontains=self.search))
        return servers

    @property
    def tz(self):
        return cadence.zone(self.time_zone) or cadence.zone("UTC")

    def next_run_after(self, now: datetime, anchor: datetime | None = None) -> datetime:
        """The next slot strictly after `now` (see schedules.cadence for the rule)."""
        if self.cadence == self.Cadence.EVERY:
            return cadence.next_every(now, self.every_hours, anchor)
        return cadence.next_daily(now, self.daily_at, self.tz)

    def first_run(self, now: datetime) -> datetime:
        """A new (or re-timed) schedule: an "every N hours" one runs at once, a daily one at its next time."""
        return now if self.cadence == self.Cadence.EVERY else self.next_run_after(now)

    # ---- words for the page (computed once here rather than re-derived from state strings in templates) --

    @property
    def is_active(self) -> bool:
        return self.state == self.State.ACTIVE

    @property
    def is_paused(self) -> bool:
        return self.state == self.State.PAUSED

    @property
    def owner_must_sign_in(self) -> bool:
        return self.state == self.State.OWNER_MUST_SIGN_IN

    @property
    def badge(self) -> str:
        """The badge's colour, shared with checks: active looks like passed, paused like never checked."""
        return {self.State.ACTIVE: "succeeded", self.State.PAUSED: "never"}.get(self.state, "signin_required")

    @property
    def state_words(self) -> str:
        """"active", "paused", "owner must sign in again"."""
        return self.get_state_display().lower()

    @property
    def upcoming_run(self) -> datetime | None:
        """When it runs next, for the page: only an active schedule runs."""
        return self.next_run_at if self.is_active else None

    @property
    def cadence_words(self) -> str:
        if self.cadence == self.Cadence.EVERY:
            n = self.every_hours or 0
            return "every hour" if n == 1 else f"every {n} hours"
        return f"daily at {self.daily_at:%H:%M} ({self.time_zone})" if self.daily_at else "daily"

    @property
    def scope_words(self) -> str:
        if self.scope == self.Scope.SUBSCRIPTION:
            return f"subscription {self.subscription_id}"
        if self.scope == self.Scope.RESOURCE_GROUP:
            return f"resource group {self.resource_group} ({self.subscription_id})"
        if self.scope == self.Scope.SEARCH:
            return f"servers matching “{self.search}”"
        return "all servers"

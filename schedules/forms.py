"""The form that creates and edits a schedule: which servers, how often, in which time zone."""

from datetime import timedelta

from django import forms
from django.utils import timezone

from dashboard.forms import SubscriptionSelect, subscription_choices
from dashboard.models import Server
from dashboard.subscriptions import names_for_tenant
from schedules import cadence
from schedules.models import Schedule

CADENCE_FIELDS = ("cadence", "every_hours", "daily_at", "time_zone")


class ScheduleForm(forms.ModelForm):
    subscription_id = forms.ChoiceField(
        label="Subscription", required=False,
        error_messages={"invalid_choice": "No server of this tenant is registered in subscription “%(value)s”."},
    )
    resource_group = forms.ChoiceField(
        label="Resource group", required=False,
        error_messages={"invalid_choice": "No server of this tenant is registered in resource group “%(value)s”."},
    )
    every_hours = forms.IntegerField(
        label="Every how many hours", required=False, min_value=cadence.MIN_HOURS, max_value=cadence.MAX_HOURS,
        error_messages={"min_value": "Choose every 1 to 168 hours (a week).",
                        "max_value": "Choose every 1 to 168 hours (a week).",
                        "invalid": "Give a whole number of hours, 1 to 168."},
    )
    daily_at = forms.TimeField(
        label="At (HH:MM)", required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        error_messages={"invalid": "Give the time as HH:MM, for example 02:30."},
    )
    time_zone = forms.ChoiceField(
        label="Time zone",
        error_messages={"invalid_choice": "“%(value)s” is not a time zone we know; pick one from the list."},
    )

    class Meta:
        model = Schedule
        fields = ["name", "scope", "subscription_id", "resource_group", "search",
                  "cadence", "every_hours", "daily_at", "time_zone"]
        widgets = {"scope": forms.RadioSelect, "cadence": forms.RadioSelect}

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            self.instance.owner, self.instance.tenant_id = owner, owner.tenant_id
        registered = Server.objects.for_tenant(self.instance.tenant_id).active()
        subscriptions = sorted(set(registered.values_list("subscription_id", flat=True)))
        groups = sorted(set(registered.values_list("resource_group", flat=True)), key=str.lower)
        self.fields["subscription_id"].widget = SubscriptionSelect()
        self.fields["subscription_id"].choices = lambda: subscription_choices(
            subscriptions, names_for_tenant(self.instance.tenant_id), "—")
        self.fields["resource_group"].choices = [("", "—"), *((g, g) for g in groups)]
        self.fields["time_zone"].choices = [(z, z.replace("_", " ")) for z in ["UTC", *cadence.time_zone_names()]]
        self.fields["name"].error_messages["required"] = "Give the schedule a name."

    def clean(self):
        cleaned = super().clean()
        # Values of the options not chosen are dropped, so a hidden field never decides anything.
        scope = cleaned.get("scope")
        if scope not in (Schedule.Scope.SUBSCRIPTION, Schedule.Scope.RESOURCE_GROUP):
            cleaned["subscription_id"] = ""
        if scope != Schedule.Scope.RESOURCE_GROUP:
            cleaned["resource_group"] = ""
        if scope != Schedule.Scope.SEARCH:
            cleaned["search"] = ""
        if cleaned.get("cadence") == Schedule.Cadence.EVERY:
            cleaned["daily_at"] = None
        else:
            cleaned["every_hours"] = None
        return cleaned

    def add_error(self, field, error):
        # The model's own checks would repeat, in other words, what a field already said (a value the field
        # refused never reaches the model, which then finds it missing): the field's message is enough.
        if field is None and isinstance(error, forms.ValidationError) and hasattr(error, "error_dict"):
            fresh = {name: errors for name, errors in error.error_dict.items() if name not in self.errors}
            if not fresh:
                return
            error = forms.ValidationError(fresh)
        super().add_error(field, error)

    def save(self, commit: bool = True) -> Schedule:
        schedule = super().save(commit=False)
        creating = schedule.pk is None
        retimed = creating or any(name in self.changed_data for name in CADENCE_FIELDS)
        if retimed:
            schedule.next_run_at = self._next_run(schedule)
        if commit and creating:
            schedule.save()
        elif commit:
            # Only what the form owns: a worker may have fired the schedule meanwhile (next run, last batch).
            schedule.save(update_fields=[*self._meta.fields, *(["next_run_at"] if retimed else []), "updated_at"])
        return schedule

    @staticmethod
    def _next_run(schedule: Schedule):
        now = timezone.now()
        if schedule.cadence == Schedule.Cadence.EVERY and schedule.last_run_at:
            # A changed interval counts from the last run, but never from the past.
            return max(now, schedule.last_run_at + timedelta(hours=schedule.every_hours))
        return schedule.first_run(now)

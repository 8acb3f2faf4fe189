"""The run form (a backup name), the server list's filters and the history's filters."""

from django import forms

from checks.models import Check
from dashboard.validators import validate_backup_name


class RunCheckForm(forms.Form):
    backup_name = forms.CharField(label="Backup name", max_length=128, validators=[validate_backup_name])


class HistoryFilterForm(forms.Form):
    """GET filters for the history; bad values are reported and ignored rather than failing the page."""

    server = forms.IntegerField(required=False, min_value=1, max_value=2**62)
    outcome = forms.ChoiceField(required=False, choices=[("", "Any outcome"), *Check.Status.choices])

    def __init__(self, *args, servers, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["server"] = forms.TypedChoiceField(
            required=False,
            coerce=int,
            empty_value=None,
            choices=[("", "All servers"), *((s.pk, f"{s.name} ({s.resource_group})") for s in servers)],
        )

    def filter(self, checks):
        if not self.is_valid():
            return checks.none() if self.data else checks
        if self.cleaned_data.get("server"):
            checks = checks.filter(server_id=self.cleaned_data["server"])
        if self.cleaned_data.get("outcome"):
            checks = checks.filter(status=self.cleaned_data["outcome"])
        return checks


class ServerFilterForm(forms.Form):
    """The server list's search and filters (GET). Bad values are reported and match nothing."""

    OUTCOMES = [
        ("", "Any state"),
        ("ready", "Ready"),
        ("not_ready", "Not ready"),
        ("never", "Never checked"),
        ("stale", "Stale (last conclusive check too old)"),
        ("active", "Checking now"),
    ]
    q = forms.CharField(required=False, max_length=100, label="Search")
    subscription = forms.ChoiceField(required=False)
    resource_group = forms.ChoiceField(required=False, label="Resource group")
    state = forms.ChoiceField(required=False, choices=OUTCOMES)

    def __init__(self, *args, servers, **kwargs):
        super().__init__(*args, **kwargs)
        subscriptions = sorted({s.subscription_id for s in servers})
        groups = sorted({s.resource_group for s in servers}, key=str.lower)
        self.fields["subscription"].choices = [("", "All subscriptions"), *((s, s) for s in subscriptions)]
        self.fields["resource_group"].choices = [("", "All resource groups"), *((g, g) for g in groups)]

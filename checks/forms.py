"""The run form (a backup name) and the history filters."""

from django import forms
from django.utils import timezone

from checks.models import Check
from dashboard.validators import validate_backup_name


def proposed_backup_name(server_name: str) -> str:
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    return f"{server_name[:100]}-ltr-{stamp}".lower()


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

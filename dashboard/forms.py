"""The form that registers a server, the select that offers subscriptions by name, and a day field for filters."""

from datetime import date

from django import forms
from django.http import HttpResponse

from dashboard.models import Server
from dashboard.validators import validate_resource_group, validate_server_name, validate_subscription_id


class ServerForm(forms.ModelForm):
    # No HTML maxlength of 36: a pasted id with spaces around it would be cut short before it is trimmed.
    subscription_id = forms.CharField(
        label="Subscription id", max_length=80, validators=[validate_subscription_id],
        help_text="The UUID of the Azure subscription.",
    )
    resource_group = forms.CharField(label="Resource group", max_length=90, validators=[validate_resource_group])
    name = forms.CharField(
        label="Server name", max_length=63, validators=[validate_server_name],
        help_text="The flexible server's name, without .postgres.database.azure.com.",
    )
    label = forms.CharField(label="Label (optional)", max_length=100, required=False)

    class Meta:
        model = Server
        fields = ["subscription_id", "resource_group", "name", "label"]

    def __init__(self, *args, tenant_id: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant_id = tenant_id
        for field in self.fields.values():
            field.widget.attrs.setdefault("autocomplete", "off")
            field.widget.attrs.setdefault("spellcheck", "false")

    def clean_subscription_id(self) -> str:
        return self.cleaned_data["subscription_id"].lower()

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            duplicate = Server.objects.for_tenant(self.tenant_id).active().matching(
                cleaned["subscription_id"], cleaned["resource_group"], cleaned["name"]
            )
            if duplicate.exists():
                raise forms.ValidationError(
                    "This server is already registered (names are compared without regard to case).",
                    code="duplicate",
                )
        return cleaned


class SubscriptionSelect(forms.Select):
    """A select of subscription ids that reads as their display names: each option with a name also carries its
    GUID as its title (shown on hover)."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if value and str(label) != str(value):
            option["attrs"]["title"] = str(value)
        return option


def subscription_choices(subscription_ids, names: dict[str, str], empty_label: str) -> list[tuple[str, str]]:
    """(id, display name or the id) for each id, by what they read as; `empty_label` first."""
    labelled = [(s, names.get(s.lower()) or s) for s in set(subscription_ids)]
    return [("", empty_label), *sorted(labelled, key=lambda c: (c[1].lower(), c[0]))]


class DayField(forms.DateField):
    """A day for a filter or a period, between FIRST and LAST: Python's dates end at year 9999, so the day after
    9999-12-31, or a zone's midnight of it, is an OverflowError (a 500) instead of a message; and a year 1 is
    nobody's meaning. The date picker is bounded the same way."""

    FIRST, LAST = date(2000, 1, 1), date(2999, 12, 31)

    def __init__(self, **kwargs):
        super().__init__(required=False, widget=forms.DateInput(
            attrs={"type": "date", "min": self.FIRST.isoformat(), "max": self.LAST.isoformat()}), **kwargs)

    def validate(self, value):
        super().validate(value)
        if value and not self.FIRST <= value <= self.LAST:
            raise forms.ValidationError(f"Enter a day from {self.FIRST} to {self.LAST}.", code="out_of_range")


def refused_download(form: forms.Form, what: str) -> HttpResponse:
    """A download asked with filters that do not hold: 400 with what is wrong ("No report: To: Enter a day …"),
    never a file that looks like an empty one. Errors of the whole form are the period's (evidence, audit)."""
    problems = " ".join(f"{form.fields[name].label if name in form.fields else 'Period'}: {error}"
                        for name, errors in form.errors.items() for error in errors)
    return HttpResponse(f"No {what}: {problems}\n", status=400, content_type="text/plain; charset=utf-8")


"""The form that registers a server."""

from django import forms

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


class ServerFilterForm(forms.Form):
    """The server list's search and filters (GET). Bad values are reported and match nothing."""

    OUTCOMES = [
        ("", "Any state"),
        ("ready", "Ready (last check passed)"),
        ("failing", "Failing (last check did not pass)"),
        ("never", "Never checked"),
        ("stale", "Stale (last check too old)"),
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

"""The channel form: a name, a kind, a target (e-mail addresses or a webhook URL checked against SSRF)."""

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from alerts.models import Channel
from alerts.targets import TargetRefused, check_url, mask_url

MAX_RECIPIENTS = 20


class ChannelForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="How the delivery log names it, e.g. “DBA team” or “#db-alerts”.")
    kind = forms.ChoiceField(choices=Channel.Kind.choices)
    target = forms.CharField(
        max_length=2000, label="Send to",
        help_text="E-mail: addresses separated by commas. Webhooks: the URL the service gave you (https://…).",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    enabled = forms.BooleanField(required=False, initial=True, help_text="Disabled channels receive no alerts.")

    def __init__(self, *args, tenant_id: str, channel: Channel | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant_id, self.channel = tenant_id, channel
        if channel is not None:
            # The kind stays (a webhook's secret belongs to it); the target is never sent back to the browser.
            self.fields["kind"].disabled = True
            self.fields["target"].required = False
            self.fields["target"].help_text = f"Now: {channel.target_hint}. Leave empty to keep it."

    def clean_name(self) -> str:
        """One channel a name in a tenant: the log tells channels apart by name, and a reloaded "Added" page
        posts the form again."""
        name = " ".join(self.cleaned_data["name"].split())
        others = Channel.objects.for_tenant(self.tenant_id).filter(name__iexact=name)
        if self.channel is not None:
            others = others.exclude(pk=self.channel.pk)
        if others.exists():
            raise ValidationError(f"A channel named “{name}” exists already: choose another name, or edit that one.")
        return name

    def clean(self):
        data = super().clean()
        kind, target = data.get("kind"), (data.get("target") or "").strip()
        if kind is None or (not target and self.channel is not None):
            return data
        if kind == Channel.Kind.EMAIL:
            data["target"], data["hint"] = _addresses(target)
        else:
            try:
                check_url(target)
            except TargetRefused as refused:
                raise ValidationError({"target": str(refused)}) from None
            data["target"], data["hint"] = target, mask_url(target)
        return data


def _addresses(text: str) -> tuple[str, str]:
    addresses = [a.strip() for a in text.replace(";", ",").replace("\n", ",").split(",") if a.strip()]
    if not addresses:
        raise ValidationError({"target": "Enter at least one e-mail address."})
    if len(addresses) > MAX_RECIPIENTS:
        raise ValidationError({"target": f"At most {MAX_RECIPIENTS} addresses per channel."})
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            raise ValidationError({"target": f"“{address[:80]}” is not an e-mail address."}) from None
    joined = ", ".join(addresses)
    return joined, joined[:300]

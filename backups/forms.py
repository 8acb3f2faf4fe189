"""The tenant's LTR backup alert setting: after how many days without a successful LTR backup to alert."""

from django import forms

from backups.models import LtrAlertSetting


class LtrAlertSettingForm(forms.ModelForm):
    # One message for every day out of range, and a picker bounded like it (the model's field said "≥ 0" for -1).
    days_without_success = forms.IntegerField(
        label="Days without a successful LTR backup", widget=forms.NumberInput(attrs={"min": 1, "max": 366}),
        error_messages={"invalid": "Enter a whole number of days from 1 to 366."},
        help_text=LtrAlertSetting._meta.get_field("days_without_success").help_text)

    class Meta:
        model = LtrAlertSetting
        fields = ["days_without_success"]

    def clean_days_without_success(self) -> int:
        days = self.cleaned_data["days_without_success"]
        if not 1 <= days <= 366:
            raise forms.ValidationError("Enter a whole number of days from 1 to 366.")
        return days

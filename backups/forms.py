"""The tenant's LTR backup alert setting: after how many days without a successful LTR backup to alert."""

from django import forms

from backups.models import LtrAlertSetting


class LtrAlertSettingForm(forms.ModelForm):
    class Meta:
        model = LtrAlertSetting
        fields = ["days_without_success"]
        labels = {"days_without_success": "Days without a successful LTR backup"}

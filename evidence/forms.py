"""The evidence report's choices: a period (whole UTC days, the last 30 by default) and the server list's filters."""

from datetime import UTC, date, datetime, time, timedelta

from django import forms
from django.utils import timezone

from checks.forms import ServerFilterForm
from dashboard.forms import DayField

DEFAULT_DAYS = 30
LONGEST_PERIOD_DAYS = 3 * 366


def today() -> date:
    return timezone.now().astimezone(UTC).date()


class EvidenceForm(ServerFilterForm):
    """The servers as the list filters them, over the days `start` to `end` included (UTC)."""

    start = DayField(label="From")
    end = DayField(label="To")
    # The period first; the page shows each field by its label, and an error under the same words.
    field_order = ["start", "end", "q", "subscription", "resource_group", "state", "backup"]
    LABELS = {"state": "Readiness now"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, label in self.LABELS.items():
            self.fields[name].label = label

    def clean(self):
        data = super().clean()
        end = data.get("end") or today()
        start = data.get("start") or end - timedelta(days=DEFAULT_DAYS)
        if start > end:
            raise forms.ValidationError("The period must start on or before the day it ends.")
        if end > today():
            raise forms.ValidationError(f"The period cannot end after today ({today()}): nothing is known of it yet.")
        if (end - start).days + 1 > LONGEST_PERIOD_DAYS:  # (both days included)
            raise forms.ValidationError(f"A report covers at most {LONGEST_PERIOD_DAYS} days.")
        data["start"], data["end"] = start, end
        return data

    def period(self) -> tuple[datetime, datetime]:
        """[start of the first day, start of the day after the last) in UTC."""
        data = self.cleaned_data
        return (datetime.combine(data["start"], time.min, UTC),
                datetime.combine(data["end"] + timedelta(days=1), time.min, UTC))

    def filter_words(self) -> str:
        """The filters as a sentence for the report's header: "all servers" when none."""
        data, words = self.cleaned_data, []
        if data.get("q"):
            words.append(f"name or label contains “{data['q']}”")
        if data.get("subscription"):
            words.append(f"subscription {data['subscription']}")
        if data.get("resource_group"):
            words.append(f"resource group {data['resource_group']}")
        if data.get("state"):
            words.append(f"readiness (now): {dict(self.fields['state'].choices)[data['state']]}")
        if data.get("backup"):
            words.append(f"last LTR backup (now): {dict(self.fields['backup'].choices)[data['backup']]}")
        return "; ".join(words) or "all servers"

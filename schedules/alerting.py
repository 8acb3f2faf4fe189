"""Tell the tenant when a schedule stops because its owner must sign in again."""

from django.conf import settings
from django.urls import reverse

from alerts import Alert, AlertKind, raise_alert


def on_schedule_needs_owner(sender, schedule, reason: str = "", **kwargs) -> None:
    owner = schedule.owner
    raise_alert(Alert(
        tenant_id=schedule.tenant_id,
        kind=AlertKind.OWNER_MUST_SIGN_IN,
        title=f"Schedule \u201c{schedule.name}\u201d stopped: {owner} must sign in again",
        text=(f"Azure needs {owner} to sign in again before the schedule can run as them ({reason or 'sign-in'}). "
              "It resumes by itself after they sign in."),
        url=settings.DASHBOARD_URL + reverse("schedule_list") if settings.DASHBOARD_URL else "",
        facts={"Schedule": schedule.name, "Owner": str(owner), "Servers": schedule.scope_words},
    ))

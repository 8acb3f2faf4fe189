"""Tell the tenant when a server's readiness changes: each recorded change becomes one alert.

Alerted: a server that stops being ready (ready → not ready), one found not ready on its first conclusive
check, and one that is ready again. Not alerted: a server found ready on its first check (a sweep of a new
fleet would otherwise send one message per server).
"""

from django.conf import settings
from django.urls import reverse

from alerts import Alert, AlertKind, raise_alert
from checks.readiness import ReadinessChange, State


def on_readiness_changed(sender, change: ReadinessChange, **kwargs) -> None:
    if change.from_state == State.UNKNOWN and change.to_state == State.READY:
        return
    raise_alert(alert_for(change))


def alert_for(change: ReadinessChange) -> Alert:
    server, check = change.server, change.caused_by
    ready = change.to_state == State.READY
    words = "ready again" if ready else "not ready"
    reason = "" if ready else f" ({check.get_category_display()})"
    return Alert(
        tenant_id=change.tenant_id,
        kind=AlertKind.READINESS_CHANGED,
        title=f"{server.name} is {words} for long-term backups",
        text=f"{State(change.from_state).label} → {State(change.to_state).label}{reason}: {check.summary}",
        url=settings.DASHBOARD_URL + reverse("server_detail", args=[server.pk]) if settings.DASHBOARD_URL else "",
        facts={
            "Server": server.name,
            "Resource group": server.resource_group,
            "Subscription": server.subscription_id,
            "Since": f"{change.at:%Y-%m-%d %H:%M} UTC",
            "Checked by": check.requested_by_name,
            "x-ms-request-id": check.request_id or "-",
        },
    )

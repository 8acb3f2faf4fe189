"""Check rows made directly, for pages that only read the history."""

from datetime import timedelta

from django.utils import timezone

from checks import strip
from checks.models import Check


def make_check(server, user=None, *, status="succeeded", minutes_ago=0, **fields) -> Check:
    created = timezone.now() - timedelta(minutes=minutes_ago)
    defaults = {
        "backup_name": "ltr-1",
        "status": status,
        "category": {"succeeded": "passed", "failed": "azure_failure"}.get(status, ""),
        "requested_by": user,
        "requested_by_oid": getattr(user, "object_id", "oid"),
        "requested_by_name": str(user) if user else "someone",
        "requested_by_tenant": server.tenant_id,
        "api_version": "2024-08-01",
        "created_at": created,
        "started_at": created,
        "finished_at": created + timedelta(seconds=2) if status not in ("queued", "running") else None,
        "number_of_containers": 2 if status == "succeeded" else None,
        "http_status": 200 if status == "succeeded" else 500 if status == "failed" else None,
    }
    defaults.update(fields)
    check = Check.objects.create(server=server, **defaults)
    if not check.is_active:  # as Check.finish() would have: the tick on the server's strip
        strip.record([check])
    server.last_check = check
    server.save(update_fields=["last_check"])
    return check

"""Reading a server's LTR backup operations from Azure with the user's own token and keeping what was seen.

A refresh runs inside a web request, so its deadline is short (ARM_MAX_RETRY_WAIT), as for "Import from Azure".
It either reads the whole list and records it, or changes nothing and says why (armclient's words).
"""

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max
from django.db.models.functions import Coalesce
from django.utils import timezone

from armclient.onewriter import one_writer
from armclient.operations import ListError, LtrOperation, ltr_backup_operations
from backups import watch
from backups.models import LtrAlertSetting, LtrBackup, LtrRefresh
from dashboard import entra
from dashboard.models import Server

FIELDS = ("status", "start_time", "end_time", "percent_complete", "datasource_size_bytes", "data_transferred_bytes",
          "backup_metadata", "error_code", "error_message")


class RefreshFailed(Exception):
    """Azure's list could not be read whole; `message` says why in the user's words, nothing was changed."""

    def __init__(self, message: str, code: str = ""):
        super().__init__(message)
        self.message, self.code = message, code


def refresh(server: Server, user, *, deadline_seconds: float | None = None) -> int:
    """Read `server`'s LTR backup operations as `user` and record them; return how many Azure listed.

    The deadline is a web request's (ARM_MAX_RETRY_WAIT) unless a worker, which may wait longer, gives its own."""
    try:
        operations = ltr_backup_operations(
            tokens=entra.token_source(user), principal_oid=user.object_id, subscription_id=server.subscription_id,
            resource_group=server.resource_group, server_name=server.name, api_version=settings.AZURE_LTR_API_VERSION,
            deadline_seconds=settings.ARM_MAX_RETRY_WAIT if deadline_seconds is None else deadline_seconds,
        )
    except ListError as exc:
        raise RefreshFailed(exc.message, exc.code) from None
    record(server, operations, user)
    return len(operations)


@one_writer()  # a schedule's refresh runs in a worker: a writer like the checks' own
@transaction.atomic
def record(server: Server, operations: list[LtrOperation], user=None) -> None:
    """Upsert what Azure listed; mark what it no longer lists (once), and note the refresh."""
    now = timezone.now()
    listed = {op.backup_name: op for op in operations}
    known = {b.backup_name: b for b in LtrBackup.objects.filter(server=server, backup_name__in=list(listed))}
    changed, new = [], []
    for name, op in listed.items():
        values = {field: getattr(op, field) for field in FIELDS}
        backup = known.get(name)
        if backup is None:
            new.append(LtrBackup(server=server, tenant_id=server.tenant_id, backup_name=name, first_seen_at=now,
                                 last_seen_at=now, **values))
            continue
        for field, value in values.items():
            setattr(backup, field, value)
        backup.last_seen_at, backup.gone_from_azure_at = now, None
        changed.append(backup)
    LtrBackup.objects.bulk_create(new, batch_size=500)
    LtrBackup.objects.bulk_update(changed, [*FIELDS, "last_seen_at", "gone_from_azure_at"], batch_size=500)
    (LtrBackup.objects.filter(server=server, gone_from_azure_at=None).exclude(backup_name__in=list(listed))
     .update(gone_from_azure_at=now))
    LtrRefresh.objects.update_or_create(server=server, create_defaults={
        "tenant_id": server.tenant_id, "refreshed_at": now, "refreshed_by": user, "listed": len(listed),
        "first_read_at": now, **summary_of(server)}, defaults={
        "tenant_id": server.tenant_id, "refreshed_at": now, "refreshed_by": user, "listed": len(listed),
        **summary_of(server)})
    # Alerts ride the same transaction: the deliveries exist only if what they announce was recorded.
    watch.alert_new_failures(server, now)
    watch.check_gaps(LtrRefresh.objects.filter(server=server), LtrAlertSetting.days_for(server.tenant_id), now)


def summary_of(server: Server) -> dict:
    """The server list's summary of everything kept (listed or not): the newest backup, the newest success."""
    kept = LtrBackup.objects.filter(server=server)
    newest = kept.order_by(F("start_time").desc(nulls_last=True), "-first_seen_at").values(
        "status", "start_time").first() or {}
    succeeded = kept.filter(status="Succeeded").aggregate(at=Max(Coalesce("end_time", "start_time", "first_seen_at")))
    return {"last_status": newest.get("status", ""), "last_started_at": newest.get("start_time"),
            "last_succeeded_at": succeeded["at"]}

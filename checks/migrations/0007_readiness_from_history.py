"""Replay the history kept so far into readiness and its changes, so an existing fleet starts with its real
state. One pass over the checks that speak for their server, in order, without loading them all at once."""

from django.db import migrations

SERVER_OUTCOMES = ("passed", "server_not_ready", "not_found", "provider_not_registered", "busy")


def replay(apps, schema_editor):
    Check = apps.get_model("checks", "Check")
    Readiness = apps.get_model("checks", "Readiness")
    ReadinessChange = apps.get_model("checks", "ReadinessChange")
    conclusive = (Check.objects.filter(category__in=SERVER_OUTCOMES, finished_at__isnull=False)
                  .order_by("server_id", "finished_at", "id")
                  .values_list("id", "server_id", "server__tenant_id", "category", "finished_at"))
    current: dict = {}
    changes = []
    for check_id, server_id, tenant_id, category, at in conclusive.iterator(chunk_size=5000):
        state, reason = ("ready", "") if category == "passed" else ("not_ready", category)
        row = current.get(server_id)
        if row is None or (row["state"], row["reason"]) != (state, reason):
            changes.append(ReadinessChange(server_id=server_id, tenant_id=tenant_id, at=at, reason=reason,
                                           from_state=row["state"] if row else "unknown", to_state=state,
                                           caused_by_id=check_id))
            row = current[server_id] = {"state": state, "reason": reason, "since": at, "changed_by": check_id,
                                        "tenant_id": tenant_id}
        row["last"], row["last_at"] = check_id, at
        if len(changes) >= 5000:
            ReadinessChange.objects.bulk_create(changes)
            changes = []
    ReadinessChange.objects.bulk_create(changes)
    Readiness.objects.bulk_create(
        [Readiness(server_id=server_id, tenant_id=row["tenant_id"], state=row["state"], reason=row["reason"],
                   since=row["since"], changed_by_id=row["changed_by"], last_conclusive_id=row["last"],
                   last_conclusive_at=row["last_at"]) for server_id, row in current.items()],
        batch_size=5000,
    )


class Migration(migrations.Migration):
    dependencies = [("checks", "0006_readiness")]
    operations = [migrations.RunPython(replay, migrations.RunPython.noop)]

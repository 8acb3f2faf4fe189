"""Each check carries its server's tenant, so the history's indexes can start with the tenant.

Existing rows are filled in chunks of ids, each its own transaction (the migration is not atomic), so a
million-row history neither holds one long lock nor needs one huge transaction.
"""

from django.db import migrations, models
from django.db.models import Max, OuterRef, Subquery

CHUNK = 20_000


def fill_tenant(apps, schema_editor):
    Check = apps.get_model("checks", "Check")
    Server = apps.get_model("dashboard", "Server")
    tenant = Subquery(Server.objects.filter(pk=OuterRef("server_id")).values("tenant_id")[:1])
    last = Check.objects.aggregate(last=Max("id"))["last"] or 0
    for start in range(0, last + 1, CHUNK):
        Check.objects.filter(id__gt=start, id__lte=start + CHUNK, tenant_id="").update(tenant_id=tenant)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("checks", "0010_batch_server_set"),
        ("dashboard", "0002_tokencache_version"),
    ]

    operations = [
        migrations.AddField(
            model_name="check",
            name="tenant_id",
            field=models.CharField(default="", max_length=36),
            preserve_default=False,
        ),
        migrations.RunPython(fill_tenant, migrations.RunPython.noop, elidable=True),
    ]

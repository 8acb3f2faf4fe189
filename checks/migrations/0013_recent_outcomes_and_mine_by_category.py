"""Each server's recent outcomes kept on a row of their own (checks.strip), filled here from the history; and
the history's index for "mine" with a category."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import F, Window
from django.db.models.functions import RowNumber

LENGTH = 20  # checks.strip.LENGTH when this was written
CHUNK = 500


def fill_from_history(apps, schema_editor):
    """Each server's last LENGTH finished checks, oldest first, as checks.strip.record() would have kept them."""
    Server = apps.get_model("dashboard", "Server")
    Check = apps.get_model("checks", "Check")
    RecentOutcomes = apps.get_model("checks", "RecentOutcomes")
    ids = list(Server.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), CHUNK):
        ranked = (Check.objects.filter(server_id__in=ids[start:start + CHUNK])
                  .exclude(status__in=["queued", "running"])
                  .annotate(rank=Window(RowNumber(), partition_by=[F("server_id")],
                                        order_by=[F("created_at").desc(), F("id").desc()]))
                  .filter(rank__lte=LENGTH)
                  .values_list("server_id", "id", "created_at", "status", "category"))
        strips = {}
        for server_id, pk, created_at, status, category in ranked:
            strips.setdefault(server_id, []).append([pk, int(created_at.timestamp()), status, category])
        RecentOutcomes.objects.bulk_create(
            RecentOutcomes(server_id=server_id, outcomes=sorted(outcomes, key=lambda e: (e[1], e[0])))
            for server_id, outcomes in strips.items())


class Migration(migrations.Migration):

    dependencies = [
        ('checks', '0012_check_history_indexes'),
        ('dashboard', '0003_rate_windows'),
    ]

    operations = [
        migrations.CreateModel(
            name='RecentOutcomes',
            fields=[
                ('server', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                                                related_name='recent_outcomes', serialize=False,
                                                to='dashboard.server')),
                ('outcomes', models.JSONField(default=list)),
            ],
        ),
        migrations.RunPython(fill_from_history, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name='check',
            index=models.Index(fields=['tenant_id', 'requested_by_oid', 'category', '-created_at', '-id'],
                               name='check_tenant_by_category_idx'),
        ),
    ]

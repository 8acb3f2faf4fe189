"""The server list's sorts by an index each (issue 12): each server's readiness and since when, copied from the
checks app's Readiness row (kept up to date by checks.readiness from now on), and the indexes, tenant first."""

import django.db.models.functions.comparison
import django.db.models.functions.text
from django.db import migrations, models
from django.db.models import OuterRef, Subquery

CHUNK = 2000


def copy_readiness(apps, schema_editor):
    Server = apps.get_model("dashboard", "Server")
    Readiness = apps.get_model("checks", "Readiness")
    ids = list(Readiness.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), CHUNK):
        own = Readiness.objects.filter(server_id=OuterRef("pk"))
        Server.objects.filter(pk__in=ids[start:start + CHUNK]).update(
            readiness_state=Subquery(own.values("state")[:1]), readiness_since=Subquery(own.values("since")[:1]))


class Migration(migrations.Migration):

    dependencies = [
        ('checks', '0013_recent_outcomes_and_mine_by_category'),
        ('dashboard', '0005_import_listing_subscription_names'),
    ]

    operations = [
        migrations.AddField(
            model_name='server',
            name='readiness_since',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='server',
            name='readiness_state',
            field=models.CharField(blank=True, db_default='', default='', max_length=12),
        ),
        migrations.AddIndex(
            model_name='server',
            index=models.Index(models.F('tenant_id'), django.db.models.functions.text.Lower('name'), models.F('resource_group'), models.F('subscription_id'), condition=models.Q(('archived_at__isnull', True)), name='server_list_name_idx'),
        ),
        migrations.AddIndex(
            model_name='server',
            index=models.Index(models.F('tenant_id'), models.F('readiness_state'), django.db.models.functions.text.Lower('name'), models.F('id'), condition=models.Q(('archived_at__isnull', True)), name='server_list_readiness_idx'),
        ),
        migrations.AddIndex(
            model_name='server',
            index=models.Index(models.F('tenant_id'), django.db.models.functions.comparison.Coalesce('readiness_since', 'added_at'), models.F('id'), condition=models.Q(('archived_at__isnull', True)), name='server_list_changed_idx'),
        ),
        migrations.AddIndex(
            model_name='server',
            index=models.Index(models.F('tenant_id'), django.db.models.functions.comparison.Coalesce('last_check_id', models.Value(0)), models.F('id'), condition=models.Q(('archived_at__isnull', True)), name='server_list_checked_idx'),
        ),
        migrations.RunPython(copy_readiness, migrations.RunPython.noop),
    ]

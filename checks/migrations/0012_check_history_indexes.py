"""The history's indexes start with the tenant, one per filter, and end in (created_at, id) for keyset pages."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("checks", "0011_check_tenant_id"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="check", name="check_server_created_idx"),
        migrations.RemoveIndex(model_name="check", name="check_created_idx"),
        migrations.AddIndex(
            model_name="check",
            index=models.Index(fields=["tenant_id", "-created_at", "-id"], name="check_tenant_created_idx"),
        ),
        migrations.AddIndex(
            model_name="check",
            index=models.Index(fields=["server", "-created_at", "-id"], name="check_server_created_idx"),
        ),
        migrations.AddIndex(
            model_name="check",
            index=models.Index(fields=["tenant_id", "status", "-created_at", "-id"], name="check_tenant_status_idx"),
        ),
        migrations.AddIndex(
            model_name="check",
            index=models.Index(fields=["tenant_id", "category", "-created_at", "-id"],
                               name="check_tenant_category_idx"),
        ),
        migrations.AddIndex(
            model_name="check",
            index=models.Index(fields=["tenant_id", "requested_by_oid", "-created_at", "-id"],
                               name="check_tenant_by_idx"),
        ),
        migrations.AddConstraint(
            model_name="check",
            constraint=models.CheckConstraint(condition=~models.Q(tenant_id=""), name="check_has_tenant"),
        ),
    ]

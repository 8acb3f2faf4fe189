"""Delivery.tenant_id and Delivery.channel lose their own indexes: delivery_tenant_keyset and
delivery_channel_time start with them, and a storm writes a row an alert a channel.

Written by hand: Django's AlterField of the channel foreign key (db_index=False) also drops the partial unique
index delivery_one_pending_summary on PostgreSQL and does not make it again (sqlmigrate shows it), which
would let a channel have two waiting summaries. Here the database loses exactly the two indexes (and
PostgreSQL's _like twin of the tenant's), and the model state the same fields' new shape."""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = [("alerts_delivery_channel_id_8851c777", "channel_id"), ("alerts_delivery_tenant_id_2b0b4ecd", "tenant_id")]


class Migration(migrations.Migration):

    dependencies = [
        ("alerts", "0003_delivery_retention"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="delivery",
                    name="channel",
                    field=models.ForeignKey(db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                            related_name="deliveries", to="alerts.channel"),
                ),
                migrations.AlterField(
                    model_name="delivery",
                    name="tenant_id",
                    field=models.CharField(max_length=36),
                ),
            ],
            database_operations=[
                *(migrations.RunSQL(f"DROP INDEX IF EXISTS {name}",
                                    reverse_sql=f"CREATE INDEX {name} ON alerts_delivery ({column})")
                  for name, column in INDEXES),
                migrations.RunSQL("DROP INDEX IF EXISTS alerts_delivery_tenant_id_2b0b4ecd_like",
                                  reverse_sql=migrations.RunSQL.noop),
            ],
        ),
    ]

# The readiness rows' index on (tenant, state) grows into (tenant, state, last conclusive check) with the server:
# the server list counts the tenant's ready servers checked since a moment from the index alone. The new index
# is made before the old one goes, so the counts always have one.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("checks", "0016_readiness_not_known"),
        ("dashboard", "0009_server_search_trigram_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="readiness",
            index=models.Index(fields=["tenant_id", "state", "last_conclusive_at", "server"],
                               name="readiness_tenant_fresh_idx"),
        ),
        migrations.RemoveIndex(
            model_name="readiness",
            name="readiness_tenant_state_idx",
        ),
    ]

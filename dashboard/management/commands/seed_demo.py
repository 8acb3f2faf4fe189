"""Register the demo fleet (dashboard.demo) for the simulator's demo tenants; safe to run again."""

from django.core.management.base import BaseCommand

from dashboard.demo import FLEET
from dashboard.models import Server


class Command(BaseCommand):
    help = "Register the demo servers for the simulator's demo tenants (idempotent)."

    def handle(self, *args, **options):
        created = 0
        for tenant_id, subscription_id, resource_group, name, label in FLEET:
            if Server.objects.for_tenant(tenant_id).active().matching(subscription_id, resource_group, name).exists():
                continue
            Server.objects.create(
                tenant_id=tenant_id, subscription_id=subscription_id, resource_group=resource_group,
                name=name, label=label,
            )
            created += 1
        self.stdout.write(f"Demo fleet: {created} server(s) registered, {len(FLEET) - created} already there.")

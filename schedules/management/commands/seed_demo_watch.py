"""The demo's watch, after `seed_demo`'s fleet: Alice's "Contoso nightly" schedule and the "Demo catcher"
alert channel (schedules.demo); safe to run again. It lives here, not in dashboard, because dashboard may not
import schedules or alerts (tests/test_dependencies.py)."""

from django.core.management.base import BaseCommand

from schedules.demo import seed_demo_watch


class Command(BaseCommand):
    help = "Create the demo schedule and the alert channel to the local catcher (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--catcher-url", default="http://127.0.0.1:8299/demo",
                            help="where the demo's alert channel posts (the catcher rundemo starts)")

    def handle(self, *args, catcher_url, **options):
        channel, schedule = seed_demo_watch(catcher_url)
        self.stdout.write(f"Demo watch: schedule “{schedule.name}” ({schedule.get_state_display().lower()}), "
                          f"alerts to {channel.name} at {channel.target_hint}.")

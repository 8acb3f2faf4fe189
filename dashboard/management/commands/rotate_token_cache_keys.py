"""Re-encrypt every stored token cache under the first key of TOKEN_CACHE_KEYS.

Rotation: put the new key first in TOKEN_CACHE_KEYS (keep the old one after it), restart, run this
command, then drop the old key.
"""

from django.core.management.base import BaseCommand

from dashboard import tokencache


class Command(BaseCommand):
    help = "Re-encrypt all token caches with the first key in TOKEN_CACHE_KEYS."

    def handle(self, *args, **options):
        count = tokencache.rotate_all()
        self.stdout.write(f"Re-encrypted {count} token cache(s) with the current key.")

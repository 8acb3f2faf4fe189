"""Our copy of ARM's rate buckets, shared by every worker and web process through the database.

ARM meters requests per subscription and principal with token buckets, one for writes (a POST such as
ltrPreBackup is a write) and one for reads. Every process takes a token from the same row before each attempt,
so a fleet sweep is paced to what ARM allows instead of running into a 429 storm (see armclient.pacing).
"""

from django.db import models


class RateBucket(models.Model):
    class Kind(models.TextChoices):
        WRITES = "writes", "Writes"
        READS = "reads", "Reads"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    # A subscription id, or "tenant" for calls above any subscription (the subscription list).
    scope = models.CharField(max_length=64)
    principal_oid = models.CharField(max_length=36)
    tokens = models.FloatField()
    updated_at = models.FloatField(help_text="time.time() of the last refill")
    blocked_until = models.FloatField(default=0, help_text="time.time() before which ARM asked us to wait")
    # How many tokens were ever taken: an attempt remembers the count it was given, so that when its answer
    # says what ARM had left, the attempts started after it (still in flight as far as ARM knew) are counted.
    issued = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "scope", "principal_oid"], name="ratebucket_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.scope} / {self.principal_oid}: {self.tokens:.1f}"

"""Pace ARM writes to ARM's own token bucket, per subscription and principal, across all workers.

ARM meters writes (ltrPreBackup is a POST, so a write) per subscription and principal with a token bucket:
200 in the bucket, refilled at 10 per second; each answer says what is left in
`x-ms-ratelimit-remaining-subscription-writes`, and an empty bucket answers 429 with `Retry-After`.
A sweep that ignores this gets a 429 storm. Here every worker takes a token from a shared copy of the
bucket (a row in the database) before it calls, lowers the copy to what ARM reports after each answer,
and stops the whole bucket until `Retry-After` has passed when ARM throttles anyway.
"""

import time

from django.conf import settings
from django.db import IntegrityError, transaction

from checks.models import ArmBudget


def _bucket(subscription_id: str, principal_oid: str, now: float) -> ArmBudget:
    key = {"subscription_id": subscription_id.lower(), "principal_oid": principal_oid}
    try:
        return ArmBudget.objects.select_for_update().get(**key)
    except ArmBudget.DoesNotExist:
        try:
            with transaction.atomic():
                return ArmBudget.objects.create(**key, tokens=settings.ARM_WRITE_BUCKET_CAPACITY, updated_at=now)
        except IntegrityError:  # another worker created it first
            return ArmBudget.objects.select_for_update().get(**key)


def _refill(bucket: ArmBudget, now: float) -> float:
    capacity, rate = settings.ARM_WRITE_BUCKET_CAPACITY, settings.ARM_WRITE_BUCKET_REFILL_PER_SECOND
    return min(capacity, bucket.tokens + max(0.0, now - bucket.updated_at) * rate)


def try_acquire(subscription_id: str, principal_oid: str) -> float:
    """Take one write token; 0 when taken, else the seconds to wait before trying again."""
    now = time.time()
    with transaction.atomic():
        bucket = _bucket(subscription_id, principal_oid, now)
        if bucket.blocked_until > now:
            return bucket.blocked_until - now
        tokens = _refill(bucket, now)
        if tokens >= 1:
            bucket.tokens, bucket.updated_at = tokens - 1, now
            bucket.save(update_fields=["tokens", "updated_at"])
            return 0.0
        return (1 - tokens) / settings.ARM_WRITE_BUCKET_REFILL_PER_SECOND


def acquire(subscription_id: str, principal_oid: str, *, deadline: float, on_wait=None) -> bool:
    """Wait for a write token until `deadline` (time.monotonic()); False if none came in time."""
    while True:
        wait = try_acquire(subscription_id, principal_oid)
        if wait <= 0:
            return True
        if time.monotonic() + wait > deadline:
            return False
        if on_wait is not None and wait >= 1:
            on_wait(wait)
        time.sleep(min(wait, 1.0))


def observe(subscription_id: str, principal_oid: str, *, remaining: int | None, retry_after: float | None) -> None:
    """Bring our copy of the bucket in line with what ARM just said."""
    if remaining is None and retry_after is None:
        return
    now = time.time()
    with transaction.atomic():
        bucket = _bucket(subscription_id, principal_oid, now)
        tokens = _refill(bucket, now)
        if remaining is not None:
            tokens = min(tokens, float(remaining))
        bucket.tokens, bucket.updated_at = tokens, now
        if retry_after:
            bucket.blocked_until = max(bucket.blocked_until, now + retry_after)
        bucket.save(update_fields=["tokens", "updated_at", "blocked_until"])

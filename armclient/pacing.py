"""Pace ARM calls to ARM's own token buckets, per subscription and principal, across all processes.

ARM meters each principal in each subscription with two buckets: writes (200, refilled at 10 per second; a
POST such as ltrPreBackup is a write) and reads (250 at 25 per second), and says in every answer what is left
(`x-ms-ratelimit-remaining-subscription-writes` / `-reads`). An empty bucket answers 429. Every attempt takes
a token from our copy of the bucket (a `RateBucket` row) first, and every answer brings the copy down to what
ARM reported, corrected for what happened since ARM counted:

    ARM now  ~  remaining  +  refill since the attempt was sent  -  attempts sent after it

The last term is why a one-subscription sweep no longer overshoots: answers arrive a round trip late, and the
attempts started meanwhile were not yet counted by ARM when it reported `remaining`. When ARM throttles with
its bucket empty (remaining 0), the whole bucket stops until `Retry-After` has passed.

The row is locked (SELECT ... FOR UPDATE) for a read-modify-write of a few microseconds; on SQLite the
database lock serialises the same way. The race we accept: two processes' answers may lower the copy in
either order; both only ever lower it, so the copy errs on the side of waiting.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction

from armclient.models import RateBucket


@dataclass(frozen=True)
class BucketKey:
    kind: str  # RateBucket.Kind
    scope: str  # a subscription id, or "tenant"
    principal_oid: str


@dataclass(frozen=True)
class Ticket:
    """One token taken: which one (the bucket's `issued` count) and when it was taken (time.time())."""

    number: int
    taken_at: float


def _limits(kind: str) -> tuple[float, float]:
    if kind == RateBucket.Kind.READS:
        return settings.ARM_READ_BUCKET_CAPACITY, settings.ARM_READ_BUCKET_REFILL_PER_SECOND
    return settings.ARM_WRITE_BUCKET_CAPACITY, settings.ARM_WRITE_BUCKET_REFILL_PER_SECOND


def _locked(key: BucketKey, now: float) -> RateBucket:
    fields = {"kind": key.kind, "scope": key.scope.lower(), "principal_oid": key.principal_oid}
    try:
        return RateBucket.objects.select_for_update().get(**fields)
    except RateBucket.DoesNotExist:
        try:
            with transaction.atomic():
                return RateBucket.objects.create(**fields, tokens=_limits(key.kind)[0], updated_at=now)
        except IntegrityError:  # another process created it first
            return RateBucket.objects.select_for_update().get(**fields)


def _refilled(bucket: RateBucket, now: float) -> float:
    capacity, rate = _limits(bucket.kind)
    return min(capacity, bucket.tokens + max(0.0, now - bucket.updated_at) * rate)


def try_acquire(key: BucketKey) -> Ticket | float:
    """Take one token: a Ticket, or the seconds to wait before trying again."""
    now = time.time()
    with transaction.atomic():
        bucket = _locked(key, now)
        if bucket.blocked_until > now:
            return bucket.blocked_until - now
        tokens = _refilled(bucket, now)
        if tokens < 1:
            return (1 - tokens) / _limits(key.kind)[1]
        bucket.tokens, bucket.updated_at, bucket.issued = tokens - 1, now, bucket.issued + 1
        bucket.save(update_fields=["tokens", "updated_at", "issued"])
        return Ticket(number=bucket.issued, taken_at=now)


def acquire(key: BucketKey, *, deadline: float, on_wait: Callable[[float], None] | None = None) -> Ticket | None:
    """Wait for a token until `deadline` (time.monotonic()); None if none came in time."""
    while True:
        answer = try_acquire(key)
        if isinstance(answer, Ticket):
            return answer
        if time.monotonic() + answer > deadline:
            return None
        if on_wait is not None and answer >= 1:
            on_wait(answer)
        time.sleep(min(answer, 1.0))


def observe(key: BucketKey, ticket: Ticket, *, remaining: int | None, blocked_for: float | None) -> None:
    """Bring our copy in line with what ARM said in the answer to `ticket`'s attempt."""
    if remaining is None and not blocked_for:
        return
    now = time.time()
    with transaction.atomic():
        bucket = _locked(key, now)
        tokens = _refilled(bucket, now)
        if remaining is not None:
            rate = _limits(key.kind)[1]
            sent_after = bucket.issued - ticket.number
            tokens = min(tokens, remaining + (now - ticket.taken_at) * rate - sent_after)
        bucket.tokens, bucket.updated_at = tokens, now
        if blocked_for:
            bucket.blocked_until = max(bucket.blocked_until, now + blocked_for)
        bucket.save(update_fields=["tokens", "updated_at", "blocked_until"])

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

`take` and `report` are what a call uses; they spare the database most of its writes (two locked
read-modify-writes a call cost 18% of a worker's CPU). A process takes tokens from the row a few at a time
(a lease: one after a quiet spell, doubling up to eight while leases are used up in time, never more than a
sixteenth of what is left), hands them to its threads, and drops what
it did not use within LEASE_SECONDS. Every token still comes out of the shared row, so the fleet-wide limit
holds whatever the number of processes; a lease only takes tokens early, which errs on the side of waiting.
An answer's `remaining` is folded into the process's next lease (the lowest of what they say: see
`_Local.report`), at once when ARM says little is left or that the bucket is empty.

Folded into a lease are only the answers to calls that reached ARM in their turn. "Sent after" is counted by
ticket number, and a call that reached ARM late (its number sat in a lease, or its thread or its whole process
stalled while the other process went on) is answered with a `remaining` that already counts later numbers, which
the formula subtracts again. Such answers said the bucket held 57-80 tokens fewer than it did; kept as the lowest
(as they were), one cut our copy of a 200-call subscription by that much, and the sweep's last fifty checks
waited up to 5 s for tokens ARM still had: 1,000 servers at 120-180 checks/s instead of 280-360, one sweep in two.
Left out: an answer to a number handed out more than LEASE_FRESH_SECONDS after it was leased, and one whose
round trip took more than twice the usual (the median of the process's latest round trips on that bucket, so a
300 ms ARM is as usual as a 2 ms simulator). Where little is left, every answer still counts at once, the lowest
reading kept.
"""

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.signals import setting_changed
from django.db import IntegrityError, transaction

from armclient.models import RateBucket
from armclient.onewriter import one_writer


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
    leased_at: float | None = None  # when the number was taken from the row, if it came from a lease


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
    with one_writer(), transaction.atomic():
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
    return _wait_for_token(lambda: try_acquire(key), deadline, on_wait)


def _wait_for_token(attempt: Callable[[], "Ticket | float"], deadline: float,
                    on_wait: Callable[[float], None] | None) -> Ticket | None:
    """Call `attempt` (a Ticket, or the seconds until one may come) until a token or `deadline`; sleeping at most
    a second at a time, so a token another process hands back is seen soon."""
    while True:
        answer = attempt()
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
    with one_writer(), transaction.atomic():
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


# A process takes at most this many tokens at once, and at most a LEASE_SHARE-th of what is left.
LEASE_MAX = 8
LEASE_SHARE = 16
# Leased tokens not handed out within this many seconds are dropped (they were taken early; dropping errs safe).
LEASE_SECONDS = 1.0
# A lease leaves out the answer to a number handed out longer than this after it was leased (see above),
LEASE_FRESH_SECONDS = 0.1
# and one whose round trip took more than LATE_FACTOR times the usual (plus LATE_SLACK seconds for a fast ARM);
LATE_FACTOR, LATE_SLACK = 2.0, 0.01
# it folds in the latest PENDING_ANSWERS answers since the last lease at most.
PENDING_ANSWERS = 32
# The usual round trip: the median of this many of the latest (over three times a worker's 32 threads).
TRIPS_KEPT = 100


class _Local:
    """One process's share of one bucket: leased tokens not yet handed out, and answers not yet written."""

    def __init__(self, key: BucketKey):
        self.key, self.lock = key, threading.Lock()
        self.numbers: list[int] = []
        self.leased_at = 0.0
        # How many the next lease takes: doubled while leases are used up in time, back to 1 when one was not
        # (a process running a single check takes one token, not eight).
        self.size = 1
        self.unused = 0  # tokens leased and dropped unused (they never reached ARM)
        # Per answer not yet written, (remaining - taken_at x rate + ticket number): at time `now`, with the
        # row's `issued`, one says the bucket holds `value + now x rate - issued` (observe's formula).
        self.pending: list[float] = []
        # The usual round trip is the median of the latest TRIPS_KEPT: a stalled process's burst of late answers
        # (at most one a thread) does not make itself usual; ARM grown slower for good does, within half of them.
        self.trips: deque[float] = deque(maxlen=TRIPS_KEPT)

    def take(self) -> Ticket | float:
        with self.lock:
            now = time.time()
            if self.numbers and now - self.leased_at < LEASE_SECONDS:
                return Ticket(number=self.numbers.pop(0), taken_at=now, leased_at=self.leased_at)
            self.size = 1 if self.numbers else min(LEASE_MAX, self.size * 2)
            self.unused += len(self.numbers)
            self.numbers = []
            return self._lease(now)

    def _lease(self, now: float) -> Ticket | float:
        rate = _limits(self.key.kind)[1]
        with one_writer(), transaction.atomic():
            bucket = _locked(self.key, now)
            if bucket.blocked_until > now:
                return bucket.blocked_until - now
            tokens = _refilled(bucket, now)
            if self.pending:
                tokens = min(tokens, min(self.pending) + now * rate - bucket.issued)
                self.pending = []
            if tokens < 1:
                bucket.tokens, bucket.updated_at = tokens, now  # what the answers said, kept for every process
                bucket.save(update_fields=["tokens", "updated_at"])
                return (1 - tokens) / rate
            n = max(1, min(self.size, int(tokens // LEASE_SHARE)))
            first = bucket.issued + 1
            bucket.tokens, bucket.updated_at, bucket.issued = tokens - n, now, bucket.issued + n
            bucket.save(update_fields=["tokens", "updated_at", "issued"])
        self.numbers, self.leased_at = list(range(first + 1, first + n)), now
        return Ticket(number=first, taken_at=now)

    def _in_turn(self, ticket: Ticket) -> bool:
        """Whether the call of `ticket`, just answered, can have reached ARM in its number's turn (see above);
        its round trip joins the usual. Call holding `lock`."""
        trip = time.time() - ticket.taken_at
        usual = statistics.median(self.trips) if self.trips else trip
        self.trips.append(trip)
        return trip <= LATE_FACTOR * usual + LATE_SLACK and not _sat_in_lease(ticket)

    def report(self, ticket: Ticket, remaining: int | None, blocked_for: float | None) -> None:
        capacity, rate = _limits(self.key.kind)
        if blocked_for or (remaining is not None and remaining < capacity / 10):
            # ARM emptied the bucket, or little is left: every process must know now, and our lease is void.
            with self.lock:
                self.unused += len(self.numbers)
                self.numbers = []
            observe(self.key, ticket, remaining=remaining, blocked_for=blocked_for)
            return
        if remaining is None:
            return
        with self.lock:
            if self._in_turn(ticket):
                self.pending.append(remaining - ticket.taken_at * rate + ticket.number)
                del self.pending[:-PENDING_ANSWERS]


def _sat_in_lease(ticket: Ticket) -> bool:
    return ticket.leased_at is not None and ticket.taken_at - ticket.leased_at > LEASE_FRESH_SECONDS


_locals: dict[BucketKey, _Local] = {}
_locals_lock = threading.Lock()


def _local(key: BucketKey) -> _Local:
    with _locals_lock:
        if key not in _locals:
            _locals[key] = _Local(key)
        return _locals[key]


def unused_tokens(key: BucketKey) -> int:
    """Tokens this process took from the row that no attempt used (held, or dropped unused): the row's `issued`
    less these is what this process's attempts took."""
    with _locals_lock:
        local = _locals.get(key)
    if local is None:
        return 0
    with local.lock:
        return len(local.numbers) + local.unused


def forget_local(**kwargs) -> None:
    """Drop every lease and unwritten answer of this process (a test's fresh database, changed limits)."""
    with _locals_lock:
        _locals.clear()


def take(key: BucketKey, *, deadline: float, on_wait: Callable[[float], None] | None = None) -> Ticket | None:
    """`acquire`, from this process's lease when it has one: a token, or None if none came before `deadline`."""
    return _wait_for_token(_local(key).take, deadline, on_wait)


def report(key: BucketKey, ticket: Ticket, *, remaining: int | None, blocked_for: float | None) -> None:
    """`observe`, written with this process's next lease unless ARM says the bucket is low or empty."""
    _local(key).report(ticket, remaining, blocked_for)


setting_changed.connect(forget_local)

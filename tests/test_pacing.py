"""Pacing ARM calls to ARM's token buckets, shared by every worker through the database."""

import time

import pytest

from armclient import pacing
from armclient.models import RateBucket
from armclient.pacing import BucketKey, Ticket
from checks.models import Batch, Check
from dashboard.demo import PROD
from tests.conftest import ALICE, make_server

SUB, OID = PROD, ALICE["oid"]
WRITES = BucketKey(RateBucket.Kind.WRITES, SUB, OID)


def took(answer) -> bool:
    return isinstance(answer, Ticket)


@pytest.fixture
def small_bucket(settings):
    settings.ARM_WRITE_BUCKET_CAPACITY = 5
    settings.ARM_WRITE_BUCKET_REFILL_PER_SECOND = 5


def test_the_bucket_gives_its_capacity_then_asks_to_wait_for_the_refill(db, small_bucket):
    answers = [pacing.try_acquire(WRITES) for _ in range(6)]
    assert [a.number for a in answers[:5]] == [1, 2, 3, 4, 5]
    assert 0 < answers[5] <= 0.2, "the sixth waits for the refill (less if time passed while taking five)"


def test_buckets_are_per_kind_subscription_and_principal(db, small_bucket):
    for _ in range(5):
        pacing.try_acquire(WRITES)
    assert not took(pacing.try_acquire(WRITES))
    assert took(pacing.try_acquire(BucketKey(RateBucket.Kind.WRITES, SUB, "another-principal")))
    assert took(pacing.try_acquire(BucketKey(RateBucket.Kind.WRITES, "0b5e0002-0000-4000-8000-000000000002", OID)))
    assert took(pacing.try_acquire(BucketKey(RateBucket.Kind.READS, SUB, OID)))


def test_arms_remaining_count_lowers_the_bucket_and_an_empty_bucket_stops_it(db):
    ticket = pacing.try_acquire(WRITES)
    pacing.observe(WRITES, ticket, remaining=0, blocked_for=None)
    assert RateBucket.objects.get().tokens < 1
    pacing.observe(WRITES, ticket, remaining=None, blocked_for=30)
    assert 29 < pacing.try_acquire(WRITES) <= 30


def test_calls_started_after_an_answer_was_counted_are_subtracted_from_what_arm_reported(db):
    first = pacing.try_acquire(WRITES)
    for _ in range(9):  # nine more in flight, sent after the first
        pacing.try_acquire(WRITES)
    # ARM counted only the first when it said 20 were left: the nine after it will take theirs too.
    pacing.observe(WRITES, first, remaining=20, blocked_for=None)
    assert 10.9 <= RateBucket.objects.get().tokens <= 12


def test_waiting_past_the_deadline_gives_up(db, small_bucket):
    ticket = None
    for _ in range(5):
        ticket = pacing.try_acquire(WRITES)
    pacing.observe(WRITES, ticket, remaining=None, blocked_for=60)
    assert pacing.acquire(WRITES, deadline=time.monotonic() + 1) is None


def _sweep(client, sim, worker, n):
    servers = []
    for i in range(n):
        name = f"pg-sweep-{i:03d}"
        sim.set_behaviour(PROD, "rg-payments-prod", name, outcome="success")
        servers.append(make_server(name=name))
    client.post("/batches/", {"scope": "selected", "server": [s.pk for s in servers]})
    worker()
    return Batch.objects.get()


# A refill slow enough that even a loaded machine's single worker thread outruns it, so the control bites.
REFILL = 2


def test_a_sweep_is_paced_to_the_bucket_instead_of_hitting_429s(client, signed_in, sim, worker, settings):
    sim.set_throttle(capacity=5, refill_per_second=REFILL)
    settings.ARM_WRITE_BUCKET_CAPACITY, settings.ARM_WRITE_BUCKET_REFILL_PER_SECOND = 5, REFILL
    signed_in(ALICE["upn"])
    batch = _sweep(client, sim, worker, 20)
    assert batch.progress()["passed"] == 20
    assert sim.stats.throttled == 0


def test_without_pacing_the_same_sweep_runs_into_429s(client, signed_in, sim, worker, settings):
    """The control for the test above: it shows the bucket really bites."""
    sim.set_throttle(capacity=5, refill_per_second=REFILL)
    settings.ARM_WRITE_BUCKET_CAPACITY, settings.ARM_WRITE_BUCKET_REFILL_PER_SECOND = 10**6, 10**6
    settings.ARM_MAX_RETRIES = 0  # each 429 ends its check at once: the control is about the first attempts
    signed_in(ALICE["upn"])
    batch = _sweep(client, sim, worker, 20)
    assert sim.stats.throttled > 0
    assert Check.objects.filter(batch=batch).count() == 20


def test_one_throttled_server_does_not_stop_the_rest_of_its_subscription(client, signed_in, sim, worker, settings):
    settings.ARM_CHECK_DEADLINE = 3
    signed_in(ALICE["upn"])
    throttled = make_server(name="pg-reporting")  # the provider answers 429, Retry-After 30 s
    other = make_server(name="pg-payments-01")
    client.post("/batches/", {"scope": "selected", "server": [throttled.pk, other.pk]})
    worker()
    assert Check.objects.get(server=throttled).category == "throttled"
    passed = Check.objects.get(server=other)
    assert passed.status == "succeeded"
    assert passed.duration.total_seconds() < 2, "no wait for the subscription's bucket"
    assert RateBucket.objects.get().blocked_until == 0


def test_two_processes_leasing_from_one_bucket_never_take_more_than_it_holds(db, settings):
    settings.ARM_WRITE_BUCKET_CAPACITY, settings.ARM_WRITE_BUCKET_REFILL_PER_SECOND = 40, 0.001
    first, second = pacing._Local(WRITES), pacing._Local(WRITES)  # each process keeps its own
    taken = [sum(took(local.take()) for _ in range(50)) for local in (first, second, first, second)]
    assert sum(taken) == 40, taken
    assert RateBucket.objects.get().tokens < 1


def test_a_busy_process_takes_its_tokens_a_few_at_a_time(db):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        tickets = [pacing.take(WRITES, deadline=time.monotonic() + 5) for _ in range(64)]
    assert len({t.number for t in tickets}) == 64, "each attempt its own token"
    writes = [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(writes) <= 64 // 4, f"{len(writes)} writes of the bucket for 64 tokens"
    # The lease in hand when the 64th was taken is the process's: taken from the row, not yet used.
    assert RateBucket.objects.get().issued - pacing.unused_tokens(WRITES) == 64


def test_an_answer_to_a_number_that_sat_in_its_lease_does_not_cut_the_next_lease(db, settings):
    """Process A leases 8 numbers and uses the second only after process B took 60 and sent them: ARM's answer to
    it counts B's 60, and `issued - number` would subtract them again (60 tokens short). A's next lease leaves it
    out (the number sat in its lease longer than LEASE_FRESH_SECONDS) and keeps what the row holds."""
    settings.ARM_WRITE_BUCKET_CAPACITY, settings.ARM_WRITE_BUCKET_REFILL_PER_SECOND = 200, 0.001
    a, b = pacing._Local(WRITES), pacing._Local(WRITES)
    a.size = 8
    assert a.take().number == 1  # leases 1-8
    b_numbers = [b.take().number for _ in range(60)]
    assert min(b_numbers) == 9
    time.sleep(pacing.LEASE_FRESH_SECONDS + 0.05)
    late = a.take()
    assert late.number == 2
    a.report(late, remaining=200 - 62, blocked_for=None)  # ARM counted 1, B's sixty and this one
    for _ in range(6):
        a.take()  # 3-8, from the lease
    assert isinstance(a.take(), Ticket)  # a new lease, from the row
    issued = RateBucket.objects.get().issued
    assert RateBucket.objects.get().tokens >= 200 - issued - 1, "the row still holds what ARM does"


def test_an_answer_to_a_fresh_token_still_lowers_the_next_lease(db, settings):
    """The answers fold into the next lease: another client of the same principal took 50 that we never issued."""
    settings.ARM_WRITE_BUCKET_CAPACITY, settings.ARM_WRITE_BUCKET_REFILL_PER_SECOND = 200, 0.001
    a = pacing._Local(WRITES)
    first = a.take()
    a.report(first, remaining=200 - 1 - 50, blocked_for=None)
    _next_lease(a)
    bucket = RateBucket.objects.get()
    assert bucket.tokens <= 200 - 50 - bucket.issued + 1


def test_one_call_sent_late_does_not_cut_the_next_lease(db, settings):
    """A thread took token 1 and stalled; by the time its call reached ARM, 61 later ones had: ARM's answer to it
    (200 - 62 left) counts them, and `issued - number` subtracts them again. Its round trip was far longer than
    the usual, so the next lease goes by the others (it took the lowest answer, 60 tokens short, before)."""
    settings.ARM_WRITE_BUCKET_CAPACITY, settings.ARM_WRITE_BUCKET_REFILL_PER_SECOND = 200, 0.001
    a, b = pacing._Local(WRITES), pacing._Local(WRITES)
    stalled = a.take()
    for _ in range(69):
        b.take()  # another process's, 2-70
    for number in (68, 69, 70):  # answers in their turn, 2 ms after their call
        a.report(Ticket(number=number, taken_at=time.time() - 0.002), remaining=200 - number, blocked_for=None)
    time.sleep(0.2)
    a.report(stalled, remaining=200 - 62, blocked_for=None)
    _next_lease(a)
    bucket = RateBucket.objects.get()
    assert bucket.tokens >= 200 - bucket.issued - 1, "the row still holds what ARM does"


def test_a_stalled_burst_of_answers_does_not_become_the_usual_but_a_slower_arm_does(db, settings):
    """A whole process stalled for a second: its 32 threads' answers come back late and all stay out. ARM grown
    slower for good (20 ms to 100 ms a call): within TRIPS_KEPT answers they count again."""
    settings.ARM_WRITE_BUCKET_CAPACITY, settings.ARM_WRITE_BUCKET_REFILL_PER_SECOND = 200, 0.001
    local = pacing._Local(WRITES)

    def answered(trip: float) -> bool:
        local.report(Ticket(number=1, taken_at=time.time() - trip), remaining=150, blocked_for=None)
        counted, local.pending = bool(local.pending), []
        return counted

    assert all(answered(0.02) for _ in range(40))
    assert not any(answered(1.0) for _ in range(32))
    assert answered(0.02), "the usual is still the usual"
    assert not answered(0.1)
    slower = [answered(0.1) for _ in range(pacing.TRIPS_KEPT)]
    assert all(slower[-10:]), slower


def _next_lease(local: pacing._Local) -> None:
    """Take from `local` until it leases from the row again (the answers it holds are folded into that lease)."""
    leased = RateBucket.objects.get().issued
    while RateBucket.objects.get().issued == leased:
        assert isinstance(local.take(), Ticket)

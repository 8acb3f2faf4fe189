"""The simulator records every request that reaches its sockets, with its arrival time: the tests that count
and time retries read this record, never the client's own account of what it sent."""

import time


def test_every_request_is_recorded_with_its_arrival_time(sim, session):
    before = time.monotonic()
    session.get(f"{sim.https_url}/subscriptions?api-version=2022-12-01", timeout=10)
    session.get(f"{sim.http_url}/nothing-here", timeout=10)
    received = sim.received()
    assert [r.path for r in received] == ["/subscriptions", "/nothing-here"]
    assert before <= received[0].arrived_at <= received[1].arrived_at <= time.monotonic()
    assert received[0].query == {"api-version": "2022-12-01"}
    assert sim.received("/SUBSCRIPTIONS", method="GET") == received[:1]
    sim.reset()
    assert sim.received() == []

"""The fault matrix: every fault the simulator can produce, on every attempt or on the first one only,
through the whole pipeline (view -> queue -> worker -> armclient -> row), counted and timed at the simulator's
socket. For each: the exact number of requests that reached it, a bucket token taken for every one of them,
every gap at least the wait the client asked for (backoff or Retry-After), the check over within its deadline
plus a small margin, and a summary that names what really happened.

`make fault-matrix` runs this module and writes the table to docs/fault-matrix.md.
"""

import os
import time
from email.utils import formatdate
from pathlib import Path

import pytest

from armclient import pacing
from armclient.models import RateBucket
from armclient.pacing import BucketKey
from checks.models import Check
from dashboard.demo import PROD
from tests.conftest import ALICE, make_server

RG = "rg-payments-prod"
# Room for four 1 s read timeouts and their backoff even on a loaded machine; a trickle still outlasts it.
DEADLINE, READ_TIMEOUT, BACKOFF = 6.0, 1.0, 0.05
MARGIN = 0.75  # the worker's own bookkeeping after the last byte, on a loaded two-core machine
FAST = {"retry_after_ms": 50}
NOT_JSON = "not JSON"


def throttled_without_retry_after():
    return {"outcome": "payload", "status": 429, "body": {"error": {"code": "TooManyRequests", "message": "Slow down"}}}


def payload(count):
    return {"outcome": "payload", "body": {"properties": {"numberOfContainers": count}}}


# name -> (behaviour, on every attempt: (status, category, requests), on the first only: (...), words in the summary)
FAULTS = {
    "500 InternalServerError": ({"outcome": "internal_error"}, ("failed", "azure_failure", 4),
                                ("succeeded", "passed", 2), "unexpected error"),
    "502 gateway HTML page": ({"outcome": "bad_gateway"}, ("failed", "azure_failure", 4),
                              ("succeeded", "passed", 2), "HTTP 502"),
    "503 with retry-after-ms": ({"outcome": "unavailable", **FAST}, ("failed", "azure_failure", 4),
                                ("succeeded", "passed", 2), "unavailable"),
    "504 gateway timeout": ({"outcome": "payload", "status": 504, "body": ""}, ("failed", "azure_failure", 4),
                            ("succeeded", "passed", 2), "HTTP 504"),
    "429 with retry-after-ms": ({"outcome": "throttled", **FAST}, ("failed", "throttled", 4),
                                ("succeeded", "passed", 2), "throttled"),
    "429 with Retry-After: 1": ({"outcome": "throttled", "retry_after": 1}, ("failed", "throttled", 4),
                                ("succeeded", "passed", 2), "throttled"),
    "429 with Retry-After as an HTTP date": (None, ("failed", "throttled", 4), ("succeeded", "passed", 2),
                                             "throttled"),
    "429 without Retry-After (backoff)": (throttled_without_retry_after(), ("failed", "throttled", 4),
                                          ("succeeded", "passed", 2), "Slow down"),
    "429 Retry-After 30 s (longer than a check waits)": ({"outcome": "throttled", "retry_after": 30},
                                                         ("failed", "throttled", 1), ("failed", "throttled", 1),
                                                         "try again after"),
    "connection reset": ({"outcome": "reset"}, ("failed", "network", 4), ("succeeded", "passed", 2),
                         "could not be reached"),
    "stall before headers": ({"outcome": "stall_headers", "stall": 3}, ("failed", "network", 4),
                             ("succeeded", "passed", 2), "did not answer in time"),
    "stall mid-body": ({"outcome": "stall_body", "stall": 3}, ("failed", "network", 4),
                       ("succeeded", "passed", 2), "while Azure's answer was arriving (ReadTimeout)"),
    "body trickles past the deadline": ({"outcome": "trickle", "trickle_interval": 0.5},
                                        ("failed", "unexpected_response", 1), ("failed", "unexpected_response", 1),
                                        "still arriving"),
    "200 with an HTML page": ({"outcome": "html"}, ("failed", "unexpected_response", 1),
                              ("failed", "unexpected_response", 1), NOT_JSON),
    "200 with an empty body": ({"outcome": "empty"}, ("failed", "unexpected_response", 1),
                               ("failed", "unexpected_response", 1), "empty body"),
    "200 with invalid JSON": ({"outcome": "invalid_json"}, ("failed", "unexpected_response", 1),
                              ("failed", "unexpected_response", 1), NOT_JSON),
    "200 without properties": ({"outcome": "payload", "body": {}}, ("failed", "unexpected_response", 1),
                               ("failed", "unexpected_response", 1), "no properties"),
    "200 numberOfContainers a string": (payload("3"), ("failed", "unexpected_response", 1),
                                        ("failed", "unexpected_response", 1), "as a string"),
    "200 numberOfContainers negative": (payload(-1), ("failed", "unexpected_response", 1),
                                        ("failed", "unexpected_response", 1), "below zero"),
    "200 numberOfContainers huge": (payload(2**40), ("failed", "unexpected_response", 1),
                                    ("failed", "unexpected_response", 1), "32-bit"),
    "200 with a 5 MB body": ({"outcome": "huge", "huge_bytes": 5 * 1024 * 1024}, ("failed", "unexpected_response", 1),
                             ("failed", "unexpected_response", 1), "larger than"),
    "403 AuthorizationFailed": ({"outcome": "forbidden"}, ("failed", "permission_missing", 1),
                                ("failed", "permission_missing", 1), "does not have authorization"),
    "400 server not ready": ({"outcome": "not_ready", "state": "Stopped"}, ("failed", "server_not_ready", 1),
                             ("failed", "server_not_ready", 1), "Stopped"),
    "409 another operation in progress": (
        {"outcome": "payload", "status": 409,
         "body": {"error": {"code": "OperationInProgress", "message": "An operation is in progress on the server."}}},
        ("failed", "busy", 1), ("failed", "busy", 1), "in progress"),
}

RESULTS: list[tuple] = []


@pytest.fixture(scope="module", autouse=True)
def _write_matrix():
    yield
    out = os.environ.get("FAULT_MATRIX_OUT")
    if not out or not RESULTS:
        return
    lines = [
        "# Fault matrix",
        "",
        "Produced by `make fault-matrix` (tests/test_fault_matrix.py): each fault of the simulator, through the",
        "whole pipeline, on every attempt or on the first attempt only, counted and timed at the simulator's",
        "socket. Retries: at most 3 (408, 429, 5xx, failed connections, answers cut mid-body); backoff",
        f"{BACKOFF} s x 2^n plus jitter in this run (0.8 s by default); Retry-After in any form honoured; check",
        f"deadline {DEADLINE:.0f} s in this run (120 s by default), read timeout {READ_TIMEOUT:.0f} s (65 s by",
        "default) and clipped to what is left of the deadline; a single Retry-After over 20 s is not waited for.",
        "Every request took a token from the subscription's write bucket first. 'Gaps' are the times between",
        "arrivals at the socket; each is at least the wait the client asked for.",
        "",
        "| fault | when | final state | category | requests | gaps (s) | per attempt | took (s) | summary |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in RESULTS:
        lines.append("| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |")
    Path(out).write_text("\n".join(lines) + "\n")


def _behaviour(fault: str) -> dict:
    behaviour = FAULTS[fault][0]
    if behaviour is None:  # a date two seconds ahead: later attempts find it in the past (no wait)
        return {"outcome": "throttled", "retry_after": formatdate(time.time() + 2, usegmt=True)}
    return behaviour


@pytest.mark.parametrize("when", ["every attempt", "first attempt only"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_fault_ends_in_a_recorded_explained_state(client, signed_in, sim, worker, settings, fault, when):
    settings.ARM_CHECK_DEADLINE, settings.ARM_READ_TIMEOUT = DEADLINE, READ_TIMEOUT
    settings.ARM_BACKOFF_FACTOR = BACKOFF
    _, on_every, on_first, words = FAULTS[fault]
    status, category, requests = on_every if when == "every attempt" else on_first
    name = "pg-fault-" + str(abs(hash((fault, when))) % 10**8)
    sim.set_behaviour(PROD, RG, name, **_behaviour(fault), **({"fail_times": 1} if when == "first attempt only" else {}))
    server = make_server(name=name)
    signed_in(ALICE["upn"])
    before = Check.objects.count()

    client.post(f"/servers/{server.pk}/run/", {"backup_name": "fault-1"}, headers={"HX-Request": "true"})
    worker()

    check = Check.objects.get(server=server)
    arrivals = [r.arrived_at for r in sim.received(f"/{name}/ltrPreBackup")]
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    took = (check.finished_at - check.started_at).total_seconds()
    assert Check.objects.count() == before + 1 and not Check.objects.active().exists()
    assert (check.status, check.category) == (status, category)
    assert len(arrivals) == requests == check.attempts, "what reached the socket is what the check recorded"
    bucket = RateBucket.objects.get()
    # Tokens are leased a few at a time (armclient.pacing): those the process holds unused were taken by no attempt.
    unused = pacing.unused_tokens(BucketKey(bucket.kind, bucket.scope, bucket.principal_oid))
    assert bucket.issued - unused == requests, "every attempt took a token from the write bucket"
    for gap, attempt in zip(gaps, check.attempt_log[1:], strict=True):
        assert gap >= attempt["asked"] - 0.002, (gaps, check.attempt_log)
    if requests > 1 and "Retry-After" not in fault and "retry-after-ms" not in fault:
        assert gaps[0] >= BACKOFF, "the first retry backs off too"
    assert took <= DEADLINE + MARGIN
    assert (words if status != "succeeded" else "the server is ready") in check.summary, check.summary
    row = client.get(f"/servers/{server.pk}/row/")
    assert row.status_code == 286
    per_attempt = ", ".join(" then ".join(str(a[k]) for k in ("status", "error") if k in a) for a in check.attempt_log)
    RESULTS.append((fault, when, check.get_status_display(), check.category, len(arrivals),
                    ", ".join(f"{g:.2f}" for g in gaps) or "-", per_attempt, f"{took:.2f}", check.summary[:90]))

"""The fault matrix: every fault the simulator can produce, on every attempt or on the first one only,
through the whole pipeline (view -> queue -> worker -> ARM client -> row). Each ends in a recorded,
explained state, and no check is lost or left running.

`make fault-matrix` runs this module and writes the table to docs/fault-matrix.md.
"""

import os
from pathlib import Path

import pytest

from checks.models import Check
from dashboard.demo import PROD
from tests.conftest import ALICE, make_server

RG = "rg-payments-prod"
FAST_RETRY = {"retry_after_ms": 50}

# name -> (behaviour, expected on every attempt: (status, category, attempts),
#                     expected on the first attempt only: (status, category, attempts))
FAULTS = {
    "500 InternalServerError": ({"outcome": "internal_error"},
                                ("failed", "azure_failure", 4), ("succeeded", "passed", 2)),
    "502 gateway HTML page": ({"outcome": "bad_gateway"},
                              ("failed", "azure_failure", 4), ("succeeded", "passed", 2)),
    "503 with retry-after-ms": ({"outcome": "unavailable", **FAST_RETRY},
                                ("failed", "azure_failure", 4), ("succeeded", "passed", 2)),
    "429 with retry-after-ms": ({"outcome": "throttled", **FAST_RETRY},
                                ("failed", "throttled", 4), ("succeeded", "passed", 2)),
    "429 Retry-After 30 s (longer than a check waits)": ({"outcome": "throttled", "retry_after": 30},
                                                 ("failed", "throttled", 1), ("failed", "throttled", 1)),
    "connection reset": ({"outcome": "reset"}, ("failed", "network", 4), ("succeeded", "passed", 2)),
    "stall before headers": ({"outcome": "stall_headers", "stall": 3},
                             ("failed", "network", 4), ("succeeded", "passed", 2)),
    "stall mid-body": ({"outcome": "stall_body", "stall": 3}, ("failed", "network", 1), ("failed", "network", 1)),
    "body trickles past the deadline": ({"outcome": "trickle", "trickle_interval": 0.3},
                                        ("failed", "unexpected_response", 1), ("failed", "unexpected_response", 1)),
    "200 with an HTML page": ({"outcome": "html"},
                              ("failed", "unexpected_response", 1), ("failed", "unexpected_response", 1)),
    "200 with an empty body": ({"outcome": "empty"},
                               ("failed", "unexpected_response", 1), ("failed", "unexpected_response", 1)),
    "200 with invalid JSON": ({"outcome": "invalid_json"},
                              ("failed", "unexpected_response", 1), ("failed", "unexpected_response", 1)),
    "200 without properties": ({"outcome": "payload", "body": {}},
                               ("failed", "unexpected_response", 1), ("failed", "unexpected_response", 1)),
    "200 numberOfContainers a string": ({"outcome": "payload", "body": {"properties": {"numberOfContainers": "3"}}},
                                        ("failed", "unexpected_response", 1), ("failed", "unexpected_response", 1)),
    "200 numberOfContainers negative": ({"outcome": "payload", "body": {"properties": {"numberOfContainers": -1}}},
                                        ("failed", "unexpected_response", 1), ("failed", "unexpected_response", 1)),
    "200 numberOfContainers huge": ({"outcome": "payload", "body": {"properties": {"numberOfContainers": 2**40}}},
                                    ("failed", "unexpected_response", 1), ("failed", "unexpected_response", 1)),
    "200 with a 5 MB body": ({"outcome": "huge", "huge_bytes": 5 * 1024 * 1024},
                             ("failed", "unexpected_response", 1), ("failed", "unexpected_response", 1)),
    "403 AuthorizationFailed": ({"outcome": "forbidden"},
                                ("failed", "permission_missing", 1), ("failed", "permission_missing", 1)),
    "400 server not ready": ({"outcome": "not_ready", "state": "Stopped"},
                             ("failed", "server_not_ready", 1), ("failed", "server_not_ready", 1)),
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
        "whole pipeline, either on every attempt or on the first attempt only. Retries: at most 3 (408, 429, 5xx,",
        "connection errors and read timeouts), backoff 0.8 s x 2^n with jitter (0.01 s in the test run),",
        "Retry-After honoured; check deadline 4 s in the test run (120 s by default); read timeout 1 s in the test",
        "run (65 s by default); a single Retry-After over 20 s is not waited for. 'Rows' compares the Check",
        "rows before and after: every check is there, finished.",
        "",
        "| fault | when | final state | category | attempts | per attempt | rows before → after (new) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in RESULTS:
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    Path(out).write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("when", ["every attempt", "first attempt only"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_fault_ends_in_a_recorded_explained_state(client, signed_in, sim, worker, settings, fault, when):
    settings.ARM_CHECK_DEADLINE = 4
    settings.ARM_READ_TIMEOUT = 1
    behaviour, on_every, on_first = FAULTS[fault]
    expected = on_every if when == "every attempt" else on_first
    name = "pg-fault-" + str(abs(hash((fault, when))) % 10**8)
    sim.set_behaviour(PROD, RG, name, **behaviour, **({"fail_times": 1} if when == "first attempt only" else {}))
    server = make_server(name=name)
    signed_in(ALICE["upn"])
    before = Check.objects.count()

    client.post(f"/servers/{server.pk}/run/", {"backup_name": "fault-1"}, headers={"HX-Request": "true"})
    worker()

    after = Check.objects.count()
    check = Check.objects.get(server=server)
    assert after == before + 1
    assert not Check.objects.active().exists(), "no check is left queued or running"
    assert (check.status, check.category, check.attempts) == expected
    assert check.summary, "every outcome is explained"
    assert check.finished_at is not None
    row = client.get(f"/servers/{server.pk}/row/")
    assert row.status_code == 286
    assert check.get_category_display() in row.content.decode() or check.status == "succeeded"
    per_attempt = ", ".join(str(a.get("status") or a.get("error")) for a in check.attempt_log)
    RESULTS.append((fault, when, check.get_status_display(), check.category, check.attempts, per_attempt,
                    f"{before} → {after} (1)"))

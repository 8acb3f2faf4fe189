"""The ARM client against the simulator over real TLS on loopback: every answer becomes a result that says
what happened, in words, with the ids support asks for."""

import time
from email.utils import formatdate

import pytest
from requests.structures import CaseInsensitiveDict

from armclient import retry
from armclient.answers import EXCERPT_CHARS
from armclient.operations import ltr_pre_backup
from armclient.outcomes import Category
from dashboard.demo import PROD
from dashboard.entra import TokenAnswer
from tests.conftest import ALICE

RG = "rg-payments-prod"


@pytest.fixture
def token(sim):
    return sim.issue_access_token(ALICE["upn"])


def call(token, name="pg-payments-01", **kwargs):
    args = {"tokens": lambda claims: TokenAnswer(access_token=token), "principal_oid": ALICE["oid"],
            "subscription_id": PROD, "resource_group": RG, "server_name": name, "backup_name": "b-1",
            "api_version": "2024-08-01", **kwargs}
    return ltr_pre_backup(**args)


def test_a_pass_is_parsed_with_its_ids(db, token):
    result = call(token)
    assert (result.category, result.http_status, result.number_of_containers, result.attempts) == (
        Category.PASSED, 200, 1, 1)
    assert result.request_id and result.client_request_id and result.correlation_request_id
    assert result.attempt_log[0]["request_id"] == result.request_id


def test_the_api_version_is_configurable(db, token, sim):
    assert call(token, api_version="2025-08-01").category == Category.PASSED
    assert sim.received("/ltrPreBackup")[-1].query["api-version"] == "2025-08-01"
    result = call(token, api_version="1999-01-01")
    # Real ARM: a provider's type at a version the provider does not know finds no registered provider.
    assert (result.http_status, result.error_code) == (400, "NoRegisteredProviderFound")
    assert "API version '1999-01-01'" in result.error_message


def test_an_unknown_api_version_is_rejected_not_an_unregistered_provider(db, token):
    """The registration is fine; the remedy is AZURE_LTR_API_VERSION, not registering the provider."""
    result = call(token, api_version="1999-01-01")
    assert result.category == Category.REJECTED
    assert "AZURE_LTR_API_VERSION" in Category.REJECTED.remedy


def test_an_expired_token_ends_as_sign_in_required(db, sim):
    result = call(sim.issue_access_token(ALICE["upn"], expires_in=-600))
    assert (result.category, result.http_status, result.error_code) == (
        Category.SIGNIN_REQUIRED, 401, "ExpiredAuthenticationToken")


def test_a_token_that_needs_the_user_ends_before_any_request(db, sim):
    result = ltr_pre_backup(
        tokens=lambda claims: TokenAnswer(error="invalid_grant", error_description="AADSTS50173: revoked"),
        principal_oid=ALICE["oid"], subscription_id=PROD, resource_group=RG, server_name="pg-payments-01",
        backup_name="b-1", api_version="2024-08-01")
    assert (result.category, result.error_code, result.attempts) == (Category.SIGNIN_REQUIRED, "invalid_grant", 0)
    assert sim.received("/ltrPreBackup") == []


def test_path_segments_are_percent_encoded(db, token, sim):
    result = call(token, name="pg-payments-01/../../other")
    assert result.http_status in (400, 404)
    assert result.category in (Category.NOT_FOUND, Category.REJECTED)
    assert sim.received()[-1].path.endswith("/flexibleServers/pg-payments-01%2F..%2F..%2Fother/ltrPreBackup")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, "no properties in the body"),
        ({"properties": None}, "properties as null"),
        ({"properties": {}}, "properties without numberOfContainers"),
        ({"properties": {"numberOfContainers": "3"}}, "numberOfContainers as a string ('3'), not a whole number"),
        ({"properties": {"numberOfContainers": 1.5}}, "numberOfContainers as a number (1.5), not a whole number"),
        ({"properties": {"numberOfContainers": True}}, "numberOfContainers as a boolean (True)"),
        ({"properties": {"numberOfContainers": -1}}, "numberOfContainers -1, below zero"),
        ({"properties": {"numberOfContainers": 2**31}}, "numberOfContainers 2147483648, beyond the 32-bit"),
        ([1, 2], "a JSON an array where an object"),
    ],
)
def test_each_malformed_200_says_what_was_wrong(db, sim, token, body, says):
    sim.set_behaviour(PROD, RG, "pg-odd", outcome="payload", body=body)
    result = call(token, name="pg-odd")
    assert (result.category, result.number_of_containers, result.attempts) == (
        Category.UNEXPECTED_RESPONSE, None, 1)
    assert says in result.summary


@pytest.mark.parametrize(
    ("behaviour", "says"),
    [({"outcome": "html"}, "a body that is not JSON"), ({"outcome": "empty"}, "an empty body"),
     ({"outcome": "invalid_json"}, "a body that is not JSON")],
)
def test_a_200_that_is_not_json_says_so(db, sim, token, behaviour, says):
    sim.set_behaviour(PROD, RG, "pg-odd", **behaviour)
    result = call(token, name="pg-odd")
    assert result.category == Category.UNEXPECTED_RESPONSE and says in result.summary


def test_a_409_conflict_is_busy_and_says_to_wait_for_the_other_operation(db, sim, token):
    body = {"error": {"code": "OperationInProgress",
                      "message": "An operation is already in progress on server 'pg-busy'."}}
    sim.set_behaviour(PROD, RG, "pg-busy", outcome="payload", status=409, body=body)
    result = call(token, name="pg-busy")
    assert (result.category, result.http_status, result.attempts) == (Category.BUSY, 409, 1)
    assert "re-run once that operation has ended" in Category.BUSY.remedy
    assert "correct the registration" not in Category.BUSY.remedy


def test_bidirectional_controls_in_arm_text_are_shown_as_code_points(db, sim, token):
    body = {"error": {"code": "BadThing\u202e", "message": "Server \u202edeliaf\u202c is fine",
                      "details": [{"code": "X", "message": "inner \u2066text\u2069"}],
                      "additionalInfo": [{"type": "T", "info": {"note": "\u200fhidden"}}]}}
    sim.set_behaviour(PROD, RG, "pg-bidi", outcome="payload", status=400, body=body)
    result = call(token, name="pg-bidi")
    everything = repr((result.summary, result.error_code, result.error_message, result.error_details,
                       result.error_additional_info))
    for control in ("\u202e", "\u202c", "\u2066", "\u2069", "\u200f"):
        assert control not in everything
    assert "Server [U+202E]deliaf[U+202C] is fine" == result.error_message
    assert result.error_additional_info == [{"type": "T", "info": {"note": "[U+200F]hidden"}}]


def test_a_huge_body_is_cut_at_the_limit(db, sim, token, settings):
    settings.ARM_MAX_BODY_BYTES = 64 * 1024
    sim.set_behaviour(PROD, RG, "pg-huge", outcome="huge", huge_bytes=5 * 1024 * 1024)
    result = call(token, name="pg-huge")
    assert result.category == Category.UNEXPECTED_RESPONSE
    assert "larger than 65536 bytes" in result.summary
    assert len(result.response_excerpt) <= EXCERPT_CHARS + 10


def test_a_trickling_body_stops_at_the_deadline(db, sim, token):
    sim.set_behaviour(PROD, RG, "pg-trickle", outcome="trickle", trickle_interval=0.2)
    started = time.monotonic()
    result = call(token, name="pg-trickle", deadline_seconds=1.5)
    assert time.monotonic() - started < 2.5
    assert result.category == Category.UNEXPECTED_RESPONSE
    assert "still arriving" in result.summary


def test_a_gateway_html_error_keeps_an_excerpt(db, sim, token):
    sim.set_behaviour(PROD, RG, "pg-gw", outcome="bad_gateway")
    result = call(token, name="pg-gw")
    assert (result.category, result.http_status, result.attempts) == (Category.AZURE_FAILURE, 502, 4)
    assert "<" in result.response_excerpt
    assert [a.get("status") for a in result.attempt_log] == [502] * 4
    assert len(sim.received("/pg-gw/ltrPreBackup")) == 4


def test_unreachable_arm_is_a_network_failure(db, token, settings):
    settings.AZURE_ARM_ENDPOINT = "https://127.0.0.1:9"
    result = call(token)
    assert result.category == Category.NETWORK
    assert result.summary == "Azure Resource Manager could not be reached (ConnectionError), after 4 attempts."
    assert [a["error"] for a in result.attempt_log] == ["ConnectionError"] * 4


def test_an_untrusted_certificate_is_a_network_failure_that_says_so(db, token, settings, sim):
    settings.AZURE_CA_BUNDLE = ""
    result = call(token)
    assert result.category == Category.NETWORK
    assert "certificate" in result.summary


def test_the_ca_bundle_in_the_environment_is_not_trusted(db, token, settings, sim, monkeypatch):
    """TLS trust comes from AZURE_CA_BUNDLE only: REQUESTS_CA_BUNDLE pointing at the simulator's CA is ignored."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sim.ca_path))
    settings.AZURE_CA_BUNDLE = ""
    assert "certificate" in call(token).summary


def test_retries_and_each_request_id_are_recorded(db, sim, token):
    waits = []
    sim.set_behaviour(PROD, RG, "pg-flaky", outcome="unavailable", fail_times=2, retry_after_ms=50, containers=5)
    result = call(token, name="pg-flaky", on_wait=lambda seconds, note: waits.append((seconds, note)))
    assert (result.category, result.number_of_containers, result.attempts) == (Category.PASSED, 5, 3)
    assert waits == [(0.05, "Azure answered 503, retrying in 1 s")] * 2
    ids = [a["request_id"] for a in result.attempt_log]
    assert len(set(ids)) == 3 and ids[-1] == result.request_id
    assert [a.get("retry_after") for a in result.attempt_log] == [0.05, 0.05, None]


def test_a_503_whose_next_try_is_too_far_off_says_why_it_gave_up(db, token, sim, settings):
    """Not throttling: the answer is the 503 itself, with the reason no further try was made."""
    sim.set_behaviour(PROD, RG, "pg-flaky", outcome="unavailable", fail_times=5, retry_after=5)
    settings.ARM_MAX_RETRY_WAIT = 2
    result = call(token, name="pg-flaky")
    assert (result.http_status, result.attempts) == (503, 1)
    assert result.summary.endswith("Gave up after 1 attempt: the next try was 5 s away, more than a check waits (2 s).")
    settings.ARM_MAX_RETRY_WAIT = 20
    result = call(token, name="pg-flaky", deadline_seconds=3)
    assert (result.http_status, result.attempts) == (503, 1)
    assert result.summary.endswith("Gave up after 1 attempt: the next try would have passed the check's time limit.")


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [({"Retry-After": "7"}, 7), ({"retry-after-ms": "1500"}, 1.5), ({"x-ms-retry-after-ms": "250"}, 0.25),
     ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25), ({"Retry-After": "garbage"}, None), ({}, None),
     # float() reads these, but no wait is infinite and JSON (the check's attempt log) holds neither
     ({"retry-after-ms": "inf"}, None), ({"x-ms-retry-after-ms": "nan", "Retry-After": "3"}, 3)],
)
def test_retry_after_is_read_in_seconds_milliseconds_or_as_a_date(headers, seconds):
    assert retry.retry_after(CaseInsensitiveDict(headers)) == seconds


def test_retry_after_as_an_http_date():
    parsed = retry.retry_after(CaseInsensitiveDict({"Retry-After": formatdate(time.time() + 20, usegmt=True)}))
    assert 18 <= parsed <= 20

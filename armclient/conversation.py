"""The whole conversation of one Azure call, top to bottom: token, pace, attempt, wait, again, until done.

    token = the caller's token, silently
    loop:
        take a token from ARM's rate bucket (waits, within the deadline)
        one attempt, its timeouts clipped to the deadline; record it
        tell the bucket what ARM said is left (and stop the bucket if ARM says it is empty)
        a Continuous Access Evaluation challenge: renew the token with its claims once, and go again
        final answer, no retry left, or a wait longer than allowed or past the deadline: stop
        wait (backoff or Retry-After; the bucket's own stop when ARM emptied it), and go again

Nothing else in the project retries an ARM call (armclient.http turns urllib3's retries off), so what this
loop records is what happened on the wire. The result is an `Exchange`; armclient.operations says what it means.
"""

import base64
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from armclient import pacing, retry
from armclient.http import Answer, attempt

OnWait = Callable[[float, str], None]


class TokenAnswer(Protocol):
    access_token: str | None
    error: str
    error_description: str
    interaction_required: bool


# Given a claims challenge (or None), the caller's ARM access token: how the client gets a token without
# knowing whose it is or where it is kept.
TokenSource = Callable[[str | None], TokenAnswer]


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    params: dict | None = None
    json_body: dict | None = None
    bucket: pacing.BucketKey | None = None


@dataclass
class Exchange:
    """How a call ended: the last answer and every attempt on the way, or why no answer could be had."""

    answer: Answer | None = None
    attempts: list[dict] = field(default_factory=list)
    # Why it ended before a final answer: "" (it did not), "token", "bucket", "retry_after_too_long", "deadline".
    stopped: str = ""
    refused_wait: retry.Wait | None = None
    token: TokenAnswer | None = None
    claims_challenge: str = ""
    client_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    correlation_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@sensitive_variables("token")
def converse(request: Request, *, tokens: TokenSource, deadline: float, on_wait: OnWait | None = None) -> Exchange:
    """Carry one call through to its end within `deadline` (time.monotonic()). Never raises for Azure."""
    exchange = Exchange()
    token = tokens(None)
    if token.access_token is None:
        exchange.stopped, exchange.token = "token", token
        return exchange
    started = gap_from = time.monotonic()
    why, asked, retries, renewed = "first attempt", 0.0, 0, False
    while True:
        ticket = _take_bucket_token(request, deadline, on_wait)
        if ticket is False:
            exchange.stopped = "bucket"
            return exchange
        answer = _attempt(request, token.access_token, exchange, deadline, gap_from, started, why, asked)
        gap_from = time.monotonic()
        _tell_bucket(request, ticket, answer)
        challenge = claims_challenge(answer)
        if challenge and not renewed:
            renewed, exchange.claims_challenge = True, challenge
            token = tokens(challenge)
            if token.access_token is None:
                exchange.token = token
                return exchange
            why, asked = "token renewed for a Continuous Access Evaluation challenge", 0.0
            continue
        exchange.claims_challenge = challenge
        wait = _next_wait(answer, retries)
        if wait is None:
            return exchange
        if wait.seconds > settings.ARM_MAX_RETRY_WAIT or time.monotonic() + wait.seconds >= deadline:
            exchange.stopped = "retry_after_too_long" if wait.seconds > settings.ARM_MAX_RETRY_WAIT else "deadline"
            exchange.refused_wait = wait
            return exchange
        if on_wait is not None:
            on_wait(wait.seconds, f"{wait.why}, retrying in {max(1, round(wait.seconds))} s")
        if not _bucket_emptied(request, answer):  # else the bucket itself holds everyone for Retry-After
            time.sleep(wait.seconds)
        retries, asked, why = retries + 1, wait.seconds, f"{wait.source} after {_what(answer)}"


def _next_wait(answer: Answer, retries: int) -> retry.Wait | None:
    if answer.body_state in ("too_large", "too_slow"):
        return None  # an answer, if an odd one: asking again would get the same
    if answer.body_state == "cut":  # the connection failed mid-answer: as if no answer came
        return retry.next_wait(None, answer.headers, answer.error, retries)
    return retry.next_wait(answer.status, answer.headers, answer.error, retries)


def _take_bucket_token(request: Request, deadline: float, on_wait: OnWait | None):
    if request.bucket is None:
        return None

    def pacing_note(seconds: float) -> None:
        if on_wait is not None:
            limit = "write" if request.bucket.kind == "writes" else "read"
            about = max(1, round(seconds))
            on_wait(seconds, f"waiting for Azure's {limit} limit on this subscription, about {about} s")

    return pacing.take(request.bucket, deadline=deadline, on_wait=pacing_note) or False


def _tell_bucket(request: Request, ticket, answer: Answer) -> None:
    if request.bucket is None or ticket is None:
        return
    remaining = _int_header(answer, f"x-ms-ratelimit-remaining-subscription-{request.bucket.kind}")
    blocked_for = None
    if _bucket_emptied(request, answer):
        blocked_for = retry.retry_after(answer.headers) or 1.0
    pacing.report(request.bucket, ticket, remaining=remaining, blocked_for=blocked_for)


def _bucket_emptied(request: Request, answer: Answer) -> bool:
    # A 429 stops the whole bucket only when ARM says that bucket is empty; a resource provider throttling
    # one server says nothing about the subscription's other servers.
    if request.bucket is None or answer.status != 429:
        return False
    return _int_header(answer, f"x-ms-ratelimit-remaining-subscription-{request.bucket.kind}") == 0


@sensitive_variables("access_token", "headers")
def _attempt(request: Request, access_token: str, exchange: Exchange, deadline: float,
             gap_from: float, started: float, why: str, asked: float) -> Answer:
    """One attempt, recorded with the wait asked before it and the real gap (which includes the bucket's)."""
    waited = time.monotonic() - gap_from
    headers = {
        "Authorization": f"Bearer {access_token}",
        "Accept": "application/json",
        "x-ms-client-request-id": exchange.client_request_id,
        "x-ms-correlation-request-id": exchange.correlation_request_id,
        "x-ms-return-client-request-id": "true",
    }
    answer = attempt(request.method, request.url, params=request.params, json_body=request.json_body,
                     headers=headers, deadline=deadline)
    _record(exchange, answer, {"n": len(exchange.attempts) + 1, "ended_at": round(time.monotonic() - started, 3),
                               "asked": round(asked, 3), "waited": round(waited, 3), "why": why})
    return answer


def _record(exchange: Exchange, answer: Answer, entry: dict) -> None:
    if answer.status is not None:
        entry["status"] = answer.status
        entry["request_id"] = answer.headers.get("x-ms-request-id", "")[:100]
        asked = retry.retry_after(answer.headers)
        if asked is not None:
            entry["retry_after"] = round(asked, 3)
    if answer.error:
        entry["error"] = answer.error
    exchange.attempts.append(entry)
    exchange.answer = answer


def _what(answer: Answer) -> str:
    return str(answer.status) if answer.status is not None else answer.error


def _int_header(answer: Answer, name: str) -> int | None:
    try:
        return int(answer.headers[name])
    except (KeyError, TypeError, ValueError):
        return None


_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


def claims_challenge(answer: Answer) -> str:
    """The claims JSON of a CAE challenge (401, `error="insufficient_claims", claims="<base64>"`), or ""."""
    if answer.status != 401:
        return ""
    params = dict(_CHALLENGE_PARAM.findall(answer.headers.get("WWW-Authenticate", "")))
    if params.get("error") != "insufficient_claims" or not params.get("claims"):
        return ""
    encoded = params["claims"]
    try:
        decoded = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=False).decode()
        json.loads(decoded)
    except (ValueError, UnicodeDecodeError):
        return ""
    return decoded

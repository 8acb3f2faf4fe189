"""When an ARM call is tried again, and how long it waits first: the one retry policy of the client.

Retried: 408, 429, 500, 502, 503, 504 and failed connections (refused, reset, timed out, cut mid-answer);
both ARM operations we call only read or check, so a retry changes nothing in Azure. The wait is Azure's own
`Retry-After` when the answer has one (`retry-after-ms` and `x-ms-retry-after-ms` first, as azure-core reads
them, then `Retry-After` in seconds or as an HTTP date), otherwise exponential backoff with jitter from the
first retry on: ARM_BACKOFF_FACTOR × 2ⁿ plus up to half the factor at random, at most ARM_BACKOFF_MAX.
"""

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from django.conf import settings

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Wait:
    seconds: float
    why: str  # in the user's words: "throttled by Azure", "Azure answered 503", "connection failed (ReadTimeout)"
    source: str  # "Retry-After" or "backoff"


def retry_after(headers) -> float | None:
    """Azure's requested wait in seconds, from any of its three headers; None when absent or unreadable."""
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        try:
            asked = float(headers[name]) / 1000
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(asked):  # "inf" and "nan" read as floats: garbage, as if absent
            return max(0.0, asked)
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None  # garbage: as if absent
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def backoff(retries_done: int) -> float:
    factor = settings.ARM_BACKOFF_FACTOR
    return min(settings.ARM_BACKOFF_MAX, factor * 2**retries_done + random.uniform(0, factor / 2))


def next_wait(status: int | None, headers, error: str, retries_done: int) -> Wait | None:
    """The wait before the next attempt, or None when this answer is final or no retry is left."""
    if retries_done >= settings.ARM_MAX_RETRIES:
        return None
    if status is None:
        return Wait(backoff(retries_done), f"connection failed ({error})", "backoff")
    if status not in RETRY_STATUSES:
        return None
    why = "throttled by Azure" if status == 429 else f"Azure answered {status}"
    asked = retry_after(headers)
    if asked is not None:
        return Wait(asked, why, "Retry-After")
    return Wait(backoff(retries_done), why, "backoff")

"""The ARM operations the dashboard calls, each one conversation (armclient.conversation) read into a result:
`ltr_pre_backup` (POST, a write), `get_all_pages` (GET of a list and its `nextLink` pages, reads) and
`ltr_backup_operations` (a server's LTR backup operations, a list read that way)."""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from django.conf import settings

from armclient.answers import error_of, excerpt, inert, parse_json
from armclient.conversation import Exchange, OnWait, Request, TokenSource, converse
from armclient.http import Answer
from armclient.models import RateBucket
from armclient.outcomes import Category
from armclient.pacing import BucketKey

MAX_INT32 = 2**31 - 1
MAX_PAGES = 1000  # an ARM list of more pages is cut (and said to be): 50,000 servers at the simulator's 50


@dataclass
class PreBackupResult:
    category: Category
    summary: str = ""
    http_status: int | None = None
    number_of_containers: int | None = None
    error_code: str = ""
    error_message: str = ""
    error_target: str = ""
    error_details: list = field(default_factory=list)
    error_additional_info: list = field(default_factory=list)
    response_excerpt: str = ""
    request_id: str = ""
    correlation_request_id: str = ""
    client_request_id: str = ""
    attempts: int = 0
    # One entry per HTTP attempt: n, ended_at and waited (seconds), why, status or error, request_id, retry_after.
    attempt_log: list = field(default_factory=list)
    retry_after: float | None = None
    # Continuous Access Evaluation: the claims ARM demanded that a silent renewal could not satisfy.
    claims_challenge: str = ""

    @property
    def succeeded(self) -> bool:
        return self.category == Category.PASSED


def pre_backup_url(subscription_id: str, resource_group: str, server_name: str) -> str:
    # The host comes only from settings; every path segment from a registration is percent-encoded.
    sub, rg, name = (quote(part, safe="") for part in (subscription_id, resource_group, server_name))
    return (f"{settings.AZURE_ARM_ENDPOINT}/subscriptions/{sub}/resourceGroups/{rg}"
            f"/providers/Microsoft.DBforPostgreSQL/flexibleServers/{name}/ltrPreBackup")


def ltr_pre_backup(*, tokens: TokenSource, principal_oid: str, subscription_id: str, resource_group: str,
                   server_name: str, backup_name: str, api_version: str, on_wait: OnWait | None = None,
                   deadline_seconds: float | None = None) -> PreBackupResult:
    """POST ltrPreBackup, paced to the subscription's write bucket, and say what the answer means."""
    seconds = settings.ARM_CHECK_DEADLINE if deadline_seconds is None else deadline_seconds
    request = Request(
        "POST", pre_backup_url(subscription_id, resource_group, server_name),
        params={"api-version": api_version}, json_body={"backupSettings": {"backupName": backup_name}},
        bucket=BucketKey(RateBucket.Kind.WRITES, subscription_id, principal_oid),
    )
    exchange = converse(request, tokens=tokens, deadline=time.monotonic() + seconds, on_wait=on_wait)
    result = _pre_backup_result(exchange)
    result.attempts, result.attempt_log = len(exchange.attempts), exchange.attempts
    result.client_request_id = exchange.client_request_id
    answer = exchange.answer
    headers = answer.headers if answer is not None else {}
    result.request_id = headers.get("x-ms-request-id", "")[:100]
    result.correlation_request_id = headers.get("x-ms-correlation-request-id", exchange.correlation_request_id)[:100]
    return result


def _pre_backup_result(exchange: Exchange) -> PreBackupResult:
    answer, tries = exchange.answer, _tries(exchange)
    if exchange.claims_challenge:  # still there after a silent renewal: only the user can answer it
        result = _from_answer(answer) if answer is not None else PreBackupResult(Category.SIGNIN_REQUIRED)
        result.category, result.claims_challenge = Category.SIGNIN_REQUIRED, exchange.claims_challenge
        result.summary = ("Azure asks you to sign in again (Continuous Access Evaluation): your session was "
                          "revoked or your access changed.")
        return result
    if exchange.stopped == "token":
        return _token_failure(exchange.token)
    if exchange.stopped == "bucket" and answer is None:
        return PreBackupResult(Category.THROTTLED, summary=(
            "Azure's write limit for this subscription stayed exhausted for longer than a check may wait; "
            "run it again later."))
    if answer.status is None or answer.body_state == "cut":
        return _network_failure(answer, tries, exchange.stopped)
    result = _from_answer(answer)
    wait = exchange.refused_wait
    if answer.status == 429:
        result.retry_after = wait.seconds if wait else None
        if wait is not None:
            result.summary = throttled_summary(wait.seconds)
    elif wait is not None:  # (a wait over ARM_MAX_RETRY_WAIT, or one that would cross the deadline)
        longest = settings.ARM_MAX_RETRY_WAIT
        why = ("the next try would have passed the check's time limit" if exchange.stopped == "deadline" else
               f"the next try was {wait.seconds:.0f} s away, more than a check waits ({longest:g} s)")
        result.summary += f" Gave up after {tries}: {why}."
    elif len(exchange.attempts) > 1 and not result.succeeded:
        result.summary += f" (after {tries})"
    return result


def _tries(exchange: Exchange) -> str:
    n = len(exchange.attempts)
    return f"{n} attempt{'s' if n != 1 else ''}"


def _token_failure(token) -> PreBackupResult:
    if token.interaction_required:
        return PreBackupResult(Category.SIGNIN_REQUIRED, summary=f"Azure needs you to sign in again ({token.error}).",
                               error_code=token.error[:200], error_message=token.error_description[:2000])
    return PreBackupResult(Category.NETWORK, summary=token.error_description or "Entra ID could not be reached.")


_NETWORK_WORDS = {
    "ConnectTimeout": "Azure Resource Manager did not accept a connection in time",
    "ReadTimeout": "Azure Resource Manager did not answer in time",
    "SSLError": "The TLS connection to Azure Resource Manager failed: its certificate was not trusted",
}


def _network_failure(answer: Answer, tries: str, stopped: str) -> PreBackupResult:
    if answer.body_state == "cut":
        words = f"The connection failed while Azure's answer was arriving ({answer.error})"
    else:
        words = _NETWORK_WORDS.get(answer.error, f"Azure Resource Manager could not be reached ({answer.error})")
    end = "; the check's time limit left no room for another" if stopped == "deadline" else ""
    return PreBackupResult(Category.NETWORK, summary=f"{words}, after {tries}{end}.", http_status=answer.status)


def _from_answer(answer: Answer) -> PreBackupResult:
    if answer.body_state in ("too_large", "too_slow"):
        why = (f"was larger than {settings.ARM_MAX_BODY_BYTES} bytes; only the start was kept"
               if answer.body_state == "too_large"
               else f"was still arriving at the check's time limit ({len(answer.body)} bytes received)")
        return PreBackupResult(Category.UNEXPECTED_RESPONSE, summary=f"Azure's answer (HTTP {answer.status}) {why}.",
                               http_status=answer.status, response_excerpt=excerpt(answer.body),
                               error_code=inert(answer.headers.get("x-ms-error-code", ""))[:200])
    if 200 <= answer.status < 300:
        return _containers(answer)
    error = error_of(answer)
    return PreBackupResult(
        error.category, summary=error.summary, http_status=answer.status, error_code=error.code,
        error_message=error.message, error_target=error.target, error_details=error.details,
        error_additional_info=error.additional_info, response_excerpt=error.excerpt,
    )


def _containers(answer: Answer) -> PreBackupResult:
    data, ok = parse_json(answer.body)
    count, problem = number_of_containers(data) if ok else (None, "a body that is not JSON")
    if not answer.body.strip():
        problem = "an empty body"
    if count is None:
        return PreBackupResult(Category.UNEXPECTED_RESPONSE, summary=f"Azure answered {answer.status} with {problem}.",
                               http_status=answer.status, response_excerpt=excerpt(answer.body))
    return PreBackupResult(Category.PASSED, http_status=answer.status, number_of_containers=count,
                           summary=f"{count} container{'s' if count != 1 else ''} for the backup; the server is ready.")


def number_of_containers(data) -> tuple[int | None, str]:
    """`properties.numberOfContainers` as the spec defines it (int32, not negative), or what was wrong instead."""
    if not isinstance(data, dict):
        return None, f"a JSON {_kind(data)} where an object with properties.numberOfContainers belongs"
    if "properties" not in data:
        return None, "no properties in the body (properties.numberOfContainers is missing)"
    properties = data["properties"]
    if not isinstance(properties, dict):
        return None, f"properties as {_kind(properties)}, not an object with numberOfContainers"
    if "numberOfContainers" not in properties:
        return None, "properties without numberOfContainers"
    value = properties["numberOfContainers"]
    if isinstance(value, bool) or not isinstance(value, int):
        shown = inert(repr(value))[:40]
        return None, f"numberOfContainers as {_kind(value)} ({shown}), not a whole number"
    if value < 0:
        return None, f"numberOfContainers {value}, below zero"
    if value > MAX_INT32:
        return None, f"numberOfContainers {value}, beyond the 32-bit integer the API documents"
    return value, ""


def _kind(value) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", int: "a number", float: "a number", list: "an array",
            dict: "an object"}.get(type(value), type(value).__name__)


def throttled_summary(seconds: float) -> str:
    """What a call that will not wait out a long Retry-After tells the user."""
    after = datetime.now(UTC) + timedelta(seconds=seconds)
    return (f"Throttled by Azure: try again after {after:%H:%M:%S} UTC "
            f"(Azure asked to wait {seconds:.0f} s, longer than a check waits).")


class ListError(Exception):
    """A list could not be read whole; `message` says why in the user's words."""

    def __init__(self, message: str, code: str = "", request_id: str = ""):
        super().__init__(message)
        self.message, self.code, self.request_id = message, code, request_id


def get_all_pages(url: str, params: dict | None, *, tokens: TokenSource, principal_oid: str, scope: str,
                  deadline_seconds: float) -> list[dict]:
    """Every item of an ARM list, following `nextLink` only while it stays on the ARM endpoint (the user's
    token goes nowhere else), each page paced to the read bucket of `scope`, all of them within
    `deadline_seconds`. Raises ListError."""
    deadline = time.monotonic() + deadline_seconds
    bucket = BucketKey(RateBucket.Kind.READS, scope, principal_oid)
    items: list[dict] = []
    for page in range(MAX_PAGES):
        if page and time.monotonic() >= deadline:
            raise ListError(f"The list took longer than {deadline_seconds:.0f} s; it was stopped after {page} pages "
                            f"({len(items)} items).")
        exchange = converse(Request("GET", url, params=params, bucket=bucket), tokens=tokens, deadline=deadline)
        data = _page(exchange)
        items.extend(item for item in data.get("value", []) if isinstance(item, dict))
        next_link = data.get("nextLink")
        if not next_link:
            return items
        if not isinstance(next_link, str) or not next_link.startswith(settings.AZURE_ARM_ENDPOINT + "/"):
            raise ListError("Azure's next page pointed outside Azure Resource Manager; it was not followed.")
        url, params = next_link, None
    raise ListError(f"More than {MAX_PAGES} pages; the list was cut.")


def _page(exchange: Exchange) -> dict:
    answer = exchange.answer
    if exchange.stopped == "token":
        raise ListError(f"Azure needs you to sign in again ({exchange.token.error}).", exchange.token.error)
    if answer is None:
        raise ListError("Azure's read limit for this subscription stayed exhausted; try again in a minute.")
    request_id = answer.headers.get("x-ms-request-id", "")[:100]
    if answer.status is None:
        words = _NETWORK_WORDS.get(answer.error, f"Azure Resource Manager could not be reached ({answer.error})")
        raise ListError(f"{words}, after {_tries(exchange)}.")
    if answer.body_state != "complete":
        raise ListError(f"Azure's answer could not be read whole ({answer.error or answer.body_state}).",
                        request_id=request_id)
    if answer.status != 200:
        error = error_of(answer)
        message = error.message or error.summary
        if exchange.refused_wait is not None and answer.status == 429:
            message = throttled_summary(exchange.refused_wait.seconds)
        raise ListError(message[:1000], error.code, request_id)
    data, ok = parse_json(answer.body)
    if not isinstance(data, dict) or not isinstance(data.get("value", []), list):
        raise ListError("Azure's answer was not the list the API documents.", request_id=request_id)
    return data


@dataclass
class LtrOperation:
    """One LTR backup operation as Azure listed it (spec: LtrBackupOperationResponseProperties), every string
    made inert and cut to what the database keeps; what is missing or malformed is None or empty."""

    backup_name: str
    status: str
    start_time: datetime | None
    end_time: datetime | None
    percent_complete: float | None
    datasource_size_bytes: int | None
    data_transferred_bytes: int | None
    backup_metadata: str
    error_code: str
    error_message: str


def ltr_backups_url(subscription_id: str, resource_group: str, server_name: str) -> str:
    return pre_backup_url(subscription_id, resource_group, server_name).rsplit("/", 1)[0] + "/ltrBackupOperations"


def ltr_backup_operations(*, tokens: TokenSource, principal_oid: str, subscription_id: str, resource_group: str,
                          server_name: str, api_version: str, deadline_seconds: float) -> list[LtrOperation]:
    """Every LTR backup operation of one server, every `nextLink` page followed on the ARM host only. A list is a
    read: each page is paced to ARM's read bucket of (subscription, user), 250 requests refilled at 25 a second
    (ARM's documented per-principal read limit), not the write bucket the pre-check uses. Raises ListError."""
    items = get_all_pages(ltr_backups_url(subscription_id, resource_group, server_name),
                          {"api-version": api_version}, tokens=tokens, principal_oid=principal_oid,
                          scope=subscription_id, deadline_seconds=deadline_seconds)
    operations = [_ltr_operation(item) for item in items]
    return [op for op in operations if op is not None]


def _ltr_operation(item: dict) -> LtrOperation | None:
    props = item.get("properties") if isinstance(item.get("properties"), dict) else {}
    name = _text(props.get("backupName") or item.get("name"), 200)
    if not name:
        return None
    return LtrOperation(
        backup_name=name, status=_text(props.get("status"), 40), start_time=_when(props.get("startTime")),
        end_time=_when(props.get("endTime")), percent_complete=_percent(props.get("percentComplete")),
        datasource_size_bytes=_bytes(props.get("datasourceSizeInBytes")),
        data_transferred_bytes=_bytes(props.get("dataTransferredInBytes")),
        backup_metadata=_text(props.get("backupMetadata"), 2000), error_code=_text(props.get("errorCode"), 200),
        error_message=_text(props.get("errorMessage"), 2000),
    )


def _text(value, limit: int) -> str:
    return inert(value)[:limit] if isinstance(value, str) else ""


def _when(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _percent(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return min(100.0, max(0.0, float(value)))


def _bytes(value) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        return None
    return value

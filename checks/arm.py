"""The Azure Resource Manager client for the ltrPreBackup call.

One `requests.Session` per process, shared by every check, carries the connection pool and the retry
policy. Retries are urllib3's own machinery (`ArmRetry`), configured the way azure-core configures Azure's
SDKs: 408/429/5xx and connection errors, exponential backoff with jitter, `Retry-After` in seconds, as an
HTTP date, or in milliseconds (`retry-after-ms`, `x-ms-retry-after-ms`). A per-call deadline bounds the
whole sequence: a `Retry-After` that would cross it ends the call with the throttled answer instead of
blocking a worker.

Whatever ARM sends back is turned into a `PreBackupResult`; nothing raised by the network or by a
malformed body escapes `ltr_pre_backup()`.
"""

import base64
import contextvars
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import requests
from django.conf import settings
from django.core.signals import setting_changed
from django.views.decorators.debug import sensitive_variables
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader, MaxRetryError
from urllib3.util.retry import Retry

from checks.outcomes import Category, classify

log = logging.getLogger(__name__)

# 429 is not here: a throttled call is retried by the check itself (checks.tasks), through the pacer, so
# that a retry takes a write token like any call; retried blindly here, retries overran ARM's bucket and
# turned one 429 into a storm (measured by `make bench`: 163 429s in a 400-server sweep, 9 without).
RETRY_STATUSES = frozenset({408, 500, 502, 503, 504})
MAX_INT32 = 2**31 - 1
EXCERPT_CHARS = 4000
USER_AGENT = "ltr-dashboard/0.1 (+python-requests)"


@dataclass
class _Call:
    """What one ltr_pre_backup() call shares with the retry policy running inside requests."""

    deadline: float
    on_wait: Callable[[float, int | None], None] | None = None
    attempts: list[dict] = field(default_factory=list)
    last_retried: object = None


_current_call: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("arm_call", default=None)


@contextmanager
def retry_budget(seconds: float, on_wait: Callable[[float, int | None], None] | None = None):
    """Within this block, retries of ARM calls stop at `seconds` from now; yields the attempt record."""
    call = _Call(deadline=time.monotonic() + seconds, on_wait=on_wait)
    token = _current_call.set(call)
    try:
        yield call
    finally:
        _current_call.reset(token)


class ArmRetry(Retry):
    """urllib3's Retry, plus Azure's millisecond retry headers, an attempt log and the per-call deadline."""

    def get_retry_after(self, response):
        return self.parse_retry_after_headers(response.headers)

    @classmethod
    def parse_retry_after_headers(cls, headers) -> float | None:
        for header in ("retry-after-ms", "x-ms-retry-after-ms"):
            value = headers.get(header)
            if value:
                try:
                    return max(0.0, float(value) / 1000)
                except ValueError:
                    continue
        value = headers.get("Retry-After")
        if not value:
            return None
        try:
            return Retry(0).parse_retry_after(value)
        except InvalidHeader:  # garbage: as if absent
            return None

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        call = _current_call.get()
        if call is not None:
            if response is not None:
                entry = {"status": response.status}
                retry_after = self.get_retry_after(response)
                if retry_after is not None:
                    entry["retry_after"] = retry_after
                call.last_retried = response
            else:
                entry = {"error": type(error).__name__ if error else "unknown"}
            call.attempts.append(entry)
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        if call is not None:
            wait = self._wait_before_next(new, response)
            # A worker thread does not sleep through a long Retry-After, nor past the check's deadline.
            if wait > settings.ARM_MAX_RETRY_WAIT or time.monotonic() + wait > call.deadline:
                raise MaxRetryError(_pool, url, error or ResponseTooLate(wait))
            if call.on_wait is not None:
                call.on_wait(wait, response.status if response is not None else None)
        return new

    @staticmethod
    def _wait_before_next(retry: "ArmRetry", response) -> float:
        if response is not None and retry.respect_retry_after_header:
            retry_after = retry.get_retry_after(response)
            if retry_after is not None:
                return retry_after
        return retry.get_backoff_time()


def _int_header(response: requests.Response, name: str) -> int | None:
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return None


class ResponseTooLate(Exception):
    def __init__(self, wait: float):
        super().__init__(f"the next attempt would start after the check's deadline (wait {wait:.0f} s)")


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
    attempt_log: list = field(default_factory=list)
    retry_after: float | None = None
    # Continuous Access Evaluation: the decoded claims ARM demands in a 401 insufficient_claims challenge.
    claims_challenge: str = ""
    # What ARM says is left of the subscription's write bucket (x-ms-ratelimit-remaining-subscription-writes).
    ratelimit_remaining: int | None = None

    @property
    def succeeded(self) -> bool:
        return self.category == Category.PASSED


_session_lock = threading.Lock()
_session: requests.Session | None = None


def session() -> requests.Session:
    """The process's one ARM session (connection pool and retry policy)."""
    global _session
    with _session_lock:
        if _session is None:
            _session = _build_session()
        return _session


def _build_session() -> requests.Session:
    s = requests.Session()
    if settings.AZURE_CA_BUNDLE:
        # Trust only this CA, and don't let REQUESTS_CA_BUNDLE or proxies from the environment override it.
        s.verify = settings.AZURE_CA_BUNDLE
        s.trust_env = False
    retry = ArmRetry(
        total=settings.ARM_MAX_RETRIES,
        connect=settings.ARM_MAX_RETRIES,
        read=settings.ARM_MAX_RETRIES,
        status=settings.ARM_MAX_RETRIES,
        other=0,
        status_forcelist=RETRY_STATUSES,
        # ltrPreBackup only checks, and the inventory only reads: retrying either changes nothing in Azure.
        allowed_methods=frozenset({"POST", "GET"}),
        backoff_factor=settings.ARM_BACKOFF_FACTOR,
        backoff_jitter=settings.ARM_BACKOFF_FACTOR / 2,
        backoff_max=30,
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )
    adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=32)
    s.mount("https://", adapter)
    s.mount("http://", adapter)
    s.headers["User-Agent"] = USER_AGENT
    return s


def _reset_session(**kwargs) -> None:
    global _session
    with _session_lock:
        if _session is not None:
            _session.close()
        _session = None


setting_changed.connect(_reset_session)


def pre_backup_url(subscription_id: str, resource_group: str, server_name: str) -> str:
    # The host comes only from settings; every path segment from a registration is percent-encoded.
    segments = [quote(part, safe="") for part in (subscription_id, resource_group, server_name)]
    return (
        f"{settings.AZURE_ARM_ENDPOINT}/subscriptions/{segments[0]}/resourceGroups/{segments[1]}"
        f"/providers/Microsoft.DBforPostgreSQL/flexibleServers/{segments[2]}/ltrPreBackup"
    )


@sensitive_variables("access_token", "headers")
def ltr_pre_backup(
    *,
    access_token: str,
    subscription_id: str,
    resource_group: str,
    server_name: str,
    backup_name: str,
    api_version: str,
    on_wait: Callable[[float, int | None], None] | None = None,
    deadline_seconds: float | None = None,
) -> PreBackupResult:
    """POST ltrPreBackup and describe the answer. Never raises for anything Azure or the network does."""
    client_request_id = str(uuid.uuid4())
    correlation_id = str(uuid.uuid4())
    started = time.monotonic()
    deadline = started + (deadline_seconds if deadline_seconds is not None else settings.ARM_CHECK_DEADLINE)
    headers = {
        "Authorization": f"Bearer {access_token}",
        "Content-Type": "application/json",
        "Accept": "application/json",
        "x-ms-client-request-id": client_request_id,
        "x-ms-correlation-request-id": correlation_id,
        "x-ms-return-client-request-id": "true",
    }
    ids = {"client_request_id": client_request_id, "correlation_request_id": correlation_id}
    with retry_budget(deadline - started, on_wait) as call:
        try:
            response = session().post(
                pre_backup_url(subscription_id, resource_group, server_name),
                params={"api-version": api_version},
                json={"backupSettings": {"backupName": backup_name}},
                headers=headers,
                timeout=(settings.ARM_CONNECT_TIMEOUT, settings.ARM_READ_TIMEOUT),
                stream=True,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            return PreBackupResult(
                category=Category.NETWORK,
                summary=_network_summary(exc, call),
                attempts=len(call.attempts),
                attempt_log=call.attempts,
                **ids,
            )

    with response:
        if response.raw is not call.last_retried:
            call.attempts.append({"status": response.status_code})
        ids["request_id"] = response.headers.get("x-ms-request-id", "")
        ids["correlation_request_id"] = response.headers.get("x-ms-correlation-request-id", correlation_id)
        common = {"attempts": len(call.attempts), "attempt_log": call.attempts, "http_status": response.status_code}
        try:
            body, state = _read_limited(response, deadline)
        except (requests.RequestException, OSError) as exc:
            return PreBackupResult(
                category=Category.NETWORK,
                summary=f"The connection failed while Azure's answer was arriving ({type(exc).__name__}).",
                **common,
                **ids,
            )
        result = _interpret(response, body, state)
        result.ratelimit_remaining = _int_header(response, "x-ms-ratelimit-remaining-subscription-writes")
        if response.status_code == 429 and result.retry_after is None:
            result.retry_after = ArmRetry.parse_retry_after_headers(response.headers)
        if response.status_code == 401:
            result.claims_challenge = claims_challenge(response.headers.get("WWW-Authenticate", ""))
    for name, value in {**common, **ids}.items():
        setattr(result, name, value)
    return result


def throttled_summary(seconds: float) -> str:
    """What a check that will not wait out a long Retry-After tells the user."""
    after = datetime.now(UTC) + timedelta(seconds=seconds)
    return (
        f"Throttled by Azure: try again after {after:%H:%M:%S} UTC "
        f"(Azure asked to wait {seconds:.0f} s, longer than a check waits)."
    )


_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


def claims_challenge(www_authenticate: str) -> str:
    """The claims JSON of a CAE challenge (`error="insufficient_claims", claims="<base64>"`), or ""."""
    params = dict(_CHALLENGE_PARAM.findall(www_authenticate))
    if params.get("error") != "insufficient_claims" or not params.get("claims"):
        return ""
    encoded = params["claims"]
    try:
        decoded = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=False).decode()
        json.loads(decoded)
    except (ValueError, UnicodeDecodeError):
        return ""
    return decoded


def _network_summary(exc: requests.RequestException, call: _Call) -> str:
    tries = len(call.attempts)
    after = f" after {tries} attempt{'s' if tries != 1 else ''}" if tries else ""
    if isinstance(exc, requests.ConnectTimeout):
        return f"Azure Resource Manager did not accept a connection in time{after}."
    if isinstance(exc, requests.ReadTimeout):
        return f"Azure Resource Manager did not answer in time{after}."
    if isinstance(exc, requests.exceptions.SSLError):
        return f"The TLS connection to Azure Resource Manager failed{after}: its certificate was not trusted."
    return f"Azure Resource Manager could not be reached{after} ({type(exc).__name__})."


def _read_limited(response: requests.Response, deadline: float) -> tuple[bytes, str]:
    """Read at most ARM_MAX_BODY_BYTES and stop at the deadline: a body can be huge or trickle forever.

    Returns the bytes and "complete", "too_large" or "too_slow".
    """
    limit = settings.ARM_MAX_BODY_BYTES
    chunks: list[bytes] = []
    size = 0
    # Small chunks so a trickling body is noticed at the deadline, not after a 16 KiB buffer fills.
    for chunk in response.iter_content(chunk_size=1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], "too_large"
        if time.monotonic() > deadline:
            return b"".join(chunks), "too_slow"
    return b"".join(chunks), "complete"


def _excerpt(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace")
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + " [...]"


def _text(value, limit: int) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value)
    return text[:limit]


def _interpret(response: requests.Response, body: bytes, state: str) -> PreBackupResult:
    status = response.status_code
    header_code = response.headers.get("x-ms-error-code", "")
    if state != "complete":
        why = (
            f"was larger than {settings.ARM_MAX_BODY_BYTES} bytes; only the start was kept"
            if state == "too_large"
            else f"was still arriving at the check's time limit ({len(body)} bytes received)"
        )
        return PreBackupResult(
            category=Category.UNEXPECTED_RESPONSE,
            summary=f"Azure's answer (HTTP {status}) {why}.",
            response_excerpt=_excerpt(body),
            error_code=header_code,
        )
    try:
        data = json.loads(body) if body.strip() else None
    except ValueError:
        data = None
        parse_failed = True
    else:
        parse_failed = False

    if 200 <= status < 300:
        number = _number_of_containers(data)
        if number is None:
            what = "an empty body" if not body.strip() else "a body that is not JSON" if parse_failed else (
                "no valid properties.numberOfContainers"
            )
            return PreBackupResult(
                category=Category.UNEXPECTED_RESPONSE,
                summary=f"Azure answered {status} with {what}.",
                response_excerpt=_excerpt(body),
            )
        return PreBackupResult(
            category=Category.PASSED,
            summary=f"Passed: {number} container{'s' if number != 1 else ''} for the backup.",
            number_of_containers=number,
        )

    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        details = error.get("details") if isinstance(error.get("details"), list) else []
        additional = error.get("additionalInfo") if isinstance(error.get("additionalInfo"), list) else []
        code = _text(error.get("code"), 200) or header_code
        message = _text(error.get("message"), 20000)
        category = classify(status, code, details)
        inner = next((d for d in details if isinstance(d, dict) and d.get("message")), None)
        return PreBackupResult(
            category=category,
            summary=_text((inner or {}).get("message") or message, 480) or f"Azure answered {status} {code}.",
            error_code=code,
            error_message=message,
            error_target=_text(error.get("target"), 500),
            error_details=details,
            error_additional_info=additional,
        )
    category = classify(status, header_code)
    return PreBackupResult(
        category=category,
        summary=f"Azure answered HTTP {status} {response.reason or ''}".strip()
        + (f" ({header_code})" if header_code else "")
        + (" with a body that is not ARM's error format." if body.strip() else " with an empty body."),
        error_code=header_code,
        response_excerpt=_excerpt(body),
    )


def _number_of_containers(data) -> int | None:
    if not isinstance(data, dict) or not isinstance(data.get("properties"), dict):
        return None
    value = data["properties"].get("numberOfContainers")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT32:
        return None
    return value

"""One HTTP attempt against ARM, over the process's one connection pool, and nothing more.

The session never retries by itself: urllib3 retries 413/429/503 that carry `Retry-After` whatever
`status_forcelist` says (`Retry.RETRY_AFTER_STATUS_CODES`), which once sent retries past the pacer. Every
retry is decided in armclient.conversation. TLS trust comes only from settings (AZURE_CA_BUNDLE or the
default bundle), never from REQUESTS_CA_BUNDLE or proxy variables in the environment.
"""

import threading
import time
from dataclasses import dataclass, field

import requests
from django.conf import settings
from django.core.signals import setting_changed
from django.views.decorators.debug import sensitive_variables
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

USER_AGENT = "ltr-dashboard/0.2 (+python-requests)"


@dataclass
class Answer:
    """What one attempt got: an HTTP answer (status set), or the reason the connection failed (error set)."""

    status: int | None = None
    reason: str = ""
    headers: CaseInsensitiveDict = field(default_factory=CaseInsensitiveDict)
    body: bytes = b""
    # "complete"; "too_large" (cut at ARM_MAX_BODY_BYTES); "too_slow" (still arriving at the deadline);
    # "cut" (the connection failed mid-body).
    body_state: str = "complete"
    error: str = ""  # the exception's class name: ConnectTimeout, ReadTimeout, ConnectionError, SSLError ...

    @property
    def retryable_failure(self) -> bool:
        return self.status is None or self.body_state == "cut"


_lock = threading.Lock()
_session: requests.Session | None = None


def session() -> requests.Session:
    global _session
    with _lock:
        if _session is None:
            _session = _build_session()
        return _session


def _build_session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.verify = settings.AZURE_CA_BUNDLE or True
    no_retries = Retry(total=0, connect=0, read=False, redirect=0, status=0, other=0,
                       respect_retry_after_header=False, raise_on_status=False, raise_on_redirect=False)
    adapter = HTTPAdapter(max_retries=no_retries, pool_connections=4, pool_maxsize=64)
    s.mount("https://", adapter)
    s.mount("http://", adapter)
    s.headers["User-Agent"] = USER_AGENT
    return s


def _reset_session(**kwargs) -> None:
    global _session
    with _lock:
        if _session is not None:
            _session.close()
        _session = None


setting_changed.connect(_reset_session)


@sensitive_variables("headers")
def attempt(method: str, url: str, *, params, json_body, headers: dict, deadline: float) -> Answer:
    """Send once and read the answer, every timeout clipped to what is left before `deadline`."""
    left = max(0.05, deadline - time.monotonic())
    try:
        response = session().request(
            method, url, params=params, json=json_body, headers=headers, stream=True, allow_redirects=False,
            timeout=(min(settings.ARM_CONNECT_TIMEOUT, left), min(settings.ARM_READ_TIMEOUT, left)),
        )
    except requests.RequestException as exc:
        return Answer(error=_error_name(exc))
    with response:
        answer = Answer(status=response.status_code, reason=response.reason or "", headers=response.headers)
        try:
            answer.body, answer.body_state = _read_limited(response, deadline)
        except (requests.RequestException, Urllib3Error, OSError) as exc:
            answer.body_state, answer.error = "cut", _error_name(exc)
    return answer


def _error_name(exc: Exception) -> str:
    if isinstance(exc, requests.exceptions.SSLError):
        return "SSLError"
    # requests reports a read timeout in the middle of a body as a ConnectionError: call it what it was.
    if isinstance(exc, ReadTimeoutError) or (
        isinstance(exc, requests.ConnectionError) and exc.args and isinstance(exc.args[0], ReadTimeoutError)
    ):
        return "ReadTimeout"
    if isinstance(exc, Urllib3Error):
        return "ConnectionError"
    return type(exc).__name__


def _read_limited(response: requests.Response, deadline: float) -> tuple[bytes, str]:
    """At most ARM_MAX_BODY_BYTES, and nothing past the deadline: a body can be huge or trickle forever."""
    limit = settings.ARM_MAX_BODY_BYTES
    chunks: list[bytes] = []
    size = 0
    # read1 returns whatever has arrived (read(n) would wait for n bytes), so a body that trickles a byte at a
    # time is noticed at the deadline, not after a whole buffer has filled.
    while chunk := response.raw.read1(16 * 1024, decode_content=True):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], "too_large"
        if time.monotonic() > deadline:
            return b"".join(chunks), "too_slow"
    return b"".join(chunks), "complete"

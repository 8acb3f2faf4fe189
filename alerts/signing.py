"""The generic webhook's signature: what the dashboard sends and what a receiver checks (no Django needed).

X-LTR-Timestamp is the send time in Unix seconds; X-LTR-Signature is "sha256=" and the hex HMAC-SHA256, keyed
with the channel's secret, of "<timestamp>.<raw body>". A receiver recomputes it, compares in constant time
and rejects timestamps older than a few minutes, so a captured request cannot be replayed later.
"""

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-LTR-Signature"
TIMESTAMP_HEADER = "X-LTR-Timestamp"


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: f"sha256={digest}"}


def verify(secret: str, body: bytes, headers, max_age: float = 300) -> bool:
    """True when the signature matches the body and the timestamp is within `max_age` seconds of now."""
    try:
        timestamp = int(_header(headers, TIMESTAMP_HEADER))
    except (TypeError, ValueError):
        return False
    expected = sign(secret, body, timestamp)[SIGNATURE_HEADER]
    recent = abs(time.time() - timestamp) <= max_age
    return recent and hmac.compare_digest(expected, _header(headers, SIGNATURE_HEADER) or "")


def _header(headers, name: str) -> str | None:
    lowered = {k.lower(): v for k, v in dict(headers).items()}
    return lowered.get(name.lower())

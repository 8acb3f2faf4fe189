"""What an ARM answer says, read defensively: ARM's error format, bodies that are not JSON, and text that
must be shown to people as inert as it is escaped (no bidirectional controls that reverse how it reads)."""

import json
import re
from dataclasses import dataclass, field

from armclient.http import Answer
from armclient.outcomes import Category, classify

EXCERPT_CHARS = 4000
# Bidirectional and zero-width controls (U+061C, U+200B-U+200F, U+202A-U+202E, U+2066-U+2069, U+FEFF) can make
# "passed" read as something else; each is shown as its code point instead, so support still sees it was there.
_CONTROLS = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def inert(text: str) -> str:
    return _CONTROLS.sub(lambda m: f"[U+{ord(m.group()):04X}]", text)


def inert_json(value):
    """The same for every string inside a JSON value (error details, additionalInfo)."""
    if isinstance(value, str):
        return inert(value)
    if isinstance(value, list):
        return [inert_json(v) for v in value]
    if isinstance(value, dict):
        return {inert(str(k)): inert_json(v) for k, v in value.items()}
    return value


def text(value, limit: int) -> str:
    if value is None:
        return ""
    return inert(value if isinstance(value, str) else json.dumps(value))[:limit]


def excerpt(body: bytes) -> str:
    decoded = inert(body.decode("utf-8", errors="replace"))
    return decoded if len(decoded) <= EXCERPT_CHARS else decoded[:EXCERPT_CHARS] + " [...]"


def parse_json(body: bytes):
    """(value, ok): the JSON value of a body, or (None, False) when it is empty or not JSON."""
    if not body.strip():
        return None, False
    try:
        return json.loads(body), True
    except ValueError:
        return None, False


@dataclass
class ArmError:
    """ARM's error answer, classified."""

    category: Category
    summary: str
    code: str = ""
    message: str = ""
    target: str = ""
    details: list = field(default_factory=list)
    additional_info: list = field(default_factory=list)
    excerpt: str = ""


def error_of(answer: Answer) -> ArmError:
    """Read an error answer: ARM's `{"error": {...}}`, or whatever a gateway put in its place."""
    header_code = text(answer.headers.get("x-ms-error-code", ""), 200)
    data, _ = parse_json(answer.body)
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        shape = " with a body that is not ARM's error format." if answer.body.strip() else " with an empty body."
        return ArmError(
            category=classify(answer.status, header_code),
            summary=f"Azure answered HTTP {answer.status} {inert(answer.reason)}".strip()
            + (f" ({header_code})" if header_code else "") + shape,
            code=header_code,
            excerpt=excerpt(answer.body),
        )
    details = inert_json(error["details"]) if isinstance(error.get("details"), list) else []
    code = text(error.get("code"), 200) or header_code
    message = text(error.get("message"), 20000)
    inner = next((d for d in details if isinstance(d, dict) and d.get("message")), None)
    return ArmError(
        category=classify(answer.status, code, details, message),
        summary=text((inner or {}).get("message") or message, 480) or f"Azure answered {answer.status} {code}.",
        code=code,
        message=message,
        target=text(error.get("target"), 500),
        details=details,
        additional_info=inert_json(error["additionalInfo"]) if isinstance(error.get("additionalInfo"), list) else [],
    )

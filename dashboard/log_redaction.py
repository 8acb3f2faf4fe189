"""A logging filter that blanks anything shaped like a bearer token, JWT, refresh token or auth code.

Our code never logs tokens; this is the net under libraries that might (an exception message quoting a
header, a URL with ?code=).
"""

import logging
import re

_PATTERNS = [
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),  # JWTs
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{16,}"),
    re.compile(r"(?i)((?:refresh_token|access_token|id_token|code|client_secret)[\"']?\s*[=:]\s*[\"']?)[^\s&\"',]{8,}"),
]


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[redacted]", text)
    return text


class RedactTokensFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True

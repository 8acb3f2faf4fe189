"""Blank anything shaped like a bearer token, JWT, refresh token or auth code before a log line is written.

Our code never logs tokens; this is the net under libraries that might (an exception message quoting a
header, a URL with ?code=). `RedactingFormatter` redacts the whole formatted line, traceback and stack
included, so it holds for every logger whose records reach our handler (settings.LOGGING sends them all
there); the filter is kept for the message alone.
"""

import logging
import re

_PATTERNS = [
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),  # JWTs
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{16,}"),
    re.compile(r"(?i)((?:refresh_token|access_token|id_token|code|client_secret)[\"']?\s*[=:]\s*[\"']?)[^\s&\"',]{8,}"),
    # OAuth's state in a URL (not a word like "state=SUCCESSFUL" in a task's log line).
    re.compile(r"(?i)([?&](?:session_state|state)=)[^\s&\"',]{8,}"),
]


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[redacted]", text)
    return text


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class RedactTokensFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True

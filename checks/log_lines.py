"""One log line per check: Django's task framework logs a check's task starting and ending (two INFO lines) next
to the line checks.tasks writes when the check ends, which already says the check, its outcome and ARM's
request id. At a thousand checks a minute those two lines were a tenth of a worker's CPU (formatted, redacted
and written, then read by whatever collects the logs). A failed task's line (ERROR) and every other task's
lines are kept. Imported by the logging configuration: no Django model here."""

import logging

CHECK_TASK = "checks.tasks.run_check"


class OneLinePerCheck(logging.Filter):
    """Drop django.tasks' INFO lines about a check's task ("Task id=... path=checks.tasks.run_check state=...")."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.INFO and isinstance(record.args, tuple) and len(record.args) > 1
                    and record.args[1] == CHECK_TASK)

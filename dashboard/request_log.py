"""One structured log line per request, with a request id that ties it to the user's report.

The id comes from the proxy's `X-Request-ID` when it sends a well-formed one, otherwise we make one; it is
echoed in the response. Query strings are not logged: the sign-in callback carries the authorization code
in its query.
"""

import logging
import re
import time
import uuid

log = logging.getLogger("dashboard.requests")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")


class RequestLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        started = time.perf_counter()
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        user = getattr(request, "user", None)
        log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "request_id": request.request_id,
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "user_id": user.pk if user is not None and user.is_authenticated else None,
                "tenant_id": getattr(user, "tenant_id", None) if user is not None and user.is_authenticated else None,
                "htmx": bool(getattr(request, "htmx", False)),
            },
        )
        return response

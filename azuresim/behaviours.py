"""The scripted answers of one server's ``ltrPreBackup`` once ARM's checks have passed: a clean 200, a
resource-provider error (arm_errors), a broken body, or an answer that writes to the socket itself (a
reset, a stall before headers or mid-body, a trickle, a huge body). Which one a call gets is the server's
behaviour (state.BEHAVIOUR_DEFAULTS says what each knob means)."""

import json
import socket
import struct
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING

from .arm_errors import ArmError, refuse
from .armspec import ACTION, JSON_TYPE
from .web import Response

if TYPE_CHECKING:
    from .arm import Arm, Call
    from .state import Server

HTML_TYPE = "text/html; charset=utf-8"
CHUNK = 64 * 1024
BAD_GATEWAY_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad "
    "Gateway</h1></center>\r\n<hr><center>Microsoft-Azure-Application-Gateway/v2</center>\r\n</body>\r\n</html>\r\n"
)
MAINTENANCE_PAGE = (
    "<!DOCTYPE html><html><head><title>Service maintenance</title></head><body><h1>We'll be "
    "right back</h1><p>This service is undergoing maintenance.</p></body></html>"
)
# Outcomes whose whole answer is a fixed 200 body: outcome -> (body, content type).
FIXED_BODIES = {
    "html": (MAINTENANCE_PAGE, HTML_TYPE),
    "empty": (b"", JSON_TYPE),
    "invalid_json": (b'{"properties": ', JSON_TYPE),
}


def retry_headers(b: dict) -> list[tuple[str, str]]:
    """Retry-After (seconds; 10 when nothing is set) and/or retry-after-ms, as the behaviour asks."""
    headers = []
    if b["retry_after_ms"] is not None:
        headers += [("retry-after-ms", str(b["retry_after_ms"])), ("x-ms-retry-after-ms", str(b["retry_after_ms"]))]
    if b["retry_after"] is not None or b["retry_after_ms"] is None:
        headers.append(("Retry-After", str(b["retry_after"] if b["retry_after"] is not None else 10)))
    return headers


def _not_ready(server: "Server", b: dict, call: "Call", scope: str) -> ArmError:
    name, state = server.name, b["state"]
    return refuse(
        "server_not_ready",
        details=[{
            "code": "ServerNotReadyForLongTermBackup",
            "message": f"The server '{name}' is in state '{state}'. Long-term retention backup requires the "
            "server to be in state 'Ready'.",
            "target": name,
        }],
        additional_info=[{
            "type": "ServerState",
            "info": {"serverName": name, "state": state, "requiredState": "Ready"},
        }],
    )


def _forbidden(server: "Server", b: dict, call: "Call", scope: str) -> ArmError:
    claims = call.claims
    return refuse("authorization_failed", client=claims.get("upn", claims["oid"]), oid=claims["oid"],
                  action=getattr(call, "action", ACTION), scope=scope)


# Outcomes that are an ARM error answer: outcome -> a function building it from (server, behaviour, call, scope).
ERROR_OUTCOMES: dict[str, Callable[..., ArmError]] = {
    "forbidden": _forbidden,
    "not_ready": _not_ready,
    # The resource provider throttles this server; ARM's own bucket (its headers are added as for any
    # answer) is not what ran out, so the code is the provider's, not SubscriptionRequestsThrottled.
    "throttled": lambda server, b, call, scope: refuse("rp_throttled", server=server.name, headers=retry_headers(b)),
    "internal_error": lambda server, b, call, scope: refuse("internal_error", request_id=call.request_id),
    "unavailable": lambda server, b, call, scope: refuse("unavailable", headers=retry_headers(b)),
}


def applies(b: dict, call_number: int) -> bool:
    """Whether a behaviour's outcome applies to the server's ``call_number``-th call (fail_times, on_calls,
    after_calls)."""
    return (
        (b["fail_times"] is None or call_number <= b["fail_times"])
        and (b["on_calls"] is None or call_number in b["on_calls"])
        and (b["after_calls"] is None or call_number > b["after_calls"])
    )


class Behaviours:
    def __init__(self, stopping: threading.Event) -> None:
        self.stopping = stopping

    def _sleep(self, seconds: float) -> bool:
        """Sleep, but wake when the simulator stops; True means 'stop now'."""
        return self.stopping.wait(max(0.0, seconds))

    @staticmethod
    def check_body(raw: bytes) -> None:
        try:
            body = json.loads(raw.decode("utf-8")) if raw.strip() else None
        except (UnicodeDecodeError, ValueError) as exc:
            raise refuse("body_not_json", problem=f"{exc.__class__.__name__}: {exc}") from None
        if not isinstance(body, dict):
            raise refuse("body_not_object")
        settings = body.get("backupSettings")
        name = settings.get("backupName") if isinstance(settings, dict) else None
        if name is None:
            raise refuse("backup_name_missing", target="backupSettings.backupName")
        if not isinstance(name, str) or not name.strip():
            raise refuse("backup_name_invalid", target="backupSettings.backupName")

    def outcome(self, arm: "Arm", server: "Server") -> tuple[str, dict]:
        """The outcome this call gets (the behaviour's, or success outside its calls) and the behaviour."""
        with arm.world.lock:
            server.calls += 1
            call_number = server.calls
            b = dict(server.behaviour)
        return (b["outcome"] if applies(b, call_number) else "success"), b

    def answer(self, arm: "Arm", call: "Call", server: "Server", scope: str) -> Response:
        outcome, b = self.outcome(arm, server)
        success = json.dumps({"properties": {"numberOfContainers": b["containers"]}}).encode()
        return self.deliver(arm, call, server, scope, outcome, b, success)

    def deliver(self, arm: "Arm", call: "Call", server: "Server", scope: str, outcome: str, b: dict,
                success: bytes) -> Response:
        """Answer with ``outcome``: ``success`` is the body a clean 200 carries (the reads pass their own)."""
        if b["latency_ms"] and self._sleep(b["latency_ms"] / 1000):
            raise refuse("shutting_down")
        if outcome in ERROR_OUTCOMES:
            if outcome == "throttled":
                arm.world.count_throttled()
            raise ERROR_OUTCOMES[outcome](server, b, call, scope)
        if outcome == "success":
            return arm.ok(call, success)
        if outcome in FIXED_BODIES:
            return arm.ok(call, *FIXED_BODIES[outcome])
        if outcome == "bad_gateway":
            return arm.finish(call, Response(502, BAD_GATEWAY_PAGE, "text/html"))
        if outcome == "payload":
            return arm.ok(call, b["body"], status=int(b["status"]))
        return self._streamed(arm.finish(call, Response(200 if outcome != "reset" else 0)), outcome, b, success)

    def _streamed(self, response: Response, outcome: str, b: dict, success: bytes) -> Response:
        """The outcomes that write to the socket themselves."""
        response.stream = {
            "reset": self.reset,
            "stall_headers": lambda h: self._stall_headers(h, response, success, b["stall"]),
            "stall_body": lambda h: self._stall_body(h, response, success, b["stall"]),
            "trickle": lambda h: self._trickle(h, response, success, b["trickle_interval"]),
            "huge": lambda h: self._huge(h, response, b["containers"], b["huge_bytes"]),
        }[outcome]
        return response

    @staticmethod
    def _start(handler: BaseHTTPRequestHandler, response: Response, length: int) -> None:
        handler.send_response(response.status)
        for name, value in response.headers:
            handler.send_header(name, value)
        handler.send_header("Content-Type", JSON_TYPE)
        handler.send_header("Content-Length", str(length))
        handler.end_headers()

    @staticmethod
    def reset(handler: BaseHTTPRequestHandler) -> None:
        # SO_LINGER with a zero timeout makes close() send a TCP RST instead of a FIN.
        handler.close_connection = True
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()

    def _stall_headers(self, handler: BaseHTTPRequestHandler, response: Response, body: bytes, stall: float) -> None:
        handler.close_connection = True
        if self._sleep(stall):
            return
        self._start(handler, response, len(body))
        handler.wfile.write(body)

    def _stall_body(self, handler: BaseHTTPRequestHandler, response: Response, body: bytes, stall: float) -> None:
        handler.close_connection = True
        self._start(handler, response, len(body))
        handler.wfile.write(body[: len(body) // 2])
        if not self._sleep(stall):
            handler.wfile.write(body[len(body) // 2 :])

    def _trickle(self, handler: BaseHTTPRequestHandler, response: Response, body: bytes, interval: float) -> None:
        handler.close_connection = True
        self._start(handler, response, len(body))
        for i in range(len(body)):
            handler.wfile.write(body[i : i + 1])
            if i + 1 < len(body) and self._sleep(interval):
                return

    def _huge(self, handler: BaseHTTPRequestHandler, response: Response, containers: int, size: int) -> None:
        # Valid JSON of exactly ``size`` bytes: the answer padded with a long string.
        head = b'{"properties": {"numberOfContainers": %d, "padding": "' % containers
        tail = b'"}}'
        padding = size - len(head) - len(tail)
        if padding < 0:
            head, tail, padding = b"", b"", size
        handler.close_connection = True
        self._start(handler, response, size)
        handler.wfile.write(head)
        block = b"x" * CHUNK
        while padding > 0 and not self.stopping.is_set():
            n = min(padding, CHUNK)
            handler.wfile.write(block[:n])
            padding -= n
        handler.wfile.write(tail)

"""HTTP plumbing shared by both listeners: a threading HTTP/1.1 server (optionally TLS), a tiny
request/response model, and request logging that never shows query strings, bodies or headers
(they carry codes, secrets and tokens)."""

import html
import json
import logging
import socket
import socketserver
import ssl
import sys
import time
from collections.abc import Callable
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger("azuresim")


class Request:
    def __init__(self, method: str, path: str, query_pairs: list[tuple[str, str]], headers: Message, body: bytes,
                 client: str, arrived_at: float = 0.0) -> None:
        self.method, self.path, self.headers, self.body, self.client = method, path, headers, body, client
        self.query = dict(query_pairs)
        # time.monotonic() when the request line and headers had arrived: tests time the gaps between retries.
        self.arrived_at = arrived_at

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))


class Response:
    """A complete answer, or (``stream`` set) a callable that writes to the raw handler itself."""

    def __init__(self, status: int = 200, body: bytes | str = b"", content_type: str | None = None,
                 headers: list[tuple[str, str]] | None = None, stream: Callable | None = None) -> None:
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.headers = list(headers or [])
        if content_type:
            self.headers.append(("Content-Type", content_type))
        self.stream = stream
        self.server_header = True  # ARM answers set False: real ARM names no product

    def header(self, name: str, value: object) -> "Response":
        self.headers.append((name, str(value)))
        return self


def json_response(status: int, obj: object, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, json.dumps(obj), "application/json; charset=utf-8", headers)


def html_page(status: int, title: str, body_html: str, headers: list[tuple[str, str]] | None = None) -> Response:
    """A plain page; ``body_html`` must already be escaped by the caller."""
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width'><title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;"
        "color:#1b1b1b}h1{font-size:1.4rem}button{display:block;width:100%;text-align:left;"
        "padding:.7rem 1rem;margin:.5rem 0;border:1px solid #8a8886;background:#fff;cursor:pointer;"
        "font:inherit}button:hover{background:#f3f2f1}small{color:#605e5c}.err{color:#a4262c}</style>"
        f"</head><body>{body_html}</body></html>"
    )
    return Response(status, page, "text/html; charset=utf-8", headers)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as MSAL's requests.Session expects
    server_version = "azuresim"
    timeout = 120  # idle keep-alive connections give their thread back eventually
    # TCP_NODELAY on every accepted socket: a streamed answer (the fault scenarios write in pieces) must not
    # wait for the client's delayed ACK (Nagle), which cost a sequential client ~40 ms a call.
    disable_nagle_algorithm = True

    def _dispatch(self) -> None:
        started = time.monotonic()
        body = self._read_body()
        parts = urlsplit(self.path)
        request = Request(
            self.command,
            parts.path,
            parse_qsl(parts.query, keep_blank_values=True),
            self.headers,
            body,
            self.client_address[0],
            arrived_at=started,
        )
        self.server.record(request)
        try:
            response = self.server.route(request)
        except Exception:
            log.exception("%s %s failed", self.command, parts.path)
            response = json_response(
                500,
                {"error": {"code": "InternalServerError", "message": "The simulator failed; see its log."}},
            )
        status = response.status
        self._server_header = response.server_header
        try:
            if response.stream:
                response.stream(self)
            else:
                self.send_response(status)
                for name, value in response.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                self._end_headers_with(response.body if self.command != "HEAD" else b"")
        finally:
            # Only method and path: query strings hold codes and state, bodies hold secrets.
            log.info(
                "%s %s %s %s %d %.0fms",
                self.server.name,
                self.client_address[0],
                self.command,
                parts.path,
                status,
                (time.monotonic() - started) * 1000,
            )

    def _end_headers_with(self, body: bytes) -> None:
        # Headers and body in one write, so the whole answer leaves in one send (two writes met the client's
        # delayed ACK through Nagle's algorithm: ~40 ms a call to a sequential client).
        self._headers_buffer.append(b"\r\n" + body)
        self.flush_headers()

    def _read_body(self) -> bytes:
        # Always consume the whole body, or the next request on this keep-alive connection breaks.
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def version_string(self) -> str:
        return self.server_version

    def send_response(self, code: int, message: str | None = None) -> None:
        # BaseHTTPRequestHandler always names the product in a Server header; ARM answers must not.
        self.log_request(code)
        self.send_response_only(code, message)
        if getattr(self, "_server_header", True):
            self.send_header("Server", self.version_string())
        self.send_header("Date", self.date_time_string())

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # _dispatch logs, without the query string

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s: " + format, self.server.name, *args)


class Listener(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # fixed ports come back at once after a restart

    def __init__(self, address: tuple[str, int], route: Callable[[Request], Response], name: str,
                 ssl_context: ssl.SSLContext | None = None, record: Callable[[Request], None] | None = None) -> None:
        self.route, self.name, self.ssl_context = route, name, ssl_context
        self.record = record or (lambda request: None)
        super().__init__(address, Handler)
        if ssl_context:
            # Handshake in the request thread (finish_request), not in the accept loop, so one
            # slow or broken client cannot stall everyone.
            self.socket = ssl_context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) we neither need nor want.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request: socket.socket, client_address: tuple) -> None:
        if self.ssl_context:
            request.settimeout(10)
            request.do_handshake()
            request.settimeout(None)
        super().finish_request(request, client_address)

    def handle_error(self, request: socket.socket, client_address: tuple) -> None:
        # Clients giving up mid-answer (their timeouts, our resets) are routine here.
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, ssl.SSLError, socket.timeout)):
            log.debug("%s: connection from %s ended: %r", self.name, client_address[0], exc)
        else:
            log.exception("%s: error serving %s", self.name, client_address[0])

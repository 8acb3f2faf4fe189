"""A local webhook catcher: accepts alert POSTs on loopback, logs them, answers as told.

For the demo and for trying channels without a Teams or Slack account:

    .venv/bin/python -m alerts.catcher --port 8299 [--secret <the channel's signing secret>]

then add a channel (Webhook, Teams or Slack) with the URL http://127.0.0.1:8299/<anything>; the dashboard
must run with ALERT_WEBHOOK_ALLOW_PRIVATE=1 (loopback) and http allowed (demo/DEBUG). Each request is logged
as one line: path, kind and title, and whether the signature verifies when --secret is given.

The tests use `Catcher` as their receiver: `statuses` is the answer to each request in turn (the last one
repeats) and `delay` holds each answer back (a receiver that never answers in time).
"""

import argparse
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("alerts.catcher")


@dataclass
class Caught:
    path: str
    headers: dict[str, str]
    body: bytes
    arrived_at: float = field(default_factory=time.time)

    def json(self):
        return json.loads(self.body)


class Catcher:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, statuses=(200,), delay: float = 0.0,
                 secret: str = ""):
        self.statuses, self.delay, self.secret = list(statuses), delay, secret
        self.received: list[Caught] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="alerts-catcher", daemon=True)

    def start(self) -> "Catcher":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _record(self, caught: Caught) -> int:
        with self._lock:
            self.received.append(caught)
            index = min(len(self.received), len(self.statuses)) - 1
            return self.statuses[index]

    def _handler(self):
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = min(int(self.headers.get("Content-Length") or 0), 1024 * 1024)
                caught = Caught(self.path, dict(self.headers.items()), self.rfile.read(length))
                status = catcher._record(caught)
                catcher._log(caught, status)
                if catcher.delay:
                    time.sleep(catcher.delay)
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else f"catcher answered {status}".encode())

            def log_message(self, format, *args):  # the access line would repeat _log's
                pass

        return Handler

    def _log(self, caught: Caught, status: int) -> None:
        from alerts.signing import verify

        try:
            body = caught.json()
        except ValueError:
            body = {}
        title = body.get("title") or body.get("text") or _teams_title(body)
        signed = ""
        if self.secret:
            signed = " signature=" + ("valid" if verify(self.secret, caught.body, caught.headers) else "INVALID")
        log.info("caught POST %s kind=%s title=%r -> %s%s", _masked(caught.path), body.get("kind", "-"),
                 str(title)[:120], status, signed)


def _masked(path: str) -> str:
    """The first path segment and the last four characters: Slack and Teams paths carry their secret."""
    first = "/" + path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
    return f"{first[:30]}/…{path[-4:]}" if len(path) > len(first) else first


def _teams_title(body: dict) -> str:
    try:
        return body["attachments"][0]["content"]["body"][0]["text"]
    except (KeyError, IndexError, TypeError):
        return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8299)
    parser.add_argument("--secret", default="", help="verify the X-LTR-Signature of generic webhooks")
    parser.add_argument("--status", type=int, action="append", help="answer with these statuses in turn")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    catcher = Catcher(args.host, args.port, statuses=args.status or [200], secret=args.secret)
    log.info("Catching alert webhooks at %s/ (Ctrl-C stops)", catcher.url)
    try:
        catcher.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        catcher.server.server_close()


if __name__ == "__main__":
    main()

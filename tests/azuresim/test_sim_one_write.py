"""The simulator answers in one write on a socket without Nagle's algorithm: headers and body sent apart met
the client's delayed ACK and cost a sequential client ~40 ms a call, which inflated every sequential baseline
measured against it. Recorded at the server's own socket, never timed."""

import socket

from azuresim import web


def _record_writes(monkeypatch) -> list[dict]:
    """Each answer the simulator sends: how many writes it took and whether TCP_NODELAY was on its socket."""
    answers: list[dict] = []
    handle = web.Handler.handle_one_request

    def recorded(self):
        # Recorded before the write completes, so by the time the client holds the answer it is counted here.
        wfile, writes = self.wfile, []
        answers.append({"writes": writes,
                        "nodelay": bool(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))})

        class Counting:
            def write(self, data):
                writes.append(len(data))
                return wfile.write(data)

            def __getattr__(self, name):
                return getattr(wfile, name)

        self.wfile = Counting()
        try:
            handle(self)
        finally:
            self.wfile = wfile

    monkeypatch.setattr(web.Handler, "handle_one_request", recorded)
    return answers


def _sent(answers: list[dict]) -> list[dict]:
    # A keep-alive connection's next handle_one_request waits for a request that never comes: no writes.
    return [a for a in answers if a["writes"]]


def test_twenty_sequential_calls_are_each_answered_in_one_write_without_nagle(sim, session, monkeypatch):
    answers = _record_writes(monkeypatch)
    for _ in range(20):
        response = session.get(f"{sim.https_url}/subscriptions?api-version=2022-12-01", timeout=10)
        assert response.status_code in (200, 401) and response.content
    sent = _sent(answers)
    assert len(sent) == 20
    # One write holding the status line, the headers and the body; the socket sends it at once.
    assert all(len(a["writes"]) == 1 and a["writes"][0] > 200 for a in sent), sent
    assert all(a["nodelay"] for a in sent)


def test_a_head_request_is_one_write_of_headers_only(sim, session, monkeypatch):
    answers = _record_writes(monkeypatch)
    response = session.head(f"{sim.http_url}/nothing-here", timeout=10)
    assert response.content == b""
    assert [len(a["writes"]) for a in _sent(answers)] == [1]

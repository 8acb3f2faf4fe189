"""`make run` shows its watch and stops cleanly on Ctrl-C: `manage.py rundemo` started as a terminal would (its
own process group); Alice signs in, her schedule runs and its alerts reach the catcher as the README lists them;
then SIGINT to that group, as a terminal's Ctrl-C is, while a slow check is in flight. The worker drains (the
check finishes as passed, not interrupted), nothing prints an error, the command exits 0, and none of its four
processes is left."""

import html
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("Second signal", "Traceback", "Terminated", "No child processes", "Interrupt")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"rundemo did not listen on {port}")


def sign_in_as_alice(base: str) -> requests.Session:
    """The browser's sign-in, by hand: the dashboard sends us to the simulator's account picker, we pick Alice."""
    session = requests.Session()
    picker = session.get(base + "/")
    form = re.search(r"<form method=post action='([^']+)'>(.*?)</form>", picker.text, re.S)
    fields = dict(re.findall(r"<input type=hidden name='([^']+)' value='([^']*)'>", form.group(2)))
    fields = {html.unescape(k): html.unescape(v) for k, v in fields.items()}
    session.post(urljoin(picker.url, form.group(1)), data={**fields, "azuresim_upn": "alice@contoso.example"})
    return session


@pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGINT are POSIX")
def test_ctrl_c_drains_the_worker_and_prints_no_error(tmp_path):
    port, https_port, http_port, catcher = free_port(), free_port(), free_port(), free_port()
    database = tmp_path / "demo.sqlite3"
    env = {**os.environ, "DEMO_MODE": "1", "PORT": str(port), "AZURESIM_HTTPS_PORT": str(https_port),
           "AZURESIM_HTTP_PORT": str(http_port), "DEMO_CATCHER_PORT": str(catcher),
           "AZURESIM_STATE_DIR": str(tmp_path / "azuresim"), "DATABASE_URL": f"sqlite:///{database}",
           "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "manage.py", "rundemo"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, process_group=0)
    try:
        wait_for(port, proc)
        base = f"http://127.0.0.1:{port}"
        session = sign_in_as_alice(base)
        # The demo's watch (README, "/alerts/: Demo catcher"): Alice's sign-in lets her nightly schedule run, and
        # its alerts reach the catcher; then nothing of it is in flight.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (len(_sent(database)) < len(DEMO_ALERTS) or _active(database)):
            time.sleep(0.5)
        sent = _sent(database)
        assert sent[0] == DEMO_ALERTS[0] and sorted(sent) == sorted(DEMO_ALERTS), sent
        slow = sqlite3.connect(database).execute(
            "SELECT id FROM dashboard_server WHERE name = 'pg-payments-02'").fetchone()[0]
        page = session.get(f"{base}/servers/{slow}/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        queued = session.post(f"{base}/servers/{slow}/run/", data={"csrfmiddlewaretoken": token},
                              headers={"Referer": base + "/"}, allow_redirects=False)
        assert queued.status_code == 302
        # The check answers after 3 s; press Ctrl-C while the worker is inside it.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _status(database, slow) != "running":
            time.sleep(0.1)
        assert _status(database, slow) == "running"
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out
    assert "Stopping: finishing in-flight checks" in out
    assert out.rstrip().endswith("Stopped."), out[-2000:]
    assert not [word for word in FORBIDDEN if word in out], out[-4000:]
    assert _status(database, slow) == "succeeded", "the in-flight check was drained, not cut short"
    # Together: the simulator, the catcher, the worker and the web server are gone, and their ports free.
    for closed in (port, https_port, http_port, catcher):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", closed), timeout=2).close()
    assert not _processes_with(f"AZURESIM_STATE_DIR={tmp_path / 'azuresim'}")


def _processes_with(environment: str) -> list[int]:
    """The processes (of this user) started with `environment` among their variables: the demo's children."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and environment.encode() in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours
            continue
    return found


DEMO_ALERTS = ["Schedule “Contoso nightly” stopped: Alice Admin must sign in again",
               *[f"{name} is not ready for long-term backups"
                 for name in ("pg-decommissioned", "pg-orders", "pg-legacy-01", "pg-sandbox-01")],
               "An LTR backup of pg-billing failed"]


def _sent(database: Path) -> list[str]:
    """The titles the demo channel's delivery log says were sent, oldest first."""
    return [title for (title,) in sqlite3.connect(database).execute(
        "SELECT title FROM alerts_delivery WHERE status = 'sent' ORDER BY id")]


def _active(database: Path) -> int:
    return sqlite3.connect(database).execute(
        "SELECT COUNT(*) FROM checks_check WHERE status IN ('queued', 'running')").fetchone()[0]


def _status(database: Path, server_id: int) -> str | None:
    row = sqlite3.connect(database).execute(
        "SELECT status FROM checks_check WHERE server_id = ? ORDER BY id DESC LIMIT 1", (server_id,)).fetchone()
    return row[0] if row else None

"""No secret in any log, on any path: a real sign-in, a failed callback, a crashed request and the README's
production web command, each read back from the log streams as written."""

import io
import logging
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ALICE, ROOT
from tests.crash_urls import LEAKY_JWT

TOKEN_SHAPED = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.|refresh_token=0\.|code=[A-Za-z0-9]{8,}")


@pytest.fixture
def log_stream():
    """Our console handler writing into a buffer, as it would write to stderr."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


@pytest.mark.django_db(transaction=True)
def test_sign_in_a_failed_callback_and_a_crash_leave_no_secret_in_the_log(client, signed_in, log_stream, settings):
    settings.ROOT_URLCONF = "tests.crash_urls"
    logging.getLogger("django.server").warning('"GET /auth/callback/?code=SECRETCODE123&state=STATE12345 HTTP/1.1" 400')
    signed_in(ALICE["upn"])
    client.get("/auth/callback/", {"code": "SECRETCODE123456", "state": "STATE1234567"})
    client.raise_request_exception = False
    assert client.get("/crash/").status_code == 500
    written = log_stream.getvalue()
    assert "Internal Server Error: /crash/" in written and "Traceback" in written, "the crash itself is logged"
    for secret in ("SECRETCODE123", "STATE12345", "STATE1234567", LEAKY_JWT, "leakyrefresh"):
        assert secret not in written, secret
    assert not TOKEN_SHAPED.search(written), TOKEN_SHAPED.search(written)


def _readme_web_command() -> list[str]:
    text = (ROOT / "README.md").read_text()
    command = re.search(r"^(gunicorn config\.wsgi .*?)#", text.replace("\\\n", " "), re.M).group(1)
    return shlex.split(command)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_the_readmes_production_web_command_logs_no_callback_code(tmp_path: Path):
    port = _free_port()
    argv = [a if a != "0.0.0.0:8000" else f"127.0.0.1:{port}" for a in _readme_web_command()]  # noqa: S104
    env = {**os.environ, "DEMO_MODE": "1", "DEBUG": "0", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
           "VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings"}
    for step in (["migrate", "-v0"], ["collectstatic", "--noinput", "-v0"]):  # as the README's deploy does
        subprocess.run([sys.executable, "manage.py", *step], cwd=ROOT, env=env, check=True)
    log = (tmp_path / "web.log").open("w+")
    argv[0] = str(Path(sys.executable).with_name("gunicorn"))
    web = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except requests.RequestException:  # not listening yet, or still booting
                time.sleep(0.1)
        answer = requests.get(f"http://127.0.0.1:{port}/auth/callback/",
                              params={"code": "SECRETCODE123456", "state": "STATE1234567"}, timeout=10)
    finally:
        web.terminate()
        web.wait(10)
    log.seek(0)
    written = log.read()
    assert answer.status_code == 400, written
    assert "/auth/callback/" in written, "the request itself is logged"
    assert "SECRETCODE123456" not in written and "STATE1234567" not in written


@pytest.mark.django_db(transaction=True)
def test_a_check_is_one_line_in_the_workers_log_and_other_tasks_keep_theirs(client, signed_in, log_stream,
                                                                             monkeypatch):
    """checks.log_lines: Django's two lines for a check's task are left out (the check's own line says it); the
    fan-out task that queued the checks is still logged starting and ending."""
    from django.core.management import call_command

    from checks.models import Check
    from tests.conftest import make_server

    # django-tasks-db's own worker (the `worker` fixture of other tests) sets this logger's level for the process.
    tasks_logger = logging.getLogger("django.tasks")
    monkeypatch.setattr(tasks_logger, "level", tasks_logger.level)  # restored after the test
    tasks_logger.setLevel(logging.NOTSET)
    signed_in(ALICE["upn"])
    make_server(name="pg-payments-01")
    client.post("/batches/", {"scope": "all"})
    call_command("checks_worker", "--batch", "--threads", "2", "--interval", "0.05")
    lines = log_stream.getvalue().splitlines()
    check = Check.objects.get()
    assert [line for line in lines if "checks.tasks.run_check" in line] == []
    [finished] = [line for line in lines if f"Check {check.pk} finished: succeeded" in line]
    assert check.request_id and f"request_id={check.request_id}" in finished, "ARM's request id, for support"
    assert len([line for line in lines if "path=checks.tasks.fan_out" in line]) == 2

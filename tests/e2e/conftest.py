"""Browser tests: Playwright drives Debian's chromium against pytest-django's live server.

What runs while a test watches the browser:

- the Azure simulator (`azure_sim`, session scoped, from tests/conftest.py) on ephemeral loopback ports;
- pytest-django's live server (session scoped; each test gets `transactional_db`, so the tables are flushed
  after it);
- django-tasks-db's real worker loop in a daemon thread, so checks move queued -> running -> done on
  their own, as with `make run`;
- where a journey asks for them (`periodic_jobs`), the checks worker's periodic jobs (firing due schedules)
  in another daemon thread, through the worker's own loop.

The test database is a file (tests/settings.py), so the live server's threads and the worker thread each
have their own connection with the WAL journal and busy timeout, as in demo mode.
"""

import os
import re
import threading

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils.module_loading import import_string
from playwright.sync_api import sync_playwright

from tests.e2e.helpers import ARTIFACTS

# Playwright's sync API runs an event loop in this thread; Django refuses ORM calls from a thread with a
# running loop unless told that it is fine here.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# ---- the browser ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"the browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def page(browser, request):
    """A fresh browser context per test; the last screen is saved to test-artifacts/e2e/<test>.png."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    try:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    finally:
        context.close()


# ---- the app: live server, simulator, worker -----------------------------------------------------------


@pytest.fixture
def app(live_server, sim, settings):
    """The live server's base URL, set up to sign in through the simulator and to sign out to it."""
    settings.AZURE_REDIRECT_URI = live_server.url + "/auth/callback/"
    csp = {directive: list(sources) for directive, sources in settings.SECURE_CSP.items()}
    csp["form-action"] = [*csp["form-action"], sim.http_url, sim.https_url]
    settings.SECURE_CSP = csp
    return live_server.url


@pytest.fixture
def demo_fleet(transactional_db):
    """The demo servers (dashboard/demo.py), registered in the live server's database."""
    call_command("seed_demo", verbosity=0)


@pytest.fixture
def task_worker(live_server):
    """django-tasks-db's worker loop in a daemon thread, as `manage.py db_worker` runs it in demo mode."""
    from django_tasks_db.management.commands.db_worker import Worker

    loop = Worker(
        queue_names=["default"],
        interval=0.1,
        batch=False,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="e2e-worker",
        excluded_queue_names=[],
    )
    failures: list[BaseException] = []

    def run():
        try:
            loop.run()
        except BaseException as exc:  # noqa: BLE001 - reported by the fixture's teardown
            failures.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name="e2e-db-worker", daemon=True)
    thread.start()
    yield loop
    loop.running = False
    thread.join(timeout=30)
    assert not thread.is_alive(), "the worker thread did not stop within 30 s"
    assert not failures, f"the worker loop crashed: {failures[0]!r}"


@pytest.fixture
def periodic_jobs(task_worker, settings):
    """checks_worker's periodic jobs (settings.WORKER_PERIODIC_JOBS: firing due schedules, reaping stuck
    deliveries) run by the worker's own `_run_due_jobs`, every half second instead of every
    SCHEDULES_POLL_SECONDS so a journey does not wait 20 s for a due schedule."""
    from checks.management.commands.checks_worker import _run_due_jobs

    jobs = [[import_string(path), 0.5, 0.0] for path, _every in settings.WORKER_PERIODIC_JOBS]
    stopping = threading.Event()

    def run():
        try:
            while not stopping.is_set():
                _run_due_jobs(jobs)
                stopping.wait(0.2)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, name="e2e-periodic-jobs", daemon=True)
    thread.start()
    yield
    stopping.set()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the periodic jobs thread did not stop within 30 s"

"""The watch in a browser, as issue 11 asks to see it: Alice adds a webhook channel aimed at a local catcher,
creates a schedule over a resource group with a server that flips, watches its first run (fired by the
worker's periodic job) complete, runs it again, sees the server flip on its page (readiness and timeline),
and sees the alert "Sent" in the delivery log; the catcher got it, signed with the channel's secret."""

import time

import pytest
from playwright.sync_api import expect

from alerts.catcher import Catcher
from alerts.signing import verify
from dashboard.demo import STAGING
from tests.e2e.helpers import SLOW, sign_in, snap

pytestmark = pytest.mark.e2e
FLIP_TITLE = "pg-flip-01 is not ready for long-term backups"


@pytest.fixture
def catcher(settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True  # the catcher is on loopback, as in demo mode
    settings.ALERT_WEBHOOK_ALLOW_HTTP = True
    settings.ALERT_RETRY_DELAYS = [0.5]
    catcher = Catcher(statuses=[200]).start()
    yield catcher
    catcher.stop()


def watch_for_problems(page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    page.context.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => console.error("
        "'CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
    )
    return problems


def add_webhook_channel(page, url: str) -> str:
    """Add a signed-JSON webhook channel; its signing secret, shown once."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts").click()
    page.get_by_role("link", name="Add a channel").click()
    page.get_by_label("Name").fill("Ops receiver")
    page.get_by_label("Kind").select_option("webhook")
    page.get_by_label("Send to").fill(url)
    page.get_by_role("button", name="Add channel").click()
    secret = page.get_by_label("Signing secret").input_value()
    page.get_by_role("link", name="Back to alerts").click()
    return secret


def create_staging_schedule(page) -> None:
    page.get_by_role("link", name="Schedules").click()
    page.get_by_role("link", name="Create the first schedule").click()
    page.get_by_label("Name", exact=True).fill("Staging hourly")
    page.get_by_label("A resource group").check()
    page.get_by_label("Subscription", exact=True).select_option(STAGING)
    page.get_by_label("Resource group", exact=True).select_option("rg-staging")
    page.get_by_label("Every N hours").check()
    page.get_by_label("Every how many hours").fill("1")
    page.get_by_role("button", name="Create schedule").click()


def reload_until_visible(page, locator, seconds: float = 20) -> None:
    """The schedules page does not poll: reload it as a user would until `locator` shows."""
    deadline = time.monotonic() + seconds
    while locator.count() == 0 and time.monotonic() < deadline:
        page.wait_for_timeout(500)
        page.reload()
    expect(locator).to_be_visible()


def test_a_schedule_runs_a_server_flips_and_the_alert_is_delivered(
    page, app, sim, demo_fleet, task_worker, periodic_jobs, catcher
):
    # Passes its first check, then answers "not ready" (state Updating) to every later one.
    sim.set_behaviour(STAGING, "rg-staging", "pg-flip-01", outcome="not_ready", state="Updating", after_calls=1)
    sign_in(page, app)
    problems = watch_for_problems(page)
    page.reload()
    secret = add_webhook_channel(page, f"{catcher.url}/ltr")
    create_staging_schedule(page)

    row = page.locator("tr.schedule-row").filter(has_text="Staging hourly")
    expect(row).to_contain_text("3 servers now")
    last_run = row.get_by_role("link").filter(has=page.locator("time"))
    reload_until_visible(page, last_run)  # fired by the worker's periodic job, not by the form
    last_run.first.click()
    expect(page.get_by_role("heading", name="Batch of 3 checks")).to_be_visible()
    expect(page.locator("#batch-progress")).to_contain_text("3 / 3 done", timeout=SLOW)
    expect(page.locator("#batch-progress")).to_contain_text("3 passed")

    page.get_by_role("link", name="Schedules").click()
    row.get_by_role("button", name="Run now").click()
    expect(page.locator("#batch-progress")).to_contain_text("3 / 3 done", timeout=SLOW)
    expect(page.locator("#batch-progress")).to_contain_text("2 passed")
    expect(page.locator("#batch-progress")).to_contain_text("1 not passed")

    page.goto(app + "/?q=pg-flip-01")
    page.get_by_role("link", name="pg-flip-01", exact=True).click()
    expect(page.locator(".readiness-now .badge")).to_have_text("Not ready: Server not ready")
    changes = page.locator("ol.timeline li")
    expect(changes).to_have_count(2)
    expect(changes.first).to_contain_text("Ready → Not ready")
    expect(changes.first).to_contain_text("so far")
    expect(changes.last).to_contain_text("Not known → Ready")
    snap(page, "server-timeline")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts").click()
    delivery = page.locator("tr.delivery-row").filter(has_text=FLIP_TITLE)
    expect(delivery.locator(".badge")).to_have_text("Sent", timeout=SLOW)
    expect(delivery).to_contain_text("Ops receiver")
    snap(page, "alerts-delivered")

    caught = [c for c in catcher.received if c.json()["title"] == FLIP_TITLE]
    assert len(caught) == 1 and verify(secret, caught[0].body, caught[0].headers)
    assert [c.json()["kind"] for c in catcher.received] == ["readiness_changed"], "ready at first: no alert"
    assert not problems, problems

"""Browser journey through schedules: create one, see its first run as a batch, pause it with htmx."""

import pytest
from playwright.sync_api import expect

from dashboard.demo import STAGING
from schedules.firing import fire_due_schedules
from tests.e2e.helpers import SLOW, sign_in, snap

pytestmark = pytest.mark.e2e


def test_create_a_schedule_see_its_first_run_and_pause_it(page, app, demo_fleet, task_worker):
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    sign_in(page, app)
    page.get_by_role("link", name="Schedules").click()
    expect(page.get_by_role("heading", name="No schedules yet")).to_be_visible()
    page.get_by_role("link", name="Create the first schedule").click()

    page.get_by_label("Name", exact=True).fill("Staging hourly")
    page.get_by_label("A resource group").check()
    page.get_by_label("Subscription", exact=True).select_option(STAGING)
    page.get_by_label("Resource group", exact=True).select_option("rg-staging")
    page.get_by_label("Every N hours").check()
    page.get_by_label("Every how many hours").fill("500")
    page.get_by_label("Time zone").select_option("Europe/Berlin")
    page.get_by_role("button", name="Create schedule").click()
    expect(page.get_by_text("Choose every 1 to 168 hours (a week).")).to_be_visible()
    problems.clear()  # the refused form answered 400 on purpose; the browser logs that as an error
    page.get_by_label("Every how many hours").fill("1")
    page.get_by_role("button", name="Create schedule").click()

    row = page.locator("tr.schedule-row").filter(has_text="Staging hourly")
    expect(row).to_contain_text("resource group rg-staging")
    expect(row).to_contain_text("3 servers now")
    expect(row).to_contain_text("every hour")
    expect(row.locator(".badge")).to_have_text("active")

    assert fire_due_schedules() == 1  # what the checks worker's poll does
    page.reload()
    row.get_by_role("link").filter(has=page.locator("time")).first.click()
    expect(page.get_by_role("heading", name="Batch of 3 checks")).to_be_visible()
    expect(page.locator("#batch-progress")).to_contain_text("3 / 3 done", timeout=SLOW)
    expect(page.locator("#batch-progress")).to_contain_text("3 passed")

    page.go_back()
    page.reload()
    row.get_by_role("button", name="Pause").click()
    expect(row.locator(".badge")).to_have_text("paused")
    expect(row).to_contain_text("is paused")
    snap(page, "schedules")
    assert not problems, problems

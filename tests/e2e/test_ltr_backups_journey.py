"""Open a server, refresh its LTR backups from Azure, and watch a running one progress to succeeded live."""

import pytest
from playwright.sync_api import expect

from dashboard.demo import PROD
from dashboard.models import Server
from tests.e2e.helpers import SLOW, sign_in

pytestmark = pytest.mark.e2e


def test_refresh_the_ltr_backups_and_watch_a_running_one_succeed(page, app, demo_fleet, sim):
    sim.set_ltr_backups(PROD, "rg-payments-prod", "pg-payments-01", [
        {"name": "ltr-weekly", "status": "Succeeded", "started_ago": 3 * 86400, "duration": 412},
        {"name": "ltr-now", "status": "Running", "started_ago": 0, "duration": 5},
    ])
    sign_in(page, app)
    server = Server.objects.get(name="pg-payments-01")
    page.goto(f"{app}/servers/{server.pk}/")
    section = page.locator("#ltr-backups")
    expect(section).to_contain_text("Not read from Azure yet")
    section.get_by_role("button", name="Refresh from Azure").click()
    running = section.locator("tr[data-backup='ltr-now']")
    expect(running.locator(".badge")).to_have_text("Running")
    expect(running.locator("progress")).to_be_visible()
    # While it runs the fragment asks Azure again every 5 s, without a reload, until nothing runs.
    expect(running.locator(".badge")).to_have_text("Succeeded", timeout=SLOW)
    expect(running.locator("progress")).to_have_count(0)
    expect(section.locator("tr[data-backup='ltr-weekly'] .badge")).to_have_text("Succeeded")

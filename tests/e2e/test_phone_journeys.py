"""What a phone user sees (issue 15), at 390 px beside 1366 px: the history filtered by a failure category, and the
main pages in the dark colour scheme. Nothing scrolls sideways, no text is cut, the buttons are tappable.

(The batch page, the server page with its timeline and backup name, and the import's orphans have their own
journeys at both widths: test_batch_journey, test_fleet_view_journey, test_import_journey.)"""

import re

import pytest
from playwright.sync_api import expect

from checks.models import Batch
from dashboard.demo import CONTOSO
from dashboard.models import Server, User
from tests.e2e.helpers import WIDTHS, assert_fits_the_screen, assert_tappable, set_width, sign_in, snap
from tests.factories import make_check

pytestmark = pytest.mark.e2e


def _failures_of_every_kind() -> dict[str, int]:
    """Checks as the worker would have left them: passed, throttled twice, the server not ready (ids by kind)."""
    alice = User.objects.get(tenant_id=CONTOSO, upn="alice@contoso.example")
    servers = {s.name: s for s in Server.objects.for_tenant(CONTOSO)}
    made = {"passed": make_check(servers["pg-payments-01"], alice, minutes_ago=30).pk}
    for name in ("pg-billing", "pg-gateway-flaky"):
        made["throttled"] = make_check(servers[name], alice, status="failed", category="throttled", http_status=429,
                                       summary="Azure asked to slow down (429); try again in a minute.",
                                       minutes_ago=20).pk
    made["server_not_ready"] = make_check(servers["pg-orders"], alice, status="failed", category="server_not_ready",
                                          http_status=200, summary="The server is not ready for a backup.",
                                          minutes_ago=10).pk
    return made


@pytest.mark.parametrize("width", WIDTHS)
def test_filter_the_history_by_a_failure_category(page, app, demo_fleet, width):
    set_width(page, width)
    sign_in(page, app)
    _failures_of_every_kind()
    page.goto(app + "/checks/")
    expect(page.get_by_role("heading", name="Check history")).to_be_visible()
    rows = page.locator("main table tbody tr")
    expect(rows).to_have_count(4)

    page.get_by_label("Category").select_option("throttled")
    button = page.locator("form.filters").get_by_role("button", name="Filter")
    assert_tappable(page, button)
    button.click()
    expect(page).to_have_url(re.compile(r"category=throttled"))
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="pg-billing")).to_have_count(1)
    expect(rows.filter(has_text="pg-orders")).to_have_count(0)
    assert_fits_the_screen(page)
    snap(page, f"history-throttled-{width}", docs="history" if width == 1366 else "history-phone")


def test_the_main_pages_on_a_phone_in_the_dark(page, app, demo_fleet):
    set_width(page, 390)
    page.emulate_media(color_scheme="dark")
    sign_in(page, app)
    made = _failures_of_every_kind()
    alice = User.objects.get(tenant_id=CONTOSO, upn="alice@contoso.example")
    batch, _ = Batch.objects.queue(list(Server.objects.for_tenant(CONTOSO).filter(name__startswith="pg-staging")),
                                   alice)
    pages = {
        "list": "/",
        "server": f"/servers/{Server.objects.get(name='pg-orders').pk}/",
        "batch": f"/batches/{batch.pk}/",
        "history": "/checks/?category=server_not_ready",
        "check": f"/checks/{made['server_not_ready']}/",
    }
    for name, path in pages.items():
        page.goto(app + path)
        assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
        expect(page.locator("main h1").first).to_be_visible()
        assert_fits_the_screen(page)
        # The dark scheme really is dark: the page's background, not the light one with white text.
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        levels = [int(n) for n in re.findall(r"\d+", background)[:3]]
        assert levels and max(levels) < 90, (name, background)
        snap(page, f"phone-dark-{name}")

"""Import from Azure in a browser: names instead of GUIDs, a listing kept across reloads and refreshed on
request, picked servers imported, and a registered server Azure no longer lists archived from the same page; at
1366 px and on a 390 px phone."""

import pytest
from playwright.sync_api import expect

from dashboard.demo import PROD, STAGING
from dashboard.models import Server
from tests.e2e.helpers import WIDTHS, assert_fits_the_screen, assert_tappable, server_row, set_width, sign_in, snap

pytestmark = pytest.mark.e2e


def _list_reads(sim) -> int:
    return len([r for r in sim.received(method="GET") if r.path.lower().startswith("/subscriptions")])


@pytest.mark.parametrize("width", WIDTHS)
def test_import_names_subscriptions_keeps_the_listing_and_archives_what_azure_lost(page, app, sim, demo_fleet, width):
    sim.remove_server(PROD, "rg-payments-prod", "pg-decommissioned")  # registered, but gone from Azure
    set_width(page, width)
    sign_in(page, app)
    page.get_by_role("link", name="Import from Azure").first.click()
    expect(page.get_by_role("heading", name="Import from Azure")).to_be_visible()
    expect(page.locator("#listing-age")).to_contain_text("Listed from Azure at")
    reads = _list_reads(sim)

    page.reload()  # within the TTL: answered from the kept listing, ARM is not asked again
    expect(page.locator("#listing-age")).to_be_visible()
    assert _list_reads(sim) == reads
    page.get_by_role("button", name="Refresh from Azure").click()
    expect(page.locator("#listing-age")).to_be_visible()
    assert _list_reads(sim) == 2 * reads

    orphans = page.locator("#orphans")
    expect(orphans).to_contain_text("pg-decommissioned")
    expect(orphans.locator(f'span.subscription[title="{PROD}"]').first).to_have_text("Contoso Production")
    expect(orphans).not_to_contain_text("pg-sandbox-01")  # its subscription failed to list
    assert_fits_the_screen(page)
    assert_tappable(page, orphans.get_by_role("button", name="Archive selected servers"))
    snap(page, f"import-orphans-{width}")
    orphans.get_by_label("Archive pg-decommissioned").check()
    page.once("dialog", lambda dialog: dialog.accept())
    orphans.get_by_role("button", name="Archive selected servers").click()
    expect(page.locator(".messages")).to_contain_text("Archived 1 server Azure no longer lists.")
    assert Server.objects.get(name="pg-decommissioned").archived_at is not None

    page.get_by_role("button", name="Import selected servers").click()
    expect(page.locator(".messages")).to_contain_text("Imported 1 server.")
    row = server_row(page, "pg-inventory-01")
    expect(row.locator(f'span.subscription[title="{STAGING}"]')).to_have_text("Contoso Staging")
    expect(page.locator(f'select[name="subscription"] option[value="{PROD}"]')).to_have_text("Contoso Production")


def test_import_all_asks_first_and_registers_every_new_server(page, app, sim, demo_fleet):
    sign_in(page, app)
    page.goto(app + "/servers/import/")
    button = page.get_by_role("button", name="Import all 1 new server")
    expect(button).to_be_visible()
    page.once("dialog", lambda dialog: dialog.dismiss())
    button.click()
    page.wait_for_load_state("networkidle")
    expect(page.locator(".messages")).to_have_count(0)
    assert not Server.objects.filter(name="pg-inventory-01").exists(), "dismissed: nothing registered"
    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    button.click()
    expect(page.locator(".messages")).to_contain_text("Imported 1 server.")
    assert questions == ["Register all 1 new server Azure lists here?"]
    expect(server_row(page, "pg-inventory-01")).to_be_visible()


def test_enter_on_a_picked_server_imports_the_picked_ones_without_asking(page, app, sim, demo_fleet):
    # The form's default button is "Import selected servers": the "Import all" buttons belong to another form.
    sign_in(page, app)
    page.goto(app + "/servers/import/")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.get_by_label("Import pg-inventory-01").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".messages")).to_contain_text("Imported 1 server.")
    assert dialogs == []


def test_a_long_search_word_wraps_on_a_phone(page, app, sim, demo_fleet):
    set_width(page, 390)
    sign_in(page, app)
    page.goto(app + "/servers/import/?q=" + "x" * 100)
    expect(page.locator("p.empty")).to_contain_text("No new server matches")
    assert_fits_the_screen(page)

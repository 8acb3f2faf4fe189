"""What a person does with the dashboard, in a real browser, with checks run by a real worker.

Every wait is Playwright's `expect()`, which retries until its condition holds or its timeout passes.
"""

import re

import pytest
from playwright.sync_api import expect

from checks.models import Check
from dashboard.demo import CONTOSO, PROD
from dashboard.models import Server
from tests.e2e.helpers import SLOW, expect_finished, run_check, server_row, sign_in, snap

pytestmark = pytest.mark.e2e

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def history_rows(page):
    return page.locator("table.checks tbody tr")


# 1 -------------------------------------------------------------------------------------------------------
def test_sign_in_shows_the_user_and_the_server_list(page, app, demo_fleet):
    sign_in(page, app)

    expect(page.locator(".topbar .who")).to_contain_text("Alice Admin")
    expect(page.get_by_role("heading", name="Servers", level=1)).to_be_visible()
    # Every server of Alice's tenant, Contoso, and none of Fabrikam's.
    contoso = Server.objects.filter(tenant_id=CONTOSO).count()
    expect(page.locator("tr.server-row")).to_have_count(contoso)
    expect(server_row(page, "pg-payments-01")).to_be_visible()
    expect(page.get_by_role("link", name="pg-fabrikam-01")).to_have_count(0)
    expect(page.locator(".badge").first).to_have_text("Never checked")


# 2 -------------------------------------------------------------------------------------------------------
def test_add_a_server_after_correcting_a_mistake(page, app):
    sign_in(page, app)
    expect(page.get_by_role("heading", name="No servers yet")).to_be_visible()
    page.get_by_role("link", name="Add your first server").click()
    expect(page.get_by_role("heading", name="Add a server")).to_be_visible()

    page.get_by_label("Subscription id").fill("0b5e0001-not-a-uuid")
    page.get_by_label("Resource group").fill("rg-payments-prod")
    page.get_by_label("Server name").fill("pg-payments-01")
    page.get_by_label("Label (optional)").fill("Added from the browser")
    page.get_by_role("button", name="Add server").click()

    error = page.locator("#id_subscription_id_error")
    expect(error).to_have_text("Enter the subscription id as a UUID, like 0b5e0001-0000-4000-8000-000000000001.")
    expect(page.locator(".field.has-error")).to_have_count(1)
    expect(page).to_have_url(app + "/servers/add/")
    # What was typed stays, so only the mistake needs correcting.
    expect(page.get_by_label("Server name")).to_have_value("pg-payments-01")
    assert not Server.objects.exists()

    page.get_by_label("Subscription id").fill(PROD)
    page.get_by_role("button", name="Add server").click()

    expect(page).to_have_url(app + "/")
    expect(page.locator(".messages")).to_have_text("Registered pg-payments-01.")
    row = server_row(page, "pg-payments-01")
    expect(row).to_be_visible()
    expect(row).to_contain_text("Added from the browser")
    expect(row).to_contain_text("rg-payments-prod")
    expect(row).to_contain_text(PROD)
    assert Server.objects.get().added_by.upn == "alice@contoso.example"


# 3 -------------------------------------------------------------------------------------------------------
def test_a_slow_check_goes_live_from_queued_to_passed_without_a_reload(page, app, demo_fleet, task_worker):
    sign_in(page, app)
    page.evaluate("window.__marker = 1")

    row = run_check(page, "pg-payments-02")

    badge = row.locator(".check-status")
    expect(badge).to_have_text(re.compile(r"^(Queued|Running)$"))
    expect(row.get_by_role("button", name="Run pre-backup check")).to_be_disabled()
    # The simulator answers after 3 s and the row polls every second: "Running" is on screen meanwhile.
    expect(badge).to_have_text("Running", timeout=SLOW)
    expect(row.locator("td:nth-child(7)")).to_contain_text("Asking Azure…")
    expect_finished(row, "Passed")
    expect(row.locator("td:nth-child(7)")).to_contain_text("4 containers")
    expect(row.get_by_role("button", name="Run pre-backup check")).to_be_enabled()

    assert page.evaluate("window.__marker") == 1, "the page was reloaded or navigated away"
    assert Check.objects.get().status == Check.Status.SUCCEEDED


def test_a_check_run_on_a_servers_page_updates_its_readiness_without_a_reload(page, app, demo_fleet, task_worker):
    sign_in(page, app)
    page.get_by_role("link", name="pg-payments-02", exact=True).click()
    readiness = page.locator("#readiness")
    expect(readiness).to_contain_text("No check has said anything about this server yet.")
    page.evaluate("window.__marker = 1")
    page.get_by_role("button", name="Run pre-backup check").click()
    expect(page.locator("tr.server-row .check-status")).to_have_text("Passed", timeout=SLOW)
    expect(readiness.locator(".badge")).to_have_text("Ready")
    expect(readiness).not_to_contain_text("No check has said anything")
    expect(readiness.locator("#readiness-changes li")).to_have_count(1)
    assert page.evaluate("window.__marker") == 1, "the page was reloaded or navigated away"


# 4 -------------------------------------------------------------------------------------------------------
def test_a_failing_check_and_its_detail_page(page, app, demo_fleet, task_worker):
    sign_in(page, app)

    row = run_check(page, "pg-analytics")
    expect_finished(row, "Failed")
    # The list's row says the category; the ARM code is on the check's page.
    expect(row.locator("td:nth-child(7) .category")).to_have_text("Permission missing")

    row.locator("a:has(time)").click()  # the "Last check" time link

    expect(page).to_have_url(re.compile(r"/checks/\d+/$"))
    expect(page.get_by_role("heading", name="Check of pg-analytics")).to_be_visible()
    expect(page.locator(".page-head .badge")).to_have_text("Failed")
    expect(page.locator("dt:text-is('HTTP status') + dd")).to_have_text("403")
    expect(page.locator("dt:text-is('Error code') + dd")).to_have_text("AuthorizationFailed")
    expect(page.locator(".remedy")).to_contain_text(
        "What to do: Ask an owner of the server's subscription or resource group for a role with "
        "Microsoft.DBforPostgreSQL/flexibleServers/ltrPreBackup/action"
    )
    expect(page.locator("#request-id")).to_have_text(GUID)
    expect(page.locator("#request-id + button.copy")).to_be_visible()
    check = Check.objects.get()
    assert check.request_id and page.locator("#request-id").inner_text() == check.request_id
    snap(page, "check-detail", docs="check-detail")
    # Each id's button copies that id, as Azure support asks for it.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    for target, value in [("request-id", check.request_id), ("correlation-id", check.correlation_request_id),
                          ("client-request-id", check.client_request_id)]:
        button = page.locator(f"#{target} + button.copy")
        button.click()
        expect(button).to_have_text("Copied")
        assert value and page.evaluate("navigator.clipboard.readText()") == value


# 5 -------------------------------------------------------------------------------------------------------
DOC_FLEET = ["pg-payments-01", "pg-analytics", "pg-orders", "pg-decommissioned", "pg-sandbox-01", "pg-staging-02"]
OUTCOMES = {
    "pg-payments-01": "Passed",
    "pg-analytics": "Failed",
    "pg-orders": "Failed",
    "pg-decommissioned": "Failed",
    "pg-sandbox-01": "Failed",
    "pg-staging-02": "Passed",
}


def test_filter_the_history_by_outcome_and_server(page, app, demo_fleet, task_worker):
    sign_in(page, app)
    for name in DOC_FLEET:
        run_check(page, name)
    for name in DOC_FLEET:
        expect_finished(server_row(page, name), OUTCOMES[name])
    # The summary above the table is rendered with the page; reload so the screenshot shows it current.
    page.reload()
    expect(server_row(page, "pg-staging-02").locator(".check-status")).to_have_text("Passed")
    snap(page, "server-list")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="History").click()
    expect(page.get_by_role("heading", name="Check history")).to_be_visible()
    expect(history_rows(page)).to_have_count(len(DOC_FLEET))
    snap(page, "history")

    page.get_by_label("Status").select_option(label="Failed")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"outcome=failed"))
    failed = [name for name, outcome in OUTCOMES.items() if outcome == "Failed"]
    expect(history_rows(page)).to_have_count(len(failed))
    expect(history_rows(page).locator(".badge")).to_have_text(["Failed"] * len(failed))
    expect(page.get_by_role("link", name="Clear")).to_be_visible()

    # The server filter is typed, with suggestions fetched as you type.
    page.get_by_label("Server", exact=True).press_sequentially("pg-ord")
    expect(page.locator("#server-names option")).to_have_count(1)
    expect(page.locator("#server-names option")).to_have_attribute("value", "pg-orders")
    page.get_by_label("Server", exact=True).fill("pg-orders")
    page.get_by_role("button", name="Filter").click()
    expect(history_rows(page)).to_have_count(1)
    expect(history_rows(page)).to_contain_text("pg-orders")
    expect(history_rows(page).locator(".category")).to_have_text("Server not ready")

    # A server whose checks all passed, filtered by "Failed": nothing, said in words.
    page.get_by_label("Server", exact=True).fill("PG-Payments-01")
    page.get_by_role("button", name="Filter").click()
    expect(history_rows(page)).to_have_count(0)
    expect(page.get_by_text("No check matches these filters.")).to_be_visible()

    page.get_by_role("link", name="Clear").click()
    expect(history_rows(page)).to_have_count(len(DOC_FLEET))


# 6 -------------------------------------------------------------------------------------------------------
def test_open_a_check_from_the_history(page, app, demo_fleet, task_worker):
    sign_in(page, app)
    expect_finished(run_check(page, "pg-payments-01"), "Passed")
    expect_finished(run_check(page, "pg-orders"), "Failed")

    page.get_by_role("link", name="History").click()
    expect(history_rows(page)).to_have_count(2)
    passed = history_rows(page).filter(has_text="pg-payments-01")
    passed.get_by_role("link").click()

    expect(page.get_by_role("heading", name="Check of pg-payments-01")).to_be_visible()
    expect(page.locator(".page-head .badge")).to_have_text("Passed")
    expect(page.locator(".outcome")).to_contain_text("Passed.")
    expect(page.locator("dt:text-is('numberOfContainers') + dd")).to_have_text("1")
    expect(page.locator("dt:text-is('HTTP status') + dd")).to_have_text("200")
    expect(page.locator("dt:text-is('Run by') + dd")).to_contain_text("Alice Admin")
    expect(page.locator("dt:text-is('Backup name') + dd")).to_have_text(re.compile(r"^pg-payments-01-ltr-\d{8}-\d{4}$"))
    expect(page.locator("#client-request-id")).to_have_text(GUID)

    page.locator(".crumbs").get_by_role("link", name="History").click()
    expect(page.get_by_role("heading", name="Check history")).to_be_visible()


# 7 -------------------------------------------------------------------------------------------------------
def test_sign_out_then_the_dashboard_asks_to_sign_in_again(page, app, sim):
    sign_in(page, app)

    page.get_by_role("button", name="Sign out").click()

    expect(page).to_have_url(app + "/auth/signed-out/")
    expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()
    expect(page.locator(".topbar .who")).to_have_count(0)

    page.goto(app + "/")
    expect(page).to_have_url(re.compile("^" + re.escape(sim.http_url) + r"/.*/oauth2/v2\.0/authorize"))
    expect(page.get_by_role("heading", name="Pick an account")).to_be_visible()


# 8 -------------------------------------------------------------------------------------------------------
def test_no_console_errors_or_csp_violations(page, app, demo_fleet, task_worker):
    sign_in(page, app)  # the simulator's pages are not ours; collect from the dashboard's pages only
    problems: list[str] = []

    def on_console(message):
        if message.type == "error":
            problems.append(f"console: {message.text}")

    def on_request_failed(request):
        # ERR_ABORTED is a request the browser dropped itself on navigating away (the favicon, a poll).
        if "ERR_ABORTED" not in (request.failure or ""):
            problems.append(f"requestfailed: {request.url} {request.failure}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    page.on("requestfailed", on_request_failed)
    # CSP violations are also logged to the console; the DOM event says which directive, to be sure.
    page.context.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => console.error("
        "'CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
    )
    page.reload()
    page.evaluate("window.__marker = 1")

    row = run_check(page, "pg-payments-02")
    expect(row.locator(".check-status")).to_have_text("Running", timeout=SLOW)
    expect_finished(row, "Passed")
    expect(row.locator("td:nth-child(7)")).to_contain_text("4 containers")
    assert page.evaluate("window.__marker") == 1

    row.locator("a:has(time)").click()  # the "Last check" time link
    expect(page.get_by_role("heading", name="Check of pg-payments-02")).to_be_visible()
    page.get_by_role("link", name="History").first.click()
    expect(history_rows(page)).to_have_count(1)
    page.goto(app + "/servers/add/")
    expect(page.get_by_role("heading", name="Add a server")).to_be_visible()

    assert problems == []


# 9 -------------------------------------------------------------------------------------------------------
def test_run_a_check_with_the_keyboard(page, app, demo_fleet, task_worker):
    sign_in(page, app)
    first_row = page.locator("tr.server-row").first
    button = first_row.get_by_role("button", name="Run pre-backup check")
    expect(first_row.locator(".check-status")).to_have_text("Never checked")

    for _ in range(60):
        page.keyboard.press("Tab")
        if button.evaluate("b => b === document.activeElement"):
            break
    expect(button).to_be_focused()

    page.keyboard.press("Enter")

    expect(first_row.locator(".check-status")).not_to_have_text("Never checked")
    # The row was swapped, but the keyboard user is still on its button, and hears the result.
    expect(first_row.get_by_role("button", name="Run pre-backup check")).to_be_focused()
    expect(first_row.locator(".check-status")).to_have_text(re.compile(r"^(Passed|Failed)$"), timeout=SLOW)
    expect(page.locator("#live-announcer")).to_contain_text(re.compile(r"(Passed|Failed)"))
    assert Check.objects.count() == 1


# 10 ------------------------------------------------------------------------------------------------------
def test_run_a_batch_and_watch_its_progress(page, app, demo_fleet, task_worker):
    sign_in(page, app)
    for name in ("pg-payments-01", "pg-payments-02", "pg-orders", "pg-staging-01"):
        server_row(page, name).get_by_role("checkbox").check()
    page.get_by_role("button", name="Run check on 4 selected").click()

    expect(page.get_by_role("heading", name="Batch of 4 checks")).to_be_visible()
    progress = page.locator("#batch-progress")
    # One poll for the whole page carries the counts and, out of band, the rows that changed; it ends when the
    # slow server (3 s) is done.
    expect(progress).to_contain_text("4 / 4 done", timeout=SLOW)
    expect(progress).to_contain_text("3 passed")
    expect(progress).to_contain_text("1 not passed")
    expect(progress.locator("rect.bar-passed")).to_have_attribute("width", "750")  # 3 of 4, drawn to 1000
    expect(progress.locator("rect.bar-failed")).to_have_attribute("width", "250")
    rows = page.locator("#batch-checks tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.locator(".check-status").filter(has_text="Passed")).to_have_count(3)
    expect(rows.filter(has_text="pg-orders")).to_contain_text("Server not ready")
    expect(progress).not_to_have_attribute("hx-get", re.compile(".*"))
    snap(page, "batch")

    page.get_by_role("button", name="Re-run the 1 not passed").click()
    expect(page.get_by_role("heading", name="Batch of 1 check")).to_be_visible()
    expect(page.locator("#batch-progress")).to_contain_text("1 / 1 done", timeout=SLOW)
    expect(page.locator("#batch-checks")).to_contain_text("pg-orders")


# 11 ------------------------------------------------------------------------------------------------------
def _assert_fits_the_screen(page):
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    wide = page.evaluate("""[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right >
        document.documentElement.clientWidth + 1).slice(0, 5).map(e => e.tagName + '.' + e.className)""")
    assert overflow <= 0, f"wider than the screen: {wide}"


def test_the_server_list_and_a_check_read_on_a_phone(page, app, demo_fleet, task_worker):
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, app)
    row = run_check(page, "pg-orders")
    expect_finished(row, "Failed")
    expect(row).to_contain_text("Server not ready")
    # Rows stack as cards: nothing is wider than the screen.
    _assert_fits_the_screen(page)
    snap(page, "phone-server-list")
    row.get_by_role("link", name=re.compile("ago|now")).click()
    expect(page.get_by_role("heading", name="Check of pg-orders")).to_be_visible()
    _assert_fits_the_screen(page)
    snap(page, "phone-check-detail")

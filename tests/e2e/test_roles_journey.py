"""Roles in the browser: a viewer sees the servers without any button they may not use; an admin reads the audit
trail of what was just done; a tenant without app roles is told that everyone may do everything."""

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import server_row, sign_in, snap

pytestmark = pytest.mark.e2e


def test_a_viewer_browses_without_run_buttons_and_the_admin_reads_the_audit_trail(page, app, demo_fleet):
    sign_in(page, app, "vera@contoso.example", "Vera Viewer")
    expect(page.locator(".topbar .who")).to_contain_text("Viewer")
    row = server_row(page, "pg-payments-01")
    expect(row).to_be_visible()
    expect(row.get_by_role("button", name="Run pre-backup check")).to_have_count(0)
    expect(page.get_by_role("button", name="Run check on selected")).to_have_count(0)
    expect(page.get_by_role("link", name="Add a server")).to_have_count(0)
    expect(page.get_by_role("link", name="Audit")).to_have_count(0)
    snap(page, "roles-viewer")
    page.goto(app + "/audit/")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.locator("main")).to_contain_text("This needs the Admin role")

    page.context.clear_cookies()
    sign_in(page, app, "alice@contoso.example", "Alice Admin")
    page.get_by_role("link", name="Audit").click()
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    rows = page.locator("table.audit tbody tr")
    expect(rows.first).to_contain_text("Alice Admin")
    expect(rows.first).to_contain_text("Signed in")
    expect(page.locator("table.audit")).to_contain_text("Vera Viewer")
    snap(page, "audit-trail")


def test_a_tenant_without_app_roles_says_everyone_may_do_everything(page, app):
    sign_in(page, app, "charlie@fabrikam.example", "Charlie Chen")
    expect(page.locator(".topbar .who")).to_contain_text("No app roles defined in Entra ID: everyone can do")
    expect(page.get_by_role("link", name="Add your first server")).to_be_visible()

"""What the journeys share: signing in through the UI, finding a server's row, running its check."""

from pathlib import Path

from playwright.sync_api import Page, expect

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
# Long enough for the slowest demo server (3 s) plus polling and a busy machine; expect() returns as
# soon as the condition holds.
SLOW = 20_000


def sign_in(page: Page, base_url: str, upn: str = "alice@contoso.example", name: str = "Alice Admin") -> None:
    """Sign in through the UI: the dashboard sends the browser to the simulator's account picker."""
    page.goto(base_url + "/")
    expect(page.get_by_role("heading", name="Pick an account")).to_be_visible()
    page.locator(f"button[name='azuresim_upn'][value='{upn}']").click()
    expect(page).to_have_url(base_url + "/")
    expect(page.locator(".topbar .who")).to_contain_text(name)


def server_row(page: Page, server_name: str):
    """The server list's row of one server (found by its link, so pg-payments-01 is not pg-payments-010)."""
    link = page.get_by_role("link", name=server_name, exact=True)
    return page.locator("tr.server-row").filter(has=link)


def run_check(page: Page, server_name: str):
    """Click the row's "Run pre-backup check" and return the row."""
    row = server_row(page, server_name)
    row.get_by_role("button", name="Run pre-backup check").click()
    return row


def expect_finished(row, status: str, timeout: int = SLOW) -> None:
    expect(row.locator(".check-status")).to_have_text(status, timeout=timeout)


def snap(page: Page, name: str) -> None:
    """An extra screenshot, next to the one the `page` fixture takes at the end of each test."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

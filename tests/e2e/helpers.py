"""What the journeys share: signing in through the UI, finding a server's row, running its check, checking that
a page fits a phone's screen, and saving screenshots (the README's pictures among them)."""

import os
import shutil
from pathlib import Path

from playwright.sync_api import Page, expect

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
# `make screenshots` sets this: the journeys then also write the README's pictures, so none is copied by hand.
DOC_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WIDTHS = (1366, 390)  # a laptop and a phone (issue 15)
TEXT_THAT_MUST_SHOW = "main h1, main h2, main p, main button, main .message, main .badge, main label, main td"
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


def snap(page: Page, name: str, docs: str | None = None, full_page: bool = True) -> None:
    """An extra screenshot, next to the one the `page` fixture takes at the end of each test; with `docs`, and
    UPDATE_SCREENSHOTS=1 (`make screenshots`), also the README's docs/screenshots/<docs>.png. A phone's long page
    reads better in the README as its first screen (`full_page=False`)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    publish(path, docs)


def publish(path: Path, docs: str | None) -> None:
    """Under `make screenshots` (UPDATE_SCREENSHOTS=1), a journey's screenshot becomes the README's `docs`."""
    if docs and os.environ.get("UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(path, DOC_SCREENSHOTS / f"{docs}.png")


def set_width(page: Page, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 844 if width < 600 else 900})


def assert_fits_the_screen(page: Page) -> None:
    """What a phone user notices first: the page never scrolls sideways, and no text is cut inside its box."""
    wide = page.evaluate("""[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right >
        document.documentElement.clientWidth + 1 && e.getClientRects().length).slice(0, 5)
        .map(e => e.tagName + '.' + e.className)""")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"wider than the screen by {overflow} px: {wide}"
    # A deliberate ellipsis (the compact list's cards shorten long labels, with "…") is shortened, not cut.
    cut = page.evaluate("""selector => [...document.querySelectorAll(selector)].filter(e => e.getClientRects().length
        && getComputedStyle(e).overflow !== 'visible' && getComputedStyle(e).textOverflow !== 'ellipsis'
        && e.scrollWidth > e.clientWidth + 1).slice(0, 5)
        .map(e => e.tagName + ': ' + e.textContent.trim())""", TEXT_THAT_MUST_SHOW)
    assert not cut, f"text cut off: {cut}"


def assert_tappable(page: Page, locator) -> None:
    """A button a thumb can reach: visible, inside the screen's width, at least 24 px high (WCAG 2.5.8)."""
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    width = page.viewport_size["width"]
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= width + 1, (box, width)
    assert box["height"] >= 24, box

"""Browser journey through a batch: Run on all, the worker queuing it ("Queuing 4 of 14…"), the segmented
bar filling, cancel saying in numbers what it did (the header the same), and re-running only what might pass.

The worker's fan-out is slowed here (4 servers a chunk, 0.8 s each) so that the page's "Queuing" state lasts
long enough to be seen; everything else is the real worker thread, live server and simulator. At 1366 px and on
a 390 px phone: there the bar, the cancel message and the re-run buttons must fit the screen and be tappable."""

import re
import time

import pytest
from playwright.sync_api import expect

from checks import fanout, handoff
from tests.e2e.helpers import SLOW, WIDTHS, assert_fits_the_screen, assert_tappable, set_width, sign_in, snap

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("width", WIDTHS)
def test_run_on_all_queue_cancel_and_rerun_what_might_pass(page, app, demo_fleet, task_worker, monkeypatch, width):
    queue_next_chunk = fanout.queue_next_chunk

    def slowly(batch):
        time.sleep(0.8)
        return queue_next_chunk(batch)

    monkeypatch.setattr(handoff, "QUEUE_CHUNK", 4)
    monkeypatch.setattr(fanout, "queue_next_chunk", slowly)
    set_width(page, width)
    sign_in(page, app)
    page.get_by_role("button", name=re.compile(r"Run on all 14 servers")).click()

    expect(page.get_by_role("heading", name="Batch of 14 checks")).to_be_visible()
    progress = page.locator("#batch-progress")
    expect(progress).to_contain_text(re.compile(r"Queuing \d+ of 14\s+servers…"))
    # The bar is drawn from the first poll: the not-yet-queued servers as the queued segment.
    expect(progress.locator("svg.batch-bar rect.bar-queued")).to_be_visible()
    expect(progress).not_to_contain_text("Queuing", timeout=SLOW)

    # Some checks ran (one at a time on this worker): cancel the rest.
    expect(progress).to_contain_text(re.compile(r"\b([4-9]|1[0-3]) / 14 done"), timeout=SLOW)
    questions = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    progress.get_by_role("button", name="Cancel queued checks").click()
    message = page.locator(".message").first
    expect(message).to_contain_text(re.compile(r"^Cancelled \d+ queued checks?"))
    assert re.match(r"Cancel \d+ queued checks?\?", questions[0]), questions
    said = re.match(r"Cancelled (\d+ queued checks?(; \d+ w\w+ already running)?)", message.inner_text()).group(1)
    expect(page.locator(".batch-cancelled")).to_contain_text(said)

    # Once the running check ends the poll stops; the bar's segments add up to the whole width.
    expect(progress).not_to_have_attribute("hx-get", re.compile(".*"), timeout=SLOW)
    widths = progress.locator("rect.bar-segment").evaluate_all("rects => rects.map(r => +r.getAttribute('width'))")
    assert sum(widths) == 1000, widths
    expect(progress.locator("rect.bar-cancelled")).to_be_visible()
    expect(progress.locator("rect.bar-failed")).to_be_visible()

    # pg-analytics (403, Alice's own refusal) and pg-decommissioned (404) ran first, by name: left out, and why.
    left_out = progress.locator(".rerun-left-out")
    expect(left_out).to_contain_text("Not found (1)")
    expect(left_out).to_contain_text("Permission missing (1)")
    might_pass = progress.get_by_role("button", name=re.compile(r"^Re-run the \d+ that might pass now$"))
    expect(progress.get_by_role("button", name=re.compile(r"^Re-run all \d+ not passed$"))).to_be_visible()
    assert_fits_the_screen(page)
    for button in (might_pass, progress.get_by_role("button", name=re.compile(r"^Re-run all"))):
        assert_tappable(page, button)
    bar = progress.locator("svg.batch-bar").bounding_box()
    assert bar["x"] >= 0 and bar["x"] + bar["width"] <= width, bar
    snap(page, f"batch-journey-{width}", docs="batch" if width == 1366 else None)
    if width == 390:
        page.evaluate("window.scrollTo(0, 0)")
        snap(page, "batch-journey-390-first-screen", docs="batch-phone", full_page=False)
    n = int(re.search(r"\d+", might_pass.inner_text()).group())
    might_pass.click()
    expect(page.get_by_role("heading", name=f"Batch of {n} check{'s' if n != 1 else ''}")).to_be_visible()
    expect(page.locator("#batch-progress")).to_contain_text(f"{n} / {n} done", timeout=SLOW)

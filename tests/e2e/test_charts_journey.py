"""The pictures of readiness in a browser (issue 15), in light and dark: the list loads the fleet chart after the
page (one bar a day, 30 by default, 7 at a click) with its table of numbers, and a server's page its band of
readiness and its checks as ticks, with the band in words; no CSP violation, no script error."""

from datetime import timedelta

import pytest
from django.db.models import F
from playwright.sync_api import expect

from checks.models import Readiness
from dashboard.models import Server
from tests.e2e.helpers import ARTIFACTS, publish, sign_in, snap
from tests.e2e.test_watch_journey import watch_for_problems
from tests.factories import make_check

pytestmark = pytest.mark.e2e
# The bar's and the ready segment's fill: var(--ok) in each scheme (static/css/app.css).
OK = {"light": "rgb(30, 123, 52)", "dark": "rgb(111, 208, 138)"}


def conclude(server, category: str, days_ago: float) -> None:
    check = make_check(server, status="succeeded" if category == "passed" else "failed", category=category,
                       minutes_ago=days_ago * 24 * 60)
    Readiness.observe(check)


@pytest.fixture
def fleet_with_history(demo_fleet):
    """The demo servers registered 40 days ago; pg-payments-01 ready, then stopped 10 days ago, then ready 4 days
    ago; a few others ready from 20 days ago; pg-orders not ready."""
    Server.objects.update(added_at=F("added_at") - timedelta(days=40))
    servers = {s.name: s for s in Server.objects.all()}
    payments = servers["pg-payments-01"]
    for days_ago in (25, 20, 15):
        conclude(payments, "passed", days_ago)
    conclude(payments, "server_not_ready", 10)
    conclude(payments, "throttled", 8)
    for days_ago in (4, 2, 0.5):
        conclude(payments, "passed", days_ago)
    for name in ("pg-payments-02", "pg-ledger"):
        conclude(servers[name], "passed", 20)
        conclude(servers[name], "passed", 0.2)
    conclude(servers["pg-orders"], "server_not_ready", 3)
    return servers


def shot_down_to(page, selector: str, name: str, docs: str) -> None:
    """The page from its top down to the end of `selector`; the light ones are the README's `docs` picture."""
    box = page.locator(selector).bounding_box()
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True,
                    clip={"x": 0, "y": 0, "width": 1280, "height": box["y"] + box["height"] + 16})
    if name.endswith("-light"):
        publish(path, docs)


def chart_journey(page, app, scheme: str) -> None:
    page.emulate_media(color_scheme=scheme)
    problems = watch_for_problems(page)
    sign_in(page, app)
    chart = page.locator("#fleet-chart svg[role='img']")
    expect(chart).to_have_attribute("data-days", "30")
    expect(page.locator("#fleet-chart .chart-day")).to_have_count(30)
    expect(page.locator("#fleet-chart-summary")).to_contain_text("Share of servers ready per day, last 30 days")
    assert page.locator("#fleet-chart .chart-bar").last.evaluate("e => getComputedStyle(e).fill") == OK[scheme]
    shot_down_to(page, "#fleet-chart", f"fleet-chart-{scheme}", "fleet-chart")
    numbers = page.locator("#fleet-chart details")
    numbers.locator("summary").click()
    expect(numbers.locator("tbody tr")).to_have_count(30)
    page.locator("#fleet-chart").get_by_role("link", name="7 days").click()
    expect(page.locator("#fleet-chart svg")).to_have_attribute("data-days", "7")
    expect(page.locator("#fleet-chart .chart-day")).to_have_count(7)
    expect(page.locator("#fleet-chart details tbody tr")).to_have_count(7)
    snap(page, f"charts-list-{scheme}")

    page.get_by_role("link", name="pg-payments-01", exact=True).click()
    band = page.locator("#server-timeline svg[role='img']")
    expect(band).to_have_attribute("data-days", "30")
    # Ready (day 25), not ready (day 10), ready again (day 4), with stale stretches between confirmations.
    kinds = page.locator("#server-timeline rect.seg").evaluate_all("rs => rs.map(r => r.classList[1])")
    assert kinds[0] == "seg-unknown" and "seg-not-ready" in kinds and kinds[-1] == "seg-ready", kinds
    expect(page.locator("#server-timeline rect.chart-tick-passed")).to_have_count(6)
    expect(page.locator("#server-timeline rect.chart-tick-failed")).to_have_count(2)
    ready = page.locator("#server-timeline rect.seg-ready").last
    assert ready.evaluate("e => getComputedStyle(e).fill") == OK[scheme]
    words = page.locator("#server-timeline details")
    words.locator("summary").click()
    expect(words.locator("tbody tr")).to_have_count(len(kinds))
    expect(words.locator("tbody")).to_contain_text("Not ready")
    expect(page.locator("#readiness-changes li")).to_have_count(3)  # the list of changes stays as it was
    snap(page, f"charts-server-{scheme}")
    shot_down_to(page, "#readiness", f"server-timeline-{scheme}", "server-timeline")
    assert problems == []


def test_the_charts_in_the_light(page, app, fleet_with_history):
    chart_journey(page, app, "light")


def test_the_charts_in_the_dark(page, app, fleet_with_history):
    chart_journey(page, app, "dark")


def test_on_a_phone_the_fleet_chart_fits_the_screen(page, app, fleet_with_history):
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, app)
    expect(page.locator("#fleet-chart .chart-day")).to_have_count(30)
    box = page.locator("#fleet-chart svg").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    page.screenshot(path=str(ARTIFACTS / "charts-list-phone.png"))  # the first screen


# A label's size on screen: its CSS font size, times the SVG's scale when it is drawn inside one (an SVG's text
# shrinks with the SVG: 15 units were 7 px at 390 px wide).
RENDERED_SIZES = """els => els.map(e => parseFloat(getComputedStyle(e).fontSize)
    * (e.ownerSVGElement ? e.getScreenCTM().a : 1))"""
AXIS_WORDS = "svg text, .chart-axis li, .chart-axis span"


def fits_the_screen(page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "no scrolling sideways"


@pytest.mark.parametrize("width", [390, 1366])
def test_the_charts_words_are_readable_and_a_few_minutes_ready_can_be_seen(page, app, fleet_with_history, width):
    """Axis words at 12 px or more on screen (a phone too) beside their gridlines, without scrolling sideways;
    a server ready for 3 minutes 12 days ago shows a green stretch at least 2 px wide on its 30-day band."""
    staging = fleet_with_history["pg-staging-01"]
    for state, minutes_ago in (("server_not_ready", 20_000), ("passed", 17_280), ("server_not_ready", 17_277)):
        conclude(staging, state, minutes_ago / (24 * 60))
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, app)
    chart = page.locator("#fleet-chart")
    expect(chart.locator(".chart-day")).to_have_count(30)
    sizes = chart.locator(AXIS_WORDS).evaluate_all(RENDERED_SIZES)
    assert len(sizes) == 6 and min(sizes) >= 12, sizes  # 100%, 50%, 0%; the first, middle and last day
    for i, label in enumerate(("100%", "50%", "0%")):
        word = chart.locator(".chart-y li").nth(i)
        assert word.text_content() == label
        word = word.bounding_box()
        line = chart.locator(f"line[data-label='{label}']").bounding_box()
        assert abs(word["y"] + word["height"] / 2 - (line["y"] + line["height"] / 2)) <= 2, (label, word, line)
    plot, days = chart.locator("svg").bounding_box(), chart.locator(".chart-x span")
    assert abs(days.first.bounding_box()["x"] - plot["x"]) <= 2
    fits_the_screen(page, width)

    page.goto(f"{app}/servers/{staging.pk}/")
    band = page.locator("#server-timeline")
    expect(band.locator("svg[role='img']")).to_have_attribute("data-days", "30")
    sizes = band.locator(AXIS_WORDS).evaluate_all(RENDERED_SIZES)
    assert len(sizes) == 3 and min(sizes) >= 12, sizes
    assert band.locator(".chart-x span").last.text_content() == "now"
    ready = band.locator("rect.seg-ready")
    expect(ready).to_have_count(1)
    assert ready.bounding_box()["width"] >= 2, ready.bounding_box()
    expect(band.locator(".chart-widened")).to_contain_text("drawn a little wider")
    fits_the_screen(page, width)
    band.screenshot(path=str(ARTIFACTS / f"server-band-{width}.png"))
    chart_shot = ARTIFACTS / f"fleet-chart-{width}.png"
    page.goto(app + "/")
    page.locator("#fleet-chart .chart-x").wait_for()
    page.locator("#fleet-chart").screenshot(path=str(chart_shot))

"""The alerts page in a browser: add a Slack channel aimed at a local catcher, send a test message, watch the
delivery log row go from queued to sent without a reload; a signed webhook shows its secret once."""

import pytest
from playwright.sync_api import expect

from alerts.catcher import Catcher
from tests.e2e.helpers import SLOW, sign_in, snap

pytestmark = pytest.mark.e2e


@pytest.fixture
def catcher(settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    settings.ALERT_WEBHOOK_ALLOW_HTTP = True
    settings.ALERT_RETRY_DELAYS = [0.5]
    catcher = Catcher(statuses=[200]).start()
    yield catcher
    catcher.stop()


def test_add_a_channel_send_a_test_message_and_see_it_delivered(page, app, task_worker, catcher, settings):
    settings.ALERT_TESTS_PER_HOUR = 2
    sign_in(page, app)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Alerts").click()
    expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
    page.get_by_role("link", name="Add a channel").click()

    page.get_by_label("Name").fill("#db-alerts")
    page.get_by_label("Kind").select_option("slack")
    page.get_by_label("Send to").fill("hooks.slack.com/services/T0/B0/tokenABCD")
    page.get_by_role("button", name="Add channel").click()
    expect(page.get_by_text("Enter a full URL starting with https://.")).to_be_visible()  # a 400, by design
    problems: list[str] = []  # from here on: no console error (CSP, htmx)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.get_by_label("Send to").fill(f"{catcher.url}/services/T0/B0/tokenABCD")
    page.get_by_role("button", name="Add channel").click()
    expect(page.get_by_text("Added the channel #db-alerts.")).to_be_visible()
    row = page.locator("#channel-" + page.locator("tr[id^=channel-]").first.get_attribute("id").split("-")[1])
    expect(row).to_contain_text(f"{catcher.url}/…ABCD")
    expect(row).not_to_contain_text("tokenABCD")

    row.get_by_role("button", name="Send a test message").click()
    delivery = page.locator("tr.delivery-row").first
    expect(delivery).to_contain_text("Test message for #db-alerts")
    expect(delivery.locator(".badge")).to_have_text("Sent", timeout=SLOW)
    expect(page.get_by_text("Nothing sent yet.")).to_have_count(0)
    assert catcher.received and catcher.received[0].json()["text"].startswith("Test message for #db-alerts")
    snap(page, "alerts", docs="alerts")

    page.get_by_role("link", name="Add a channel").click()
    page.get_by_label("Name").fill("Our receiver")
    page.get_by_label("Kind").select_option("webhook")
    page.get_by_label("Send to").fill(f"{catcher.url}/ltr")
    page.get_by_role("button", name="Add channel").click()
    secret = page.get_by_label("Signing secret").input_value()
    assert len(secret) >= 40
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    page.get_by_role("link", name="Back to alerts").click()
    expect(page.locator("main")).to_contain_text(f"…{secret[-4:]}")
    expect(page.locator("main")).not_to_contain_text(secret)
    assert not problems, problems

    # The tenant's test messages are limited (a test is never held in a burst): the third this hour is refused,
    # and the page says so in words, not as a failed request.
    page.goto(f"{app}/alerts/")
    test = row.get_by_role("button", name="Send a test message")
    test.click()  # the second: sent
    expect(page.locator("tr.delivery-row", has_text="Test message for #db-alerts")).to_have_count(2)
    test.click()
    expect(page.get_by_role("alert")).to_contain_text("This tenant has sent 2 test messages this hour")
    expect(page.get_by_role("alert")).not_to_contain_text("error")
    expect(page.locator("tr.delivery-row", has_text="Test message for #db-alerts")).to_have_count(2)

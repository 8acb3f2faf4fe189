"""A check's page: everything ARM said and everything support asks for, and nothing unescaped."""

import pytest

from tests.factories import make_check

EVIL = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


@pytest.fixture
def client_alice(client, alice):
    client.force_login(alice)
    return client


def test_it_shows_who_when_how_long_and_the_ids(client_alice, alice, server):
    check = make_check(server, alice, request_id="rid-1", correlation_request_id="cid-1", client_request_id="cli-1",
                       attempts=1)
    html = client_alice.get(f"/checks/{check.pk}/").content.decode()
    for expected in ["Alice Admin", alice.object_id, "2024-08-01", "2.0 s", "rid-1", "cid-1", "cli-1",
                     "numberOfContainers", "ltr-1", server.resource_id]:
        assert expected in html, expected
    # Each id with its copy button, the button naming the element that holds that id.
    for target, value in [("request-id", "rid-1"), ("correlation-id", "cid-1"), ("client-request-id", "cli-1")]:
        assert f'<code id="{target}">{value}</code>' in html and f'data-copy="#{target}">Copy</button>' in html


def test_it_shows_the_full_arm_error(client_alice, alice, server):
    check = make_check(
        server, alice, status="failed", http_status=400, error_code="OuterCode", error_message="Outer message",
        error_target="backupSettings.backupName",
        error_details=[{"code": "InnerCode", "message": "Inner message"}],
        error_additional_info=[{"type": "PolicyViolation", "info": {"policy": "p1"}}],
    )
    html = client_alice.get(f"/checks/{check.pk}/").content.decode()
    for expected in ["OuterCode", "Outer message", "backupSettings.backupName", "InnerCode", "Inner message",
                     "PolicyViolation", "p1"]:
        assert expected in html, expected


@pytest.mark.parametrize("page", ["/", "/checks/", "/checks/{pk}/", "/servers/{server}/", "/servers/{server}/row/",
                                  "/checks/{pk}/row/"])
def test_upstream_text_is_escaped_on_every_page(client_alice, alice, server, page):
    check = make_check(
        server, alice, status="failed", error_code=EVIL, error_message=EVIL, error_target=EVIL, summary=EVIL,
        error_details=[{"code": EVIL, "message": EVIL}], error_additional_info=[{"type": EVIL, "info": EVIL}],
        response_excerpt=EVIL, request_id=EVIL, correlation_request_id=EVIL,
    )
    html = client_alice.get(page.format(pk=check.pk, server=server.pk)).content.decode()
    assert "<script>alert(1)" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;" in html or "&lt;img" in html


def test_details_are_json_and_each_attempt_shows_its_wait_and_request_id(client_alice, alice, server):
    """Support asks for every attempt's x-ms-request-id; details are shown as the JSON ARM sent, not Python."""
    log = [{"n": 1, "asked": 0, "waited": 0.01, "why": "first attempt", "status": 503, "request_id": "rid-a",
            "retry_after": 1.5},
           {"n": 2, "asked": 1.5, "waited": 1.52, "why": "Retry-After after 503", "status": 200, "request_id": "rid-b"}]
    check = make_check(server, alice, attempts=2, attempt_log=log, request_id="rid-b", status="failed",
                       error_details=[{"code": "Inner", "flag": True, "none": None}],
                       error_additional_info=[{"type": "T", "info": {"ok": False}}])
    html = client_alice.get(f"/checks/{check.pk}/").content.decode()
    assert '&quot;flag&quot;: true' in html and '&quot;none&quot;: null' in html and '&quot;ok&quot;: false' in html
    assert "True" not in html.split("Details")[1].split("</pre>")[0]
    # Waits in the words of every duration: milliseconds under a second (issue 15).
    for expected in ["rid-a", "rid-b", "<td>10 ms</td>", "<td>1.5 s</td>", "Retry-After after 503", "Retry-After 1.5 s",
                     "HTTP 503"]:
        assert expected in html, expected


def test_an_active_check_polls_for_its_own_part_of_the_page_only(client_alice, alice, server):
    check = make_check(server, alice, status="running", finished_at=None, summary="asking")
    page = client_alice.get(f"/checks/{check.pk}/").content.decode()
    assert "<html" in page and f'hx-get="/checks/{check.pk}/"' in page and 'hx-trigger="every 2s"' in page
    fragment = client_alice.get(f"/checks/{check.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert fragment.lstrip().startswith('<div id="check"') and "<html" not in fragment and "crumbs" not in fragment
    assert "This check is running: asking." in " ".join(fragment.split())
    check.status, check.category = "succeeded", "passed"
    check.save()
    done = client_alice.get(f"/checks/{check.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert "hx-get" not in done and "Passed" in done


def test_a_throttled_checks_page_says_throttled_once_and_its_retry_after_as_every_duration(client_alice, alice, server):
    # Found in a walkthrough: "Throttled by Azure. Throttled by Azure: try again..." and the same Retry-After as
    # "30 s" in the attempts' summary and "30.0 s" in their table: now both as every duration is said.
    check = make_check(server, alice, status="failed", category="throttled",
                       summary="Throttled by Azure: try again after the time it gave.",
                       attempt_log=[{"n": 1, "status": 429, "retry_after": 30.0, "waited": 0}])
    page = " ".join(client_alice.get(f"/checks/{check.pk}/").content.decode().split())
    assert page.count("Throttled by Azure") == 1 + page.count("<title>Throttled by Azure"), page
    assert page.count("Retry-After 30.0 s") == 2 and "Retry-After 30 s" not in page

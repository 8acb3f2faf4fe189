"""Every message in the user's words (issue 15): a filter's error names the field as the page labels it (never the
URL's name, "Q: Ensure this value…"), points the field's aria-describedby at itself, and durations read the same on
every page (milliseconds under a second). The history's filter offers the failure categories and says "Status"
for what its column calls the status, with the statuses still in progress apart."""

import re
from datetime import timedelta
from html import unescape
from pathlib import Path

import pytest
from django.utils import timezone

from backups.models import LtrBackup
from dashboard.durations import duration_words
from tests.factories import make_check

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def client_alice(client, alice):
    client.force_login(alice)
    return client


def errors_of(html: str) -> list[str]:
    """The texts of the filter's error box, one a paragraph."""
    box = re.search(r'<div class="form-error" role="alert">(.*?)</div>', html, re.S)
    assert box, "no error box"
    return [unescape(re.sub(r"\s+", " ", p).strip()) for p in re.findall(r"<p[^>]*>(.*?)</p>", box.group(1), re.S)]


def described_by_points_at_an_element(html: str, field_id: str) -> None:
    field = re.search(rf'<(?:input|select)[^>]*id="{field_id}"[^>]*>', html)
    assert field and 'aria-invalid="true"' in field.group(0), field_id
    described = re.search(r'aria-describedby="([^"]+)"', field.group(0)).group(1)
    for target in described.split():
        assert f'id="{target}"' in html, f"{field_id} is described by {target}, which is not on the page"


@pytest.mark.parametrize(("query", "expected"), [
    ({"by": "someone"}, "Run by: “someone” is not a choice here: Anyone or Me."),
    ({"outcome": "exploded"}, "Status: “exploded” is not a status the history knows: pick one from the list."),
    ({"category": "bad"}, "Category: “bad” is not a category the history knows: pick one from the list."),
    ({"server": "x" * 300}, "Server: Type at most 100 characters of a server's name."),
    ({"server": "pg-nowhere"}, "Server: no server is named “pg-nowhere” in your tenant."),
])
def test_a_bad_history_filter_is_named_by_its_label(client_alice, alice, server, query, expected):
    html = client_alice.get("/checks/", query).content.decode()
    assert errors_of(html) == [expected, "Showing no checks."]
    assert "Ensure this value" not in html and "By:" not in html and "Outcome:" not in html
    described_by_points_at_an_element(html, f"id_{next(iter(query))}")


def test_the_history_filter_offers_the_categories_and_groups_the_statuses(client_alice, alice, server):
    html = client_alice.get("/checks/").content.decode()
    assert re.search(r"<label>Status\s*<select name=\"outcome\"", html), "labelled as its column, Status"
    statuses = re.search(r'<select name="outcome".*?</select>', html, re.S).group(0)
    assert re.search(r'<optgroup label="In progress">\s*<option value="queued">Queued</option>\s*'
                     r'<option value="running">Running</option>\s*</optgroup>', statuses)
    assert '<optgroup label="Finished">' in statuses and ">Passed<" in statuses and ">Interrupted<" in statuses
    categories = re.search(r'<select name="category".*?</select>', html, re.S).group(0)
    caller = categories.split('<optgroup label="About the caller or the path to Azure">')[1]
    for label in ["Throttled by Azure", "Permission missing", "Sign-in required", "Azure-side failure",
                  "Network or timeout"]:
        assert f">{label}<" in caller, label
    for label in ["Server not ready", "Not found", "Provider not registered"]:
        assert f">{label}<" in categories.split("About the caller")[0], label


def test_filtering_the_history_by_a_failure_category_and_by_in_progress(client_alice, alice, server, staging_server):
    make_check(server, alice, backup_name="throttled-one", status="failed", category="throttled")
    make_check(server, alice, backup_name="denied-one", status="failed", category="permission_missing")
    make_check(staging_server, alice, backup_name="waiting-one", status="queued", category="")
    html = client_alice.get("/checks/", {"category": "throttled"}).content.decode()
    assert "throttled-one" in html and "denied-one" not in html and "waiting-one" not in html
    html = client_alice.get("/checks/", {"outcome": "queued"}).content.decode()
    assert "waiting-one" in html and "throttled-one" not in html


def test_a_bad_audit_filter_is_named_by_its_label(client_alice, alice):
    html = client_alice.get("/audit/", {"since": "yesterday"}).content.decode()
    assert errors_of(html) == ["From: Enter a valid date.", "Showing no events."]
    assert "Since:" not in html
    described_by_points_at_an_element(html, "id_since")


def test_a_bad_evidence_filter_is_named_by_its_label(client_alice, alice, server):
    html = client_alice.get("/evidence/", {"state": "bogus"}).content.decode()
    assert errors_of(html)[0].startswith("Readiness now: Select a valid choice.")
    assert "State:" not in html
    assert re.search(r"<label>Readiness now\s*<select name=\"state\"", html), "the label the error uses"
    described_by_points_at_an_element(html, "id_state")


def test_a_forms_errors_are_where_aria_describedby_says(client_alice, alice):
    html = client_alice.post("/servers/add/", {"subscription_id": "nope", "name": "-x-"}).content.decode()
    for name in ("subscription_id", "resource_group", "name"):
        described_by_points_at_an_element(html, f"id_{name}")
    assert len(re.findall(r'id="id_name_error"', html)) == 1, "one element per field's errors: ids are unique"


def test_a_group_of_choices_is_a_fieldset_named_by_its_legend(client_alice, alice, server):
    html = client_alice.get("/schedules/new/").content.decode()
    for legend in ("Scope", "Cadence"):
        assert re.search(rf'<fieldset class="field">\s*<legend>{legend}</legend>', html), legend
    # The page's explanation names the choices as their buttons read.
    assert "“Every N hours”" in html and "“Daily at a time”" in html
    for value, label in (("every", "Every N hours"), ("daily", "Daily at a time")):
        assert re.search(rf'<input type="radio" name="cadence" value="{value}"[^>]*>\s*{label}\s*</label>', html)


@pytest.mark.parametrize(("seconds", "words"), [
    (0.0384, "38 ms"), (0.9994, "999 ms"), (0.9996, "1.0 s"), (2, "2.0 s"), (59.9, "59.9 s"), (412, "6 min 52 s"),
    (420, "7 min"), (3900, "1 h 5 min"), (7200, "2 h"),
])
def test_durations_read_the_same_everywhere(seconds, words):
    assert duration_words(seconds) == words


def test_a_check_under_a_second_says_milliseconds_on_each_page(client_alice, alice, server):
    started = timezone.now()
    check = make_check(server, alice, started_at=started, finished_at=started + timedelta(milliseconds=38),
                       attempt_log=[{"n": 1, "waited": 0.004, "why": "first attempt", "status": 200}])
    for url in (f"/checks/{check.pk}/", "/checks/", f"/servers/{server.pk}/"):
        html = client_alice.get(url).content.decode()
        assert "38 ms" in html, url
        assert "0.0 s" not in html and "0.04 s" not in html, url
    assert "<td>4 ms</td>" in client_alice.get(f"/checks/{check.pk}/").content.decode()


def test_an_ltr_backups_duration_in_the_same_words(client, logged_in, server):
    logged_in("alice@contoso.example")
    start = timezone.now() - timedelta(days=1)
    for name, took in (("quick", timedelta(milliseconds=420)), ("weekly", timedelta(seconds=412))):
        LtrBackup.objects.create(server=server, tenant_id=server.tenant_id, backup_name=name, status="Succeeded",
                                 start_time=start, end_time=start + took, first_seen_at=start, last_seen_at=start)
    html = client.get(f"/servers/{server.pk}/backups/").content.decode()
    assert "420 ms" in html and "6 min 52 s" in html and "0\xa0minutes" not in html


def test_no_template_comment_spans_lines():
    """Django's {# #} ends at the line's end: one over several lines is shown to the user as text."""
    offenders = []
    for path in ROOT.glob("**/templates/**/*.html"):
        if ".venv" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "{#" in line and "#}" not in line[line.index("{#"):]:
                offenders.append(f"{path.relative_to(ROOT)}:{number}")
    assert offenders == []

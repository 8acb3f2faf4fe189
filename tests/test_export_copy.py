"""The CSV and JSON Lines exports on PostgreSQL are written by COPY (checks.copy_export): the same bytes as the
Python export for the same filters, their end line, their failed line when the database stops midway, and an
export cut short (a killed worker, a lost connection) that no reader can take for a complete one."""

import csv
import io
import json
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.db.models import F, Func
from django.utils import timezone

from checks import copy_export
from checks.models import Check
from checks.views import history
from dashboard.models import SubscriptionName
from tests.factories import make_check

on_postgres = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="COPY is PostgreSQL's")


@pytest.fixture
def client_alice(client, alice):
    client.force_login(alice)
    return client


def awkward_history(alice, bob, server, staging_server, fabrikam_server, charlie):
    """Checks whose every exported cell is a case of its own: quotes, commas, line breaks, formulas, tabs,
    empty and missing values, times with and without microseconds, durations on the half millisecond."""
    now = timezone.now().replace(microsecond=123456)
    kolkata = now.astimezone(ZoneInfo("Asia/Kolkata"))  # written in UTC, as every time is
    make_check(server, alice, backup_name="plain", minutes_ago=1)
    make_check(server, alice, status="failed", category="permission_missing", backup_name="quotes",
               error_code="AuthorizationFailed", error_message='He said "no", then\nleft;\r\nagain\rand, again',
               created_at=now.replace(microsecond=0), started_at=now.replace(microsecond=0),
               finished_at=now.replace(microsecond=0) + timedelta(microseconds=1_234_500), http_status=403)
    make_check(server, bob, status="failed", category="throttled", backup_name="formulas",
               error_message='=HYPERLINK("http://evil","x")', error_code="+cmd", request_id="@sum(1)",
               correlation_request_id="-2", client_request_id="\tab", api_version="\rcr",
               created_at=now - timedelta(hours=1), started_at=now - timedelta(hours=1),
               finished_at=now - timedelta(hours=1) - timedelta(microseconds=500), number_of_containers=-3)
    make_check(staging_server, alice, status="signin_required", category="signin_required", backup_name="no-answer",
               http_status=0, error_message="", minutes_ago=90)
    make_check(staging_server, bob, status="running", backup_name="still-running", started_at=now, minutes_ago=0)
    make_check(server, alice, status="cancelled", backup_name="never-started", started_at=None, minutes_ago=200,
               requested_by_name="Ünïcødé, “quoted” ✓", number_of_containers=0)
    make_check(server, bob, status="failed", category="azure_failure", backup_name="escapes", http_status=500,
               error_message='C:\\temp\\n is not \\"a newline\\"; ctl \x01\x02\x1f\x7f, \u2028 and \U0001f600',
               error_code="\\", request_id='"', requested_by_name="\b\f\t",
               created_at=kolkata - timedelta(days=400), started_at=kolkata - timedelta(days=400),
               finished_at=kolkata - timedelta(days=400) + timedelta(seconds=12))
    make_check(fabrikam_server, charlie, backup_name="another-tenant")
    # Subscription names: one a formula with quotes and controls, one plain, and another tenant's name for the
    # first subscription (never this tenant's).
    for tenant, subscription, name in [
            (server.tenant_id, server.subscription_id.lower(), '=Prod "quoted", ünï \\ \x01 ✓'),
            (server.tenant_id, staging_server.subscription_id.lower(), "Staging"),
            (fabrikam_server.tenant_id, server.subscription_id.lower(), "Fabrikam's name")]:
        SubscriptionName.objects.create(tenant_id=tenant, subscription_id=subscription, display_name=name,
                                        fetched_at=now)


def csv_of(client, params) -> bytes:
    return b"".join(client.get("/checks/export.csv", params).streaming_content)


def jsonl_of(client, params) -> bytes:
    return b"".join(client.get("/checks/export.jsonl", params).streaming_content)


@on_postgres
@pytest.mark.parametrize("params", [{}, {"server": "pg-payments-01"}, {"outcome": "failed"},
                                    {"category": "throttled"}, {"by": "me"},
                                    {"outcome": "failed", "category": "permission_missing", "by": "me"},
                                    {"server": "pg-nowhere"}])
def test_copy_writes_the_same_bytes_as_the_python_export(client_alice, alice, bob, charlie, server, staging_server,
                                                         fabrikam_server, params, monkeypatch):
    awkward_history(alice, bob, server, staging_server, fabrikam_server, charlie)
    copied = csv_of(client_alice, params)
    monkeypatch.setattr(history, "EXPORT_WITH_COPY", False)
    assert csv_of(client_alice, params) == copied
    text = copied.decode()
    assert "another-tenant" not in text and text.endswith(" rows\n")
    if not params:
        rows = list(csv.DictReader(io.StringIO(text.rsplit("# end of export", 1)[0])))
        assert len(rows) == 7 and text.splitlines()[-1] == "# end of export: 7 rows"
        by_name = {row["backup_name"]: row for row in rows}
        assert by_name["quotes"]["error_message"] == 'He said "no", then\nleft;\r\nagain\rand, again'
        assert by_name["quotes"]["duration_seconds"] == "1.235" and by_name["quotes"]["created_at"].endswith(".000000+00:00")
        assert by_name["formulas"]["error_message"].startswith("'=") and by_name["formulas"]["error_code"] == "'+cmd"
        assert by_name["formulas"]["number_of_containers"] == "'-3" and by_name["formulas"]["duration_seconds"] == "'-0.001"
        assert by_name["no-answer"]["http_status"] == "" and by_name["still-running"]["finished_at"] == ""
        assert by_name["escapes"]["error_message"].startswith("C:\\temp\\n is not")
        assert by_name["plain"]["subscription_name"].startswith("'=Prod \"quoted\", ünï")
        assert by_name["no-answer"]["subscription_name"] == "Staging" and "Fabrikam" not in text


ALL_FILTERS = [{}, {"server": "pg-payments-01"}, {"outcome": "failed"}, {"category": "throttled"}, {"by": "me"},
               {"outcome": "failed", "category": "permission_missing", "by": "me"}, {"server": "pg-nowhere"}]


@on_postgres
@pytest.mark.parametrize("params", ALL_FILTERS)
def test_copy_writes_the_same_json_lines_as_the_python_export(client_alice, alice, bob, charlie, server,
                                                               staging_server, fabrikam_server, params, monkeypatch):
    awkward_history(alice, bob, server, staging_server, fabrikam_server, charlie)
    copied = jsonl_of(client_alice, params)
    monkeypatch.setattr(history, "EXPORT_WITH_COPY", False)
    assert jsonl_of(client_alice, params) == copied
    lines = [json.loads(line) for line in copied.decode().split("\n")[:-1]]
    assert lines[-1]["end_of_export"] is True and lines[-1]["rows"] == len(lines) - 1
    assert all(line.get("backup_name") != "another-tenant" for line in lines)
    if not params:
        by_name = {line["backup_name"]: line for line in lines[:-1]}
        assert len(by_name) == 7
        assert by_name["quotes"]["error_message"] == 'He said "no", then\nleft;\r\nagain\rand, again'
        assert by_name["quotes"]["duration_seconds"] == 1.235 and by_name["escapes"]["duration_seconds"] == 12.0
        assert by_name["formulas"]["error_code"] == "+cmd" and by_name["formulas"]["duration_seconds"] == -0.001
        assert by_name["formulas"]["number_of_containers"] == -3 and by_name["no-answer"]["http_status"] is None
        assert by_name["still-running"]["finished_at"] is None and by_name["never-started"]["duration_seconds"] is None
        escapes = by_name["escapes"]
        assert escapes["error_message"] == 'C:\\temp\\n is not \\"a newline\\"; ctl \x01\x02\x1f\x7f, \u2028 and \U0001f600'
        assert escapes["error_code"] == "\\" and escapes["x_ms_request_id"] == '"' and escapes["requested_by"] == "\b\f\t"
        assert by_name["never-started"]["requested_by"] == "Ünïcødé, “quoted” ✓"
        assert escapes["created_at"].endswith(".123456+00:00"), "in UTC, as every time is"
        # Times as JSON's to_json writes them: no trailing zeros in a fraction, none at all for a whole second.
        assert by_name["quotes"]["finished_at"].endswith(".2345+00:00") and "." not in by_name["quotes"]["created_at"]


def test_the_export_has_one_header_and_rows_every_value_quoted(client_alice, alice, server):
    make_check(server, alice, backup_name="one", number_of_containers=2)
    lines = csv_of(client_alice, {}).decode().split("\n")
    assert lines[0] == ",".join(history.EXPORT_NAMES)
    assert lines[1].startswith('"') and ',"one",' in lines[1] and ',"2",' in lines[1]
    assert lines[2] == "# end of export: 1 rows" and lines[3] == ""


@on_postgres
@pytest.mark.parametrize("as_json", [False, True])
def test_a_copy_that_fails_midway_says_the_file_is_incomplete(client_alice, alice, server, monkeypatch, as_json):
    make_check(server, alice, backup_name="newer", minutes_ago=1)
    older = make_check(server, alice, backup_name="older", minutes_ago=2)
    real = copy_export.json_value if as_json else copy_export.column

    def failing_on_the_older(name, field, names):
        if name == "attempts":  # the database fails on the second row, after it sent the first
            return Func(F("id"), template=f"CASE WHEN %(expressions)s = {older.pk} "
                        "THEN (1 / (%(expressions)s - %(expressions)s))::text ELSE '1' END")
        return real(name, field, names)

    monkeypatch.setattr(copy_export, "json_value" if as_json else "column", failing_on_the_older)
    with connection.cursor() as cursor:  # rows straight off the index, as at scale, not sorted first
        cursor.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off")
    text = (jsonl_of if as_json else csv_of)(client_alice, {}).decode()
    last = '{"export_failed": true, "rows": 1}' if as_json else "# export FAILED after 1 rows: this file is incomplete"
    assert text.splitlines()[-1] == last
    assert "newer" in text and "end of export" not in text and "end_of_export" not in text
    assert connection.cursor().execute("SELECT 1") is not None  # the connection is still usable


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize("copy", [True, False])
def test_an_export_cut_short_is_recognisably_incomplete(alice, server, copy, as_json, monkeypatch):
    """A worker killed or a connection lost midway: what arrived so far ends without the end line, so a reader
    that looks for it (as the README tells people to) refuses the file."""
    if copy and connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    monkeypatch.setattr(history, "EXPORT_BUFFER_CHARS", 4096)
    for i in range(300):
        make_check(server, alice, backup_name=f"b-{i:03d}", minutes_ago=i)
    checks = Check.objects.for_tenant(alice.tenant_id).newest_first()
    lines = history.JsonLines if as_json else history.CsvLines

    def export():
        if copy:
            return copy_export.stream(checks, lines(), history.EXPORT_COLUMNS, 4096, names={}, as_json=as_json)
        return (piece.encode() for piece in history._stream(checks, lines(), {}))

    pieces = export()
    received = next(pieces) + next(pieces)  # then the worker dies: the rest never comes
    pieces.close()
    text = received.decode()
    assert 0 < text.count("\n") < 300
    assert not re.search(r"^(# end of export|.*end_of_export)", text, re.M) and "FAILED" not in text
    assert "export_failed" not in text
    complete = b"".join(export()).decode()
    end = '{"end_of_export": true, "rows": 300}\n' if as_json else "# end of export: 300 rows\n"
    assert complete.startswith(text) and complete.endswith(end)


def test_the_python_export_rounds_the_half_millisecond_away_from_zero():
    assert history._seconds(timedelta(microseconds=1_234_500)) == 1.235
    assert history._seconds(timedelta(microseconds=-500)) == -0.001
    assert history._seconds(timedelta(microseconds=1_234_499)) == 1.234
    assert history._seconds(timedelta(seconds=2)) == 2.0


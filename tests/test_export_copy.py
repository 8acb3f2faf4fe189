"""The CSV export on PostgreSQL is written by COPY (checks.copy_export): the same bytes as the Python export for
the same filters, its end line, its failed line when the database stops midway, and an export cut short
(a killed worker, a lost connection) that no reader can take for a complete one."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import F, Func
from django.utils import timezone

from checks import copy_export
from checks.models import Check
from checks.views import history
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
    make_check(fabrikam_server, charlie, backup_name="another-tenant")


def csv_of(client, params) -> bytes:
    return b"".join(client.get("/checks/export.csv", params).streaming_content)


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
        assert len(rows) == 6 and text.splitlines()[-1] == "# end of export: 6 rows"
        by_name = {row["backup_name"]: row for row in rows}
        assert by_name["quotes"]["error_message"] == 'He said "no", then\nleft;\r\nagain\rand, again'
        assert by_name["quotes"]["duration_seconds"] == "1.235" and by_name["quotes"]["created_at"].endswith(".000000+00:00")
        assert by_name["formulas"]["error_message"].startswith("'=") and by_name["formulas"]["error_code"] == "'+cmd"
        assert by_name["formulas"]["number_of_containers"] == "'-3" and by_name["formulas"]["duration_seconds"] == "'-0.001"
        assert by_name["no-answer"]["http_status"] == "" and by_name["still-running"]["finished_at"] == ""


def test_the_export_has_one_header_and_rows_every_value_quoted(client_alice, alice, server):
    make_check(server, alice, backup_name="one", number_of_containers=2)
    lines = csv_of(client_alice, {}).decode().split("\n")
    assert lines[0] == ",".join(history.EXPORT_NAMES)
    assert lines[1].startswith('"') and ',"one",' in lines[1] and ',"2",' in lines[1]
    assert lines[2] == "# end of export: 1 rows" and lines[3] == ""


@on_postgres
def test_a_copy_that_fails_midway_says_the_file_is_incomplete(client_alice, alice, server, monkeypatch):
    make_check(server, alice, backup_name="newer", minutes_ago=1)
    older = make_check(server, alice, backup_name="older", minutes_ago=2)
    real = copy_export.column

    def failing_on_the_older(name, field):
        if name == "attempts":  # the database fails on the second row, after it sent the first
            return Func(F("id"), template=f"CASE WHEN %(expressions)s = {older.pk} "
                        "THEN 1 / (%(expressions)s - %(expressions)s) ELSE 1 END")
        return real(name, field)

    monkeypatch.setattr(copy_export, "column", failing_on_the_older)
    with connection.cursor() as cursor:  # rows straight off the index, as at scale, not sorted first
        cursor.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off")
    text = csv_of(client_alice, {}).decode()
    assert text.splitlines()[-1] == "# export FAILED after 1 rows: this file is incomplete"
    assert "newer" in text and "end of export" not in text
    assert connection.cursor().execute("SELECT 1") is not None  # the connection is still usable


@pytest.mark.parametrize("copy", [True, False])
def test_an_export_cut_short_is_recognisably_incomplete(alice, server, copy, monkeypatch):
    """A worker killed or a connection lost midway: what arrived so far ends without the end line, so a reader
    that looks for it (as the README tells people to) refuses the file."""
    if copy and connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    monkeypatch.setattr(history, "EXPORT_BUFFER_CHARS", 4096)
    for i in range(300):
        make_check(server, alice, backup_name=f"b-{i:03d}", minutes_ago=i)
    checks = Check.objects.for_tenant(alice.tenant_id).newest_first()

    def export():
        if copy:
            return copy_export.stream(checks, history.CsvLines(), history.EXPORT_COLUMNS, 4096)
        return (piece.encode() for piece in history._stream(checks, history.CsvLines(), {}))

    pieces = export()
    received = next(pieces) + next(pieces)  # then the worker dies: the rest never comes
    pieces.close()
    text = received.decode()
    assert 0 < text.count("\n") < 300
    assert not re.search(r"^# end of export", text, re.M) and "FAILED" not in text
    complete = b"".join(export()).decode()
    assert complete.startswith(text) and complete.endswith("# end of export: 300 rows\n")


def test_the_python_export_rounds_the_half_millisecond_away_from_zero():
    assert history._seconds(timedelta(microseconds=1_234_500)) == 1.235
    assert history._seconds(timedelta(microseconds=-500)) == -0.001
    assert history._seconds(timedelta(microseconds=1_234_499)) == 1.234
    assert history._seconds(timedelta(seconds=2)) == 2.0


"""Benchmark: the charts' URLs at fleet scale, next to two baselines computed in the same run from the same
rows (not a test).

    .venv/bin/python bench/charts.py                                  # 10,000 servers, a year, 1,000,000 checks
    .venv/bin/python bench/charts.py --servers 1000 --checks 100000   # a quick run
    .venv/bin/python bench/charts.py --write docs/benchmarks.md       # and put the table there

The fleet is bench/pages.py's (built by SQL in the database: 10,000 servers in 2 tenants, checks over a year,
each server's readiness changes replayed from its conclusive checks), in its own database, ltr_charts_bench
(DATABASE_URL to choose another). The measured user is in the larger tenant. Each URL is requested through
Django's test Client (in process, DEBUG off): median of --runs requests after one warm-up, and the SQL
statements of one more. The baselines give the same 90 days: a naive loop (per day, the ORM asks each server's
latest change up to that day's end: 2 queries a day) and one plain SQL statement (a running sum of every change
of the tenant's history by day); their numbers are compared with the chart's, so a wrong chart fails the run.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import pages  # noqa: E402 (after the path)

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/ltr_charts_bench"
MARKER = "bench: charts"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--checks", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--naive-runs", type=int, default=3, help="timed runs of the naive per-day loop")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--write", help="put the table in this Markdown file (between the bench's markers)")
    args = parser.parse_args()
    db_url = os.environ.get("DATABASE_URL") or DEFAULT_DB
    if not db_url.startswith("postgres"):
        sys.exit("bench/charts.py measures on PostgreSQL: set a postgres:// DATABASE_URL")
    pages.create_database(db_url)
    os.environ.update({"DEBUG": "0", "DATABASE_URL": db_url, "LOG_LEVEL": "ERROR",
                       "DJANGO_SETTINGS_MODULE": "config.settings", "VAR_DIR": tempfile.mkdtemp(prefix="ltr-charts-")})
    import django

    django.setup()
    built = pages.build(args)
    text = report(args, built, measure(args))
    print(text)
    if args.write:
        write_section(Path(args.write), text)


def timed(run, runs: int) -> dict:
    """Medians of `runs` calls after one warm-up: time, SQL time and statements."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    run()
    times, sql, counts = [], [], []
    for _ in range(runs):
        with CaptureQueriesContext(connection) as queries:
            t0 = time.perf_counter()
            answer = run()
            times.append(time.perf_counter() - t0)
        sql.append(sum(float(q["time"]) for q in queries.captured_queries))
        counts.append(len(queries))
    return {"median": statistics.median(times), "queries": max(counts), "sql": statistics.median(sql),
            "answer": answer}


def measure(args) -> dict:
    from django.conf import settings
    from django.test import Client

    from checks import charts
    from checks.models import Check, ReadinessChange
    from dashboard.models import Server, User

    settings.ALLOWED_HOSTS = ["*"]
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    client = Client()
    client.force_login(User.objects.get(object_id=pages.ALICE_OID))
    busiest = (Check.objects.filter(tenant_id=pages.CONTOSO).values("server").order_by()
               .annotate(n=django_count()).order_by("-n").first())
    server = Server.objects.get(pk=busiest["server"])

    def get(url):
        def run():
            response = client.get(url, headers={"HX-Request": "true"})
            assert response.status_code == 200, (url, response.status_code)
            return response

        return run

    figures = {f"chart{days}": timed(get(f"/servers/chart/?days={days}"), args.runs) for days in (7, 30, 90)}
    figures["filtered"] = timed(get(f"/servers/chart/?days=90&subscription={pages.SUBSCRIPTIONS[pages.CONTOSO][0]}"),
                                args.runs)
    figures["timeline"] = timed(get(f"/servers/{server.pk}/timeline/?days=90"), args.runs)
    figures["list"] = timed(lambda: client.get("/"), 3)
    figures["naive"] = timed(naive_days, args.naive_runs)
    figures["plain_sql"] = timed(plain_sql_days, args.runs)
    fill_daily_table()
    figures["daily_table"] = timed(lambda: read_daily_table(day_ends()), args.runs)
    chart = [(d.day, d.ready, d.total) for d in charts.fleet_days(
        Server.objects.for_tenant(pages.CONTOSO).active(), pages.CONTOSO, 90)]
    for name in ("naive", "plain_sql", "daily_table"):
        assert figures[name]["answer"] == chart, f"the {name} baseline and the chart disagree"
    figures["facts"] = {"changes": ReadinessChange.objects.filter(tenant_id=pages.CONTOSO).count(),
                        "changes90": ReadinessChange.objects.filter(
                            tenant_id=pages.CONTOSO, at__gte=datetime.now().astimezone() - timedelta(days=90)).count(),
                        "server_checks": busiest["n"], "share": chart[-1]}
    return figures


def django_count():
    from django.db.models import Count

    return Count("pk")


def day_ends(days: int = 90) -> list:
    from django.utils import timezone

    today = timezone.localdate()
    return [today - timedelta(days=back) for back in range(days - 1, -1, -1)]


def naive_days() -> list:
    """The baseline a first version would write: per day, each server's latest change by that day's end."""
    from django.db.models import OuterRef, Subquery
    from django.utils import timezone

    from checks.models import ReadinessChange
    from dashboard.models import Server

    result = []
    servers = Server.objects.for_tenant(pages.CONTOSO).active()
    for day in day_ends():
        end = timezone.make_aware(datetime.combine(day + timedelta(days=1), datetime.min.time()))
        latest = ReadinessChange.objects.filter(server=OuterRef("pk"), at__lt=end).order_by("-at", "-id")
        registered = servers.filter(added_at__lt=end)
        ready = registered.annotate(then=Subquery(latest.values("to_state")[:1])).filter(then="ready").count()
        result.append((day, ready, registered.count()))
    return result


PLAIN_SQL = """
    WITH days AS (SELECT generate_series(%(first)s::date, %(last)s::date, interval '1 day')::date AS day),
    moves AS MATERIALIZED (
        SELECT (rc.at AT TIME ZONE %(tz)s)::date AS day,
               count(*) FILTER (WHERE rc.to_state = 'ready') - count(*) FILTER (WHERE rc.from_state = 'ready') AS net
        FROM checks_readinesschange rc JOIN dashboard_server s ON s.id = rc.server_id AND s.archived_at IS NULL
        WHERE rc.tenant_id = %(tenant)s GROUP BY 1),
    joins AS MATERIALIZED (
        SELECT (added_at AT TIME ZONE %(tz)s)::date AS day, count(*) AS n FROM dashboard_server
        WHERE tenant_id = %(tenant)s AND archived_at IS NULL GROUP BY 1)
    SELECT d.day, (SELECT coalesce(sum(net), 0) FROM moves m WHERE m.day <= d.day),
           (SELECT coalesce(sum(n), 0) FROM joins j WHERE j.day <= d.day)
    FROM days d ORDER BY d.day"""


def plain_sql_days() -> list:
    """The baseline in one statement: a running sum of every change of the tenant's history, by day."""
    from django.conf import settings
    from django.db import connection

    ends = day_ends()
    with connection.cursor() as cursor:
        cursor.execute(PLAIN_SQL, {"first": ends[0], "last": ends[-1], "tz": settings.TIME_ZONE,
                                   "tenant": pages.CONTOSO})
        return [(day, min(int(ready), int(total)), int(total)) for day, ready, total in cursor.fetchall()]


def fill_daily_table() -> None:
    """The alternative not taken: a per-tenant table of one row a day that the write path would keep (here
    filled once from the plain SQL's answer), to time its read (`read_daily_table`)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'bench_charts_daily'")
        if not cursor.fetchone()[0]:
            cursor.execute("CREATE TABLE bench_charts_daily (tenant_id varchar(36), day date, ready int, total int, "
                           "PRIMARY KEY (tenant_id, day))")
        cursor.execute("DELETE FROM bench_charts_daily")
        cursor.executemany("INSERT INTO bench_charts_daily VALUES (%s, %s, %s, %s)",
                           [(pages.CONTOSO, *row) for row in plain_sql_days()])
        cursor.execute("ANALYZE bench_charts_daily")


def read_daily_table(ends) -> list:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT day, ready, total FROM bench_charts_daily WHERE tenant_id = %s AND day BETWEEN %s AND %s"
                       " ORDER BY day", [pages.CONTOSO, ends[0], ends[-1]])
        return [tuple(row) for row in cursor.fetchall()]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def report(args, built: dict, f: dict) -> str:
    facts = f["facts"]
    rows = [
        ("fleet chart, 7 days (`/servers/chart/?days=7`)", f["chart7"]),
        ("fleet chart, 30 days", f["chart30"]),
        ("fleet chart, 90 days", f["chart90"]),
        ("fleet chart, 90 days, one subscription", f["filtered"]),
        (f"server timeline, 90 days (the busiest server: {facts['server_checks']} checks in a year)", f["timeline"]),
        ("baseline: naive loop, 90 days (per day: each server's latest change, ORM)", f["naive"]),
        ("baseline: one plain SQL, 90 days (running sum over the whole history)", f["plain_sql"]),
        ("the alternative not taken: reading 90 rows of a per-tenant daily table", f["daily_table"]),
        ("for scale: the server list page itself (not loading the chart)", f["list"]),
    ]
    day, ready, total = facts["share"]
    lines = [
        f"{built['servers']:,} servers and {built['checks']:,} checks; the measured tenant has {built['my_servers']:,}"
        f" servers and {facts['changes']:,} readiness changes in a year ({facts['changes90']:,} in the last 90 days);"
        f" {ready:,} of {total:,} ready on {day}. {datetime.now().astimezone():%Y-%m-%d %H:%M %Z},"
        f" load average {os.getloadavg()[0]:.1f}.",
        "",
        "| what | median | queries | SQL time |",
        "| --- | --- | --- | --- |",
        *[f"| {name} | {ms(x['median'])} | {x['queries']} | {ms(x['sql'])} |" for name, x in rows],
        "",
        f"The chart's 90 days against the naive loop: {f['naive']['median'] / f['chart90']['median']:,.0f}x faster; "
        f"against the plain SQL: {f['plain_sql']['median'] / f['chart90']['median']:,.1f}x. All three gave the same "
        "numbers for every day (the run checks it).",
    ]
    return "\n".join(lines)


def write_section(path: Path, table: str) -> None:
    """Replace the section between this bench's markers in `path`, or add it at the end."""
    begin, end = f"<!-- {MARKER} -->", f"<!-- /{MARKER} -->"
    text = path.read_text()
    block = f"{begin}\n{HEADING}\n\n{INTRO}\n{table}\n\n{NOTES}\n{end}"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


HEADING = "## Charts at 10,000 servers and a year of readiness changes (issue 15)"
INTRO = """`.venv/bin/python bench/charts.py --write docs/benchmarks.md` builds bench/pages.py's fleet in its own
database (ltr_charts_bench) and requests the charts' URLs (the fragments htmx loads after the list and the
server page) signed in as a user of the larger tenant, next to two baselines for the same 90 days computed in
the same run: a naive per-day ORM loop and one plain SQL statement over the whole history. Medians of the
requests, their SQL time and statements (2 of a URL's are the session and the user); and the read of the
alternative not built, a per-tenant daily table (filled here from the baseline's answer).
"""
NOTES = """Reading the figures: the chart's 3 queries read the servers' readiness now (one aggregate) and only the
window's changes, so 7 days costs less than 90 and a year of history before the window costs nothing; the
naive loop asks 2 queries a day (180 for 90 days) and the single plain SQL reads every change of the tenant's
history. The chart is loaded by htmx after the list, so none of it is the list's own time. A per-tenant daily
table reads 90 small rows instead of the window's changes (the row above: the SQL saved is the chart's SQL time
less that), at the price of a write on every change, a job to close each day, a backfill, and no filters;
not worth it for a picture loaded after the page (see `checks/charts.py`). The machine was shared with other sessions' test suites (the load average above): the
query counts and the ratios are the steady figures, the milliseconds moved by up to 2x between runs.
"""


if __name__ == "__main__":
    main()

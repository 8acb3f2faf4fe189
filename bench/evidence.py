"""Benchmark: the evidence report for 1,000 servers and a year of history, on PostgreSQL.

    make bench-evidence   (or: DATABASE_URL=postgres://postgres@127.0.0.1:5432/ltr_evidence_bench \
                           .venv/bin/python bench/evidence.py --servers 1000 --write docs/benchmarks.md)

The history is what a nightly schedule and weekly LTR backups leave in a year: per server one pre-check a day
(365; one in twenty not ready, each flip a readiness change), 52 LTR backups (one in twenty failed), its
readiness and its LTR summary. The database is emptied and filled again (bulk inserts) unless `--reuse` finds
it already filled for the same number of servers.

Each figure is the median (and the best) of `--repeat` requests through Django's test client (the whole
request: session, middleware, queries, template or CSV), after one warm-up, with the CPU time the Python
process spent in it (the rest is waiting for PostgreSQL, or for a core on a shared machine) and the number of
queries it took. The server list
(its first page of 100) is measured in the same run as a reference. `--write FILE` replaces the section
between the evidence markers (or appends it): other sections of the file are kept.
"""

import argparse
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TENANT = "11111111-1111-4111-8111-111111111111"
BEGIN, END = "<!-- bench: evidence report -->", "<!-- /bench: evidence report -->"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/ltr_evidence_bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="keep the data if it is already there")
    parser.add_argument("--write", help="a markdown file to put the figures in (its evidence section)")
    args = parser.parse_args()
    db_url = os.environ.get("DATABASE_URL") or DEFAULT_DB
    os.environ.update({"DEMO_MODE": "1", "DEBUG": "0", "DATABASE_URL": db_url, "LOG_LEVEL": "WARNING",
                       "DJANGO_SETTINGS_MODULE": "config.settings"})
    ensure_database(db_url)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)
    user, filled = fill(args)
    figures = measure(args, user)
    figures = {"database": vendor(), "servers": f"{args.servers:,}", **filled, **figures}
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    if args.write:
        write(Path(args.write), figures)


def ensure_database(db_url: str) -> None:
    """Create the bench's PostgreSQL database if it is missing (only names starting ltr_ are touched)."""
    if not db_url.startswith("postgres"):
        return
    import psycopg

    base, name = db_url.rsplit("/", 1)
    if not name.startswith("ltr_"):
        sys.exit(f"refusing to use database {name!r}: the bench only creates databases named ltr_*")
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def vendor() -> str:
    from django.db import connection

    return f"{connection.vendor} {'.'.join(str(n) for n in divmod(connection.pg_version, 10000))}" if (
        connection.vendor == "postgresql") else connection.vendor


def fill(args) -> tuple[object, dict]:
    """The bench user and the fleet's year; the row counts."""
    from backups.models import LtrBackup
    from checks.models import Check
    from checks.readiness import ReadinessChange
    from dashboard.models import Server, User

    user, _ = User.objects.get_or_create(
        username=f"{TENANT}.bench", defaults={"tenant_id": TENANT, "object_id": "bench", "display_name": "Bench",
                                              "upn": "bench@contoso.example"})
    fleet = Server.objects.filter(tenant_id=TENANT)
    if not (args.reuse and fleet.count() == args.servers):
        started = time.monotonic()
        empty()
        seed(args, user)
        print(f"filled in {time.monotonic() - started:.0f} s")
    analyze()
    counts = {"pre-checks kept": Check.objects.count(), "readiness changes kept": ReadinessChange.objects.count(),
              "LTR backups kept": LtrBackup.objects.count()}
    return user, {k: f"{v:,}" for k, v in counts.items()}


def analyze() -> None:
    """Fresh planner statistics, as autovacuum keeps them on a live database: right after a bulk load the planner
    still believes the tables empty and picks nested loops that take minutes over a year of checks."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def empty() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE backups_ltrbackup, backups_ltrrefresh, checks_readinesschange, checks_readiness, "
                       "checks_check, dashboard_server CASCADE" if connection.vendor == "postgresql" else "SELECT 1")


def seed(args, user) -> None:
    from dashboard.models import Server

    now = datetime.now(UTC).replace(hour=2, minute=30, second=0, microsecond=0)
    servers = Server.objects.bulk_create([
        Server(tenant_id=TENANT, subscription_id=f"0b5e{i % 5:04x}-0000-4000-8000-0000000000be",
               resource_group=f"rg-bench-{i % 20:02d}", name=f"pg-bench-{i:04d}", added_by=user,
               added_at=now - timedelta(days=args.days + 1))
        for i in range(args.servers)])
    rng = random.Random(13)
    for chunk in range(0, len(servers), 50):
        seed_year(servers[chunk:chunk + 50], user, now, args.days, rng)


def seed_year(servers, user, now: datetime, days: int, rng: random.Random) -> None:
    """A year of nightly checks, the readiness changes they caused, weekly LTR backups, for a few servers."""
    from backups.models import LtrBackup, LtrRefresh
    from backups.refresh import summary_of
    from checks.models import Check
    from checks.readiness import Readiness, ReadinessChange

    checks = []
    for server in servers:
        for day in range(days, 0, -1):
            at = now - timedelta(days=day)
            ok = rng.random() >= 0.05
            checks.append(Check(
                server=server, tenant_id=TENANT, backup_name=f"{server.name}-ltr-{at:%Y%m%d}",
                status="succeeded" if ok else "failed", category="passed" if ok else "server_not_ready",
                requested_by=user, requested_by_oid="bench", requested_by_name="Bench", requested_by_tenant=TENANT,
                api_version="2024-08-01", created_at=at, started_at=at, finished_at=at + timedelta(seconds=1),
                http_status=200 if ok else 400))
    checks = Check.objects.bulk_create(checks, batch_size=5000)
    changes, readiness, backups = [], [], []
    for server in servers:
        state = "unknown"
        mine = [c for c in checks if c.server_id == server.pk]
        for check in mine:
            new = "ready" if check.category == "passed" else "not_ready"
            if new != state:
                changes.append(ReadinessChange(server=server, tenant_id=TENANT, at=check.finished_at, from_state=state,
                                               to_state=new, reason="" if new == "ready" else check.category,
                                               caused_by=check))
                since, changed_by, state = check.finished_at, check, new
        readiness.append(Readiness(server=server, tenant_id=TENANT, state=state, since=since, changed_by=changed_by,
                                   last_conclusive=mine[-1], last_conclusive_at=mine[-1].finished_at,
                                   reason="" if state == "ready" else "server_not_ready"))
        for week in range(days // 7, 0, -1):
            start = now - timedelta(days=7 * week, hours=-1)
            status = "Succeeded" if rng.random() >= 0.05 else "Failed"
            backups.append(LtrBackup(server=server, tenant_id=TENANT, backup_name=f"{server.name}-w{week}", status=status,
                                     start_time=start, end_time=start + timedelta(minutes=7), percent_complete=100,
                                     first_seen_at=start, last_seen_at=now))
    ReadinessChange.objects.bulk_create(changes, batch_size=5000)
    Readiness.objects.bulk_create(readiness)
    LtrBackup.objects.bulk_create(backups, batch_size=5000)
    LtrRefresh.objects.bulk_create([LtrRefresh(server=s, tenant_id=TENANT, refreshed_at=now, first_read_at=now,
                                               **summary_of(s)) for s in servers])


def measure(args, user) -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(user)
    today = datetime.now(UTC).date()
    year = {"start": f"{today - timedelta(days=args.days):%Y-%m-%d}"}
    cases = [
        ("the report page, last 30 days (default)", "/evidence/", {}),
        (f"the report page, the whole {args.days} days", "/evidence/", year),
        (f"the CSV, the whole {args.days} days", "/evidence/report.csv", year),
        (f"the JSON, the whole {args.days} days", "/evidence/report.json", year),
        ("reference: the server list (first 100)", "/", {}),
    ]
    figures = {}
    for label, url, params in cases:
        assert client.get(url, params).status_code == 200  # warm-up
        times, cpu = [], []
        for _ in range(args.repeat):
            with CaptureQueriesContext(connection) as queries:
                started, started_cpu = time.perf_counter(), time.process_time()
                response = client.get(url, params)
                times.append(time.perf_counter() - started)
                cpu.append(time.process_time() - started_cpu)
            assert response.status_code == 200, (url, response.status_code)
        figures[label] = (f"{statistics.median(times) * 1000:.0f} ms median, {min(times) * 1000:.0f} ms best of "
                          f"{args.repeat}; {statistics.median(cpu) * 1000:.0f} ms of it Python's CPU; "
                          f"{len(queries)} queries, {len(response.content) / 1e6:.1f} MB")
    return figures


def write(path: Path, figures: dict) -> None:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    block = (
        f"{BEGIN}\n`make bench-evidence` (bench/evidence.py): the evidence report over a fleet with a year of history "
        "(one pre-check a day per server, one in twenty not ready; a weekly LTR backup, one in twenty failed), "
        "through Django's test client (the whole request), median of repeated requests after a warm-up. "
        f"Machine: {machine}, shared with other sessions' tests while measuring. Run on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Target: under 1 s.\n\n"
        "| figure | value |\n| --- | --- |\n" + "".join(f"| {k} | {v} |\n" for k, v in figures.items()) + END
    )
    text = path.read_text() if path.exists() else ""
    begin, end = text.find(BEGIN), text.find(END)
    if begin >= 0 and end > begin:
        text = text[:begin] + block + text[end + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n## Evidence report (issue 13)\n\n" + block + "\n"
    path.write_text(text.rstrip("\n") + "\n")


if __name__ == "__main__":
    main()

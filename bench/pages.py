"""Benchmark: every list page, the batch poll, "Run on all" and the exports at fleet scale, each next to its
baseline measured in the same run: Django's admin changelist of the same rows, and `psql \\copy` of the same
join (not a test).

    make bench-pages                                        # 10,000 servers, 1,000,000 checks, docs/benchmarks.md
    .venv/bin/python bench/pages.py --servers 1000 --checks 100000      # a quick run, prints the table

The fleet lives in its own PostgreSQL database (ltr_pages_bench, created if missing; DATABASE_URL to choose
another) and is built by SQL in the database (generate_series, a few statements), then reused by later runs
of the same size. 2 tenants: the measured one (Contoso) has 90% of the servers in 4 subscriptions, the other
(Fabrikam) the rest in a fifth; checks are spread over a year (85% passed, the rest over the failure categories),
about 10% of them run by the signed-in user. Pages are requested through Django's test Client (in process,
production settings, DEBUG off) signed in through the Azure simulator as that user, so the times are server
time: median and p95 of --runs requests after one warm-up, the SQL statements of one more request, and the
bytes of the answer. The admin pages are requested as a superuser.
"""

import argparse
import gzip
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/ltr_pages_bench"
CONTOSO, FABRIKAM = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
ALICE_OID = "a11ce000-0000-4000-8000-000000000001"
SUBSCRIPTIONS = {CONTOSO: [f"0b5e000{i}-0000-4000-8000-0000000000be" for i in range(1, 5)],
                 FABRIKAM: ["0b5e0005-0000-4000-8000-0000000000be"]}
# Bumped whenever the data built changes shape, so an older build is not reused.
BUILD_VERSION = 3
MARKER = "bench: pages"
# The targets (server time on this machine).
LIST_TARGET_MS, ADMIN_RATIO, PAGE_KB, RUN_ALL_S, POLL_MS, POLL_KB, EXPORT_RATIO = 25, 10, 80, 1, 50, 20, 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--checks", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=9, help="timed requests per page (after one warm-up)")
    parser.add_argument("--admin-runs", type=int, default=3,
                        help="timed requests per admin page (its search and deep pages take seconds each)")
    parser.add_argument("--post-runs", type=int, default=3, help="timed 'Run on all' POSTs")
    parser.add_argument("--rebuild", action="store_true", help="build the data even if a build of this size exists")
    parser.add_argument("--write", help="put the table in this Markdown file (between the bench's markers)")
    parser.add_argument("--only", choices=["exports"], help="measure only the exports (prints their table)")
    parser.add_argument("--export-runs", type=int, default=3, help="timed runs of each export and of psql \\copy")
    parser.add_argument("--gunicorn", action="store_true",
                        help="also download both exports from gunicorn with its default timeout (30 s)")
    parser.add_argument("--port", type=int, default=8600, help="first of this bench's 4 ports (simulator, gunicorn)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="ltr-bench-pages-"))
    db_url = os.environ.get("DATABASE_URL") or DEFAULT_DB
    if not db_url.startswith("postgres"):
        sys.exit("bench/pages.py measures on PostgreSQL (psql \\copy is its baseline): set a postgres:// DATABASE_URL")
    create_database(db_url)
    os.environ.update({"DEMO_MODE": "1", "DEBUG": "0", "DATABASE_URL": db_url, "LOG_LEVEL": "ERROR",
                       "DJANGO_SETTINGS_MODULE": "config.settings", "VAR_DIR": str(workdir),
                       "MAX_ACTIVE_CHECKS_PER_TENANT": str(max(10_000, args.servers)),
                       "RATE_LIMIT_POSTS_PER_MINUTE": "10000"})
    from azuresim import Simulator

    scenario = {
        "tenants": [{"id": CONTOSO, "name": "Contoso", "users": [
            {"oid": ALICE_OID, "upn": "alice@contoso.example", "name": "Alice Admin"}]}],
        "apps": [{"client_id": "d3d3d3d3-0000-4000-8000-000000000001", "client_secret": "demo-client-secret",
                  "multi_tenant": True}],
        "subscriptions": [{"id": sub, "name": f"Sub {i}", "tenant": CONTOSO, "principals": ["*"],
                           "resource_groups": listed_in_azure(args.servers, sub)}
                          for i, sub in enumerate(SUBSCRIPTIONS[CONTOSO])],
    }
    # Ports from this bench's range (8600-8619), so a run never takes another helper's.
    sim = Simulator(scenario=scenario, state_dir=str(workdir / "sim"), https_port=args.port,
                    http_port=args.port + 1).start()
    os.environ.update({"AZURE_AUTHORITY_HOST": sim.https_url, "AZURE_ARM_ENDPOINT": sim.https_url,
                       "AZURE_CA_BUNDLE": str(sim.ca_path)})
    try:
        import django

        django.setup()
        built = build(args)
        figures = measure(args, db_url, workdir)
    finally:
        sim.stop()
    text = exports_report(args, built, figures) if args.only else report(args, built, figures)
    print(text)
    if args.write and not args.only:
        write_section(Path(args.write), text)


def create_database(db_url: str) -> None:
    import psycopg

    parsed = urlparse(db_url)
    name = parsed.path.lstrip("/")
    with psycopg.connect(db_url.replace(parsed.path, "/postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


# ---- Building the fleet: SQL in the database, a few statements for a million rows.

# (share of checks, status, category, http status, ARM error code, message): 85% pass, the rest fail in the
# ways a real fleet does (not ready, throttled, permission, Azure-side, ...).
OUTCOMES = [
    (0.85, "succeeded", "passed", 200, "", ""),
    (0.04, "failed", "server_not_ready", 400, "PostgreSQLFlexOperationFailedUserError",
     "The server is not in a state that allows long-term backup: its state is Stopped."),
    (0.03, "failed", "throttled", 429, "SubscriptionRequestsThrottled",
     "Number of 'write' requests for subscription exceeded the limit of '200' for time interval '01:00:00'."),
    (0.03, "failed", "permission_missing", 403, "AuthorizationFailed",
     "The client does not have authorization to perform action "
     "'Microsoft.DBforPostgreSQL/flexibleServers/ltrPreBackup/action' over scope."),
    (0.015, "failed", "azure_failure", 500, "InternalServerError", "An unexpected error occured while processing."),
    (0.01, "failed", "network", None, "", ""),
    (0.01, "signin_required", "signin_required", 401, "ExpiredAuthenticationToken", "The access token expired."),
    (0.005, "failed", "not_found", 404, "ResourceNotFound", "The Resource was not found."),
    (0.005, "failed", "busy", 409, "ServerBusy", "Another operation is in progress on the server."),
    (0.005, "cancelled", "", None, "", ""),
]
CONCLUSIVE = ("passed", "server_not_ready", "not_found", "provider_not_registered", "busy")
USERS_PER_TENANT = 8  # user 0 owns the schedules (half of the checks), user 1 is the signed-in one (a tenth)


def build(args) -> dict:
    """Build the fleet unless this database holds one of the same size and version; what it holds."""
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_pages_meta (servers int, checks int, version int, "
                       "built_at timestamptz)")
        cursor.execute("SELECT servers, checks, version FROM bench_pages_meta")
        if cursor.fetchone() == (args.servers, args.checks, BUILD_VERSION) and not args.rebuild:
            print(f"Reusing the fleet of {args.servers:,} servers and {args.checks:,} checks.", flush=True)
            cursor.execute("VACUUM ANALYZE checks_check, dashboard_server")  # after an earlier run's undo
            return fleet_facts()
    t0 = time.perf_counter()
    call_command("flush", interactive=False, verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM bench_pages_meta")
    make_users()
    steps = [("servers", servers_sql(args.servers)), ("checks", checks_sql(args.checks)),
             ("last checks", LAST_CHECK_SQL), ("readiness changes", CHANGES_SQL), ("readiness", READINESS_SQL),
             *derived_steps()]
    for name, sql in steps:
        t = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql)
        print(f"  built {name} in {time.perf_counter() - t:.1f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # as a long-lived table would be: visibility map set, statistics fresh
        cursor.execute("INSERT INTO bench_pages_meta VALUES (%s, %s, %s, now())",
                       [args.servers, args.checks, BUILD_VERSION])
    print(f"Built {args.servers:,} servers and {args.checks:,} checks in {time.perf_counter() - t0:.0f} s", flush=True)
    return fleet_facts()


def make_users() -> None:
    from dashboard.models import User

    users = []
    for tenant, short in ((CONTOSO, "contoso"), (FABRIKAM, "fabrikam")):
        for k in range(USERS_PER_TENANT):
            oid = ALICE_OID if (tenant, k) == (CONTOSO, 1) else f"{k:08d}-0000-4000-8000-{tenant[:12]}"
            name = "Alice Admin" if oid == ALICE_OID else f"User {k} of {short}"
            users.append(User(username=f"{tenant}.{oid}", tenant_id=tenant, object_id=oid, display_name=name,
                              upn=f"user{k}@{short}.example", password="!"))  # noqa: S106 (unusable: they sign in through Entra)
    User.objects.bulk_create(users)
    User.objects.create_superuser(username="bench-admin", password=None, email="")


def listed_in_azure(n: int, subscription_id: str) -> list[dict]:
    """What ARM lists in one of Contoso's subscriptions for "Import from Azure": the servers servers_sql registers
    there, less one in 90 (deleted in Azure since), and as many again as a tenth of the fleet, not registered."""
    groups = {f"rg-{g:02d}": [] for g in range(25)}
    contoso = int(n * 0.9)
    for g in [*range(1, contoso + 1), *range(n + 1, n + 1 + n // 10)]:
        if SUBSCRIPTIONS[CONTOSO][g % 4] == subscription_id and (g > n or g % 90):
            groups[f"rg-{g % 25:02d}"].append({"name": f"pg-fleet-{g:05d}"})
    return [{"name": name, "servers": servers} for name, servers in groups.items()]


def servers_sql(n: int) -> str:
    """90% of the servers in Contoso's 4 subscriptions, the rest in Fabrikam's one; 25 resource groups each."""
    contoso = ", ".join(f"'{s}'" for s in SUBSCRIPTIONS[CONTOSO])
    return f"""
        INSERT INTO dashboard_server (tenant_id, subscription_id, resource_group, name, label, added_at, archived_at)
        SELECT CASE WHEN g <= {int(n * 0.9)} THEN '{CONTOSO}' ELSE '{FABRIKAM}' END,
               CASE WHEN g <= {int(n * 0.9)} THEN (ARRAY[{contoso}])[1 + g % 4] ELSE '{SUBSCRIPTIONS[FABRIKAM][0]}' END,
               'rg-' || lpad((g % 25)::text, 2, '0'), 'pg-fleet-' || lpad(g::text, 5, '0'),
               CASE WHEN g % 7 = 0 THEN 'team ' || (g % 13) ELSE '' END, now() - interval '400 days', NULL
        FROM generate_series(1, {n}) g"""  # noqa: S608 (the bench's own constants)


def checks_sql(n: int) -> str:
    """`n` checks over the last 365 days, in time order (as they would have been inserted), each of a random
    server by one of its tenant's users, with an outcome drawn from OUTCOMES."""
    bounds, edge = [], 0.0
    for share, *_ in OUTCOMES:
        edge += share
        bounds.append(edge)
    bucket = "CASE " + " ".join(f"WHEN r_out < {b:.4f} THEN {i}" for i, b in enumerate(bounds[:-1])) + \
        f" ELSE {len(OUTCOMES) - 1} END"
    outcomes = ", ".join(
        f"({i}, '{st}', '{cat}', {http if http else 'NULL'}, '{code}', '{msg.replace(chr(39), chr(39) * 2)}')"
        for i, (_, st, cat, http, code, msg) in enumerate(OUTCOMES))
    return f"""
        SELECT setseed(0.42);
        CREATE TEMP TABLE bench_servers AS
            SELECT row_number() OVER (ORDER BY id) AS k, id, tenant_id, name FROM dashboard_server;
        CREATE TEMP TABLE bench_users AS
            SELECT row_number() OVER (PARTITION BY tenant_id ORDER BY username) - 1 AS k, id, tenant_id, object_id,
                   display_name FROM dashboard_user WHERE NOT is_superuser;
        CREATE TEMP TABLE bench_outcomes (b int, status text, category text, http int, code text, message text);
        INSERT INTO bench_outcomes VALUES {outcomes};
        INSERT INTO checks_check (server_id, tenant_id, batch_id, backup_name, status, category, summary,
            requested_by_id, requested_by_oid, requested_by_name, requested_by_tenant, created_at, started_at,
            finished_at, api_version, http_status, number_of_containers, error_code, error_message, error_target,
            error_details, error_additional_info, response_excerpt, request_id, correlation_request_id,
            client_request_id, attempts, attempt_log, throttled_attempts, claims_challenge)
        SELECT s.id, s.tenant_id, NULL, s.name || '-ltr-' || to_char(x.at, 'YYYYMMDD-HH24MI'), o.status, o.category,
            CASE WHEN o.category = 'passed' THEN '' ELSE o.message END,
            u.id, u.object_id, u.display_name, u.tenant_id, x.at, x.at + interval '5 ms',
            x.at + interval '5 ms' + (0.05 + random() * 3) * interval '1 second', '2024-08-01', o.http,
            CASE WHEN o.category = 'passed' THEN 1 + (x.g % 3) END, o.code, o.message, '',
            CASE WHEN o.code = '' THEN '[]'::jsonb ELSE jsonb_build_array(jsonb_build_object('code', o.code)) END,
            '[]'::jsonb, '', gen_random_uuid()::text, gen_random_uuid()::text, gen_random_uuid()::text,
            1, CASE WHEN o.http IS NULL THEN '[{{"error": "ReadTimeout"}}]'::jsonb
                    ELSE jsonb_build_array(jsonb_build_object('status', o.http)) END,
            CASE WHEN o.http = 429 THEN 1 ELSE 0 END, ''
        FROM (SELECT g, now() - interval '365 days' * random() AS at, random() AS r_server, random() AS r_out,
                     random() AS r_user FROM generate_series(1, {n}) g) x
        JOIN bench_servers s ON s.k = 1 + floor(x.r_server * (SELECT count(*) FROM bench_servers))
        JOIN bench_outcomes o ON o.b = ({bucket})
        JOIN bench_users u ON u.tenant_id = s.tenant_id AND u.k = CASE WHEN x.r_user < 0.5 THEN 0
             WHEN x.r_user < 0.6 THEN 1 ELSE 2 + floor((x.r_user - 0.6) / 0.4 * {USERS_PER_TENANT - 2}) END
        ORDER BY x.at;
        """  # noqa: S608 (the bench's own constants)


LAST_CHECK_SQL = """
    UPDATE dashboard_server s SET last_check_id = x.id
    FROM (SELECT DISTINCT ON (server_id) server_id, id FROM checks_check ORDER BY server_id, created_at DESC, id DESC) x
    WHERE s.id = x.server_id"""

_CONCLUSIVE = ", ".join(f"'{c}'" for c in CONCLUSIVE)
# Each server's readiness changes, replayed from its conclusive checks as checks/readiness.py would have written them.
CHANGES_SQL = f"""
    INSERT INTO checks_readinesschange (server_id, tenant_id, at, from_state, to_state, reason, caused_by_id)
    SELECT server_id, tenant_id, finished_at, coalesce(prev_state, 'unknown'), state, reason, id FROM (
        SELECT *, lag(state) OVER w AS prev_state, lag(reason) OVER w AS prev_reason FROM (
            SELECT id, server_id, tenant_id, created_at, finished_at,
                   CASE category WHEN 'passed' THEN 'ready' ELSE 'not_ready' END AS state,
                   CASE category WHEN 'passed' THEN '' ELSE category END AS reason
            FROM checks_check WHERE category IN ({_CONCLUSIVE})) c
        WINDOW w AS (PARTITION BY server_id ORDER BY created_at, id)) t
    WHERE prev_state IS NULL OR prev_state <> state OR prev_reason <> reason"""  # noqa: S608

READINESS_SQL = f"""
    INSERT INTO checks_readiness (server_id, tenant_id, state, reason, since, changed_by_id, last_conclusive_id,
                                  last_conclusive_at)
    SELECT DISTINCT ON (rc.server_id) rc.server_id, rc.tenant_id, rc.to_state, rc.reason, rc.at, rc.caused_by_id,
           lc.id, lc.finished_at
    FROM checks_readinesschange rc
    JOIN (SELECT DISTINCT ON (server_id) server_id, id, finished_at FROM checks_check
          WHERE category IN ({_CONCLUSIVE}) ORDER BY server_id, created_at DESC, id DESC) lc USING (server_id)
    ORDER BY rc.server_id, rc.at DESC, rc.id DESC"""  # noqa: S608


def derived_steps() -> list[tuple[str, str]]:
    """What the write path keeps on the side for the pages: each server's recent outcomes (checks.strip), and
    its readiness copied on its row (checks.readiness), which the list sorts by."""
    from checks import strip

    return [("readiness on the servers", """
        UPDATE dashboard_server s SET readiness_state = r.state, readiness_since = r.since
        FROM checks_readiness r WHERE r.server_id = s.id"""), ("recent outcomes", f"""
        INSERT INTO checks_recentoutcomes (server_id, outcomes)
        SELECT server_id, jsonb_agg(jsonb_build_array(id, floor(extract(epoch FROM created_at))::bigint, status,
                                                      category) ORDER BY created_at, id)
        FROM (SELECT *, row_number() OVER (PARTITION BY server_id ORDER BY created_at DESC, id DESC) AS rank
              FROM checks_check WHERE status NOT IN ('queued', 'running')) c
        WHERE rank <= {strip.LENGTH} GROUP BY server_id""")]  # noqa: S608


def fleet_facts() -> dict:
    from checks.models import Check
    from dashboard.models import Server

    mine = Server.objects.filter(tenant_id=CONTOSO)
    return {"servers": Server.objects.count(), "checks": Check.objects.count(), "my_servers": mine.count(),
            "my_checks": Check.objects.filter(tenant_id=CONTOSO).count()}


# ---- Measuring.

def timed(client, url: str, runs: int, *, post: dict | None = None) -> dict:
    """Median and p95 over `runs` requests after one warm-up, then the statements of one more, and the bytes."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def once():
        t0 = time.perf_counter()
        response = client.get(url)
        took = time.perf_counter() - t0
        assert response.status_code in (200, 286), (url, response.status_code)
        return took, response

    once()
    times = [once()[0] for _ in range(runs)]
    with CaptureQueriesContext(connection) as queries:
        _, response = once()
    sql = sum(float(q["time"]) for q in queries.captured_queries)
    return {"median": statistics.median(times), "p95": p95(times), "queries": len(queries), "sql": sql,
            "bytes": len(response.content), "gzip": len(gzip.compress(response.content, 6)), "url": url}


def p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20, method="inclusive")[18] if len(times) > 1 else times[0]


def sign_in(client) -> None:
    import requests

    start = client.get("/auth/signin/", {"login_hint": "alice@contoso.example"})
    authorize = requests.get(start["Location"], allow_redirects=False, timeout=10)
    callback = urlparse(authorize.headers["Location"])
    client.get(callback.path, {k: v[0] for k, v in parse_qs(callback.query).items()})


def older_link(html: str) -> str:
    return re.search(r'href="([^"]*)" rel="next"', html).group(1).replace("&amp;", "&")


def measure(args, db_url: str, workdir: Path) -> dict:
    from django.conf import settings
    from django.test import Client

    from checks.models import Check
    from dashboard import keyset
    from dashboard.models import Server, User

    settings.ALLOWED_HOSTS = ["*"]
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    settings.AZURE_REDIRECT_URI = f"http://127.0.0.1:{args.port + 2}/auth/callback/"
    client, admin = Client(), Client()
    sign_in(client)
    if args.only == "exports":
        return {"export": export(client, db_url, workdir, args)}
    admin.force_login(User.objects.get(username="bench-admin"))
    mine = Check.objects.for_tenant(CONTOSO)
    server = Server.objects.filter(tenant_id=CONTOSO).order_by("pk")[35]
    check = mine.filter(server=server).newest_first().first()
    url = "/checks/"
    for _ in range(20):  # page 21, reached as a reader would, through the "Older" link
        url = "/checks/" + older_link(client.get(url).content.decode())
    old = mine.newest_first()[max(0, mine.count() - mine.count() // 100)]  # a cursor a year back
    year_back = "/checks/?" + f"cursor={keyset.encode(keyset.OLDER, old)}"
    r, a = args.runs, args.admin_runs
    listing = first_listing(client)
    a_pages = Check.objects.count() // 100
    s_pages = Server.objects.count() // 100
    rows = [
        ("server list, page 1 (50 servers)", timed(client, "/", r), timed(admin, "/admin/dashboard/server/", a)),
        ("server list, page 20", timed(client, "/?page=20", r), timed(admin, f"/admin/dashboard/server/?p={min(20, s_pages)}", a)),
        ("server list, filtered: not ready", timed(client, "/?state=not_ready", r),
         timed(admin, f"/admin/dashboard/server/?tenant_id={CONTOSO}", a)),
        ("server list, searched (\"fleet-0042\")", timed(client, "/?q=fleet-0042", r),
         timed(admin, "/admin/dashboard/server/?q=fleet-0042", a)),
        ("server list, sorted by readiness", timed(client, "/?sort=readiness", r), None),
        ("server list, sorted: last check, newest first", timed(client, "/?sort=-checked", r), None),
        ("server list, sorted: readiness changed, newest first", timed(client, "/?sort=-changed", r), None),
        ("history, page 1 (50 checks)", timed(client, "/checks/", r), timed(admin, "/admin/checks/check/", a)),
        ("history, page 21 (\"Older\" followed 20 times)", timed(client, url, r),
         timed(admin, "/admin/checks/check/?p=11", a)),
        ("history, a year back (cursor at the oldest 1%)", timed(client, year_back, r),
         timed(admin, f"/admin/checks/check/?p={a_pages}", a)),
        ("history, outcome = failed", timed(client, "/checks/?outcome=failed", r),
         timed(admin, "/admin/checks/check/?status__exact=failed", a)),
        ("history, category = throttled", timed(client, "/checks/?category=throttled", r),
         timed(admin, "/admin/checks/check/?category__exact=throttled", a)),
        ("history, one server", timed(client, f"/checks/?server={server.name}", r),
         timed(admin, f"/admin/checks/check/?q={server.name}", a)),
        ("history, run by me", timed(client, "/checks/?by=me", r), None),
        ("history, failed + permission missing + me",
         timed(client, "/checks/?outcome=failed&category=permission_missing&by=me", r),
         timed(admin, "/admin/checks/check/?status__exact=failed&category__exact=permission_missing", a)),
        ("check detail", timed(client, f"/checks/{check.pk}/", r), timed(admin, f"/admin/checks/check/{check.pk}/change/", a)),
        (f"import from Azure (a kept listing of {listing['servers']:,} servers)", timed(client, "/servers/import/", r),
         timed(admin, "/admin/dashboard/server/", a)),
        ("server detail", timed(client, f"/servers/{server.pk}/", r),
         timed(admin, f"/admin/dashboard/server/{server.pk}/change/", a)),
    ]
    return {"rows": rows, "run_all": run_on_all(client, args), "export": export(client, db_url, workdir, args),
            "listing": listing}


def first_listing(client) -> dict:
    """ "Import from Azure" listing the fleet from ARM (the simulator, no latency): its time, the ARM pages read."""
    from dashboard.models import ImportListing

    ImportListing.objects.all().delete()
    t0 = time.perf_counter()
    response = client.get("/servers/import/")
    took = time.perf_counter() - t0
    assert response.status_code == 200, response.status_code
    groups = ImportListing.objects.get().groups
    servers = sum(len(g["servers"]) for g in groups)
    return {"time": took, "servers": servers, "bytes": len(response.content)}


def run_on_all(client, args) -> dict:
    """POST "Run on all" over the tenant's servers, poll its batch, then undo it (the next run finds the fleet
    at rest again)."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext
    from django_tasks_db.models import DBTaskResult

    from checks import fanout
    from checks.models import Batch, Check
    from dashboard.models import Server

    last = dict(Server.objects.filter(tenant_id=CONTOSO).values_list("pk", "last_check_id"))
    posts, figures = [], {}
    for run in range(args.post_runs + 1):
        counting = run == args.post_runs
        before = Batch.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        with CaptureQueriesContext(connection) as queries:
            t0 = time.perf_counter()
            response = client.post("/batches/", {"scope": "all"})
            took = time.perf_counter() - t0
        assert response.status_code == 302, response.status_code
        batch = Batch.objects.latest("pk")
        # A batch of these servers still in progress (a run stopped midway) refuses the POST: undoing it would undo
        # that one, so stop here rather than measure a refusal.
        assert batch.pk > before, "the POST started no batch: is one of this fleet still in progress? (--rebuild)"
        if counting:
            figures["post_queries"] = len(queries)
            # The POST hands the queuing to a worker's fan_out task: run it here, timed, as a worker would.
            base = peak_rss_reset()
            t0 = time.perf_counter()
            fanout.fan_out(batch.pk)
            figures["fan_out"] = time.perf_counter() - t0
            figures["fan_out_memory"] = rss_kb("self", "VmHWM") - base
            figures["batch_size"] = batch.checks.count()
            figures["page"] = timed(client, f"/batches/{batch.pk}/", args.runs)
            page = client.get(f"/batches/{batch.pk}/").content.decode()
            poll = page.split('hx-get="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
            figures["poll"] = timed(client, poll, args.runs)
        else:
            posts.append(took)
        with transaction.atomic():
            DBTaskResult.objects.all().delete()
            with connection.cursor() as cursor:
                cursor.execute("UPDATE dashboard_server s SET last_check_id = v.lc FROM "
                               "(SELECT unnest(%s::int[]) AS sid, unnest(%s::int[]) AS lc) v WHERE s.id = v.sid",
                               [list(last), list(last.values())])
            Check.objects.filter(batch=batch).delete()
            batch.delete()
    figures["posts"] = posts
    with connection.cursor() as cursor:  # the deleted rows' pages as a long-lived, vacuumed table has them
        cursor.execute(f"VACUUM ANALYZE checks_check, dashboard_server, {DBTaskResult._meta.db_table}")
    return figures


EXPORT_SQL = """SELECT c.id, c.created_at, c.finished_at, extract(epoch FROM c.finished_at - c.started_at),
    s.subscription_id, s.resource_group, s.name, c.backup_name, c.status, c.category, c.number_of_containers,
    c.http_status, c.error_code, c.error_message, c.requested_by_name, c.requested_by_oid, c.api_version,
    c.request_id, c.correlation_request_id, c.client_request_id, c.attempts
    FROM checks_check c JOIN dashboard_server s ON s.id = c.server_id WHERE c.tenant_id = '{tenant}'
    ORDER BY c.created_at DESC, c.id DESC"""


EXPORTS = (("csv", "/checks/export.csv"), ("jsonl", "/checks/export.jsonl"))
END_LINE = re.compile(rb'(?:# end of export: (\d+) rows|\{"end_of_export": true, "rows": (\d+)\})\n$')


def export(client, db_url: str, workdir: Path, args) -> dict:
    """The CSV and JSON Lines exports of every check of the tenant and `psql \\copy` of the same join, in turn,
    --export-runs times (the median run of each); with --gunicorn, both exports again through gunicorn."""
    runs = {"csv": [], "jsonl": [], "psql": []}
    for _ in range(args.export_runs):
        for name, url in EXPORTS:
            base = peak_rss_reset()
            t0 = time.perf_counter()
            runs[name].append(downloaded(client.get(url).streaming_content, t0))
            runs[name][-1]["memory"] = rss_kb("self", "VmHWM") - base  # what streaming it added to the process
        runs["psql"].append(psql_copy(db_url, workdir))
    figures = {}
    for name, measured in runs.items():
        figures[name] = sorted(measured, key=lambda m: m["seconds"])[len(measured) // 2]
        figures[name]["all"] = [m["seconds"] for m in measured]
    if args.gunicorn:
        figures["gunicorn"] = gunicorn_exports(client, args, workdir)
    return figures


def downloaded(pieces, t0: float, cut_by: type[Exception] = ()) -> dict:
    """Read an export to its end: its time, first bytes, size, and the rows its end line counts (None if none)."""
    size, first, tail, cut = 0, None, b"", False
    try:
        for piece in pieces:
            first = first or time.perf_counter() - t0
            size += len(piece)
            tail = (tail + piece)[-200:]
    except cut_by:
        cut = True
    rows = END_LINE.search(tail)
    return {"seconds": time.perf_counter() - t0, "first": first or 0.0, "bytes": size, "cut": cut,
            "rows": int(rows.group(1) or rows.group(2)) if rows else None}


def psql_copy(db_url: str, workdir: Path) -> dict:
    target = workdir / "copy.csv"
    sql = " ".join(EXPORT_SQL.format(tenant=CONTOSO).split())
    t0 = time.perf_counter()
    psql = subprocess.Popen(["psql", db_url, "-q", "-c", f"\\copy ({sql}) TO '{target}' WITH CSV HEADER"])  # noqa: S607
    _, status, usage = os.wait4(psql.pid, 0)  # its rusage: the peak RSS of psql itself
    psql.returncode = os.waitstatus_to_exitcode(status)
    took = time.perf_counter() - t0
    assert psql.returncode == 0, f"psql exited {psql.returncode}"
    with target.open("rb") as f:
        lines = sum(1 for _ in f)
    size = target.stat().st_size
    target.unlink()
    return {"seconds": took, "bytes": size, "rows": lines - 1, "memory": usage.ru_maxrss}


def rss_kb(pid: int | str, field: str = "VmRSS") -> int:
    """A process's resident memory (VmRSS) or its peak since the last reset (VmHWM), in KB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def peak_rss_reset(pid: int | str = "self") -> int:
    """Reset a process's peak RSS to what it holds now (Linux: clear_refs 5); that, in KB."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return rss_kb(pid)


def readme_web_command(port: int) -> list[str]:
    """The README's production web command on a loopback port, without its --timeout: gunicorn's default."""
    import shlex

    text = (ROOT / "README.md").read_text().replace("\\\n", " ")
    argv = shlex.split(re.search(r"^(gunicorn config\.wsgi .*?)#", text, re.M).group(1))
    if "--timeout" in argv:
        del argv[argv.index("--timeout"):argv.index("--timeout") + 2]
    argv[0] = str(Path(sys.executable).with_name("gunicorn"))
    return [a if a != "0.0.0.0:8000" else f"127.0.0.1:{port}" for a in argv]  # noqa: S104


def gunicorn_exports(client, args, workdir: Path) -> dict:
    """Both exports downloaded over HTTP from gunicorn started as the README starts it (30 s timeout), signed in
    with the bench's session: each must arrive whole, its end line counting every row."""
    import requests
    from django.conf import settings

    port = args.port + 3
    log = (workdir / "gunicorn.log").open("w+")
    web = subprocess.Popen(readme_web_command(port), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    cookies = {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}
    figures = {}
    try:
        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except requests.RequestException:  # still booting
                time.sleep(0.2)
        workers = [int(pid) for pid in Path(f"/proc/{web.pid}/task/{web.pid}/children").read_text().split()]
        for name, url in EXPORTS:
            for pid in workers:
                peak_rss_reset(pid)
            t0 = time.perf_counter()
            with requests.get(f"http://127.0.0.1:{port}{url}", cookies=cookies, stream=True, timeout=60) as answer:
                answer.raise_for_status()
                # A worker killed mid-download ends the body early: counted as what arrived, without an end line.
                figures[name] = downloaded(answer.iter_content(1 << 20), t0, cut_by=requests.RequestException)
            figures[name]["memory"] = max((rss_kb(pid, "VmHWM") for pid in workers if Path(f"/proc/{pid}").exists()),
                                          default=0)  # the peak of the worker that served it, in all
    finally:
        web.terminate()
        web.wait(30)
    log.seek(0)
    figures["killed"] = "WORKER TIMEOUT" in log.read()
    return figures


# ---- The table.

def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 0.1 else f"{seconds * 1000:,.0f} ms"


def kb(n: int) -> str:
    return f"{n / 1024:,.1f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:,.1f} MB"


def ok(good: bool) -> str:
    return "yes" if good else "**no**"


def report(args, built: dict, f: dict) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"Machine: {platform.node() or 'vm'}: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, PostgreSQL on the same machine. Run on {now}; load average at the end "
        f"{load}{SHARED if os.getloadavg()[0] > 1.5 else ''}.",
        f"Fleet: {built['servers']:,} servers and {built['checks']:,} checks over a year in 2 tenants and 5 "
        f"subscriptions; the signed-in tenant has {built['my_servers']:,} servers and {built['my_checks']:,} checks. "
        f"Times are server time (in-process client, DEBUG off), median and p95 of {args.runs} requests "
        f"({args.admin_runs} for the admin's pages).",
        "",
        "| page | median | p95 | queries (their time) | size | gzip -6 (information) | admin changelist, same data "
        f"(median, queries) | admin / ours | target: < {LIST_TARGET_MS} ms, >= {ADMIN_RATIO}x admin, < {PAGE_KB} KB "
        "(raw size) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, ours, admin in f["rows"]:
        ratio = admin["median"] / ours["median"] if admin else None
        listing = name.startswith(("server list", "history"))
        verdict = ""
        if listing:  # each part of the target on its own: which one a page misses matters
            parts = [f"{LIST_TARGET_MS} ms: {ok(ours['median'] * 1000 < LIST_TARGET_MS)}",
                     f"{PAGE_KB} KB: {ok(ours['bytes'] < PAGE_KB * 1024)}"]
            if ratio is not None:
                parts.append(f"{ADMIN_RATIO}x: {ok(ratio >= ADMIN_RATIO)}")
            verdict = ", ".join(parts)
        lines.append(f"| {name} | {ms(ours['median'])} | {ms(ours['p95'])} | {ours['queries']} ({ms(ours['sql'])}) | "
                     f"{kb(ours['bytes'])} | {kb(ours['gzip'])} | "
                     + (f"{ms(admin['median'])}, {admin['queries']}" if admin else "(no such admin page)")
                     + f" | {f'{ratio:.1f}x' if ratio else ''} | {verdict} |")
    ra = f["run_all"]
    post = statistics.median(ra["posts"]) if ra["posts"] else float("nan")
    poll = ra["poll"]
    lines += [
        "",
        "| bulk and live | median | p95 | queries | size | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| POST \"Run on all\" over the tenant's {ra['batch_size']:,} servers | {ms(post)} | {ms(max(ra['posts']))} "
        f"(worst) | {ra['post_queries']} | | < {RUN_ALL_S} s | {ok(post < RUN_ALL_S)} |",
        f"| its fan-out by a worker (queuing the {ra['batch_size']:,} checks and their tasks) | {ms(ra['fan_out'])} "
        f"| (one run) | | +{kb(max(0, ra['fan_out_memory']) * 1024)} peak RSS | | |",
        f"| batch page of those {ra['batch_size']:,} checks | {ms(ra['page']['median'])} | {ms(ra['page']['p95'])} | "
        f"{ra['page']['queries']} | {kb(ra['page']['bytes'])} | | |",
        f"| its poll, nothing changed | {ms(poll['median'])} | {ms(poll['p95'])} | {poll['queries']} ({ms(poll['sql'])}) | "
        f"{kb(poll['bytes'])} | < {POLL_MS} ms, < {POLL_KB} KB | "
        f"{ok(poll['median'] * 1000 < POLL_MS and poll['bytes'] < POLL_KB * 1024)} |",
    ]
    listing = f["listing"]
    lines.append(f"| \"Import from Azure\" listing {listing['servers']:,} servers from ARM (the simulator: no latency, "
                 f"pages of 50) | {ms(listing['time'])} | (one run) | | {kb(listing['bytes'])} | | |")
    lines += export_table(args, f["export"])
    return "\n".join(lines)


SHARED = " (the machine was shared with other test suites or benchmarks while measuring)"


def exports_report(args, built: dict, f: dict) -> str:
    """--only exports: the export table under the run's facts."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return "\n".join([
        f"Run on {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, {os.cpu_count()} cores, load average at the "
        f"end {load}; the signed-in tenant has {built['my_servers']:,} servers and {built['my_checks']:,} checks.",
        *export_table(args, f["export"])])


def export_table(args, e: dict) -> list[str]:
    psql = e["psql"]["seconds"]
    rows = [
        "",
        f"| export of every check of the tenant (median of {args.export_runs}) | time | first bytes after | size | "
        "rows | / psql \\copy | target | memory (peak RSS) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, label in (("csv", "CSV (/checks/export.csv)"), ("jsonl", "JSON Lines (/checks/export.jsonl)")):
        m, ratio = e[name], e[name]["seconds"] / psql
        rows.append(f"| {label} | {m['seconds']:.1f} s ({min(m['all']):.1f}-{max(m['all']):.1f}) | {ms(m['first'])} | {kb(m['bytes'])} | {m['rows'] or 0:,} | "
                    f"{ratio:.1f}x | within {EXPORT_RATIO}x: {ok(ratio <= EXPORT_RATIO)} | "
                    f"+{kb(max(0, m['memory']) * 1024)} over the process |")
    rows.append(f"| `psql \\copy` of the same join (CSV) | {psql:.1f} s ({min(e['psql']['all']):.1f}-"
                f"{max(e['psql']['all']):.1f}) | | {kb(e['psql']['bytes'])} | "
                f"{e['psql']['rows']:,} | 1.0x | | {kb(e['psql']['memory'] * 1024)} (psql) |")
    if "gunicorn" in e:
        g = e["gunicorn"]
        for name in ("csv", "jsonl"):
            whole = g[name]["rows"] == e["psql"]["rows"]  # its end line counts every row
            rows.append(f"| {name} from gunicorn, README command, default 30 s timeout | {g[name]['seconds']:.1f} s | "
                        f"{ms(g[name]['first'])} | {kb(g[name]['bytes'])} | {g[name]['rows'] or 0:,} | | "
                        f"complete: {ok(whole)} | {kb(g[name]['memory'] * 1024)} (the worker, in all) |")
        if g["killed"]:
            rows.append("| (gunicorn logged WORKER TIMEOUT: a worker was killed mid-export) | | | | | | | |")
    return rows


def write_section(path: Path, table: str) -> None:
    """Replace the text between this bench's markers in `path`, or add the section at the end."""
    begin, end = f"<!-- {MARKER} -->", f"<!-- /{MARKER} -->"
    text = path.read_text()
    block = f"{begin}\n{table}\n{end}"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n## Pages at 10,000 servers and 1,000,000 checks (issue 12)\n\n" + INTRO + \
            "\n" + block + "\n"
    path.write_text(text)


INTRO = """`make bench-pages` (bench/pages.py) builds the fleet on PostgreSQL (its own database, ltr_pages_bench, reused
when a build of the same size exists), then requests each page through Django's test Client signed in as a user
of the larger tenant, next to the Django admin's changelist of the same table (a superuser, all tenants: the
baseline the issue names), "Run on all" and its batch poll, and the exports next to `psql \\copy` of the same
join, all in the same run. Queries are counted on one more request; sizes are the answer's bytes.
"""


if __name__ == "__main__":
    main()

"""Benchmark: "Run on all" over a large fleet, and the batch page's poll, through the real views (not a test).

    .venv/bin/python bench/run_on_all.py --servers 10000 [--runs 5] [--write docs/benchmarks.md]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ltr_bench_bulk .venv/bin/python bench/run_on_all.py ...

Signs in through the simulator as the dashboard would, registers N servers, then POSTs "Run on all" N times
(the checks of one run are marked finished before the next, as a worker would have run them) and reports the
median and worst server time of the POST, its SQL statement count, and the poll of the N-check batch page:
time, statements and bytes when nothing changed, and after 100 checks changed. On PostgreSQL the database
given must exist and is migrated; its tables are emptied first.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write", help="append the figures to this Markdown file")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="ltr-bench-bulk-"))
    db_url = os.environ.get("DATABASE_URL") or f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ.update({"DEMO_MODE": "1", "DEBUG": "0", "DATABASE_URL": db_url, "LOG_LEVEL": "WARNING",
                       "DJANGO_SETTINGS_MODULE": "config.settings", "VAR_DIR": str(workdir),
                       "MAX_ACTIVE_CHECKS_PER_TENANT": str(max(10_000, args.servers))})
    from azuresim import Simulator

    tenant, sub = "11111111-1111-4111-8111-111111111111", "0b5e0001-0000-4000-8000-0000000000be"
    scenario = {
        "tenants": [{"id": tenant, "name": "Contoso", "users": [
            {"oid": "a11ce000-0000-4000-8000-000000000001", "upn": "alice@contoso.example", "name": "Alice Admin"}]}],
        "apps": [{"client_id": "d3d3d3d3-0000-4000-8000-000000000001", "client_secret": "demo-client-secret",
                  "multi_tenant": True}],
        "subscriptions": [{"id": sub, "name": "Sub", "tenant": tenant, "principals": ["*"],
                           "resource_groups": [{"name": "rg-bench", "servers": []}]}],
    }
    sim = Simulator(scenario=scenario, state_dir=str(workdir / "sim")).start()
    os.environ.update({"AZURE_AUTHORITY_HOST": sim.https_url, "AZURE_ARM_ENDPOINT": sim.https_url,
                       "AZURE_CA_BUNDLE": str(sim.ca_path)})
    try:
        figures = measure(args, tenant, sub)
    finally:
        sim.stop()
    report(args, db_url, figures)


def measure(args, tenant: str, sub: str) -> dict:
    import django

    django.setup()
    import requests
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from checks.models import Batch, Check
    from dashboard.models import Server

    settings.ALLOWED_HOSTS = ["*"]
    # Production settings but no collectstatic here: static URLs need no manifest.
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    settings.AZURE_REDIRECT_URI = "http://127.0.0.1:8000/auth/callback/"
    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    Server.objects.bulk_create([Server(tenant_id=tenant, subscription_id=sub, resource_group="rg-bench",
                                       name=f"pg-bench-{i:05d}") for i in range(args.servers)], batch_size=1000)
    client = Client()
    start = client.get("/auth/signin/", {"login_hint": "alice@contoso.example"})
    authorize = requests.get(start["Location"], allow_redirects=False, timeout=10)
    callback = urlparse(authorize.headers["Location"])
    client.get(callback.path, {k: v[0] for k, v in parse_qs(callback.query).items()})

    posts, statements = [], []
    for run in range(args.runs + 1):
        Check.objects.filter(status__in=Check.ACTIVE_STATUSES).update(status="succeeded", finished_at=timezone.now())
        # Timed without capturing the SQL (capturing formats every statement: ~0.3 s more); then counted once.
        with CaptureQueriesContext(connection) if run == args.runs else nullcontext() as queries:
            t0 = time.perf_counter()
            response = client.post("/batches/", {"scope": "all"})
            took = time.perf_counter() - t0
        assert response.status_code == 302, response.status_code
        if queries is None:
            posts.append(took)
        else:
            statements.append(len(queries))
    batch = Batch.objects.latest("pk")
    assert batch.checks.count() == args.servers

    page = client.get(f"/batches/{batch.pk}/").content.decode()
    poll = page.split('hx-get="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    quiet = [timed(client, poll) for _ in range(args.runs)]
    first_page = batch.checks.order_by("server__name")[:100].values("pk")
    Check.objects.filter(pk__in=first_page).update(status="running", started_at=timezone.now())
    busy = timed(client, poll)
    return {"posts": posts, "statements": statements, "quiet": quiet, "busy": busy}


def timed(client, url: str) -> tuple[float, int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        t0 = time.perf_counter()
        response = client.get(url)
        took = time.perf_counter() - t0
    return took, len(queries), len(response.content)


def report(args, db_url: str, f: dict) -> None:
    engine = "PostgreSQL" if db_url.startswith("postgres") else "SQLite"
    ms = lambda s: f"{s * 1000:.0f} ms"  # noqa: E731
    quiet_ms = statistics.median(t for t, _, _ in f["quiet"])
    lines = [
        f"### Run on all over {args.servers:,} servers ({engine}, {args.runs} runs, in-process client)",
        "",
        "| what | median | worst | SQL statements | bytes |",
        "| --- | --- | --- | --- | --- |",
        f"| POST \"Run on all\" | {ms(statistics.median(f['posts']))} | {ms(max(f['posts']))} | "
        f"{f['statements'][-1]} | |",
        f"| batch poll, nothing changed | {ms(quiet_ms)} | {ms(max(t for t, _, _ in f['quiet']))} | "
        f"{f['quiet'][-1][1]} | {f['quiet'][-1][2]:,} |",
        f"| batch poll, 100 rows of the page changed | {ms(f['busy'][0])} | | {f['busy'][1]} | {f['busy'][2]:,} |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        with open(args.write, "a") as out:
            out.write("\n" + text)


if __name__ == "__main__":
    main()

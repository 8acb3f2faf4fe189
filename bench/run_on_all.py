"""Benchmark: "Run on all" over a large fleet, and the batch page's poll, through the real views (not a test).

    .venv/bin/python bench/run_on_all.py --servers 10000 [--runs 5] [--write docs/benchmarks.md]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ltr_batchx_bench .venv/bin/python bench/run_on_all.py ...

Signs in through the simulator as the dashboard would, registers N servers, then POSTs "Run on all" several
times; after each POST it runs the worker's fan-out of that batch (checks.fanout, in this process, timed
apart: it is what the worker does in the background) and marks the checks finished, as a worker would have
run them. Next to them, in the same run, the baseline: the same N checks and their N task rows inserted
directly with Django's bulk_create (then rolled back). Reports the median and worst server time of the
POST and of the fan-out, their SQL statement counts, and the poll of the N-check batch page: time,
statements and bytes when nothing changed, and after 100 checks changed. On PostgreSQL the database given
must exist and is migrated; its tables are emptied first. --write replaces the figures between the
`<!-- bench: run-on-all -->` markers of the Markdown file given.
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
    parser.add_argument("--write", help="write the figures between this Markdown file's markers")
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

    from checks import fanout
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

    posts, statements, fan_outs, fan_out_statements = [], [], [], []
    for run in range(args.runs + 1):
        Check.objects.filter(status__in=Check.ACTIVE_STATUSES).update(status="succeeded", finished_at=timezone.now())
        # Timed without capturing the SQL (capturing formats every statement: ~0.3 s more); then counted once.
        counting = run == args.runs
        with CaptureQueriesContext(connection) if counting else nullcontext() as queries:
            t0 = time.perf_counter()
            response = client.post("/batches/", {"scope": "all"})
            took = time.perf_counter() - t0
        assert response.status_code == 302, response.status_code
        if counting:
            statements.append(len(queries))
        else:
            posts.append(took)
        batch = Batch.objects.latest("pk")
        with CaptureQueriesContext(connection) if counting else nullcontext() as queries:
            t0 = time.perf_counter()
            assert fanout.fan_out(batch.pk) == "done"
            took = time.perf_counter() - t0
        if counting:
            fan_out_statements.append(len(queries))
        else:
            fan_outs.append(took)
    assert batch.checks.count() == args.servers
    baseline = [bulk_inserted(batch) for _ in range(args.runs)]

    page = client.get(f"/batches/{batch.pk}/").content.decode()
    poll = page.split('hx-get="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    quiet = [timed(client, poll) for _ in range(args.runs)]
    first_page = batch.checks.order_by("server__name")[:100].values("pk")
    Check.objects.filter(pk__in=first_page).update(status="running", started_at=timezone.now())
    busy = timed(client, poll)
    return {"posts": posts, "statements": statements, "fan_outs": fan_outs, "fan_out_statements": fan_out_statements,
            "baseline": baseline, "quiet": quiet, "busy": busy}


def bulk_inserted(batch) -> float:
    """The baseline: the batch's checks and their tasks written with Django's bulk_create, timed, rolled back."""
    from django.db import transaction
    from django_tasks_db.models import DBTaskResult, get_date_max

    from checks.models import Check, proposed_backup_name
    from checks.tasks import run_check
    from dashboard.models import Server

    servers = list(Server.objects.only("pk", "name", "tenant_id"))
    user = batch.started_by
    with transaction.atomic():
        # The batch's own checks stay queued for the polls measured next: they are finished here, and back.
        Check.objects.filter(status__in=Check.ACTIVE_STATUSES).update(status="succeeded")
        t0 = time.perf_counter()
        checks = Check.objects.bulk_create([Check.new_queued(server, user, proposed_backup_name(server.name),
                                                              batch=batch) for server in servers])
        DBTaskResult.objects.bulk_create([DBTaskResult(
            args_kwargs={"args": [check.pk], "kwargs": {}}, priority=0, task_path=run_check.module_path,
            queue_name="default", run_after=get_date_max(), backend_name="default") for check in checks])
        took = time.perf_counter() - t0
        transaction.set_rollback(True)
    return took


def timed(client, url: str) -> tuple[float, int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        t0 = time.perf_counter()
        response = client.get(url)
        took = time.perf_counter() - t0
    return took, len(queries), len(response.content)


def report(args, db_url: str, f: dict) -> None:
    import platform

    engine = "PostgreSQL" if db_url.startswith("postgres") else "SQLite"
    ms = lambda s: f"{s * 1000:,.0f} ms"  # noqa: E731
    median = statistics.median
    quiet = [t for t, _, _ in f["quiet"]]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        f"`bench/run_on_all.py --servers {args.servers} --runs {args.runs}` on {engine}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}: {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; load average at the end {load} (a shared machine: times are what "
        "this run saw; the statement counts are exact). Server time, in-process client.",
        "",
        "| what | median | worst | SQL statements | bytes |",
        "| --- | --- | --- | --- | --- |",
        f"| POST \"Run on all\": the answer (the batch and one task) | {ms(median(f['posts']))} | "
        f"{ms(max(f['posts']))} | {f['statements'][-1]} | |",
        f"| the worker's fan-out of the {args.servers:,} checks and tasks (in the background) | "
        f"{ms(median(f['fan_outs']))} | {ms(max(f['fan_outs']))} | {f['fan_out_statements'][-1]} | |",
        f"| baseline: the same {args.servers:,} checks and tasks bulk-inserted directly (bulk_create) | "
        f"{ms(median(f['baseline']))} | {ms(max(f['baseline']))} | | |",
        f"| batch poll, nothing changed | {ms(median(quiet))} | {ms(max(quiet))} | "
        f"{f['quiet'][-1][1]} | {f['quiet'][-1][2]:,} |",
        f"| batch poll, 100 rows of the page changed | {ms(f['busy'][0])} | | {f['busy'][1]} | {f['busy'][2]:,} |",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_between_markers(Path(args.write), text)


def write_between_markers(path: Path, text: str) -> None:
    start, end = "<!-- bench: run-on-all -->", "<!-- /bench: run-on-all -->"
    doc = path.read_text()
    if start in doc and end in doc:
        doc = doc[:doc.index(start) + len(start)] + "\n" + text + "\n" + doc[doc.index(end):]
    else:
        doc += f"\n{start}\n{text}\n{end}\n"
    path.write_text(doc)


if __name__ == "__main__":
    main()

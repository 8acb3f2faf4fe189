"""Bounded load test: 50 signed-in people browsing and running checks for 60 s (not a test; issue 14).

    make bench-load        (DATABASE_URL=postgres://postgres@127.0.0.1:5432/ltr_bench_load by default)
    .venv/bin/python bench/load.py --users 50 --seconds 60 --write docs/benchmarks.md

What runs, all on loopback:
- the Azure simulator (in this process): one tenant with the bench's people, 4 subscriptions, 200 servers
  whose checks pass, fail or find the server not ready after 20-150 ms (as real ltrPreBackup answers vary);
- gunicorn with 2 workers x 4 threads (`config.wsgi`, the README's production flags: DEMO_MODE=0, DEBUG off, a
  random SECRET_KEY and TOKEN_CACHE_KEYS, BEHIND_PROXY=1, the access log without query strings), except SECURE=0
  since loopback has no TLS (Secure cookies would never come back over http);
- ONE `checks_worker` process (`--threads 16`, as the README starts it) with its periodic jobs;
- PostgreSQL: the database of DATABASE_URL is dropped, created and migrated first.

locust (bench/locustfile.py, the optional `bench` dependencies) runs the people, headless. Each signs in for
real through the simulator's Entra sign-in. Figures: requests, failures (anything >= 400 but 429, and lost
sessions), the rate limiter's 429s apart, p50/p95/p99 per page, requests per second, 5xx in gunicorn's own
access log, and rows written per check (row counts of every table before and after, and PostgreSQL's own
insert/update counters, read after the processes stop so their statistics are flushed).
"""

import argparse
import csv
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TENANT = "11111111-1111-4111-8111-111111111111"
CLIENT_ID, CLIENT_SECRET = "d3d3d3d3-0000-4000-8000-000000000001", "demo-client-secret"
SUBSCRIPTIONS = [f"0b5e{n:04x}-0000-4000-8000-00000000fa{n:02x}" for n in range(1, 5)]
BEGIN, END = "<!-- bench: load -->", "<!-- /bench: load -->"
# The tables a check writes on its way (queued, claimed, finished): not sign-ins, sessions or the rate limiter.
CHECK_PATH = ["checks_check", "django_tasks_database_dbtaskresult", "dashboard_server", "checks_readiness",
              "checks_readinesschange", "armclient_ratebucket"]
PAGES = ["list", "history", "server page", "check page", "row poll", "batch poll", "run (POST)", "batch (POST)",
         "sign-in: start", "sign-in: callback"]
# What checks find: mostly passes, some not ready (readiness changes), some refused, and (None) a server
# registered here that Azure does not have (404).
BEHAVIOURS = [{"outcome": "success", "containers": 1}] * 6 + [
    {"outcome": "not_ready", "state": "Stopped"}, {"outcome": "forbidden"}, None]


def main() -> None:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ltr-load-"))
    sim = start_simulator(args, workdir)
    procs: list[subprocess.Popen] = []
    try:
        env = production_env(args, sim, workdir)
        os.environ.update(env)
        fixture = prepare_database(args, sim, workdir)
        procs += [start_web(args, env, workdir), start_worker(args, env, workdir)]
        wait_until_up(args)
        alone = baseline(args, fixture)
        before, load_before = table_rows(), os.getloadavg()[0]
        stats_prefix = run_locust(args, env, fixture, workdir)
        load_after = os.getloadavg()[0]
        drained = wait_for_checks(timeout=60)
        stop(procs)
        figures = collect(args, before, stats_prefix, workdir, drained)
        figures["load"], figures["alone"] = (load_before, load_after), alone
    finally:
        stop(procs)
        sim.stop()
    print_figures(figures)
    if args.write:
        write_markdown(Path(args.write), figures, args)
    if figures["failures"]:
        sys.exit(f"{figures['failures']} failed requests (see {workdir})")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--servers", type=int, default=200)
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_PORT", "8660")))
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=4)
    parser.add_argument("--worker-threads", type=int, default=16)
    parser.add_argument("--write", help="write the figures to the load section of this Markdown file")
    return parser.parse_args()


def upns(args) -> list[str]:
    return [f"person{i:02d}@contoso.example" for i in range(1, args.users + 1)]


def start_simulator(args, workdir: Path):
    from azuresim import Simulator

    people = [{"oid": f"0000{i:04d}-0000-4000-8000-000000000001", "upn": upn, "name": f"Person {i:02d}"}
              for i, upn in enumerate(upns(args), start=1)]
    groups = {sub: [] for sub in SUBSCRIPTIONS}
    for i in range(args.servers):
        if BEHAVIOURS[i % len(BEHAVIOURS)] is None:
            continue
        behaviour = dict(BEHAVIOURS[i % len(BEHAVIOURS)], latency_ms=20 + (i * 37) % 130)
        groups[SUBSCRIPTIONS[i % len(SUBSCRIPTIONS)]].append({"name": f"pg-load-{i:03d}", "behaviour": behaviour})
    scenario = {
        "tenants": [{"id": TENANT, "name": "Contoso", "users": people}],
        "apps": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "multi_tenant": True}],
        "subscriptions": [{"id": sub, "name": f"Load {n}", "tenant": TENANT, "principals": ["*"],
                           "resource_groups": [{"name": "rg-load", "servers": servers}]}
                          for n, (sub, servers) in enumerate(groups.items(), start=1)],
    }
    return Simulator(scenario=scenario, state_dir=str(workdir / "sim")).start()


def production_env(args, sim, workdir: Path) -> dict:
    from cryptography.fernet import Fernet

    db_url = os.environ.get("DATABASE_URL", "")
    if not db_url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database of yours (it is dropped and created again).")
    return {
        "DEMO_MODE": "0", "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50),
        "TOKEN_CACHE_KEYS": Fernet.generate_key().decode(), "ALLOWED_HOSTS": "127.0.0.1",
        "CSRF_TRUSTED_ORIGINS": f"http://127.0.0.1:{args.port}", "BEHIND_PROXY": "1", "SECURE": "0",
        "DATABASE_URL": db_url, "DJANGO_SETTINGS_MODULE": "config.settings", "VAR_DIR": str(workdir),
        "AZURE_CLIENT_ID": CLIENT_ID, "AZURE_CLIENT_SECRET": CLIENT_SECRET, "AZURE_TENANT_ID": "organizations",
        "AZURE_AUTHORITY_HOST": sim.https_url, "AZURE_ARM_ENDPOINT": sim.https_url,
        "AZURE_CA_BUNDLE": str(sim.ca_path), "AZURE_INSTANCE_DISCOVERY": "0",
        "AZURE_REDIRECT_URI": f"http://127.0.0.1:{args.port}/auth/callback/", "LOG_LEVEL": "WARNING",
    }


def prepare_database(args, sim, workdir: Path) -> Path:
    """A fresh database, migrated, with the fleet registered; the locust users' fixture file."""
    recreate_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    from dashboard.models import Server

    call_command("migrate", verbosity=0)
    call_command("collectstatic", "--noinput", verbosity=0)
    Server.objects.bulk_create([
        Server(tenant_id=TENANT, subscription_id=SUBSCRIPTIONS[i % len(SUBSCRIPTIONS)], resource_group="rg-load",
               name=f"pg-load-{i:03d}") for i in range(args.servers)])
    fixture = workdir / "fixture.json"
    fixture.write_text(json.dumps({"upns": upns(args), "servers": list(Server.objects.values_list("pk", flat=True))}))
    return fixture


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.startswith("ltr_"):
        sys.exit(f"Refusing to drop {name!r}: the bench only drops databases named ltr_*.")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def start_web(args, env: dict, workdir: Path) -> subprocess.Popen:
    command = [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{args.port}",
               "--workers", str(args.web_workers), "--threads", str(args.web_threads), "--timeout", "180",
               "--access-logfile", str(workdir / "access.log"),
               "--access-logformat", '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss']
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env},
                            stdout=open(workdir / "web.log", "w"), stderr=subprocess.STDOUT)


def start_worker(args, env: dict, workdir: Path) -> subprocess.Popen:
    command = [sys.executable, "manage.py", "checks_worker", "--threads", str(args.worker_threads)]
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env},
                            stdout=open(workdir / "worker.log", "w"), stderr=subprocess.STDOUT)


def wait_until_up(args) -> None:
    for _ in range(120):
        try:
            if requests.get(f"http://127.0.0.1:{args.port}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    sys.exit("gunicorn did not answer /healthz within 60 s")


def run_locust(args, env: dict, fixture: Path, workdir: Path) -> Path:
    prefix = workdir / "stats"
    command = [str(Path(sys.executable).parent / "locust"), "-f", str(ROOT / "bench" / "locustfile.py"),
               "--headless", "--users", str(args.users), "--spawn-rate", str(args.users),
               "--run-time", f"{args.seconds}s", "--host", f"http://127.0.0.1:{args.port}",
               "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"]
    subprocess.run(command, cwd=ROOT, env={**os.environ, **env, "LOAD_FIXTURE": str(fixture)}, check=False)
    return prefix


def baseline(args, fixture: Path, repeat: int = 10) -> dict[str, float]:
    """Each page's median time for one person alone, before the load (the same servers and processes): what a
    request costs when nothing queues in front of it."""
    import re
    import statistics

    base, data = f"http://127.0.0.1:{args.port}", json.loads(fixture.read_text())
    people = requests.Session()
    people.headers["X-Forwarded-For"] = "10.2.0.1"
    start = people.get(f"{base}/auth/signin/", params={"login_hint": data["upns"][0]}, allow_redirects=False)
    callback = requests.get(start.headers["Location"], allow_redirects=False, timeout=30).headers["Location"]
    people.get(base + callback[callback.index("/auth/callback/"):], allow_redirects=False)
    csrf = re.search(r'"x-csrftoken": "([^"]+)"', people.get(base + "/").text).group(1)
    server = data["servers"][0]
    ran = people.post(f"{base}/servers/{server}/run/", data={"backup_name": "baseline"},
                      headers={"X-CSRFToken": csrf, "HX-Request": "true"})
    check = re.findall(r"/checks/(\d+)/", ran.text)[-1]
    batch = people.post(f"{base}/batches/", data={"scope": "selected", "server": data["servers"][1:6]},
                        headers={"X-CSRFToken": csrf}, allow_redirects=False).headers["Location"].rstrip("/")
    pages = {"list": "/", "history": "/checks/", "server page": f"/servers/{server}/",
             "check page": f"/checks/{check}/", "row poll": f"/servers/{server}/row/",
             "batch poll": f"{batch}/progress/?page=1"}
    medians = {}
    for name, path in pages.items():
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            people.get(base + path, headers={"HX-Request": "true"} if "poll" in name else {})
            times.append((time.perf_counter() - t0) * 1000)
        medians[name] = statistics.median(times)
    wait_for_checks(timeout=30)
    return medians


def wait_for_checks(timeout: float) -> bool:
    """True once no check is queued or running (the worker has done what the run queued)."""
    from checks.models import Check

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Check.objects.filter(status__in=[Check.Status.QUEUED, Check.Status.RUNNING]).exists():
            return True
        time.sleep(0.5)
    return False


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    procs.clear()


def table_rows() -> dict[str, tuple[int, int, int]]:
    """Per table: its rows now, and PostgreSQL's count of rows inserted and updated since the database was made."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT relname, n_tup_ins, n_tup_upd FROM pg_stat_user_tables")
        stats = {name: (ins, upd) for name, ins, upd in cursor.fetchall()}
        rows = {}
        for table in connection.introspection.table_names():
            # A name from the database's own catalogue, quoted by Django.
            cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")  # noqa: S608
            rows[table] = (cursor.fetchone()[0], *stats.get(table, (0, 0)))
    return rows


def collect(args, before: dict, prefix: Path, workdir: Path, drained: bool) -> dict:
    time.sleep(1)  # the stopped processes' statistics reach pg_stat
    after = table_rows()
    delta = {t: tuple(a - b for a, b in zip(after[t], before.get(t, (0, 0, 0)), strict=True)) for t in after}
    checks = delta.get("checks_check", (0, 0, 0))[0]
    with open(f"{prefix}_stats.csv") as f:
        stats = {row["Name"]: row for row in csv.DictReader(f)}
    total = stats["Aggregated"]
    refused = {name[len("429: "):]: int(row["Request Count"]) for name, row in stats.items() if name.startswith("429: ")}
    reconnected = {name[len("reconnected: "):]: int(row["Request Count"]) for name, row in stats.items()
                   if name.startswith("reconnected: ")}
    access = (workdir / "access.log").read_text().splitlines()
    return {
        "users": args.users, "seconds": args.seconds, "servers": args.servers,
        "requests": int(total["Request Count"]) - sum(refused.values()) - sum(reconnected.values()),
        "reconnected": reconnected,
        "failures": int(total["Failure Count"]),
        "rps": float(total["Requests/s"]),
        "server_5xx": sum(1 for line in access if line.split('" ')[-1][:1] == "5"),
        "refused": refused,
        "pages": {name: stats[name] for name in PAGES if name in stats},
        "checks": checks, "drained": drained,
        "rows": {t: d for t, d in sorted(delta.items()) if any(d)},
        "workdir": str(workdir),
    }


def print_figures(f: dict) -> None:
    print(f"\n{f['users']} users, {f['seconds']} s: {f['requests']} requests ({f['rps']:.1f}/s), "
          f"{f['failures']} failures, {f['server_5xx']} 5xx in the access log, 429s: {f['refused'] or 0}, "
          f"GETs sent again after a kept-alive connection closed: {f['reconnected'] or 0}")
    for name, row in f["pages"].items():
        print(f"  {name:18} n={row['Request Count']:>6} p50={row['50%']:>5} p95={row['95%']:>5} p99={row['99%']:>5} ms")
    print(f"  alone (median ms): { {k: round(v) for k, v in f['alone'].items()} }")
    print(f"  checks created: {f['checks']} (all finished: {f['drained']}); load average {f['load']}")
    for table, (rows, ins, upd) in f["rows"].items():
        print(f"  {table:32} +{rows} rows, {ins} inserted, {upd} updated")


def per_check(value: int, checks: int) -> str:
    return f"{value / checks:.2f}" if checks else "n/a"


def write_markdown(path: Path, f: dict, args) -> None:
    """Replace the load section (between its markers) or append it; every other section is kept as it is."""
    machine = f"{platform.node()}: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    alone = f["alone"]
    pages = [(name, f"{alone[name]:.0f}" if name in alone else "", row["Request Count"], row["50%"], row["95%"],
              row["99%"], row["Failure Count"]) for name, row in f["pages"].items()]
    checks = f["checks"]
    rows = [(t, r, i, u, per_check(i, checks), per_check(u, checks)) for t, (r, i, u) in f["rows"].items()]
    total_ins = sum(i for _, (_, i, _) in f["rows"].items())
    total_upd = sum(u for _, (_, _, u) in f["rows"].items())
    path_ins = sum(f["rows"].get(t, (0, 0, 0))[1] for t in CHECK_PATH)
    path_upd = sum(f["rows"].get(t, (0, 0, 0))[2] for t in CHECK_PATH)
    refused = ", ".join(f"{n}: {c}" for n, c in f["refused"].items()) or "none"
    block = (
        f"{BEGIN}\n"
        f"`make bench-load` (bench/load.py, bench/locustfile.py), run on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
        f"on {machine}. **The machine was shared with other helpers' test runs and benchmarks while measuring**\n"
        f"(1-minute load average {f['load'][0]:.1f} before the run, {f['load'][1]:.1f} after, on 2 cores): the\n"
        "figures are what this run saw, not the dashboard's best.\n\n"
        f"{f['users']} people signed in for real (the simulator's Entra sign-in, each from its own address behind\n"
        f"`BEHIND_PROXY=1`), browsing and running checks with no think time for {f['seconds']} s, against gunicorn\n"
        f"({args.web_workers} workers x {args.web_threads} threads, `DEMO_MODE=0`, `DEBUG=0`, `SECURE=0` on loopback) and one\n"
        f"`checks_worker --threads {args.worker_threads}`, on PostgreSQL, {f['servers']} servers, the simulator as Azure;\n"
        "locust ran on the same 2 cores.\n\n"
        f"- requests: **{f['requests']}**, **{f['rps']:.1f}/s**; failures: **{f['failures']}**; "
        f"5xx in gunicorn's access log: **{f['server_5xx']}**\n"
        f"- the rate limiter's 429s (120 POSTs per person per minute), not counted as failures: {refused}\n"
        "- GETs sent again on a new connection because gunicorn closed a kept-alive one (2 s idle) just as it was\n"
        "  reused, as a browser does (after the identity provider's page): "
        f"{', '.join(f'{n}: {c}' for n, c in f['reconnected'].items()) or 'none'}\n"
        f"- checks created: {checks}, all finished when measured: {'yes' if f['drained'] else 'no'}; "
        f"rows inserted per check: **{per_check(total_ins, checks)}**, rows updated per check: "
        f"**{per_check(total_upd, checks)}** (every table, sign-ins and sessions included); on the check's own path\n"
        f"  ({', '.join(CHECK_PATH)}): {per_check(path_ins, checks)} inserted and {per_check(path_upd, checks)} updated\n"
        "  per check\n\n"
        + "With no think time the run is a closed loop: each person asks again as soon as answered, so a request\n"
        f"waits behind the others (Little's law: {f['users']} people / {f['rps']:.1f} requests a second = "
        f"{f['users'] / max(f['rps'], 0.1):.1f} s).\n"
        "\"alone\" is the median of 10 requests by one person before the load, same processes and data.\n\n"
        + markdown_table(["page", "alone ms", "requests", "p50 ms", "p95 ms", "p99 ms", "failures"], pages)
        + "\nRows by table (PostgreSQL's counters, read after the processes stopped):\n\n"
        + markdown_table(["table", "rows added", "inserted", "updated", "inserted per check", "updated per check"],
                         rows)
        + f"{END}"
    )
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    begin, end = text.find(BEGIN), text.find(END)
    if begin >= 0 and end > begin:
        text = text[:begin] + block + text[end + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n## Load: 50 signed-in people for 60 s (issue 14)\n\n" + block + "\n"
    path.write_text(text.rstrip("\n") + "\n")


def markdown_table(header: list[str], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

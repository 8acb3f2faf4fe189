"""Benchmark: sweep a fleet of 1,000 servers across 5 subscriptions through the real pipeline.

    make bench            (or: .venv/bin/python bench/sweep.py --servers 1000 --workers 2 --threads 32 --scheduled)

The simulator answers each ltrPreBackup after 300 ms and meters writes with ARM's real bucket (200 per
subscription and principal, +10/s). Checks run in real `checks_worker` processes. Two sweeps, one run:

- the manual sweep: one batch queued directly, then workers started with `--batch` (they exit when the queue
  is empty); its wall time is from starting the workers to their exit;
- the scheduled sweep (`--scheduled`): workers already running (without `--batch`, polling for due schedules
  every SCHEDULES_POLL_SECONDS), then a schedule over all servers, owned by the signed-in user, due now; the
  workers must fire it exactly once. Its wall time is from the schedule's due time to the last check's
  `finished_at`; the workers are then stopped with SIGTERM (the bench polls `Batch.progress()`).

Both are measured against the same bound, and printed as ratios:

- the bucket and the latency allow max over subscriptions of (max(0, n - 200) / 10 s + 300 ms); at our
  concurrency (workers x threads) it is also at least ceil(N / concurrency) x 300 ms; the larger is the bound;
- against a sequential loop of single calls, measured here on a sample and scaled to N;
- against a direct pool of workers x threads threads calling the same endpoint N times over one HTTP session
  (no queue, no database, no pacing): checks a second of the sweep (first check started to last finished)
  next to calls a second of the pool, and their ratio; at `--latency-ms 0` this is the pipeline's own overhead;
- 429s answered by the simulator, token-endpoint calls, peak RSS of a worker process.

The scheduled sweep passes when the schedule created exactly 1 batch, ARM answered no 429, every check passed,
and it took no longer than the manual sweep (plus a fifth for noise and one poll of lateness); otherwise the
bench exits 1, after printing and writing its figures.

Before each sweep ARM's buckets (the simulator's and our copy) are full again, so both start alike.
`--write FILE` rewrites the file's head (up to its first `## ` heading) with the manual sweep's table and the
scheduled sweep's table between its markers; every other section of the file is kept.
"""

import argparse
import math
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TENANT = "11111111-1111-4111-8111-111111111111"
SCHEDULED_BEGIN, SCHEDULED_END = "<!-- bench: scheduled sweep -->", "<!-- /bench: scheduled sweep -->"


def main() -> None:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ltr-bench-"))
    db_url = os.environ.get("DATABASE_URL") or f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ.update({"DEMO_MODE": "1", "DEBUG": "0", "DATABASE_URL": db_url, "LOG_LEVEL": "WARNING",
                       "DJANGO_SETTINGS_MODULE": "config.settings", "VAR_DIR": str(workdir),
                       "ALERT_WEBHOOK_ALLOW_PRIVATE": "1", "ALERT_WEBHOOK_ALLOW_HTTP": "1",  # the catcher
                       "SCHEDULES_POLL_SECONDS": str(args.poll_seconds)})
    subscriptions = [f"0b5e{n:04x}-0000-4000-8000-00000000be{n:02x}" for n in range(1, args.subscriptions + 1)]
    sim = start_simulator(subscriptions, workdir)
    try:
        figures, scheduled = run(args, sim, subscriptions, db_url)
    finally:
        sim.stop()
    print_table(figures)
    if scheduled:
        print()
        print_table(scheduled)
    if args.write:
        write_markdown(Path(args.write), figures, scheduled, args)
    if scheduled and scheduled["verdict"] != "ok":
        sys.exit(f"scheduled sweep: {scheduled['verdict']}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--subscriptions", type=int, default=5)
    parser.add_argument("--latency-ms", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--interval", type=float, default=0.05, help="workers' seconds between polls of an empty queue")
    parser.add_argument("--sequential-sample", type=int, default=30)
    parser.add_argument("--scheduled", action="store_true", help="also run the scheduled sweep, side by side")
    parser.add_argument("--poll-seconds", type=float, default=1.0,
                        help="SCHEDULES_POLL_SECONDS for the workers (how late a due schedule may fire)")
    parser.add_argument("--write", help="write the figures to this Markdown file")
    parser.add_argument("--not-ready", action="store_true",
                        help="every server answers 'not ready' (stopped): each check changes its server's readiness")
    parser.add_argument("--channels", type=int, default=0,
                        help="alert channels of the tenant (signed webhooks to a catcher on loopback): with "
                             "--not-ready, an alert storm of one change a server (docs/alerts.md, Bursts)")
    return parser.parse_args()


def start_simulator(subscriptions: list[str], workdir: Path):
    from azuresim import Simulator

    scenario = {
        "tenants": [{"id": TENANT, "name": "Contoso", "users": [
            {"oid": "a11ce000-0000-4000-8000-000000000001", "upn": "alice@contoso.example", "name": "Alice Admin"}]}],
        "apps": [{"client_id": "d3d3d3d3-0000-4000-8000-000000000001", "client_secret": "demo-client-secret",
                  "multi_tenant": True}],
        "subscriptions": [{"id": sub, "name": f"Sub {i}", "tenant": TENANT, "principals": ["*"],
                           "resource_groups": [{"name": "rg-bench", "servers": []}]}
                          for i, sub in enumerate(subscriptions)],
        "throttle": {"capacity": 200, "refill_per_second": 10},
    }
    sim = Simulator(scenario=scenario, state_dir=str(workdir / "sim")).start()
    os.environ.update({"AZURE_AUTHORITY_HOST": sim.https_url, "AZURE_ARM_ENDPOINT": sim.https_url,
                       "AZURE_CA_BUNDLE": str(sim.ca_path)})
    return sim


def run(args, sim, subscriptions: list[str], db_url: str) -> tuple[dict, dict | None]:
    """Set up Django and the fleet, sign in, then the baseline and the sweeps; their figures."""
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = ["*"]
    settings.AZURE_REDIRECT_URI = "http://127.0.0.1:8000/auth/callback/"
    call_command("migrate", verbosity=0)
    names = register_fleet(sim, subscriptions, args)
    user = sign_in()
    per_call = sequential_baseline(user, names[: args.sequential_sample])
    direct = direct_pool(user, names, args.workers * args.threads)
    bound = Bound(args, len(subscriptions))
    catcher = add_channels(args.channels)
    manual = manual_sweep(args, sim, user)
    figures = manual_figures(args, manual, bound, per_call, len(subscriptions), db_url)
    figures.update(throughput_figures(manual, direct))
    if catcher:
        figures.update(alert_figures(args, catcher))
        catcher.stop()
    scheduled = scheduled_figures(scheduled_sweep(args, sim, user), bound, manual) if args.scheduled else None
    return figures, scheduled


def register_fleet(sim, subscriptions: list[str], args) -> list[tuple[str, str]]:
    from dashboard.models import Server

    names = []
    for i in range(args.servers):
        sub = subscriptions[i % len(subscriptions)]
        name = f"pg-bench-{i:04d}"
        outcome = {"outcome": "not_ready", "state": "Stopped"} if args.not_ready else {
            "outcome": "success", "containers": 1 + i % 4}
        sim.set_behaviour(sub, "rg-bench", name, latency_ms=args.latency_ms, **outcome)
        names.append((sub, name))
    Server.objects.bulk_create(
        [Server(tenant_id=TENANT, subscription_id=sub, resource_group="rg-bench", name=name) for sub, name in names]
    )
    return names


def add_channels(n: int):
    """n signed-webhook channels of the tenant, all to one catcher on loopback; the catcher (None for 0)."""
    if not n:
        return None
    from alerts.catcher import Catcher
    from alerts.models import Channel

    catcher = Catcher().start()
    for i in range(n):
        channel = Channel(tenant_id=TENANT, name=f"Bench {i}", kind=Channel.Kind.WEBHOOK)
        channel.set_target(f"{catcher.url}/hook-{i}", f"{catcher.url}/…{i}")
        channel.set_secret(f"bench-secret-{i}")
        channel.save()
    return catcher


def alert_figures(args, catcher) -> dict:
    """What the storm cost the channels: deliveries by status, and the POSTs that reached the catcher."""
    from alerts.models import Delivery

    statuses = Counter(Delivery.objects.values_list("status", flat=True))
    return {
        "alert channels": args.channels,
        "deliveries by status": ", ".join(f"{k}: {v}" for k, v in statuses.most_common()),
        "POSTs the catcher received during the sweep": len(catcher.received),
    }


def sign_in():
    """Sign in once, through the real flow, as the dashboard would; the signed-in user."""
    import requests
    from django.test import Client

    from dashboard.models import User

    client = Client()
    start = client.get("/auth/signin/", {"login_hint": "alice@contoso.example"})
    authorize = requests.get(start["Location"], allow_redirects=False, timeout=10)
    callback = urlparse(authorize.headers["Location"])
    client.get(callback.path, {k: v[0] for k, v in parse_qs(callback.query).items()})
    return User.objects.get()


def sequential_baseline(user, sample: list[tuple[str, str]]) -> float:
    """Seconds a call in a sequential loop of single calls, measured on `sample`."""
    from armclient.operations import ltr_pre_backup
    from dashboard import entra

    token = entra.arm_token(user)
    t0 = time.perf_counter()
    for sub, name in sample:
        ltr_pre_backup(tokens=lambda claims: token, principal_oid=user.object_id, subscription_id=sub,
                       resource_group="rg-bench", server_name=name, backup_name="bench", api_version="2024-08-01")
    return (time.perf_counter() - t0) / max(1, len(sample))


def direct_pool(user, names: list[tuple[str, str]], threads: int) -> dict:
    """The same N calls by a plain pool of `threads` threads over one HTTP session: no queue, no database, no
    pacing; what the simulator and this machine allow, measured in this run to compare the pipeline with."""
    from concurrent.futures import ThreadPoolExecutor

    import requests
    from django.conf import settings
    from requests.adapters import HTTPAdapter

    from armclient.operations import pre_backup_url
    from dashboard import entra

    token = entra.arm_token(user).access_token
    session = requests.Session()
    session.trust_env, session.verify = False, settings.AZURE_CA_BUNDLE
    session.mount("https://", HTTPAdapter(pool_connections=4, pool_maxsize=threads))

    def call(name: tuple[str, str]) -> int:
        response = session.post(pre_backup_url(name[0], "rg-bench", name[1]), params={"api-version": "2024-08-01"},
                                json={"backupSettings": {"backupName": "direct"}},
                                headers={"Authorization": f"Bearer {token}"}, timeout=30)
        return response.status_code

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        answers = Counter(pool.map(call, names))
    wall = time.perf_counter() - t0
    session.close()
    return {"wall": wall, "calls": len(names), "threads": threads, "answers": answers}


def throughput_figures(manual: dict, direct: dict) -> dict:
    """Checks a second of the sweep (first check started → last finished, and workers started → exited) next to
    the direct pool's calls a second, and their ratio."""
    # Only the checks that finished (a check can fail to record, e.g. SQLite's "database is locked").
    checks = manual["batch"].checks.filter(finished_at__isnull=False, started_at__isnull=False)
    n = checks.count()
    if not n:
        return {"checks a second": "no check finished"}
    span = (max(checks.values_list("finished_at", flat=True))
            - min(checks.values_list("started_at", flat=True))).total_seconds()
    direct_rate = direct["calls"] / direct["wall"]
    rate = n / span if span > 0 else float("inf")
    answers = ", ".join(f"{k}: {v}" for k, v in direct["answers"].most_common())
    return {
        "checks a second (first started → last finished)": f"{rate:.0f}/s ({span:.2f} s)",
        "checks a second (workers started → exited)": f"{n / manual['wall']:.0f}/s",
        f"direct pool of {direct['threads']} threads, same calls": f"{direct_rate:.0f} calls/s "
                                                                    f"({direct['wall']:.2f} s; {answers})",
        "sweep / direct pool": f"{rate / direct_rate:.2f}",
    }


def refill_buckets(sim) -> None:
    """ARM's buckets full again, the simulator's and our copy, so each sweep starts alike."""
    from armclient.models import RateBucket

    sim.reset_calls()
    sim.set_throttle(capacity=200, refill_per_second=10)
    RateBucket.objects.all().delete()


class Bound:
    """The least time any sweep of this fleet can take: ARM's bucket and latency, and our concurrency."""

    def __init__(self, args, subscriptions: int):
        per_sub = math.ceil(args.servers / subscriptions)
        latency = args.latency_ms / 1000
        self.bucket = max(0.0, (per_sub - 200) / 10) + latency
        self.concurrency = args.workers * args.threads
        self.at_concurrency = math.ceil(args.servers / self.concurrency) * latency
        self.seconds = max(self.bucket, self.at_concurrency)

    def ratio(self, wall: float) -> str:
        # At 0 ms latency and 200 or fewer servers a subscription nothing bounds the sweep from below.
        return f"{wall / self.seconds:.2f}" if self.seconds > 0 else "n/a (bound is 0 s)"


class Counters:
    """What reached the simulator between two moments: 429s and token-endpoint calls."""

    def __init__(self, sim):
        self.sim = sim
        self.throttled, self.token_calls = sim.stats.throttled, sim.stats.token_calls()

    def since(self) -> tuple[int, int]:
        return self.sim.stats.throttled - self.throttled, self.sim.stats.token_calls() - self.token_calls


def attempts_by_answer(batch) -> Counter:
    return Counter(str(a.get("status") or a.get("error"))
                   for log in batch.checks.values_list("attempt_log", flat=True) for a in log)


def start_workers(args, *, batch: bool) -> list[subprocess.Popen]:
    command = [sys.executable, "manage.py", "checks_worker", "--threads", str(args.threads), "--interval", str(args.interval)]
    # INFO, for the line that says a worker is up; only warnings and errors are passed on to our stderr.
    env = {**os.environ, "LOG_LEVEL": "INFO"}
    workers = []
    for _ in range(args.workers):
        proc = subprocess.Popen(command + (["--batch"] if batch else []), cwd=ROOT, env=env,
                                stderr=subprocess.PIPE, text=True)
        proc.up = threading.Event()
        threading.Thread(target=relay_warnings, args=(proc,), daemon=True).start()
        workers.append(proc)
    return workers


def relay_warnings(proc: subprocess.Popen) -> None:
    for line in proc.stderr:
        if "Checks worker" in line and "at once" in line:
            proc.up.set()
        level = line.split(" ", 3)[2] if line.count(" ") >= 3 else ""
        if level not in ("INFO", "DEBUG"):
            sys.stderr.write(line)


def manual_sweep(args, sim, user) -> dict:
    """One batch queued directly, then `checks_worker --batch` processes until the queue is empty."""
    from checks.models import Batch
    from dashboard.models import Server

    refill_buckets(sim)
    counters = Counters(sim)
    t_queue = time.perf_counter()
    batch, _ = Batch.objects.queue(list(Server.objects.all()), user, api_version="2024-08-01")
    t0 = time.perf_counter()
    for proc in start_workers(args, batch=True):
        proc.wait()
    wall = time.perf_counter() - t0
    throttled, token_calls = counters.since()
    return {"batch": batch, "wall": wall, "queued_in": t0 - t_queue, "throttled": throttled, "token_calls": token_calls,
            "progress": batch.progress(), "attempts": attempts_by_answer(batch),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def scheduled_sweep(args, sim, user) -> dict:
    """Workers running without --batch; a schedule over every server, due now; stopped when its batch is done."""
    from django.utils import timezone

    from checks.models import Batch
    from schedules.models import Schedule

    refill_buckets(sim)
    counters = Counters(sim)
    before = Batch.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    workers = start_workers(args, batch=False)
    for proc in workers:
        if not proc.up.wait(timeout=120):
            sys.exit("a checks worker did not start within 120 s")
    now = timezone.now()
    schedule = Schedule(tenant_id=TENANT, owner=user, name="bench: every server", scope=Schedule.Scope.ALL,
                        cadence=Schedule.Cadence.EVERY, every_hours=24, time_zone="UTC", next_run_at=now)
    schedule.full_clean()
    schedule.save()
    batch = wait_for_run(schedule, timeout=120 + 10 * args.servers * args.latency_ms / 1000)
    # One more poll of every worker after the run: a second firing would show as a second batch.
    time.sleep(args.poll_seconds + 0.5)
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
    for proc in workers:
        proc.wait(timeout=180)
    throttled, token_calls = counters.since()
    schedule.refresh_from_db()
    return {"schedule": schedule, "due": now, "batch": batch, "throttled": throttled, "token_calls": token_calls,
            "batches": Batch.objects.filter(pk__gt=before).count(), "progress": batch.progress(),
            "poll_seconds": args.poll_seconds,
            "attempts": attempts_by_answer(batch)}


def wait_for_run(schedule, timeout: float):
    """The batch the schedule's run queued, once every check in it has finished (polled, as a page would)."""
    from schedules.models import Schedule

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = Schedule.objects.get(pk=schedule.pk).last_batch
        if batch is not None and batch.progress()["finished"]:
            return batch
        time.sleep(0.25)
    sys.exit(f"the schedule's run did not finish within {timeout:.0f} s")


def manual_figures(args, manual: dict, bound: Bound, per_call: float, subscriptions: int, db_url: str) -> dict:
    progress, attempts = manual["progress"], manual["attempts"]
    sequential = per_call * args.servers
    return {
        "servers": args.servers,
        "subscriptions": subscriptions,
        "simulated latency": f"{args.latency_ms} ms",
        "workers x threads": f"{args.workers} x {args.threads} = {bound.concurrency}",
        "database": db_url.split(":")[0],
        "checks passed / total": f"{progress['passed']} / {progress['total']}",
        "wall time of the sweep": f"{manual['wall']:.1f} s",
        "bound from the bucket and latency": f"{bound.bucket:.1f} s",
        "bound at this concurrency": f"{bound.at_concurrency:.1f} s",
        "wall / bound": bound.ratio(manual["wall"]),
        f"sequential loop (measured on {args.sequential_sample}, scaled)":
            f"{sequential:.0f} s ({per_call * 1000:.0f} ms a call)",
        "sequential / sweep (speed-up)": f"{sequential / manual['wall']:.1f}x",
        "429s answered": manual["throttled"],
        "429s / calls": f"{manual['throttled'] / max(1, sum(attempts.values())):.1%}",
        "HTTP attempts by answer": ", ".join(f"{k}: {v}" for k, v in attempts.most_common()),
        "token-endpoint calls during the sweep": manual["token_calls"],
        "peak worker RSS": f"{manual['peak_rss_mb']:.0f} MB",
    }


def scheduled_figures(run: dict, bound: Bound, manual: dict) -> dict:
    """The two sweeps side by side: {figure: (manual, scheduled)}, and whether the schedule did its part."""
    checks = run["batch"].checks
    last = max(checks.values_list("finished_at", flat=True))
    first_started = min(checks.values_list("started_at", flat=True))
    wall = (last - run["due"]).total_seconds()
    fired_after = (run["batch"].created_at - run["due"]).total_seconds()
    progress, mprogress = run["progress"], manual["progress"]
    rows = {
        "checks queued in": (f"{manual['queued_in']:.1f} s (before the workers start)",
                             f"{_span(checks, 'created_at', run['batch']):.1f} s (while the workers run)"),
        "batch created → last check finished": (f"{_span(manual['batch'].checks, 'finished_at', manual['batch']):.1f} s",
                                                f"{_span(checks, 'finished_at', run['batch']):.1f} s"),
        "wall time": (f"{manual['wall']:.1f} s (workers started → exited)",
                      f"{wall:.1f} s (due → last check finished)"),
        "wall / bound": (bound.ratio(manual["wall"]), bound.ratio(wall)),
        "fired after its due time": ("", f"{fired_after:.2f} s (first check started after "
                                         f"{(first_started - run['due']).total_seconds():.2f} s)"),
        "batches created": (1, run["batches"]),
        "checks passed / total": (f"{mprogress['passed']} / {mprogress['total']}",
                                  f"{progress['passed']} / {progress['total']}"),
        "429s answered": (manual["throttled"], run["throttled"]),
        "HTTP attempts by answer": tuple(", ".join(f"{k}: {v}" for k, v in a.most_common())
                                         for a in (manual["attempts"], run["attempts"])),
        "token-endpoint calls": (manual["token_calls"], run["token_calls"]),
        "schedule's next run": ("", f"due + {_hours(run['schedule'].next_run_at - run['due'])} h"),
    }
    # The same bound as the manual sweep: as fast, give or take a fifth for noise, plus one poll's lateness.
    slower = wall - run["poll_seconds"] > 1.2 * manual["wall"]
    problems = [p for p, bad in (
        (f"took {wall:.1f} s, the manual sweep {manual['wall']:.1f} s (wall / bound {bound.ratio(wall)} against "
         f"{bound.ratio(manual['wall'])})", slower),
        (f"{run['batches']} batches, not 1", run["batches"] != 1),
        (f"{run['throttled']} 429s", run["throttled"] != 0),
        (f"{progress['passed']} of {progress['total']} passed", progress["passed"] != progress["total"]),
        (f"{progress['total']} checks for {mprogress['total']} servers", progress["total"] != mprogress["total"]),
    ) if bad]
    return {"rows": rows, "verdict": "; ".join(problems) or "ok"}


def _span(checks, field: str, batch) -> float:
    """Seconds from the batch's creation to the latest `field` of its checks."""
    return (max(checks.values_list(field, flat=True)) - batch.created_at).total_seconds()


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:g}"


def print_table(figures: dict) -> None:
    if "rows" in figures:
        figures = {"": ("manual", "scheduled"), **figures["rows"], "verdict": ("", figures["verdict"])}
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        shown = "  |  ".join(str(v) for v in value) if isinstance(value, tuple) else value
        print(f"{key:<{width}}  {shown}")


def write_markdown(path: Path, figures: dict, scheduled: dict | None, args) -> None:
    """Rewrite the head (up to the first `## `) and the scheduled table (between its markers); keep the rest."""
    text = path.read_text() if path.exists() else ""
    cut = text.find("\n## ")
    rest = text[cut + 1:] if cut >= 0 else ""
    machine = f"{platform.node()}: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    ran = f"Machine: {machine}, load average {load}. Run on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}."
    head = (
        "# Benchmarks\n\n"
        "`make bench` (bench/sweep.py): a sweep of the whole fleet through the real pipeline (batch, queue,\n"
        "`checks_worker` processes, pacing, ARM client) against azuresim with ARM's write bucket (200 per\n"
        "subscription and principal, +10/s) and a fixed latency. All figures come from one run; ratios compare\n"
        "with the bound and the sequential baseline measured in that same run.\n\n"
        f"{ran}\n\n" + markdown_table(["figure", "value"], [(k, v) for k, v in figures.items()]) + "\n"
    )
    if scheduled:
        rows = [(k, *v) for k, v in scheduled["rows"].items()] + [("verdict", "", scheduled["verdict"])]
        block = (f"{SCHEDULED_BEGIN}\n{ran} `SCHEDULES_POLL_SECONDS={args.poll_seconds:g}`.\n\n"
                 + markdown_table(["figure", "manual sweep", "scheduled sweep"], rows) + f"{SCHEDULED_END}")
        rest = replace_block(rest, block)
    path.write_text((head + rest).rstrip("\n") + "\n")


def replace_block(text: str, block: str) -> str:
    """`text` with the scheduled table replaced, or a new section holding it appended."""
    begin, end = text.find(SCHEDULED_BEGIN), text.find(SCHEDULED_END)
    if begin >= 0 and end > begin:
        return text[:begin] + block + text[end + len(SCHEDULED_END):]
    return text.rstrip("\n") + ("\n\n" if text else "") + "## A scheduled sweep\n\n" + block + "\n"


def markdown_table(header: list[str], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

"""Benchmark: sweep a fleet of 1,000 servers across 5 subscriptions through the real pipeline.

    make bench            (or: .venv/bin/python bench/sweep.py --servers 1000 --workers 2 --threads 32)

The simulator answers each ltrPreBackup after 300 ms and meters writes with ARM's real bucket (200 per
subscription and principal, +10/s). Checks are queued as one batch and run by real `checks_worker`
processes. Everything is measured in this run and printed as ratios:

- against the theoretical bound: the bucket and the latency allow max over subscriptions of
  (max(0, n - 200) / 10 s + 300 ms); at our concurrency (workers x threads) it is also at least
  ceil(N / concurrency) x 300 ms; the larger of the two is the bound;
- against a sequential loop of single calls, measured here on a sample and scaled to N;
- 429s answered by the simulator, token-endpoint calls, peak RSS of a worker process.
"""

import argparse
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--subscriptions", type=int, default=5)
    parser.add_argument("--latency-ms", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--sequential-sample", type=int, default=30)
    parser.add_argument("--write", help="write the figures to this Markdown file")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="ltr-bench-"))
    db_url = os.environ.get("DATABASE_URL") or f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ.update({"DEMO_MODE": "1", "DEBUG": "0", "DATABASE_URL": db_url, "LOG_LEVEL": "WARNING",
                       "DJANGO_SETTINGS_MODULE": "config.settings", "VAR_DIR": str(workdir)})

    from azuresim import Simulator

    subscriptions = [f"0b5e{n:04x}-0000-4000-8000-00000000be{n:02x}" for n in range(1, args.subscriptions + 1)]
    tenant = "11111111-1111-4111-8111-111111111111"
    scenario = {
        "tenants": [{"id": tenant, "name": "Contoso", "users": [
            {"oid": "a11ce000-0000-4000-8000-000000000001", "upn": "alice@contoso.example", "name": "Alice Admin"}]}],
        "apps": [{"client_id": "d3d3d3d3-0000-4000-8000-000000000001", "client_secret": "demo-client-secret",
                  "multi_tenant": True}],
        "subscriptions": [{"id": sub, "name": f"Sub {i}", "tenant": tenant, "principals": ["*"],
                           "resource_groups": [{"name": "rg-bench", "servers": []}]}
                          for i, sub in enumerate(subscriptions)],
        "throttle": {"capacity": 200, "refill_per_second": 10},
    }
    sim = Simulator(scenario=scenario, state_dir=str(workdir / "sim")).start()
    os.environ.update({"AZURE_AUTHORITY_HOST": sim.https_url, "AZURE_ARM_ENDPOINT": sim.https_url,
                       "AZURE_CA_BUNDLE": str(sim.ca_path)})

    import django

    django.setup()
    import requests
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from armclient.models import RateBucket
    from armclient.operations import ltr_pre_backup
    from checks.models import Batch
    from dashboard import entra
    from dashboard.models import Server, User

    settings.ALLOWED_HOSTS = ["*"]
    settings.AZURE_REDIRECT_URI = "http://127.0.0.1:8000/auth/callback/"
    call_command("migrate", verbosity=0)

    names = []
    for i in range(args.servers):
        sub = subscriptions[i % len(subscriptions)]
        name = f"pg-bench-{i:04d}"
        sim.set_behaviour(sub, "rg-bench", name, outcome="success", containers=1 + i % 4,
                          latency_ms=args.latency_ms)
        names.append((sub, name))
    Server.objects.bulk_create(
        [Server(tenant_id=tenant, subscription_id=sub, resource_group="rg-bench", name=name) for sub, name in names]
    )

    # Sign in once, through the real flow, as the dashboard would.
    client = Client()
    start = client.get("/auth/signin/", {"login_hint": "alice@contoso.example"})
    authorize = requests.get(start["Location"], allow_redirects=False, timeout=10)
    callback = urlparse(authorize.headers["Location"])
    client.get(callback.path, {k: v[0] for k, v in parse_qs(callback.query).items()})
    user = User.objects.get()
    token_calls_before = sim.stats.token_calls()

    # Baseline: a sequential loop of single calls, on a sample, scaled to the fleet.
    token = entra.arm_token(user)
    sample = names[: args.sequential_sample]
    t0 = time.perf_counter()
    for sub, name in sample:
        ltr_pre_backup(tokens=lambda claims: token, principal_oid=user.object_id, subscription_id=sub,
                       resource_group="rg-bench", server_name=name, backup_name="bench", api_version="2024-08-01")
    per_call = (time.perf_counter() - t0) / len(sample)
    sequential = per_call * args.servers
    sim.reset_calls()
    sim.set_throttle(capacity=200, refill_per_second=10)  # every bucket full again
    RateBucket.objects.all().delete()
    throttled_before = sim.stats.throttled

    batch, _ = Batch.objects.queue(list(Server.objects.all()), user, api_version="2024-08-01")
    env = {**os.environ}
    t0 = time.perf_counter()
    workers = [
        subprocess.Popen([sys.executable, "manage.py", "checks_worker", "--batch", "--threads", str(args.threads),
                          "--interval", "0.05"], cwd=ROOT, env=env)
        for _ in range(args.workers)
    ]
    for proc in workers:
        proc.wait()
    wall = time.perf_counter() - t0
    peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    progress = batch.progress()
    from collections import Counter

    from checks.models import Check

    attempts = Counter(
        str(a.get("status") or a.get("error")) for log in Check.objects.values_list("attempt_log", flat=True) for a in log
    )
    per_sub = math.ceil(args.servers / len(subscriptions))
    latency = args.latency_ms / 1000
    bucket_bound = max(0.0, (per_sub - 200) / 10) + latency
    concurrency = args.workers * args.threads
    concurrency_bound = math.ceil(args.servers / concurrency) * latency
    bound = max(bucket_bound, concurrency_bound, 1e-3)  # at 0 ms latency and few servers both bounds are 0
    figures = {
        "servers": args.servers,
        "subscriptions": len(subscriptions),
        "simulated latency": f"{args.latency_ms} ms",
        "workers x threads": f"{args.workers} x {args.threads} = {concurrency}",
        "database": db_url.split(":")[0],
        "checks passed / total": f"{progress['passed']} / {progress['total']}",
        "wall time of the sweep": f"{wall:.1f} s",
        "bound from the bucket and latency": f"{bucket_bound:.1f} s",
        "bound at this concurrency": f"{concurrency_bound:.1f} s",
        "wall / bound": f"{wall / bound:.2f}",
        f"sequential loop (measured on {len(sample)}, scaled)": f"{sequential:.0f} s ({per_call * 1000:.0f} ms a call)",
        "sequential / sweep (speed-up)": f"{sequential / wall:.1f}x",
        "429s answered": sim.stats.throttled - throttled_before,
        "429s / calls": f"{(sim.stats.throttled - throttled_before) / max(1, sum(attempts.values())):.1%}",
        "HTTP attempts by answer": ", ".join(f"{k}: {v}" for k, v in attempts.most_common()),
        "token-endpoint calls during the sweep": sim.stats.token_calls() - token_calls_before,
        "peak worker RSS": f"{peak_rss_mb:.0f} MB",
    }
    sim.stop()
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    if args.write:
        machine = f"{platform.node()}: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        lines = ["| figure | value |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in figures.items())]
        Path(args.write).write_text(
            "# Benchmarks\n\n"
            "`make bench` (bench/sweep.py): a sweep of the whole fleet through the real pipeline (batch, queue,\n"
            "`checks_worker` processes, pacing, ARM client) against azuresim with ARM's write bucket (200 per\n"
            "subscription and principal, +10/s) and a fixed latency. All figures come from one run; ratios compare\n"
            "with the bound and the sequential baseline measured in that same run.\n\n"
            f"Machine: {machine}. Run on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n\n"
            + "\n".join(lines) + "\n"
        )


if __name__ == "__main__":
    main()

"""`make run`: the whole dashboard in one command, on its embedded default.

Migrates SQLite, registers the demo fleet (seed_demo), then starts four processes and stops them in order
on Ctrl-C (or SIGTERM, SIGHUP): the Azure simulator (azuresim, on loopback), the alert catcher (alerts.catcher,
on loopback, DEMO_CATCHER_PORT), a task worker (checks_worker) and the web server. Once the simulator listens it
seeds the demo's watch (seed_demo_watch: Alice's schedule and the alert channel to the catcher). The simulator runs as
its own process, exactly as Azure would be: nothing is shared in memory. Only the demo's worker and web server
may post to loopback (ALERT_WEBHOOK_ALLOW_PRIVATE=1 in their environment): that is where the catcher listens.

Stopping drains: each child runs in its own process group, so a terminal's Ctrl-C (SIGINT to the whole
foreground group) reaches this command alone, not the worker twice (once from the terminal, once from here,
which the worker takes as "exit now"). This command then stops the web server first (no new checks), then the
worker with one SIGTERM, waiting while it finishes its in-flight checks (bounded by ARM_CHECK_DEADLINE), and only
then the catcher and the simulator those checks still talk to. A second Ctrl-C stops everything at once.
"""

import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

LOOPBACK = "127.0.0.1"


def _wait_for_port(name: str, host: str, port: int, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CommandError(f"The {name} exited with code {proc.returncode}; see its output above.")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise CommandError(f"The {name} did not start listening on {host}:{port} within {timeout:.0f} s.")


class Command(BaseCommand):
    help = "Run the dashboard in demo mode: simulator, alert catcher, worker and web server, stopped by Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--catcher-port", type=int, default=int(os.environ.get("DEMO_CATCHER_PORT", "8299")))

    def handle(self, *args, host, port, catcher_port, **options):
        if not settings.DEMO_MODE:
            raise CommandError("rundemo is for demo mode (DEMO_MODE=1); in production run gunicorn and checks_worker.")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("seed_demo")
        processes: list[tuple[str, subprocess.Popen]] = []

        def stop_on_sigterm(signum, frame):
            raise KeyboardInterrupt  # run the same clean-up as Ctrl-C

        signal.signal(signal.SIGTERM, stop_on_sigterm)
        signal.signal(signal.SIGHUP, stop_on_sigterm)
        try:
            self._start_all(processes, host, port, catcher_port)
            self.stdout.write(self.style.SUCCESS(
                f"\nDashboard: http://{host}:{port}/  (sign in as Contoso's Alice (admin), Bob (operator), Vera "
                "(viewer) or Dan (no role), or Fabrikam's Charlie)\n"
                f"Alerts go to the catcher at http://{LOOPBACK}:{catcher_port}/ (its lines start with "
                "alerts.catcher). Press Ctrl-C to stop.\n"
            ))
            while all(proc.poll() is None for _, proc in processes):
                time.sleep(0.5)
            stopped = [name for name, proc in processes if proc.poll() is not None]
            raise CommandError(f"{', '.join(stopped)} stopped unexpectedly; stopping the rest.")
        except KeyboardInterrupt:
            self.stdout.write("\nStopping: the web server, then the worker once its in-flight checks finish…")
        finally:
            _stop_all(processes, self.stdout)

    @staticmethod
    def _start_all(processes: list, host: str, port: int, catcher_port: int) -> None:
        """Start the four processes in order, each one's dependencies listening first; `processes` collects them
        as they start, so a failure part-way stops those already running. The demo's watch is seeded once the
        simulator listens (the schedule's first run asks Entra ID for Alice's token) and before the worker runs."""
        python = sys.executable
        # The demo's alert channel targets the catcher on loopback, which the SSRF rule refuses elsewhere.
        may_post_to_loopback = {**os.environ, "ALERT_WEBHOOK_ALLOW_PRIVATE": "1"}

        def start(name: str, argv: list[str], env: dict | None = None) -> subprocess.Popen:
            # Its own process group: the terminal's Ctrl-C is for this command, which stops the children in order.
            proc = subprocess.Popen(argv, env=env or os.environ.copy(), process_group=0)
            processes.append((name, proc))
            return proc

        sim = start("azuresim", [
            python, "-m", "azuresim",
            "--scenario", str(settings.AZURESIM_SCENARIO),
            "--host", settings.AZURESIM_HOST,
            "--https-port", str(settings.AZURESIM_HTTPS_PORT),
            "--http-port", str(settings.AZURESIM_HTTP_PORT),
            "--state-dir", str(settings.AZURESIM_STATE_DIR),
        ])
        _wait_for_port("simulator", settings.AZURESIM_HOST, settings.AZURESIM_HTTPS_PORT, 30, sim)
        catcher = start("catcher", [python, "-m", "alerts.catcher", "--host", LOOPBACK, "--port", str(catcher_port)])
        _wait_for_port("alert catcher", LOOPBACK, catcher_port, 10, catcher)
        call_command("seed_demo_watch", catcher_url=f"http://{LOOPBACK}:{catcher_port}/demo")
        start("worker", [python, "manage.py", "checks_worker", "--interval", "0.2"], may_post_to_loopback)
        start("web", [python, "manage.py", "runserver", f"{host}:{port}", "--noreload", "--skip-checks"],
              may_post_to_loopback)


def _stop_all(processes: list[tuple[str, subprocess.Popen]], out) -> None:
    """Stop the children newest first (web, worker, catcher, simulator), each before the next: the worker's
    in-flight checks still reach the simulator. A second Ctrl-C kills what is left."""
    drain = settings.ARM_CHECK_DEADLINE + 15
    try:
        for name, proc in reversed(processes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=drain if name == "worker" else 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    except KeyboardInterrupt:
        out.write("Second Ctrl-C: stopping everything now; checks cut short are marked interrupted later.")
        for _, proc in processes:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    out.write("Stopped.")
